package main

// The implementations of the driver-API entry points, one per entry point
// of abi.EntryPoints (impl<Name>; impl<Name>V1 for a plain symbol with an
// older ABI). The generated exports (exports_gen_cgo.go) call them. Each
// converts its arguments, checks the pointers the program gave it, and
// calls the Go logic; nothing else.

/*
#include "shim.h"

// The program's host functions and stream callbacks.
static inline void kerf_call_host_fn(uintptr_t fn, uintptr_t data) { ((CUhostFn)fn)((void *)data); }
static inline void kerf_call_stream_cb(uintptr_t fn, uintptr_t s, CUresult status, uintptr_t data) {
	((CUstreamCallback)fn)((CUstream)s, status, (void *)data);
}

// The program's block-size-to-dynamic-shared-memory function.
static inline size_t kerf_call_b2d(CUoccupancyB2DSize f, int blockSize) { return f(blockSize); }
*/
import "C"

import (
	"unsafe"

	"github.com/kerf-edge/kerf/abi"
)

// guard is the last line of defence: a panic becomes CUDA_ERROR_UNKNOWN
// rather than taking the program down.
func guard(r *C.CUresult) {
	if e := recover(); e != nil {
		say("internal error: %v", e)
		*r = C.CUresult(abi.ErrUnknown)
	}
}

func cr(r Result) C.CUresult { return C.CUresult(r) }

var errNull = cr(abi.ErrInvalidValue)

func implInit(flags C.uint) C.CUresult {
	return cr(drv.initialize(uint32(flags)))
}

func implDriverGetVersion(v *C.int) C.CUresult {
	if v == nil {
		return errNull
	}
	*v = C.int(drv.driverVersion())
	return 0
}

func implGetErrorName(code C.CUresult, p **C.char) C.CUresult {
	if p == nil {
		return errNull
	}
	res := Result(code)
	if !res.Known() {
		*p = nil
		return errNull
	}
	*p = errorString(uint32(code), 0, res.Name())
	return 0
}

func implGetErrorString(code C.CUresult, p **C.char) C.CUresult {
	if p == nil {
		return errNull
	}
	res := Result(code)
	if !res.Known() {
		*p = nil
		return errNull
	}
	*p = errorString(uint32(code), 1, res.Description())
	return 0
}

func procAddress(symbol *C.char, pfn *unsafe.Pointer, version C.int, flags C.cuuint64_t, status *C.CUdriverProcAddressQueryResult) C.CUresult {
	if pfn == nil {
		return errNull
	}
	*pfn = nil
	name, ok := goString(symbol, abi.MaxName)
	if !ok {
		return errNull
	}
	i, q, res := getProcAddress(name, int(version), uint64(flags))
	if status != nil {
		*status = C.CUdriverProcAddressQueryResult(q)
	}
	if res == abi.Success {
		*pfn = procFn(i)
	}
	return cr(res)
}

func implGetProcAddressV1(symbol *C.char, pfn *unsafe.Pointer, version C.int, flags C.cuuint64_t) C.CUresult {
	return procAddress(symbol, pfn, version, flags, nil)
}

func implGetProcAddress(symbol *C.char, pfn *unsafe.Pointer, version C.int, flags C.cuuint64_t, status *C.CUdriverProcAddressQueryResult) C.CUresult {
	return procAddress(symbol, pfn, version, flags, status)
}

// Devices.

func implDeviceGetCount(n *C.int) C.CUresult {
	if n == nil {
		return errNull
	}
	c, res := deviceCount()
	if res == abi.Success {
		*n = C.int(c)
	}
	return cr(res)
}

func implDeviceGet(dev *C.CUdevice, ordinal C.int) C.CUresult {
	if dev == nil {
		return errNull
	}
	d, res := deviceGet(int(ordinal))
	if res == abi.Success {
		*dev = C.CUdevice(d)
	}
	return cr(res)
}

func implDeviceGetName(name *C.char, n C.int, dev C.CUdevice) C.CUresult {
	if name == nil || n <= 0 {
		return errNull
	}
	s, res := deviceName(int(dev))
	if res != abi.Success {
		return cr(res)
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(name)), int(n))
	k := copy(b[:len(b)-1], s)
	b[k] = 0
	return 0
}

func implDeviceGetUuid(uuid *C.CUuuid, dev C.CUdevice) C.CUresult {
	if uuid == nil {
		return errNull
	}
	u, res := deviceUUID(int(dev))
	if res == abi.Success {
		for i, b := range u {
			uuid.bytes[i] = C.char(b)
		}
	}
	return cr(res)
}

func implDeviceGetAttribute(pi *C.int, attr C.CUdevice_attribute, dev C.CUdevice) C.CUresult {
	if pi == nil {
		return errNull
	}
	v, res := deviceAttribute(int32(attr), int(dev))
	if res == abi.Success {
		*pi = C.int(v)
	}
	return cr(res)
}

func implDeviceComputeCapability(major, minor *C.int, dev C.CUdevice) C.CUresult {
	if major == nil || minor == nil {
		return errNull
	}
	a, b, res := deviceComputeCapability(int(dev))
	if res == abi.Success {
		*major, *minor = C.int(a), C.int(b)
	}
	return cr(res)
}

func implDeviceTotalMem(bytes *C.size_t, dev C.CUdevice) C.CUresult {
	if bytes == nil {
		return errNull
	}
	n, res := deviceTotalMem(int(dev))
	if res == abi.Success {
		*bytes = C.size_t(n)
	}
	return cr(res)
}

// clamp32 fits a size into the 32-bit results of the pre-3.2 entry points.
func clamp32(n uint64) C.uint { return C.uint(min(n, 1<<32-1)) }

func implDeviceTotalMemV1(bytes *C.uint, dev C.CUdevice) C.CUresult {
	if bytes == nil {
		return errNull
	}
	n, res := deviceTotalMem(int(dev))
	if res == abi.Success {
		*bytes = clamp32(n)
	}
	return cr(res)
}

