package main

/*
#include "shim.h"
*/
import "C"

import (
	"github.com/kerf-edge/kerf/abi"
)

// The virtual memory entry points: C arguments in, vmm.go's answers out.

func propOf(p *C.CUmemAllocationProp) allocProp {
	return allocProp{typ: uint32(p._type), handleTypes: uint32(p.requestedHandleTypes), locType: uint32(p.location._type),
		locID: int32(p.location.id), compression: uint8(p.allocFlags.compressionType)}
}

func implMemGetAllocationGranularity(g *C.size_t, p *C.CUmemAllocationProp, option C.CUmemAllocationGranularity_flags) C.CUresult {
	if g == nil || p == nil {
		return errNull
	}
	v, res := memGetAllocationGranularity(propOf(p), uint32(option))
	if res == abi.Success {
		*g = C.size_t(v)
	}
	return cr(res)
}

func implMemAddressReserve(ptr *C.CUdeviceptr, size, align C.size_t, addr C.CUdeviceptr, flags C.cuuint64_t) C.CUresult {
	if ptr == nil || flags != 0 {
		return errNull
	}
	_ = addr // a hint, which kerfd does not follow
	v, res := vmCall(abi.CallMemAddressReserve, uint64(size), uint64(align))
	if res == abi.Success {
		*ptr = C.CUdeviceptr(v)
	}
	return cr(res)
}

func implMemAddressFree(ptr C.CUdeviceptr, size C.size_t) C.CUresult {
	_, res := vmCall(abi.CallMemAddressFree, uint64(ptr), uint64(size))
	return cr(res)
}

func implMemCreate(h *C.CUmemGenericAllocationHandle, size C.size_t, p *C.CUmemAllocationProp, flags C.cuuint64_t) C.CUresult {
	if h == nil || p == nil {
		return errNull
	}
	v, res := memCreate(uint64(size), propOf(p), uint64(flags))
	if res == abi.Success {
		*h = C.CUmemGenericAllocationHandle(v)
	}
	return cr(res)
}

func implMemRelease(h C.CUmemGenericAllocationHandle) C.CUresult {
	_, res := vmCall(abi.CallMemRelease, uint64(h))
	return cr(res)
}

func implMemMap(ptr C.CUdeviceptr, size, offset C.size_t, h C.CUmemGenericAllocationHandle, flags C.cuuint64_t) C.CUresult {
	if flags != 0 {
		return errNull
	}
	_, res := vmCall(abi.CallMemMap, uint64(ptr), uint64(size), uint64(offset), uint64(h))
	return cr(res)
}

func implMemUnmap(ptr C.CUdeviceptr, size C.size_t) C.CUresult {
	_, res := vmCall(abi.CallMemUnmap, uint64(ptr), uint64(size))
	return cr(res)
}

func implMemSetAccess(ptr C.CUdeviceptr, size C.size_t, desc *C.CUmemAccessDesc, count C.size_t) C.CUresult {
	descs, ret := accessDescs(desc, count)
	if ret != cr(abi.Success) {
		return ret
	}
	return cr(memSetAccess(uint64(ptr), uint64(size), descs))
}

func implMemGetAccess(flags *C.cuuint64_t, loc *C.CUmemLocation, ptr C.CUdeviceptr) C.CUresult {
	if flags == nil || loc == nil {
		return errNull
	}
	v, res := memGetAccess(uint32(loc._type), int32(loc.id), uint64(ptr))
	if res == abi.Success {
		*flags = C.cuuint64_t(v)
	}
	return cr(res)
}
