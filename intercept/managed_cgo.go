package main

// The managed and mapped host memory entry points: argument conversion
// only; managed.go holds the logic.

/*
#include <sys/mman.h>
#include "shim.h"

// kerf_map_at maps n bytes of zeroed memory at addr, or fails (0) when
// anything of the program's is mapped there already.
static int kerf_map_at(uintptr_t addr, size_t n) {
	void *p = mmap((void *)addr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 0;
	if ((uintptr_t)p != addr) {
		munmap(p, n);
		return 0;
	}
	return 1;
}

static void kerf_unmap_at(uintptr_t addr, size_t n) { munmap((void *)addr, n); }
*/
import "C"

import (
	"unsafe"

	"github.com/kerf-edge/kerf/abi"
)

// pageRound rounds n up to whole pages; n is at most maxHostSpan.
func pageRound(n uint64) uint64 { return (n + 4095) &^ 4095 }

// mapHostAt maps size bytes of host memory at address p, page aligned.
func mapHostAt(p, size uint64) bool {
	return p&4095 == 0 && C.kerf_map_at(C.uintptr_t(p), C.size_t(pageRound(size))) == 1
}

func unmapHostAt(p, size uint64) { C.kerf_unmap_at(C.uintptr_t(p), C.size_t(pageRound(size))) }

// mirrorBytes views a mirror's host memory.
func mirrorBytes(mr *mirror) ([]byte, bool) {
	return hostBytes(addressPointer(mr.host), C.size_t(mr.size))
}

// shimAttribute answers the device attributes that describe the shim's
// own memory model, whatever the backend's device has.
func shimAttribute(attr uint32) (int32, bool) {
	switch attr {
	case abi.AttrCanMapHostMemory, abi.AttrManagedMemory, abi.AttrMemoryPoolsSupported:
		return 1, true
	case abi.AttrMemoryPoolSupportedHandleTypes:
		return 0, true
	case abi.AttrConcurrentManagedAccess, abi.AttrPageableMemoryAccess, abi.AttrCanUseHostPointerForRegisteredMem,
		abi.AttrPageableMemoryAccessUsesHostPageTables, abi.AttrDirectManagedMemAccessFromHost:
		return 0, true
	}
	return 0, false
}

func implMemAllocManaged(dptr *C.CUdeviceptr, size C.size_t, flags C.uint) C.CUresult {
	if dptr == nil {
		return errNull
	}
	p, res := memAllocManaged(uint64(size), uint32(flags))
	if res == abi.Success {
		*dptr = C.CUdeviceptr(p)
	}
	return cr(res)
}

func implMemHostRegister(p unsafe.Pointer, size C.size_t, flags C.uint) C.CUresult {
	return cr(hostRegister(uintptr(p), uint64(size), uint32(flags)))
}

func implMemHostUnregister(p unsafe.Pointer) C.CUresult { return cr(hostUnregister(uintptr(p))) }

func implMemHostGetDevicePointer(pd *C.CUdeviceptr, p unsafe.Pointer, flags C.uint) C.CUresult {
	if pd == nil {
		return errNull
	}
	d, res := hostDevicePointer(uint64(uintptr(p)), uint32(flags))
	if res == abi.Success {
		*pd = C.CUdeviceptr(d)
	}
	return cr(res)
}

func implMemHostGetFlags(pf *C.uint, p unsafe.Pointer) C.CUresult {
	if pf == nil {
		return errNull
	}
	f, res := hostFlags(uint64(uintptr(p)))
	if res == abi.Success {
		*pf = C.uint(f)
	}
	return cr(res)
}

func implMemPrefetchAsync(p C.CUdeviceptr, n C.size_t, dst C.CUdevice, s C.CUstream) C.CUresult {
	return cr(memPrefetch(uint64(p), uint64(n), int(dst), key(unsafe.Pointer(s))))
}

func implMemAdvise(p C.CUdeviceptr, n C.size_t, advice C.CUmem_advise, dev C.CUdevice) C.CUresult {
	return cr(memAdvise(uint64(p), uint64(n), int32(advice), int(dev)))
}

// rangeAttributeOut writes one range attribute into dataSize bytes at data.
func rangeAttributeOut(data unsafe.Pointer, size C.size_t, attr C.CUmem_range_attribute, p C.CUdeviceptr, n C.size_t) C.CUresult {
	if data == nil {
		return errNull
	}
	vals, res := memRangeAttribute(uint64(p), uint64(n), int32(attr))
	if res != abi.Success {
		return cr(res)
	}
	if attr == rangeAccessedBy {
		if size == 0 || size%4 != 0 || size > maxGraphList {
			return errNull
		}
		out := unsafe.Slice((*C.int)(data), int(size/4))
		for i := range out {
			out[i] = C.int(deviceInvalid)
			if i < len(vals) {
				out[i] = C.int(vals[i])
			}
		}
		return 0
	}
	if size != 4 {
		return errNull
	}
	*(*C.int)(data) = C.int(vals[0])
	return 0
}

func implMemRangeGetAttribute(data unsafe.Pointer, size C.size_t, attr C.CUmem_range_attribute, p C.CUdeviceptr, n C.size_t) C.CUresult {
	return rangeAttributeOut(data, size, attr, p, n)
}

func implMemRangeGetAttributes(data *unsafe.Pointer, sizes *C.size_t, attrs *C.CUmem_range_attribute, num C.size_t, p C.CUdeviceptr, n C.size_t) C.CUresult {
	if num == 0 || num > 16 || data == nil || sizes == nil || attrs == nil {
		return errNull
	}
	d, z, a := unsafe.Slice(data, int(num)), unsafe.Slice(sizes, int(num)), unsafe.Slice(attrs, int(num))
	for i := range d {
		if r := rangeAttributeOut(d[i], z[i], a[i], p, n); r != 0 {
			return r
		}
	}
	return 0
}