func implDevicePrimaryCtxRetain(pctx *C.CUcontext, dev C.CUdevice) C.CUresult {
	if pctx == nil {
		return errNull
	}
	o, res := primaryRetain(int(dev))
	if res == abi.Success {
		*pctx = C.CUcontext(o.mem)
	}
	return cr(res)
}

func implDevicePrimaryCtxRelease(dev C.CUdevice) C.CUresult {
	return cr(primaryRelease(int(dev)))
}

func implDevicePrimaryCtxReset(dev C.CUdevice) C.CUresult {
	return cr(primaryReset(int(dev)))
}

func implDevicePrimaryCtxGetState(dev C.CUdevice, flags *C.uint, active *C.int) C.CUresult {
	if flags == nil || active == nil {
		return errNull
	}
	f, on, res := primaryState(int(dev))
	if res == abi.Success {
		*flags = C.uint(f)
		*active = 0
		if on {
			*active = 1
		}
	}
	return cr(res)
}

// Contexts.

func implCtxCreate(pctx *C.CUcontext, flags C.uint, dev C.CUdevice) C.CUresult {
	if pctx == nil {
		return errNull
	}
	o, res := ctxCreate(uint32(flags), int(dev))
	if res == abi.Success {
		*pctx = C.CUcontext(o.mem)
	}
	return cr(res)
}

// implCtxCreateV3 creates a context with execution affinity: a slice's
// share of the GPU's multiprocessors is kerfd's to set, so any affinity
// is refused as unsupported.
func implCtxCreateV3(pctx *C.CUcontext, params *C.CUexecAffinityParam, n C.int, flags C.uint, dev C.CUdevice) C.CUresult {
	if n < 0 || n > 0 && params == nil {
		return errNull
	}
	if n > 0 {
		return cr(abi.ErrUnsupportedExecAffinity)
	}
	return implCtxCreate(pctx, flags, dev)
}

// implCtxCreateV4 creates a context from CUctxCreateParams: affinity as
// for cuCtxCreate_v3; CUDA-in-graphics contexts are not offered.
func implCtxCreateV4(pctx *C.CUcontext, p *C.CUctxCreateParams, flags C.uint, dev C.CUdevice) C.CUresult {
	if p == nil {
		return implCtxCreate(pctx, flags, dev)
	}
	if p.cigParams != nil {
		return cr(abi.ErrNotSupported)
	}
	return implCtxCreateV3(pctx, p.execAffinityParams, p.numExecAffinityParams, flags, dev)
}

func implCtxDestroy(ctx C.CUcontext) C.CUresult {
	return cr(ctxDestroy(key(unsafe.Pointer(ctx))))
}

func implCtxPushCurrent(ctx C.CUcontext) C.CUresult {
	return cr(ctxPush(key(unsafe.Pointer(ctx))))
}

func implCtxPopCurrent(pctx *C.CUcontext) C.CUresult {
	p, res := ctxPop()
	if res == abi.Success && pctx != nil {
		*pctx = C.CUcontext(p)
	}
	return cr(res)
}

func implCtxSetCurrent(ctx C.CUcontext) C.CUresult {
	return cr(ctxSet(key(unsafe.Pointer(ctx))))
}

func implCtxGetCurrent(pctx *C.CUcontext) C.CUresult {
	if pctx == nil {
		return errNull
	}
	p, res := ctxGet()
	if res == abi.Success {
		*pctx = C.CUcontext(p)
	}
	return cr(res)
}

func implCtxGetDevice(dev *C.CUdevice) C.CUresult {
	if dev == nil {
		return errNull
	}
	d, res := ctxGetDevice()
	if res == abi.Success {
		*dev = C.CUdevice(d)
	}
	return cr(res)
}

func implCtxGetFlags(flags *C.uint) C.CUresult {
	if flags == nil {
		return errNull
	}
	f, res := ctxGetFlags()
	if res == abi.Success {
		*flags = C.uint(f)
	}
	return cr(res)
}

func implCtxGetApiVersion(ctx C.CUcontext, version *C.uint) C.CUresult {
	if version == nil {
		return errNull
	}
	v, res := ctxGetAPIVersion(key(unsafe.Pointer(ctx)))
	if res == abi.Success {
		*version = C.uint(v)
	}
	return cr(res)
}

func implCtxGetLimit(value *C.size_t, limit C.CUlimit) C.CUresult {
	if value == nil {
		return errNull
	}
	v, res := ctxGetLimit(uint32(limit))
	if res == abi.Success {
		*value = C.size_t(v)
	}
	return cr(res)
}

func implCtxSetLimit(limit C.CUlimit, value C.size_t) C.CUresult {
	return cr(ctxSetLimit(uint32(limit), uint64(value)))
}

func implCtxGetCacheConfig(config *C.CUfunc_cache) C.CUresult {
	if config == nil {
		return errNull
	}
	c, res := ctxGetCacheConfig()
	if res == abi.Success {
		*config = C.CUfunc_cache(c)
	}
	return cr(res)
}

func implCtxSetCacheConfig(config C.CUfunc_cache) C.CUresult {
	return cr(ctxSetCacheConfig(uint32(config)))
}

func implCtxGetSharedMemConfig(config *C.CUsharedconfig) C.CUresult {
	if config == nil {
		return errNull
	}
	c, res := ctxGetSharedMemConfig()
	if res == abi.Success {
		*config = C.CUsharedconfig(c)
	}
	return cr(res)
}

func implCtxSetSharedMemConfig(config C.CUsharedconfig) C.CUresult {
	return cr(ctxSetSharedMemConfig(uint32(config)))
}

func implCtxGetStreamPriorityRange(least, greatest *C.int) C.CUresult {
	l, g, res := streamPriorityRange()
	if res == abi.Success {
		if least != nil {
			*least = C.int(l)
		}
		if greatest != nil {
			*greatest = C.int(g)
		}
	}
	return cr(res)
}

