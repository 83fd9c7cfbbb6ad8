package main

import (
	"github.com/kerf-edge/kerf/abi"
)

// Pointer attributes (cuPointerGetAttribute, cuPointerGetAttributes) and
// cuMemGetAddressRange. Device memory is asked of kerfd, which answers
// only for the session's own allocations and globals; pinned host memory
// is the shim's own and answered here.

// The CUpointer_attribute values the shim answers.
const (
	attrContext       = 1
	attrMemoryType    = 2
	attrDevicePointer = 3
	attrHostPointer   = 4
	attrBufferID      = 7
	attrIsManaged     = 8
	attrDeviceOrdinal = 9
	attrRangeStart    = 11
	attrRangeSize     = 12
	attrMapped        = 13
)

// The CUmemorytype values.
const (
	memoryTypeHost   = 1
	memoryTypeDevice = 2
)

// Buffer IDs: kerfd numbers a session's ranges from 1; the shim puts the
// device's ordinal above them, and marks pinned host memory's with the
// top bit, so that no two buffers of a process share one.
const (
	hostBufferID    = 1 << 63
	deviceIDShift   = 48
	maxServerBuffer = 1<<deviceIDShift - 1
)

// pointerInfo is what the shim knows of the buffer an address is in.
type pointerInfo struct {
	ctx        cmem   // the context handle: the current one, or the device's primary
	memType    uint32 // memoryTypeHost or memoryTypeDevice
	host       cmem   // the address itself, for pinned host memory
	base, size uint64 // the buffer's range
	bufferID   uint64
	ordinal    int
}

// pointerLookup finds the buffer that contains p: pinned host memory of
// this process, else an allocation or global of the current device's
// session, else of another device's. abi.ErrNotFound when none has it.
func pointerLookup(p uint64) (pointerInfo, Result) {
	devs, res := drv.ready()
	if res != abi.Success {
		return pointerInfo{}, res
	}
	cur, _ := current()
	if info, ok := hostLookup(p); ok {
		if cur != nil {
			info.ctx, info.ordinal = cur.mem, cur.dev.idx
		}
		return info, abi.Success
	}
	order := devs
	if cur != nil {
		order = append([]*device{cur.dev}, devs...)
	}
	for i, dv := range order {
		if i > 0 && cur != nil && dv == cur.dev {
			continue
		}
		base, size, id, err := dv.cl.MemGetAddressRange(p)
		if err != nil {
			if res := abi.ResultOf(err); res != abi.ErrNotFound {
				return pointerInfo{}, res
			}
			continue
		}
		if id > maxServerBuffer {
			return pointerInfo{}, abi.ErrUnknown
		}
		info := pointerInfo{memType: memoryTypeDevice, base: base, size: size,
			bufferID: uint64(dv.idx)<<deviceIDShift | id, ordinal: dv.idx}
		if cur != nil && cur.dev == dv {
			info.ctx = cur.mem
		} else {
			drv.mu.Lock()
			if dv.primary != nil {
				info.ctx = dv.primary.mem
			}
			drv.mu.Unlock()
		}
		return info, abi.Success
	}
	return pointerInfo{}, abi.ErrNotFound
}

// hostLookup finds the pinned host allocation that contains p.
func hostLookup(p uint64) (pointerInfo, bool) {
	drv.mu.Lock()
	defer drv.mu.Unlock()
	for key, b := range drv.hosts {
		if base := uint64(key); p >= base && p-base < b.size {
			return pointerInfo{memType: memoryTypeHost, host: hostAt(b.mem, p-base), base: base, size: b.size,
				bufferID: b.id}, true
		}
	}
	return pointerInfo{}, false
}

// memGetAddressRange answers cuMemGetAddressRange for device memory.
func memGetAddressRange(p uint64) (base, size uint64, res Result) {
	info, res := pointerLookup(p)
	if res != abi.Success {
		return 0, 0, res
	}
	if info.memType != memoryTypeDevice {
		return 0, 0, abi.ErrNotFound
	}
	return info.base, info.size, abi.Success
}

// knownPointerAttribute reports whether the shim answers attr.
func knownPointerAttribute(attr int32) bool {
	switch attr {
	case attrContext, attrMemoryType, attrDevicePointer, attrHostPointer, attrBufferID, attrIsManaged,
		attrDeviceOrdinal, attrRangeStart, attrRangeSize, attrMapped:
		return true
	}
	return false
}
