package main

import (
	"github.com/kerf-edge/kerf/abi"
)

// Virtual memory (cuMemAddressReserve, cuMemCreate, cuMemMap, ...) is
// kerfd's: each call goes to the session of the calling thread's current
// device, whose kerfd checks every range and handle against the
// session's own. An allocation handle is the session's wire handle. The
// shim checks the allocation properties and access descriptors, which
// may name only that device.

// Handle types a program may request of cuMemCreate: none, or a POSIX
// file descriptor, which is accepted and never exported (there is no
// cuMemExportToShareableHandle).
const (
	memHandleNone    = 0
	memHandlePosixFD = 1
)

// allocProp is what the shim reads of a CUmemAllocationProp.
type allocProp struct {
	typ, handleTypes, locType uint32
	locID                     int32
	compression               uint8
}

// checkProp checks p describes pinned memory on dv.
func checkProp(dv *device, p allocProp) Result {
	if p.typ != memAllocationPinned || p.locType != memLocationDevice || p.compression != 0 ||
		p.handleTypes != memHandleNone && p.handleTypes != memHandlePosixFD {
		return abi.ErrInvalidValue
	}
	if int(p.locID) != dv.idx {
		return abi.ErrInvalidDevice
	}
	return abi.Success
}

// vmCall forwards a virtual memory call to the current device's session
// and returns its first result word.
func vmCall(id abi.CallID, words ...uint64) (uint64, Result) {
	dv, res := currentDevice()
	if res != abi.Success {
		return 0, res
	}
	return vmCallOn(dv, id, words...)
}

func vmCallOn(dv *device, id abi.CallID, words ...uint64) (uint64, Result) {
	args := new(abi.Values)
	for _, w := range words {
		args.Word(w)
	}
	var out abi.Values
	if err := dv.cl.Call(id, args, &out); err != nil {
		return 0, abi.ResultOf(err)
	}
	if len(out.Words) == 0 {
		return 0, abi.Success
	}
	return out.Words[0], abi.Success
}

func memGetAllocationGranularity(p allocProp, option uint32) (uint64, Result) {
	dv, res := currentDevice()
	if res != abi.Success {
		return 0, res
	}
	if res := checkProp(dv, p); res != abi.Success {
		return 0, res
	}
	return vmCallOn(dv, abi.CallMemGetAllocationGranularity, uint64(option))
}

func memCreate(size uint64, p allocProp, flags uint64) (uint64, Result) {
	dv, res := currentDevice()
	if res != abi.Success {
		return 0, res
	}
	if res := checkProp(dv, p); res != abi.Success {
		return 0, res
	}
	if flags != 0 || size == 0 {
		return 0, abi.ErrInvalidValue
	}
	return vmCallOn(dv, abi.CallMemCreate, size)
}

// checkAccess checks access descriptors for cuMemSetAccess: each names
// the current device, with read-write access (which is all kerfd serves).
func checkAccess(dv *device, descs []accessDesc) Result {
	if len(descs) == 0 {
		return abi.ErrInvalidValue
	}
	for _, d := range descs {
		if d.locType != memLocationDevice {
			return abi.ErrInvalidValue
		}
		if int(d.locID) != dv.idx {
			return abi.ErrInvalidDevice
		}
	}
	return abi.Success
}

func memSetAccess(ptr, size uint64, descs []accessDesc) Result {
	dv, res := currentDevice()
	if res != abi.Success {
		return res
	}
	if res := checkAccess(dv, descs); res != abi.Success {
		return res
	}
	for _, d := range descs {
		if _, res := vmCallOn(dv, abi.CallMemSetAccess, ptr, size, uint64(d.flags)); res != abi.Success {
			return res
		}
	}
	return abi.Success
}

func memGetAccess(locType uint32, locID int32, ptr uint64) (uint64, Result) {
	dv, res := currentDevice()
	if res != abi.Success {
		return 0, res
	}
	if locType != memLocationDevice {
		return 0, abi.ErrInvalidValue
	}
	if int(locID) != dv.idx {
		return 0, abi.ErrInvalidDevice
	}
	return vmCallOn(dv, abi.CallMemGetAccess, ptr)
}