func implDevicePrimaryCtxSetFlags(dev C.CUdevice, flags C.uint) C.CUresult {
	return cr(primarySetFlags(int(dev), uint32(flags)))
}

func implCtxSynchronize() C.CUresult {
	return cr(ctxSynchronize())
}

// Memory.

func implMemAlloc(dptr *C.CUdeviceptr, size C.size_t) C.CUresult {
	if dptr == nil {
		return errNull
	}
	p, res := memAlloc(uint64(size))
	if res == abi.Success {
		*dptr = C.CUdeviceptr(p)
	}
	return cr(res)
}

func implMemFree(dptr C.CUdeviceptr) C.CUresult {
	return cr(memFree(uint64(dptr)))
}

func implMemGetInfo(free, total *C.size_t) C.CUresult {
	if free == nil || total == nil {
		return errNull
	}
	f, t, res := memGetInfo()
	if res == abi.Success {
		*free, *total = C.size_t(f), C.size_t(t)
	}
	return cr(res)
}

func implMemGetInfoV1(free, total *C.uint) C.CUresult {
	if free == nil || total == nil {
		return errNull
	}
	f, t, res := memGetInfo()
	if res == abi.Success {
		*free, *total = clamp32(f), clamp32(t)
	}
	return cr(res)
}

// Host functions.

func implLaunchHostFunc(s C.CUstream, fn C.CUhostFn, data unsafe.Pointer) C.CUresult {
	return cr(launchHostCall(key(unsafe.Pointer(s)), hostCall{fn: key(unsafe.Pointer(fn)), data: key(data)}))
}

func implStreamAddCallback(s C.CUstream, fn C.CUstreamCallback, data unsafe.Pointer, flags C.uint) C.CUresult {
	if flags != 0 {
		return errNull
	}
	return cr(launchHostCall(key(unsafe.Pointer(s)), hostCall{fn: key(unsafe.Pointer(fn)), data: key(data), stream: key(unsafe.Pointer(s)), callback: true}))
}

func callHostFn(fn, data uintptr) { C.kerf_call_host_fn(C.uintptr_t(fn), C.uintptr_t(data)) }

func callStreamCallback(fn, stream uintptr, status Result, data uintptr) {
	C.kerf_call_stream_cb(C.uintptr_t(fn), C.uintptr_t(stream), C.CUresult(status), C.uintptr_t(data))
}

// Legacy device properties and peer access.

func implDeviceGetProperties(prop *C.CUdevprop, dev C.CUdevice) C.CUresult {
	if prop == nil {
		return errNull
	}
	v, res := deviceProperties(int(dev))
	if res != abi.Success {
		return cr(res)
	}
	*prop = C.CUdevprop{maxThreadsPerBlock: C.int(v[0]),
		maxThreadsDim:     [3]C.int{C.int(v[1]), C.int(v[2]), C.int(v[3])},
		maxGridSize:       [3]C.int{C.int(v[4]), C.int(v[5]), C.int(v[6])},
		sharedMemPerBlock: C.int(v[7]), totalConstantMemory: C.int(v[8]), SIMDWidth: C.int(v[9]),
		memPitch: C.int(v[10]), regsPerBlock: C.int(v[11]), clockRate: C.int(v[12]), textureAlign: C.int(v[13])}
	return 0
}

// implDeviceGetLuid answers as the NVIDIA driver does on Linux, which has
// no LUIDs.
func implDeviceGetLuid(luid *C.char, mask *C.uint, dev C.CUdevice) C.CUresult {
	if _, res := drv.device(int(dev)); res != abi.Success {
		return cr(res)
	}
	return cr(abi.ErrNotSupported)
}

func implDeviceCanAccessPeer(can *C.int, dev, peer C.CUdevice) C.CUresult {
	if can == nil {
		return errNull
	}
	res := canAccessPeer(int(dev), int(peer))
	if res == abi.Success {
		*can = 0
	}
	return cr(res)
}

func implCtxEnablePeerAccess(peer C.CUcontext, flags C.uint) C.CUresult {
	return cr(ctxEnablePeerAccess(key(unsafe.Pointer(peer)), uint32(flags)))
}

func implCtxDisablePeerAccess(peer C.CUcontext) C.CUresult {
	return cr(ctxDisablePeerAccess(key(unsafe.Pointer(peer))))
}

func implMemcpyPeer(dst C.CUdeviceptr, dctx C.CUcontext, src C.CUdeviceptr, sctx C.CUcontext, n C.size_t) C.CUresult {
	return cr(memcpyPeer(uint64(dst), key(unsafe.Pointer(dctx)), uint64(src), key(unsafe.Pointer(sctx)), uint64(n), 0, false))
}

func implMemcpyPeerAsync(dst C.CUdeviceptr, dctx C.CUcontext, src C.CUdeviceptr, sctx C.CUcontext, n C.size_t, s C.CUstream) C.CUresult {
	return cr(memcpyPeer(uint64(dst), key(unsafe.Pointer(dctx)), uint64(src), key(unsafe.Pointer(sctx)), uint64(n), key(unsafe.Pointer(s)), true))
}

// Pitched, 2D and 3D copies and 2D memsets.

func implMemAllocPitch(dptr *C.CUdeviceptr, pitch *C.size_t, width, height C.size_t, elem C.uint) C.CUresult {
	if dptr == nil || pitch == nil {
		return errNull
	}
	p, pp, res := memAllocPitch(uint64(width), uint64(height), uint32(elem))
	if res == abi.Success {
		*dptr, *pitch = C.CUdeviceptr(p), C.size_t(pp)
	}
	return cr(res)
}

// hostEnd returns the view of the program's memory at p that a copy's
// host end reads or writes.
func hostEnd(p unsafe.Pointer) func(off, n uint64) ([]byte, bool) {
	return func(off, n uint64) ([]byte, bool) {
		if p == nil || off > maxHostSpan {
			return nil, false
		}
		return hostBytes(unsafe.Add(p, off), C.size_t(n))
	}
}

