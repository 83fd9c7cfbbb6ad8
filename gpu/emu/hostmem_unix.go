//go:build unix

package emu

import "syscall"

// mmapThreshold is the size from which device memory is mapped from the
// OS rather than taken from the Go heap: large allocations then neither
// inflate the garbage collector's heap target nor crash the process when
// the host cannot back them (mmap fails and the tenant gets
// CUDA_ERROR_OUT_OF_MEMORY).
const mmapThreshold = 64 << 10

// hostAlloc returns n zeroed bytes; mapped says whether hostFree must
// unmap them.
func hostAlloc(n uint64) (b []byte, mapped bool, err error) {
	if n < mmapThreshold {
		return make([]byte, n), false, nil
	}
	b, err = syscall.Mmap(-1, 0, int(n), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// hostFree releases b. The caller guarantees nothing uses it any more.
func hostFree(b []byte, mapped bool) {
	if mapped {
		_ = syscall.Munmap(b)
	}
}
