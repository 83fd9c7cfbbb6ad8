package ptx

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// fallbackMu serialises atomics on host memory that is not naturally
// aligned (device alignment is checked before, so this only happens
// when a Memory hands out oddly aligned slices).
var fallbackMu sync.Mutex

// atomicUpdate applies atomic operation op to the 4 or 8 bytes of mem
// with a compare-and-swap loop and returns the old value.
func atomicUpdate(mem []byte, op uint8, t vtype, v, c uint64) uint64 {
	p := unsafe.Pointer(&mem[0])
	switch {
	case len(mem) == 4 && uintptr(p)%4 == 0:
		a := (*uint32)(p)
		for {
			old := atomic.LoadUint32(a)
			if atomic.CompareAndSwapUint32(a, old, uint32(atomNew(op, t, uint64(old), v, c))) {
				return uint64(old)
			}
		}
	case len(mem) == 8 && uintptr(p)%8 == 0:
		a := (*uint64)(p)
		for {
			old := atomic.LoadUint64(a)
			if atomic.CompareAndSwapUint64(a, old, atomNew(op, t, old, v, c)) {
				return old
			}
		}
	}
	fallbackMu.Lock()
	defer fallbackMu.Unlock()
	old := getN(mem, len(mem))
	putN(mem, len(mem), atomNew(op, t, old, v, c))
	return old
}

// atomicLoad reads the 4 or 8 bytes of mem atomically.
func atomicLoad(mem []byte) uint64 {
	p := unsafe.Pointer(&mem[0])
	switch {
	case len(mem) == 4 && uintptr(p)%4 == 0:
		return uint64(atomic.LoadUint32((*uint32)(p)))
	case len(mem) == 8 && uintptr(p)%8 == 0:
		return atomic.LoadUint64((*uint64)(p))
	}
	fallbackMu.Lock()
	defer fallbackMu.Unlock()
	return getN(mem, len(mem))
}

// atomicStore writes v to the 4 or 8 bytes of mem atomically.
func atomicStore(mem []byte, v uint64) {
	p := unsafe.Pointer(&mem[0])
	switch {
	case len(mem) == 4 && uintptr(p)%4 == 0:
		atomic.StoreUint32((*uint32)(p), uint32(v))
		return
	case len(mem) == 8 && uintptr(p)%8 == 0:
		atomic.StoreUint64((*uint64)(p), v)
		return
	}
	fallbackMu.Lock()
	defer fallbackMu.Unlock()
	putN(mem, len(mem), v)
}