// copy2DOf converts a CUDA_MEMCPY2D; it also returns the ends' addresses,
// by which unified ends are resolved.
func copy2DOf(p *C.CUDA_MEMCPY2D) (c copy3D, src, dst uint64) {
	c = copy3D{
		src: copyEnd{x: uint64(p.srcXInBytes), y: uint64(p.srcY), memType: uint32(p.srcMemoryType),
			host: hostEnd(p.srcHost), hostNil: p.srcHost == nil, device: uint64(p.srcDevice), pitch: uint64(p.srcPitch),
			array: key(unsafe.Pointer(p.srcArray))},
		dst: copyEnd{x: uint64(p.dstXInBytes), y: uint64(p.dstY), memType: uint32(p.dstMemoryType),
			host: hostEnd(p.dstHost), hostNil: p.dstHost == nil, device: uint64(p.dstDevice), pitch: uint64(p.dstPitch),
			array: key(unsafe.Pointer(p.dstArray))},
		width: uint64(p.WidthInBytes), height: uint64(p.Height), depth: 1,
	}
	return c, endAddress(p.srcHost, p.srcDevice), endAddress(p.dstHost, p.dstDevice)
}

func copy3DOf(p *C.CUDA_MEMCPY3D) (c copy3D, src, dst uint64) {
	c = copy3D{
		src: copyEnd{x: uint64(p.srcXInBytes), y: uint64(p.srcY), z: uint64(p.srcZ), memType: uint32(p.srcMemoryType),
			host: hostEnd(p.srcHost), hostNil: p.srcHost == nil, device: uint64(p.srcDevice), pitch: uint64(p.srcPitch),
			height: uint64(p.srcHeight), array: key(unsafe.Pointer(p.srcArray))},
		dst: copyEnd{x: uint64(p.dstXInBytes), y: uint64(p.dstY), z: uint64(p.dstZ), memType: uint32(p.dstMemoryType),
			host: hostEnd(p.dstHost), hostNil: p.dstHost == nil, device: uint64(p.dstDevice), pitch: uint64(p.dstPitch),
			height: uint64(p.dstHeight), array: key(unsafe.Pointer(p.dstArray))},
		width: uint64(p.WidthInBytes), height: uint64(p.Height), depth: uint64(p.Depth),
	}
	return c, endAddress(p.srcHost, p.srcDevice), endAddress(p.dstHost, p.dstDevice)
}

// endAddress is a unified end's address: CUDA reads it from the device
// field.
func endAddress(host unsafe.Pointer, dev C.CUdeviceptr) uint64 {
	if dev != 0 {
		return uint64(dev)
	}
	return uint64(uintptr(host))
}

// unifiedEnds gives unified ends a host view at their address, for when
// it is not device memory.
func unifiedEnds(c *copy3D, src, dst uint64) {
	if c.src.memType == memoryTypeUnified {
		c.src.host, c.src.hostNil = hostEnd(addressPointer(uintptr(src))), src == 0
	}
	if c.dst.memType == memoryTypeUnified {
		c.dst.host, c.dst.hostNil = hostEnd(addressPointer(uintptr(dst))), dst == 0
	}
}

// addressPointer is the program's address a as a pointer.
func addressPointer(a uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&a)) }

func run2D(p *C.CUDA_MEMCPY2D, s uintptr, async bool) C.CUresult {
	if p == nil {
		return errNull
	}
	c, src, dst := copy2DOf(p)
	unifiedEnds(&c, src, dst)
	return cr(memcpy3D(&c, src, dst, s, async))
}

func run3D(p *C.CUDA_MEMCPY3D, s uintptr, async bool) C.CUresult {
	if p == nil {
		return errNull
	}
	c, src, dst := copy3DOf(p)
	unifiedEnds(&c, src, dst)
	return cr(memcpy3D(&c, src, dst, s, async))
}

func implMemcpy2D(p *C.CUDA_MEMCPY2D) C.CUresult          { return run2D(p, 0, false) }
func implMemcpy2DUnaligned(p *C.CUDA_MEMCPY2D) C.CUresult { return run2D(p, 0, false) }
func implMemcpy2DAsync(p *C.CUDA_MEMCPY2D, s C.CUstream) C.CUresult {
	return run2D(p, key(unsafe.Pointer(s)), true)
}
func implMemcpy3D(p *C.CUDA_MEMCPY3D) C.CUresult { return run3D(p, 0, false) }
func implMemcpy3DAsync(p *C.CUDA_MEMCPY3D, s C.CUstream) C.CUresult {
	return run3D(p, key(unsafe.Pointer(s)), true)
}

func implMemsetD2D8(dst C.CUdeviceptr, pitch C.size_t, v C.uchar, w, h C.size_t) C.CUresult {
	return cr(memsetD2D(uint64(dst), uint64(pitch), uint32(v), 1, uint64(w), uint64(h), 0, false))
}
func implMemsetD2D16(dst C.CUdeviceptr, pitch C.size_t, v C.ushort, w, h C.size_t) C.CUresult {
	return cr(memsetD2D(uint64(dst), uint64(pitch), uint32(v), 2, uint64(w), uint64(h), 0, false))
}
func implMemsetD2D32(dst C.CUdeviceptr, pitch C.size_t, v C.uint, w, h C.size_t) C.CUresult {
	return cr(memsetD2D(uint64(dst), uint64(pitch), uint32(v), 4, uint64(w), uint64(h), 0, false))
}
func implMemsetD2D8Async(dst C.CUdeviceptr, pitch C.size_t, v C.uchar, w, h C.size_t, s C.CUstream) C.CUresult {
	return cr(memsetD2D(uint64(dst), uint64(pitch), uint32(v), 1, uint64(w), uint64(h), key(unsafe.Pointer(s)), true))
}
func implMemsetD2D16Async(dst C.CUdeviceptr, pitch C.size_t, v C.ushort, w, h C.size_t, s C.CUstream) C.CUresult {
	return cr(memsetD2D(uint64(dst), uint64(pitch), uint32(v), 2, uint64(w), uint64(h), key(unsafe.Pointer(s)), true))
}
func implMemsetD2D32Async(dst C.CUdeviceptr, pitch C.size_t, v C.uint, w, h C.size_t, s C.CUstream) C.CUresult {
	return cr(memsetD2D(uint64(dst), uint64(pitch), uint32(v), 4, uint64(w), uint64(h), key(unsafe.Pointer(s)), true))
}

