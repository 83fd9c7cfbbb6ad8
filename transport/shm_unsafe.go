package transport

import (
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The state words live in memory shared with another process, so they are
// accessed atomically through pointers into the mapping, and waited on
// with shared (not process-private) futexes.

const (
	futexWait = 0
	futexWake = 1
)

func (r *shmRing) word(off int) *uint32 { return (*uint32)(unsafe.Pointer(&r.mem[off])) }

func (r *shmRing) loadState(off int) uint32 { return atomic.LoadUint32(r.word(off)) }

func (r *shmRing) storeState(off int, v uint32) { atomic.StoreUint32(r.word(off), v) }

// futexWait sleeps while the word at off still holds val, at most d.
func (r *shmRing) futexWait(off int, val uint32, d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(r.word(off))), futexWait, uintptr(val), uintptr(unsafe.Pointer(&ts)), 0, 0)
}

// futexWake wakes a waiter on the word at off.
func (r *shmRing) futexWake(off int) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(r.word(off))), futexWake, 1, 0, 0, 0)
}

func (r *shmRing) word64(off int) *uint64 { return (*uint64)(unsafe.Pointer(&r.mem[off])) }

func (r *shmRing) load64(off int) uint64 { return atomic.LoadUint64(r.word64(off)) }

func (r *shmRing) store64(off int, v uint64) { atomic.StoreUint64(r.word64(off), v) }

func (r *shmRing) swapState(off int, v uint32) uint32 { return atomic.SwapUint32(r.word(off), v) }
