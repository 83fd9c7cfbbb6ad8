package main

/*
#include "shim.h"
*/
import "C"

import (
	"unsafe"

	"github.com/kerf-edge/kerf/abi"
)

// The memory pool entry points: C arguments in, mempool.go's answers out.

func implMemAllocAsync(dptr *C.CUdeviceptr, size C.size_t, s C.CUstream) C.CUresult {
	if dptr == nil {
		return errNull
	}
	p, res := memAllocFromPool(uint64(size), nil, key(unsafe.Pointer(s)))
	if res == abi.Success {
		*dptr = C.CUdeviceptr(p)
	}
	return cr(res)
}

func implMemAllocFromPoolAsync(dptr *C.CUdeviceptr, size C.size_t, pool C.CUmemoryPool, s C.CUstream) C.CUresult {
	if dptr == nil {
		return errNull
	}
	p, res := poolOf(key(unsafe.Pointer(pool)))
	if res != abi.Success {
		return cr(res)
	}
	ptr, res := memAllocFromPool(uint64(size), p, key(unsafe.Pointer(s)))
	if res == abi.Success {
		*dptr = C.CUdeviceptr(ptr)
	}
	return cr(res)
}

func implMemFreeAsync(dptr C.CUdeviceptr, s C.CUstream) C.CUresult {
	return cr(memFreeAsync(uint64(dptr), key(unsafe.Pointer(s))))
}

// setPool stores a pool handle.
func setPool(out *C.CUmemoryPool, k uintptr, res Result) C.CUresult {
	if res == abi.Success {
		*out = C.CUmemoryPool(addressPointer(k))
	}
	return cr(res)
}

func implDeviceGetDefaultMemPool(out *C.CUmemoryPool, dev C.CUdevice) C.CUresult {
	if out == nil {
		return errNull
	}
	k, res := deviceDefaultPool(int(dev))
	return setPool(out, k, res)
}

func implDeviceGetMemPool(out *C.CUmemoryPool, dev C.CUdevice) C.CUresult {
	if out == nil {
		return errNull
	}
	k, res := deviceGetMemPool(int(dev))
	return setPool(out, k, res)
}

func implDeviceSetMemPool(dev C.CUdevice, pool C.CUmemoryPool) C.CUresult {
	return cr(deviceSetMemPool(int(dev), key(unsafe.Pointer(pool))))
}

func implMemPoolCreate(out *C.CUmemoryPool, props *C.CUmemPoolProps) C.CUresult {
	if out == nil || props == nil {
		return errNull
	}
	k, res := memPoolCreate(poolProps{allocType: uint32(props.allocType), handleTypes: uint32(props.handleTypes),
		locType: uint32(props.location._type), locID: int32(props.location.id)})
	return setPool(out, k, res)
}

func implMemPoolDestroy(pool C.CUmemoryPool) C.CUresult {
	return cr(memPoolDestroy(key(unsafe.Pointer(pool))))
}

func implMemPoolTrimTo(pool C.CUmemoryPool, keep C.size_t) C.CUresult {
	return cr(memPoolTrimTo(key(unsafe.Pointer(pool)), uint64(keep)))
}

// poolAttrIsInt reports whether a pool attribute's value is an int (the
// reuse policies); the others are cuuint64_t.
func poolAttrIsInt(attr C.CUmemPool_attribute) bool {
	return attr >= poolReuseFollowEventDeps && attr <= poolReuseInternalDeps
}

func implMemPoolSetAttribute(pool C.CUmemoryPool, attr C.CUmemPool_attribute, value unsafe.Pointer) C.CUresult {
	if value == nil {
		return errNull
	}
	var v uint64
	if poolAttrIsInt(attr) {
		iv := *(*C.int)(value)
		if iv < 0 {
			return cr(abi.ErrInvalidValue)
		}
		v = uint64(iv)
	} else {
		v = uint64(*(*C.cuuint64_t)(value))
	}
	return cr(memPoolSetAttribute(key(unsafe.Pointer(pool)), uint32(attr), v))
}

func implMemPoolGetAttribute(pool C.CUmemoryPool, attr C.CUmemPool_attribute, value unsafe.Pointer) C.CUresult {
	if value == nil {
		return errNull
	}
	v, isInt, res := memPoolGetAttribute(key(unsafe.Pointer(pool)), uint32(attr))
	if res != abi.Success {
		return cr(res)
	}
	if isInt {
		*(*C.int)(value) = C.int(v)
	} else {
		*(*C.cuuint64_t)(value) = C.cuuint64_t(v)
	}
	return cr(res)
}

// maxAccessDescs bounds an access map: one entry per device is all that
// means anything.
const maxAccessDescs = 1024

// accessDescs reads count CUmemAccessDesc entries.
func accessDescs(m *C.CUmemAccessDesc, count C.size_t) ([]accessDesc, C.CUresult) {
	if count == 0 {
		return nil, cr(abi.Success)
	}
	if m == nil {
		return nil, errNull
	}
	if count > maxAccessDescs {
		return nil, cr(abi.ErrInvalidValue)
	}
	out := make([]accessDesc, count)
	for i, d := range unsafe.Slice(m, int(count)) {
		out[i] = accessDesc{locType: uint32(d.location._type), locID: int32(d.location.id), flags: uint32(d.flags)}
	}
	return out, cr(abi.Success)
}

func implMemPoolSetAccess(pool C.CUmemoryPool, m *C.CUmemAccessDesc, count C.size_t) C.CUresult {
	descs, ret := accessDescs(m, count)
	if ret != cr(abi.Success) {
		return ret
	}
	return cr(memPoolSetAccess(key(unsafe.Pointer(pool)), descs))
}

func implMemPoolGetAccess(flags *C.CUmemAccess_flags, pool C.CUmemoryPool, loc *C.CUmemLocation) C.CUresult {
	if flags == nil || loc == nil {
		return errNull
	}
	f, res := memPoolGetAccess(key(unsafe.Pointer(pool)), uint32(loc._type), int32(loc.id))
	if res == abi.Success {
		*flags = C.CUmemAccess_flags(f)
	}
	return cr(res)
}