// Pointer attributes.

func implMemGetAddressRange(pbase *C.CUdeviceptr, psize *C.size_t, dptr C.CUdeviceptr) C.CUresult {
	base, size, res := memGetAddressRange(uint64(dptr))
	if res != abi.Success {
		return cr(res)
	}
	if pbase != nil {
		*pbase = C.CUdeviceptr(base)
	}
	if psize != nil {
		*psize = C.size_t(size)
	}
	return 0
}

func implPointerGetAttribute(data unsafe.Pointer, attr C.CUpointer_attribute, ptr C.CUdeviceptr) C.CUresult {
	if data == nil || !knownPointerAttribute(int32(attr)) {
		return errNull
	}
	info, res := pointerLookup(uint64(ptr))
	if res == abi.ErrNotFound {
		return errNull // not memory the driver knows
	}
	if res != abi.Success {
		return cr(res)
	}
	// The one-attribute form refuses a pointer the buffer does not have.
	if attr == attrDevicePointer && info.memType != memoryTypeDevice || attr == attrHostPointer && info.host == nil {
		return errNull
	}
	writePointerAttribute(data, int32(attr), &info, uint64(ptr))
	return 0
}

func implPointerGetAttributes(n C.uint, attrs *C.CUpointer_attribute, data *unsafe.Pointer, ptr C.CUdeviceptr) C.CUresult {
	if n == 0 || attrs == nil || data == nil || n > 64 {
		return errNull
	}
	as, ds := unsafe.Slice(attrs, int(n)), unsafe.Slice(data, int(n))
	for _, a := range as {
		if !knownPointerAttribute(int32(a)) {
			return errNull
		}
	}
	// Unlike the one-attribute form, an address no buffer contains gets
	// the empty answers and success.
	info, res := pointerLookup(uint64(ptr))
	if res == abi.ErrNotFound {
		info, res = pointerInfo{ordinal: -2}, abi.Success
	}
	if res != abi.Success {
		return cr(res)
	}
	for i, a := range as {
		if ds[i] != nil {
			writePointerAttribute(ds[i], int32(a), &info, uint64(ptr))
		}
	}
	return 0
}

// writePointerAttribute writes attribute attr of the buffer info that
// holds ptr to data, in the attribute's C type. Booleans are unsigned
// ints, as cudart reads them (it does not clear them first).
func writePointerAttribute(data unsafe.Pointer, attr int32, info *pointerInfo, ptr uint64) {
	switch attr {
	case attrContext:
		*(*C.CUcontext)(data) = C.CUcontext(info.ctx)
	case attrMemoryType:
		*(*C.uint)(data) = C.uint(info.memType)
	case attrDevicePointer:
		var d uint64
		if info.memType == memoryTypeDevice {
			d = ptr
		}
		*(*C.CUdeviceptr)(data) = C.CUdeviceptr(d)
	case attrHostPointer:
		*(*unsafe.Pointer)(data) = info.host
	case attrBufferID:
		*(*C.ulonglong)(data) = C.ulonglong(info.bufferID)
	case attrIsManaged:
		var m C.uint
		if info.memType == memoryTypeDevice && isManaged(ptr) {
			m = 1
		}
		*(*C.uint)(data) = m
	case attrDeviceOrdinal:
		*(*C.int)(data) = C.int(info.ordinal)
	case attrRangeStart:
		*(*C.CUdeviceptr)(data) = C.CUdeviceptr(info.base)
	case attrRangeSize:
		*(*C.size_t)(data) = C.size_t(info.size)
	case attrMapped:
		var m C.uint // pinned host memory is not mapped into kerfd's device
		if info.memType == memoryTypeDevice {
			m = 1
		}
		*(*C.uint)(data) = m
	}
}

func hostAllocOut(pp *unsafe.Pointer, size C.size_t, flags C.uint) C.CUresult {
	if pp == nil {
		return errNull
	}
	p, res := hostAlloc(uint64(size), uint32(flags))
	if res == abi.Success {
		*pp = p
	}
	return cr(res)
}

func implMemAllocHost(pp *unsafe.Pointer, size C.size_t) C.CUresult {
	return hostAllocOut(pp, size, 0)
}

func implMemAllocHostV1(pp *unsafe.Pointer, size C.uint) C.CUresult {
	return hostAllocOut(pp, C.size_t(size), 0)
}

func implMemHostAlloc(pp *unsafe.Pointer, size C.size_t, flags C.uint) C.CUresult {
	return hostAllocOut(pp, size, flags)
}

func implMemFreeHost(p unsafe.Pointer) C.CUresult {
	return cr(hostFree(key(p)))
}

func implMemcpyHtoD(dst C.CUdeviceptr, src unsafe.Pointer, n C.size_t) C.CUresult {
	b, ok := hostBytes(src, n)
	if !ok {
		return errNull
	}
	return cr(memcpyHtoD(uint64(dst), b))
}

func implMemcpyDtoH(dst unsafe.Pointer, src C.CUdeviceptr, n C.size_t) C.CUresult {
	b, ok := hostBytes(dst, n)
	if !ok {
		return errNull
	}
	return cr(memcpyDtoH(b, uint64(src)))
}

func implMemcpyDtoD(dst, src C.CUdeviceptr, n C.size_t) C.CUresult {
	return cr(memcpyDtoD(uint64(dst), uint64(src), uint64(n)))
}

