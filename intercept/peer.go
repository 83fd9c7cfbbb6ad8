package main

import (
	"github.com/kerf-edge/kerf/abi"
)

// Peer access and legacy device queries. Each device of a process is its
// own session on kerfd, possibly on another GPU or machine, so no device
// reads another's memory: peer access is never offered, and cuMemcpyPeer
// between devices goes through the shim's memory, each end checked by
// its own session.

// devpropAttrs are the device attributes of CUdevprop's fields, in order:
// threads per block, block dimensions, grid dimensions, shared memory per
// block, constant memory, warp size, pitch, registers per block, clock
// rate, texture alignment.
var devpropAttrs = [...]int32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}

// deviceProperties answers cuDeviceGetProperties.
func deviceProperties(n int) (props [len(devpropAttrs)]int32, res Result) {
	for i, a := range devpropAttrs {
		if props[i], res = deviceAttribute(a, n); res != abi.Success {
			return props, res
		}
	}
	return props, abi.Success
}

// canAccessPeer answers cuDeviceCanAccessPeer: never, for valid devices.
func canAccessPeer(dev, peer int) Result {
	if _, res := drv.device(dev); res != abi.Success {
		return res
	}
	_, res := drv.device(peer)
	return res
}

// peerContext resolves the peer context of cuCtxEnablePeerAccess and
// cuCtxDisablePeerAccess.
func peerContext(peer uintptr) Result {
	if _, res := current(); res != abi.Success {
		return res
	}
	if _, ok := drv.lookup(peer, kindContext); !ok {
		return abi.ErrInvalidContext
	}
	return abi.Success
}

func ctxEnablePeerAccess(peer uintptr, flags uint32) Result {
	if res := peerContext(peer); res != abi.Success {
		return res
	}
	if flags != 0 {
		return abi.ErrInvalidValue
	}
	return abi.ErrPeerAccessUnsupported
}

func ctxDisablePeerAccess(peer uintptr) Result {
	if res := peerContext(peer); res != abi.Success {
		return res
	}
	return abi.ErrPeerAccessNotEnabled
}

// peerStage bounds the shim's buffer for a copy between devices.
const peerStage = 4 << 20

// memcpyPeer copies n bytes from src in srcCtx's device to dst in
// dstCtx's. On one device it is a device-to-device copy in stream; between
// two it waits for stream's work and goes through the shim's memory.
func memcpyPeer(dst uint64, dstCtx uintptr, src uint64, srcCtx uintptr, n uint64, stream uintptr, async bool) Result {
	if _, res := drv.ready(); res != abi.Success {
		return res
	}
	dc, ok1 := drv.lookup(dstCtx, kindContext)
	sc, ok2 := drv.lookup(srcCtx, kindContext)
	if !ok1 || !ok2 {
		return abi.ErrInvalidContext
	}
	if n == 0 {
		return abi.Success
	}
	if async && captureOf(stream) != nil {
		return refuseInCapture(stream) // not recorded: capture would lose it
	}
	if !async {
		if dc.dev == sc.dev {
			return abi.ResultOf(dc.dev.cl.MemcpyDtoD(dst, src, n))
		}
	} else {
		sdv, s, res := streamOf(stream)
		if res != abi.Success {
			return res
		}
		if dc.dev == sc.dev {
			if sdv != dc.dev {
				return abi.ErrInvalidHandle
			}
			return abi.ResultOf(dc.dev.cl.MemcpyDtoDAsync(dst, src, n, s))
		}
		if err := sdv.cl.StreamSynchronize(s); err != nil {
			return abi.ResultOf(err)
		}
	}
	buf := make([]byte, min(n, peerStage))
	for off := uint64(0); off < n; off += uint64(len(buf)) {
		b := buf[:min(uint64(len(buf)), n-off)]
		if err := sc.dev.cl.MemcpyDtoH(b, src+off); err != nil {
			return abi.ResultOf(err)
		}
		if err := dc.dev.cl.MemcpyHtoD(dst+off, b); err != nil {
			return abi.ResultOf(err)
		}
	}
	return abi.Success
}
