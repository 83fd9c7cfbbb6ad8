package main

import (
	"github.com/kerf-edge/kerf/abi"
)

func memAlloc(size uint64) (uint64, Result) {
	dv, res := currentDevice()
	if res != abi.Success {
		return 0, res
	}
	if size == 0 {
		return 0, abi.ErrInvalidValue
	}
	if res := unsafeInCapture(); res != abi.Success {
		return 0, res
	}
	p, err := dv.cl.MemAlloc(size)
	return p, abi.ResultOf(err)
}

func memFree(p uint64) Result {
	dv, res := currentDevice()
	if res != abi.Success {
		return res
	}
	if p == 0 {
		return abi.Success
	}
	if managed, res := freeMirrored(p, mirrorManaged); managed {
		return res
	}
	if res := unsafeInCapture(); res != abi.Success {
		return res
	}
	return abi.ResultOf(dv.cl.MemFree(p))
}

func memGetInfo() (free, total uint64, res Result) {
	dv, res := currentDevice()
	if res != abi.Success {
		return 0, 0, res
	}
	free, total, err := dv.cl.MemGetInfo()
	return free, total, abi.ResultOf(err)
}

// Host memory: pinned allocations are plain page-aligned ones here; Go
// remembers them so that cuMemFreeHost refuses anything else.

func hostAlloc(size uint64, flags uint32) (cmem, Result) {
	if _, res := drv.ready(); res != abi.Success {
		return nil, res
	}
	if flags&^(hostPortable|hostDeviceMap|hostWriteComb) != 0 {
		return nil, abi.ErrInvalidValue
	}
	if flags&hostDeviceMap != 0 {
		p, res := newMappedMirror(size, mirrorMappedHost, flags)
		return addressPointer(uintptr(p)), res
	}
	if size > 1<<46 {
		return nil, abi.ErrOutOfMemory
	}
	p, key := hostMem(size)
	if key == 0 {
		return nil, abi.ErrOutOfMemory
	}
	drv.mu.Lock()
	drv.lastHostID++
	drv.hosts[key] = hostBlock{mem: p, size: size, id: hostBufferID | drv.lastHostID, flags: flags}
	drv.mu.Unlock()
	return p, abi.Success
}

func hostFree(key uintptr) Result {
	if _, res := drv.ready(); res != abi.Success {
		return res
	}
	if mapped, res := freeMirrored(uint64(key), mirrorMappedHost); mapped {
		return res
	}
	drv.mu.Lock()
	b, ok := drv.hosts[key]
	if ok && !b.registered {
		delete(drv.hosts, key)
	}
	drv.mu.Unlock()
	if !ok || b.registered {
		return abi.ErrInvalidValue
	}
	freeHostMem(b.mem)
	return abi.Success
}

// Copies. src and dst are views of the program's memory, made by the
// export layer; for async device-to-host copies dst stays the program's
// until a later synchronizing call.

func memcpyHtoD(dst uint64, src []byte) Result {
	dv, res := currentDevice()
	if res == abi.Success {
		res = legacyStreamUse(dv)
	}
	if res == abi.Success {
		res = toDevice(dv)
	}
	if res != abi.Success {
		return res
	}
	if len(src) == 0 {
		return abi.Success
	}
	return abi.ResultOf(dv.cl.MemcpyHtoD(dst, src))
}

func memcpyHtoDAsync(dst uint64, src []byte, stream uintptr) Result {
	dv, s, res := streamFor(stream)
	if res != abi.Success {
		return res
	}
	if len(src) == 0 {
		return abi.Success
	}
	return submit(stream, dv, s, nodeMemcpy, func(dv *device, s uint64) Result {
		if res := toDevice(dv); res != abi.Success {
			return res
		}
		return abi.ResultOf(dv.cl.MemcpyHtoDAsync(dst, src, s))
	})
}

func memcpyDtoH(dst []byte, src uint64) Result {
	dv, res := currentDevice()
	if res == abi.Success {
		res = legacyStreamUse(dv)
	}
	if res == abi.Success {
		res = toDevice(dv)
	}
	if res != abi.Success {
		return res
	}
	if len(dst) == 0 {
		return abi.Success
	}
	if err := dv.cl.MemcpyDtoH(dst, src); err != nil {
		return abi.ResultOf(err)
	}
	return toHost(dv)
}

func memcpyDtoHAsync(dst []byte, src uint64, stream uintptr) Result {
	dv, s, res := streamFor(stream)
	if res != abi.Success {
		return res
	}
	if len(dst) == 0 {
		return abi.Success
	}
	return submit(stream, dv, s, nodeMemcpy, func(dv *device, s uint64) Result {
		if res := toDevice(dv); res != abi.Success {
			return res
		}
		return abi.ResultOf(dv.cl.MemcpyDtoHAsync(dst, src, s))
	})
}

func memcpyDtoD(dst, src, size uint64) Result {
	dv, res := currentDevice()
	if res == abi.Success {
		res = legacyStreamUse(dv)
	}
	if res == abi.Success {
		res = toDevice(dv)
	}
	if res != abi.Success {
		return res
	}
	if size == 0 {
		return abi.Success
	}
	return abi.ResultOf(dv.cl.MemcpyDtoD(dst, src, size))
}

func memcpyDtoDAsync(dst, src, size uint64, stream uintptr) Result {
	dv, s, res := streamFor(stream)
	if res != abi.Success {
		return res
	}
	if size == 0 {
		return abi.Success
	}
	return submit(stream, dv, s, nodeMemcpy, func(dv *device, s uint64) Result {
		if res := toDevice(dv); res != abi.Success {
			return res
		}
		return abi.ResultOf(dv.cl.MemcpyDtoDAsync(dst, src, size, s))
	})
}

func memset(dst uint64, value, elemSize uint32, count uint64) Result {
	dv, res := currentDevice()
	if res == abi.Success {
		res = legacyStreamUse(dv)
	}
	if res == abi.Success {
		res = toDevice(dv)
	}
	if res != abi.Success {
		return res
	}
	if count == 0 {
		return abi.Success
	}
	return abi.ResultOf(dv.cl.Memset(dst, value, elemSize, count, false, 0))
}

func memsetAsync(dst uint64, value, elemSize uint32, count uint64, stream uintptr) Result {
	dv, s, res := streamFor(stream)
	if res != abi.Success {
		return res
	}
	if count == 0 {
		return abi.Success
	}
	return submit(stream, dv, s, nodeMemset, func(dv *device, s uint64) Result {
		if res := toDevice(dv); res != abi.Success {
			return res
		}
		return abi.ResultOf(dv.cl.Memset(dst, value, elemSize, count, true, s))
	})
}