func implMemcpyHtoDAsync(dst C.CUdeviceptr, src unsafe.Pointer, n C.size_t, s C.CUstream) C.CUresult {
	b, ok := hostBytes(src, n)
	if !ok {
		return errNull
	}
	return cr(memcpyHtoDAsync(uint64(dst), b, key(unsafe.Pointer(s))))
}

func implMemcpyDtoHAsync(dst unsafe.Pointer, src C.CUdeviceptr, n C.size_t, s C.CUstream) C.CUresult {
	b, ok := hostBytes(dst, n)
	if !ok {
		return errNull
	}
	return cr(memcpyDtoHAsync(b, uint64(src), key(unsafe.Pointer(s))))
}

func implMemcpyDtoDAsync(dst, src C.CUdeviceptr, n C.size_t, s C.CUstream) C.CUresult {
	return cr(memcpyDtoDAsync(uint64(dst), uint64(src), uint64(n), key(unsafe.Pointer(s))))
}

func implMemsetD8(dst C.CUdeviceptr, v C.uchar, n C.size_t) C.CUresult {
	return cr(memset(uint64(dst), uint32(v), 1, uint64(n)))
}

func implMemsetD16(dst C.CUdeviceptr, v C.ushort, n C.size_t) C.CUresult {
	return cr(memset(uint64(dst), uint32(v), 2, uint64(n)))
}

func implMemsetD32(dst C.CUdeviceptr, v C.uint, n C.size_t) C.CUresult {
	return cr(memset(uint64(dst), uint32(v), 4, uint64(n)))
}

func implMemsetD8Async(dst C.CUdeviceptr, v C.uchar, n C.size_t, s C.CUstream) C.CUresult {
	return cr(memsetAsync(uint64(dst), uint32(v), 1, uint64(n), key(unsafe.Pointer(s))))
}

func implMemsetD16Async(dst C.CUdeviceptr, v C.ushort, n C.size_t, s C.CUstream) C.CUresult {
	return cr(memsetAsync(uint64(dst), uint32(v), 2, uint64(n), key(unsafe.Pointer(s))))
}

func implMemsetD32Async(dst C.CUdeviceptr, v C.uint, n C.size_t, s C.CUstream) C.CUresult {
	return cr(memsetAsync(uint64(dst), uint32(v), 4, uint64(n), key(unsafe.Pointer(s))))
}

// Modules and libraries.

// moduleLoadOut loads a module; the JIT options (n of them, which may be
// none) get its logs and nothing else: the server's loader takes none.
func moduleLoadOut(mod *C.CUmodule, image unsafe.Pointer, n C.uint, opts *C.CUjit_option, vals *unsafe.Pointer) C.CUresult {
	if mod == nil {
		return errNull
	}
	b, res := imageBytes(image)
	if res != abi.Success {
		return cr(res)
	}
	o, res, log := moduleLoad(b, kindModule)
	if res == abi.Success {
		*mod = C.CUmodule(o.mem)
	}
	writeJITLogs(n, opts, vals, log)
	return cr(res)
}

func implModuleLoadData(mod *C.CUmodule, image unsafe.Pointer) C.CUresult {
	return moduleLoadOut(mod, image, 0, nil, nil)
}

func implModuleLoadDataEx(mod *C.CUmodule, image unsafe.Pointer, n C.uint, opts *C.CUjit_option, vals *unsafe.Pointer) C.CUresult {
	return moduleLoadOut(mod, image, n, opts, vals)
}

func implModuleLoadFatBinary(mod *C.CUmodule, image unsafe.Pointer) C.CUresult {
	return moduleLoadOut(mod, image, 0, nil, nil)
}

// maxJITOptions bounds the options a load reads: the driver defines
// fewer than a hundred.
const maxJITOptions = 1024

// writeJITLogs fills the log buffers among a load's n JIT options, as the
// driver does: the error log gets errText, the info log nothing, each
// NUL-terminated and cut to its buffer's size, and each size option's
// value becomes the bytes of text written (NUL excluded). A buffer without
// its size option is left alone.
func writeJITLogs(n C.uint, opts *C.CUjit_option, vals *unsafe.Pointer, errText string) {
	if n == 0 || n > maxJITOptions || opts == nil || vals == nil {
		return
	}
	keys := unsafe.Slice(opts, n)
	ptrs := unsafe.Slice(vals, n)
	words := unsafe.Slice((*uintptr)(unsafe.Pointer(vals)), n) // the size options' slots hold integers
	find := func(opt int) int {
		for i, k := range keys {
			if int(k) == opt {
				return i
			}
		}
		return -1
	}
	write := func(bufOpt, sizeOpt int, text string) {
		b, sz := find(bufOpt), find(sizeOpt)
		if b < 0 || sz < 0 || ptrs[b] == nil || words[sz] == 0 {
			return
		}
		buf := unsafe.Slice((*byte)(ptrs[b]), words[sz])
		w := copy(buf[:len(buf)-1], text)
		buf[w] = 0
		words[sz] = uintptr(w)
	}
	write(abi.JITErrorLogBuffer, abi.JITErrorLogBufferSizeBytes, errText)
	write(abi.JITInfoLogBuffer, abi.JITInfoLogBufferSizeBytes, "")
}

func implModuleGetLoadingMode(mode *C.CUmoduleLoadingMode) C.CUresult {
	if mode == nil {
		return errNull
	}
	m, res := moduleLoadingMode()
	if res == abi.Success {
		*mode = C.CUmoduleLoadingMode(m)
	}
	return cr(res)
}

func implModuleUnload(mod C.CUmodule) C.CUresult {
	return cr(moduleUnload(key(unsafe.Pointer(mod)), kindModule))
}

func implModuleGetFunction(fn *C.CUfunction, mod C.CUmodule, name *C.char) C.CUresult {
	return lookupKernel((*unsafe.Pointer)(unsafe.Pointer(fn)), unsafe.Pointer(mod), kindModule, name, kindFunction)
}

