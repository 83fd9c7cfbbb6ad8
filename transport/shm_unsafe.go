package transport

import (
	"sync/atomic"
	"unsafe"
)

// The state words live in memory shared with another process, so they are
// accessed atomically through pointers into the mapping.

func (r *shmRing) loadState(off int) uint32 {
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&r.mem[off])))
}

func (r *shmRing) storeState(off int, v uint32) {
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&r.mem[off])), v)
}