// lookupKernel finds the kernel called name in a module or library and
// writes its handle, of kind k, to out.
func lookupKernel(out *unsafe.Pointer, parent unsafe.Pointer, pk kind, name *C.char, k kind) C.CUresult {
	if out == nil {
		return errNull
	}
	s, ok := goString(name, abi.MaxName)
	if !ok {
		return errNull
	}
	o, res := getFunction(key(parent), pk, s, k)
	if res == abi.Success {
		*out = o.mem
	}
	return cr(res)
}

func implModuleGetGlobal(dptr *C.CUdeviceptr, bytes *C.size_t, mod C.CUmodule, name *C.char) C.CUresult {
	return globalOut(dptr, bytes, key(unsafe.Pointer(mod)), kindModule, name)
}

func implLibraryGetGlobal(dptr *C.CUdeviceptr, bytes *C.size_t, lib C.CUlibrary, name *C.char) C.CUresult {
	return globalOut(dptr, bytes, key(unsafe.Pointer(lib)), kindLibrary, name)
}

func globalOut(dptr *C.CUdeviceptr, bytes *C.size_t, mod uintptr, k kind, name *C.char) C.CUresult {
	s, ok := goString(name, abi.MaxName)
	if !ok {
		return errNull
	}
	p, n, res := moduleGetGlobal(mod, k, s)
	if res == abi.Success {
		if dptr != nil {
			*dptr = C.CUdeviceptr(p)
		}
		if bytes != nil {
			*bytes = C.size_t(n)
		}
	}
	return cr(res)
}

func implLibraryLoadData(lib *C.CUlibrary, code unsafe.Pointer, jo *C.CUjit_option, jv *unsafe.Pointer, nj C.uint, lo *C.CUlibraryOption, lv *unsafe.Pointer, nl C.uint) C.CUresult {
	if lib == nil {
		return errNull
	}
	b, res := imageBytes(code)
	if res != abi.Success {
		return cr(res)
	}
	o, res, log := libraryLoad(b)
	if res == abi.Success {
		*lib = C.CUlibrary(o.mem)
	}
	writeJITLogs(nj, jo, jv, log)
	return cr(res)
}

func implLibraryUnload(lib C.CUlibrary) C.CUresult {
	return cr(moduleUnload(key(unsafe.Pointer(lib)), kindLibrary))
}

func implLibraryGetKernel(k *C.CUkernel, lib C.CUlibrary, name *C.char) C.CUresult {
	return lookupKernel((*unsafe.Pointer)(unsafe.Pointer(k)), unsafe.Pointer(lib), kindLibrary, name, kindKernel)
}

func implKernelGetFunction(fn *C.CUfunction, k C.CUkernel) C.CUresult {
	if fn == nil {
		return errNull
	}
	o, res := kernelFunction(key(unsafe.Pointer(k)))
	if res == abi.Success {
		*fn = C.CUfunction(o.mem)
	}
	return cr(res)
}

func implFuncGetAttribute(pi *C.int, attr C.CUfunction_attribute, fn C.CUfunction) C.CUresult {
	if pi == nil {
		return errNull
	}
	v, res := funcAttribute(int32(attr), key(unsafe.Pointer(fn)))
	if res == abi.Success {
		*pi = C.int(v)
	}
	return cr(res)
}

func implKernelGetAttribute(pi *C.int, attr C.CUfunction_attribute, k C.CUkernel, dev C.CUdevice) C.CUresult {
	if pi == nil {
		return errNull
	}
	v, res := kernelAttribute(int32(attr), key(unsafe.Pointer(k)), int(dev))
	if res == abi.Success {
		*pi = C.int(v)
	}
	return cr(res)
}

func implFuncSetAttribute(fn C.CUfunction, attr C.CUfunction_attribute, value C.int) C.CUresult {
	return cr(funcSetAttribute(int32(attr), key(unsafe.Pointer(fn)), int32(value)))
}

func implFuncSetCacheConfig(fn C.CUfunction, config C.CUfunc_cache) C.CUresult {
	return cr(funcSetCacheConfig(key(unsafe.Pointer(fn)), uint32(config)))
}

func implFuncSetSharedMemConfig(fn C.CUfunction, config C.CUsharedconfig) C.CUresult {
	return cr(funcSetSharedMemConfig(key(unsafe.Pointer(fn)), uint32(config)))
}

// Occupancy.

func implOccupancyMaxActiveBlocksPerMultiprocessor(n *C.int, fn C.CUfunction, blockSize C.int, dyn C.size_t) C.CUresult {
	return implOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(n, fn, blockSize, dyn, 0)
}

func implOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(n *C.int, fn C.CUfunction, blockSize C.int, dyn C.size_t, flags C.uint) C.CUresult {
	if n == nil {
		return errNull
	}
	v, res := occupancyActiveBlocks(key(unsafe.Pointer(fn)), int32(blockSize), uint64(dyn), uint32(flags))
	if res == abi.Success {
		*n = C.int(v)
	}
	return cr(res)
}

func implOccupancyMaxPotentialBlockSize(grid, block *C.int, fn C.CUfunction, b2d C.CUoccupancyB2DSize, dyn C.size_t, limit C.int) C.CUresult {
	return implOccupancyMaxPotentialBlockSizeWithFlags(grid, block, fn, b2d, dyn, limit, 0)
}

func implOccupancyMaxPotentialBlockSizeWithFlags(grid, block *C.int, fn C.CUfunction, b2d C.CUoccupancyB2DSize, dyn C.size_t, limit C.int, flags C.uint) C.CUresult {
	if grid == nil || block == nil {
		return errNull
	}
	var dynFor func(int64) uint64
	if b2d != nil {
		dynFor = func(blockSize int64) uint64 { return uint64(C.kerf_call_b2d(b2d, C.int(blockSize))) }
	}
	g, b, res := occupancyBlockSize(key(unsafe.Pointer(fn)), dynFor, uint64(dyn), int32(limit), uint32(flags))
	if res == abi.Success {
		*grid, *block = C.int(g), C.int(b)
	}
	return cr(res)
}

func implOccupancyAvailableDynamicSMemPerBlock(size *C.size_t, fn C.CUfunction, numBlocks, blockSize C.int) C.CUresult {
	if size == nil {
		return errNull
	}
	v, res := occupancyAvailableShared(key(unsafe.Pointer(fn)), int32(numBlocks), int32(blockSize))
	if res == abi.Success {
		*size = C.size_t(v)
	}
	return cr(res)
}

func implFuncGetParamInfo(fn C.CUfunction, index C.size_t, off, size *C.size_t) C.CUresult {
	o, s, res := funcParamInfo(key(unsafe.Pointer(fn)), uint64(index))
	if res == abi.Success {
		if off != nil {
			*off = C.size_t(o)
		}
		if size != nil {
			*size = C.size_t(s)
		}
	}
	return cr(res)
}

// Launches.

func implLaunchKernel(fn C.CUfunction, gx, gy, gz, bx, by, bz, shared C.uint, s C.CUstream, kp, extra *unsafe.Pointer) C.CUresult {
	src, res := paramsOf(kp, extra)
	if res != abi.Success {
		return cr(res)
	}
	return cr(launch(key(unsafe.Pointer(fn)), abi.Dim3{X: uint32(gx), Y: uint32(gy), Z: uint32(gz)},
		abi.Dim3{X: uint32(bx), Y: uint32(by), Z: uint32(bz)}, uint32(shared), key(unsafe.Pointer(s)), src, nil, false))
}

func implLaunchCooperativeKernel(fn C.CUfunction, gx, gy, gz, bx, by, bz, shared C.uint, s C.CUstream, kp *unsafe.Pointer) C.CUresult {
	src, res := paramsOf(kp, nil)
	if res != abi.Success {
		return cr(res)
	}
	return cr(launch(key(unsafe.Pointer(fn)), abi.Dim3{X: uint32(gx), Y: uint32(gy), Z: uint32(gz)},
		abi.Dim3{X: uint32(bx), Y: uint32(by), Z: uint32(bz)}, uint32(shared), key(unsafe.Pointer(s)), src, nil, true))
}

func implLaunchKernelEx(cfg *C.CUlaunchConfig, fn C.CUfunction, kp, extra *unsafe.Pointer) C.CUresult {
	if cfg == nil {
		return errNull
	}
	src, res := paramsOf(kp, extra)
	if res != abi.Success {
		return cr(res)
	}
	attrs, res := launchAttrs(cfg)
	if res != abi.Success {
		return cr(res)
	}
	return cr(launch(key(unsafe.Pointer(fn)), abi.Dim3{X: uint32(cfg.gridDimX), Y: uint32(cfg.gridDimY), Z: uint32(cfg.gridDimZ)},
		abi.Dim3{X: uint32(cfg.blockDimX), Y: uint32(cfg.blockDimY), Z: uint32(cfg.blockDimZ)}, uint32(cfg.sharedMemBytes),
		key(unsafe.Pointer(cfg.hStream)), src, attrs, false))
}

// Streams and events.

func implStreamCreate(ps *C.CUstream, flags C.uint) C.CUresult {
	return implStreamCreateWithPriority(ps, flags, 0)
}

func implStreamCreateWithPriority(ps *C.CUstream, flags C.uint, prio C.int) C.CUresult {
	if ps == nil {
		return errNull
	}
	o, res := streamCreate(uint32(flags), int32(prio))
	if res == abi.Success {
		*ps = C.CUstream(o.mem)
	}
	return cr(res)
}

func implStreamDestroy(s C.CUstream) C.CUresult {
	return cr(streamDestroy(key(unsafe.Pointer(s))))
}

func implStreamSynchronize(s C.CUstream) C.CUresult {
	return cr(streamSynchronize(key(unsafe.Pointer(s))))
}

func implStreamQuery(s C.CUstream) C.CUresult {
	return cr(streamQuery(key(unsafe.Pointer(s))))
}

func implStreamWaitEvent(s C.CUstream, e C.CUevent, flags C.uint) C.CUresult {
	return cr(streamWaitEvent(key(unsafe.Pointer(s)), key(unsafe.Pointer(e)), uint32(flags)))
}

func implEventCreate(pe *C.CUevent, flags C.uint) C.CUresult {
	if pe == nil {
		return errNull
	}
	o, res := eventCreate(uint32(flags))
	if res == abi.Success {
		*pe = C.CUevent(o.mem)
	}
	return cr(res)
}

func implEventRecord(e C.CUevent, s C.CUstream) C.CUresult {
	return cr(eventRecord(key(unsafe.Pointer(e)), key(unsafe.Pointer(s))))
}

func implEventRecordWithFlags(e C.CUevent, s C.CUstream, flags C.uint) C.CUresult {
	if uint32(flags)&^abi.EventRecordExternal != 0 {
		return errNull
	}
	return cr(eventRecord(key(unsafe.Pointer(e)), key(unsafe.Pointer(s))))
}

func implEventQuery(e C.CUevent) C.CUresult {
	return cr(eventQuery(key(unsafe.Pointer(e))))
}

func implEventSynchronize(e C.CUevent) C.CUresult {
	return cr(eventSynchronize(key(unsafe.Pointer(e))))
}

func implEventElapsedTime(ms *C.float, start, end C.CUevent) C.CUresult {
	if ms == nil {
		return errNull
	}
	v, res := eventElapsed(key(unsafe.Pointer(start)), key(unsafe.Pointer(end)))
	if res == abi.Success {
		*ms = C.float(v)
	}
	return cr(res)
}

func implEventDestroy(e C.CUevent) C.CUresult {
	return cr(eventDestroy(key(unsafe.Pointer(e))))
}

//export kerfShutdown
func kerfShutdown() {
	defer func() { _ = recover() }()
	drv.shutdown()
}

func main() {}
