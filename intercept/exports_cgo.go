package main

// The driver-API entry points. Each one converts its arguments, checks the
// pointers the program gave it, and calls the Go logic; nothing else.

/*
#include "shim.h"
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

//export cuInit
func cuInit(flags C.uint) (r C.CUresult) {
	defer guard(&r)
	return cr(drv.initialize(uint32(flags)))
}

//export cuDriverGetVersion
func cuDriverGetVersion(v *C.int) (r C.CUresult) {
	defer guard(&r)
	if v == nil {
		return errNull
	}
	*v = C.int(drv.driverVersion())
	return 0
}

//export cuGetErrorName
func cuGetErrorName(code C.CUresult, p **C.char) (r C.CUresult) {
	defer guard(&r)
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

//export cuGetErrorString
func cuGetErrorString(code C.CUresult, p **C.char) (r C.CUresult) {
	defer guard(&r)
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

//export cuGetProcAddress
func cuGetProcAddress(symbol *C.char, pfn *unsafe.Pointer, version C.int, flags C.cuuint64_t) (r C.CUresult) {
	defer guard(&r)
	return procAddress(symbol, pfn, version, flags, nil)
}

//export cuGetProcAddress_v2
func cuGetProcAddress_v2(symbol *C.char, pfn *unsafe.Pointer, version C.int, flags C.cuuint64_t, status *C.CUdriverProcAddressQueryResult) (r C.CUresult) {
	defer guard(&r)
	return procAddress(symbol, pfn, version, flags, status)
}

//export cuGetExportTable
func cuGetExportTable(table *unsafe.Pointer, id *C.CUuuid) (r C.CUresult) {
	defer guard(&r)
	if table != nil {
		*table = nil
	}
	return cr(abi.ErrNotSupported)
}

// Devices.

//export cuDeviceGetCount
func cuDeviceGetCount(n *C.int) (r C.CUresult) {
	defer guard(&r)
	if n == nil {
		return errNull
	}
	c, res := deviceCount()
	if res == abi.Success {
		*n = C.int(c)
	}
	return cr(res)
}

//export cuDeviceGet
func cuDeviceGet(dev *C.CUdevice, ordinal C.int) (r C.CUresult) {
	defer guard(&r)
	if dev == nil {
		return errNull
	}
	d, res := deviceGet(int(ordinal))
	if res == abi.Success {
		*dev = C.CUdevice(d)
	}
	return cr(res)
}

//export cuDeviceGetName
func cuDeviceGetName(name *C.char, n C.int, dev C.CUdevice) (r C.CUresult) {
	defer guard(&r)
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

func deviceUUIDOut(uuid *C.CUuuid, dev C.CUdevice) C.CUresult {
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

//export cuDeviceGetUuid
func cuDeviceGetUuid(uuid *C.CUuuid, dev C.CUdevice) (r C.CUresult) {
	defer guard(&r)
	return deviceUUIDOut(uuid, dev)
}

//export cuDeviceGetUuid_v2
func cuDeviceGetUuid_v2(uuid *C.CUuuid, dev C.CUdevice) (r C.CUresult) {
	defer guard(&r)
	return deviceUUIDOut(uuid, dev)
}

//export cuDeviceGetAttribute
func cuDeviceGetAttribute(pi *C.int, attr C.CUdevice_attribute, dev C.CUdevice) (r C.CUresult) {
	defer guard(&r)
	if pi == nil {
		return errNull
	}
	v, res := deviceAttribute(int32(attr), int(dev))
	if res == abi.Success {
		*pi = C.int(v)
	}
	return cr(res)
}

//export cuDeviceComputeCapability
func cuDeviceComputeCapability(major, minor *C.int, dev C.CUdevice) (r C.CUresult) {
	defer guard(&r)
	if major == nil || minor == nil {
		return errNull
	}
	a, b, res := deviceComputeCapability(int(dev))
	if res == abi.Success {
		*major, *minor = C.int(a), C.int(b)
	}
	return cr(res)
}

//export cuDeviceTotalMem_v2
func cuDeviceTotalMem_v2(bytes *C.size_t, dev C.CUdevice) (r C.CUresult) {
	defer guard(&r)
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

//export cuDeviceTotalMem
func cuDeviceTotalMem(bytes *C.uint, dev C.CUdevice) (r C.CUresult) {
	defer guard(&r)
	if bytes == nil {
		return errNull
	}
	n, res := deviceTotalMem(int(dev))
	if res == abi.Success {
		*bytes = clamp32(n)
	}
	return cr(res)
}

//export cuDevicePrimaryCtxRetain
func cuDevicePrimaryCtxRetain(pctx *C.CUcontext, dev C.CUdevice) (r C.CUresult) {
	defer guard(&r)
	if pctx == nil {
		return errNull
	}
	o, res := primaryRetain(int(dev))
	if res == abi.Success {
		*pctx = C.CUcontext(o.mem)
	}
	return cr(res)
}

//export cuDevicePrimaryCtxRelease
func cuDevicePrimaryCtxRelease(dev C.CUdevice) (r C.CUresult) {
	defer guard(&r)
	return cr(primaryRelease(int(dev)))
}

//export cuDevicePrimaryCtxRelease_v2
func cuDevicePrimaryCtxRelease_v2(dev C.CUdevice) (r C.CUresult) {
	defer guard(&r)
	return cr(primaryRelease(int(dev)))
}

//export cuDevicePrimaryCtxGetState
func cuDevicePrimaryCtxGetState(dev C.CUdevice, flags *C.uint, active *C.int) (r C.CUresult) {
	defer guard(&r)
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

func ctxCreateOut(pctx *C.CUcontext, flags C.uint, dev C.CUdevice) C.CUresult {
	if pctx == nil {
		return errNull
	}
	o, res := ctxCreate(uint32(flags), int(dev))
	if res == abi.Success {
		*pctx = C.CUcontext(o.mem)
	}
	return cr(res)
}

//export cuCtxCreate
func cuCtxCreate(pctx *C.CUcontext, flags C.uint, dev C.CUdevice) (r C.CUresult) {
	defer guard(&r)
	return ctxCreateOut(pctx, flags, dev)
}

//export cuCtxCreate_v2
func cuCtxCreate_v2(pctx *C.CUcontext, flags C.uint, dev C.CUdevice) (r C.CUresult) {
	defer guard(&r)
	return ctxCreateOut(pctx, flags, dev)
}

//export cuCtxDestroy
func cuCtxDestroy(ctx C.CUcontext) (r C.CUresult) {
	defer guard(&r)
	return cr(ctxDestroy(key(unsafe.Pointer(ctx))))
}

//export cuCtxDestroy_v2
func cuCtxDestroy_v2(ctx C.CUcontext) (r C.CUresult) {
	defer guard(&r)
	return cr(ctxDestroy(key(unsafe.Pointer(ctx))))
}

//export cuCtxPushCurrent
func cuCtxPushCurrent(ctx C.CUcontext) (r C.CUresult) {
	defer guard(&r)
	return cr(ctxPush(key(unsafe.Pointer(ctx))))
}

//export cuCtxPushCurrent_v2
func cuCtxPushCurrent_v2(ctx C.CUcontext) (r C.CUresult) {
	defer guard(&r)
	return cr(ctxPush(key(unsafe.Pointer(ctx))))
}

func ctxPopOut(pctx *C.CUcontext) C.CUresult {
	p, res := ctxPop()
	if res == abi.Success && pctx != nil {
		*pctx = C.CUcontext(p)
	}
	return cr(res)
}

//export cuCtxPopCurrent
func cuCtxPopCurrent(pctx *C.CUcontext) (r C.CUresult) {
	defer guard(&r)
	return ctxPopOut(pctx)
}

//export cuCtxPopCurrent_v2
func cuCtxPopCurrent_v2(pctx *C.CUcontext) (r C.CUresult) {
	defer guard(&r)
	return ctxPopOut(pctx)
}

//export cuCtxSetCurrent
func cuCtxSetCurrent(ctx C.CUcontext) (r C.CUresult) {
	defer guard(&r)
	return cr(ctxSet(key(unsafe.Pointer(ctx))))
}

//export cuCtxGetCurrent
func cuCtxGetCurrent(pctx *C.CUcontext) (r C.CUresult) {
	defer guard(&r)
	if pctx == nil {
		return errNull
	}
	p, res := ctxGet()
	if res == abi.Success {
		*pctx = C.CUcontext(p)
	}
	return cr(res)
}

//export cuCtxGetDevice
func cuCtxGetDevice(dev *C.CUdevice) (r C.CUresult) {
	defer guard(&r)
	if dev == nil {
		return errNull
	}
	d, res := ctxGetDevice()
	if res == abi.Success {
		*dev = C.CUdevice(d)
	}
	return cr(res)
}

//export cuCtxSynchronize
func cuCtxSynchronize() (r C.CUresult) {
	defer guard(&r)
	return cr(ctxSynchronize())
}

// Memory.

//export cuMemAlloc_v2
func cuMemAlloc_v2(dptr *C.CUdeviceptr, size C.size_t) (r C.CUresult) {
	defer guard(&r)
	if dptr == nil {
		return errNull
	}
	p, res := memAlloc(uint64(size))
	if res == abi.Success {
		*dptr = C.CUdeviceptr(p)
	}
	return cr(res)
}

//export cuMemFree_v2
func cuMemFree_v2(dptr C.CUdeviceptr) (r C.CUresult) {
	defer guard(&r)
	return cr(memFree(uint64(dptr)))
}

//export cuMemGetInfo_v2
func cuMemGetInfo_v2(free, total *C.size_t) (r C.CUresult) {
	defer guard(&r)
	if free == nil || total == nil {
		return errNull
	}
	f, t, res := memGetInfo()
	if res == abi.Success {
		*free, *total = C.size_t(f), C.size_t(t)
	}
	return cr(res)
}

//export cuMemGetInfo
func cuMemGetInfo(free, total *C.uint) (r C.CUresult) {
	defer guard(&r)
	if free == nil || total == nil {
		return errNull
	}
	f, t, res := memGetInfo()
	if res == abi.Success {
		*free, *total = clamp32(f), clamp32(t)
	}
	return cr(res)
}

func hostAllocOut(pp *unsafe.Pointer, size C.size_t) C.CUresult {
	if pp == nil {
		return errNull
	}
	p, res := hostAlloc(uint64(size))
	if res == abi.Success {
		*pp = p
	}
	return cr(res)
}

//export cuMemAllocHost_v2
func cuMemAllocHost_v2(pp *unsafe.Pointer, size C.size_t) (r C.CUresult) {
	defer guard(&r)
	return hostAllocOut(pp, size)
}

//export cuMemAllocHost
func cuMemAllocHost(pp *unsafe.Pointer, size C.uint) (r C.CUresult) {
	defer guard(&r)
	return hostAllocOut(pp, C.size_t(size))
}

//export cuMemHostAlloc
func cuMemHostAlloc(pp *unsafe.Pointer, size C.size_t, flags C.uint) (r C.CUresult) {
	defer guard(&r)
	return hostAllocOut(pp, size)
}

//export cuMemFreeHost
func cuMemFreeHost(p unsafe.Pointer) (r C.CUresult) {
	defer guard(&r)
	return cr(hostFree(key(p)))
}

//export cuMemcpyHtoD_v2
func cuMemcpyHtoD_v2(dst C.CUdeviceptr, src unsafe.Pointer, n C.size_t) (r C.CUresult) {
	defer guard(&r)
	b, ok := hostBytes(src, n)
	if !ok {
		return errNull
	}
	return cr(memcpyHtoD(uint64(dst), b))
}

//export cuMemcpyDtoH_v2
func cuMemcpyDtoH_v2(dst unsafe.Pointer, src C.CUdeviceptr, n C.size_t) (r C.CUresult) {
	defer guard(&r)
	b, ok := hostBytes(dst, n)
	if !ok {
		return errNull
	}
	return cr(memcpyDtoH(b, uint64(src)))
}

//export cuMemcpyDtoD_v2
func cuMemcpyDtoD_v2(dst, src C.CUdeviceptr, n C.size_t) (r C.CUresult) {
	defer guard(&r)
	return cr(memcpyDtoD(uint64(dst), uint64(src), uint64(n)))
}

//export cuMemcpyHtoDAsync_v2
func cuMemcpyHtoDAsync_v2(dst C.CUdeviceptr, src unsafe.Pointer, n C.size_t, s C.CUstream) (r C.CUresult) {
	defer guard(&r)
	b, ok := hostBytes(src, n)
	if !ok {
		return errNull
	}
	return cr(memcpyHtoDAsync(uint64(dst), b, key(unsafe.Pointer(s))))
}

//export cuMemcpyDtoHAsync_v2
func cuMemcpyDtoHAsync_v2(dst unsafe.Pointer, src C.CUdeviceptr, n C.size_t, s C.CUstream) (r C.CUresult) {
	defer guard(&r)
	b, ok := hostBytes(dst, n)
	if !ok {
		return errNull
	}
	return cr(memcpyDtoHAsync(b, uint64(src), key(unsafe.Pointer(s))))
}

//export cuMemcpyDtoDAsync_v2
func cuMemcpyDtoDAsync_v2(dst, src C.CUdeviceptr, n C.size_t, s C.CUstream) (r C.CUresult) {
	defer guard(&r)
	return cr(memcpyDtoDAsync(uint64(dst), uint64(src), uint64(n), key(unsafe.Pointer(s))))
}

//export cuMemsetD8_v2
func cuMemsetD8_v2(dst C.CUdeviceptr, v C.uchar, n C.size_t) (r C.CUresult) {
	defer guard(&r)
	return cr(memset(uint64(dst), uint32(v), 1, uint64(n)))
}

//export cuMemsetD16_v2
func cuMemsetD16_v2(dst C.CUdeviceptr, v C.ushort, n C.size_t) (r C.CUresult) {
	defer guard(&r)
	return cr(memset(uint64(dst), uint32(v), 2, uint64(n)))
}

//export cuMemsetD32_v2
func cuMemsetD32_v2(dst C.CUdeviceptr, v C.uint, n C.size_t) (r C.CUresult) {
	defer guard(&r)
	return cr(memset(uint64(dst), uint32(v), 4, uint64(n)))
}

//export cuMemsetD8Async
func cuMemsetD8Async(dst C.CUdeviceptr, v C.uchar, n C.size_t, s C.CUstream) (r C.CUresult) {
	defer guard(&r)
	return cr(memsetAsync(uint64(dst), uint32(v), 1, uint64(n), key(unsafe.Pointer(s))))
}

//export cuMemsetD16Async
func cuMemsetD16Async(dst C.CUdeviceptr, v C.ushort, n C.size_t, s C.CUstream) (r C.CUresult) {
	defer guard(&r)
	return cr(memsetAsync(uint64(dst), uint32(v), 2, uint64(n), key(unsafe.Pointer(s))))
}

//export cuMemsetD32Async
func cuMemsetD32Async(dst C.CUdeviceptr, v C.uint, n C.size_t, s C.CUstream) (r C.CUresult) {
	defer guard(&r)
	return cr(memsetAsync(uint64(dst), uint32(v), 4, uint64(n), key(unsafe.Pointer(s))))
}

// Modules and libraries.

func moduleLoadOut(mod *C.CUmodule, image unsafe.Pointer) C.CUresult {
	if mod == nil {
		return errNull
	}
	b, res := imageBytes(image)
	if res != abi.Success {
		return cr(res)
	}
	o, res := moduleLoad(b, kindModule)
	if res == abi.Success {
		*mod = C.CUmodule(o.mem)
	}
	return cr(res)
}

//export cuModuleLoadData
func cuModuleLoadData(mod *C.CUmodule, image unsafe.Pointer) (r C.CUresult) {
	defer guard(&r)
	return moduleLoadOut(mod, image)
}

//export cuModuleLoadDataEx
func cuModuleLoadDataEx(mod *C.CUmodule, image unsafe.Pointer, n C.uint, opts *C.CUjit_option, vals *unsafe.Pointer) (r C.CUresult) {
	defer guard(&r)
	return moduleLoadOut(mod, image) // JIT options do not apply to the server's loader
}

//export cuModuleLoadFatBinary
func cuModuleLoadFatBinary(mod *C.CUmodule, image unsafe.Pointer) (r C.CUresult) {
	defer guard(&r)
	return moduleLoadOut(mod, image)
}

//export cuModuleUnload
func cuModuleUnload(mod C.CUmodule) (r C.CUresult) {
	defer guard(&r)
	return cr(moduleUnload(key(unsafe.Pointer(mod)), kindModule))
}

//export cuModuleGetFunction
func cuModuleGetFunction(fn *C.CUfunction, mod C.CUmodule, name *C.char) (r C.CUresult) {
	defer guard(&r)
	if fn == nil {
		return errNull
	}
	s, ok := goString(name, abi.MaxName)
	if !ok {
		return errNull
	}
	o, res := getFunction(key(unsafe.Pointer(mod)), kindModule, s, kindFunction)
	if res == abi.Success {
		*fn = C.CUfunction(o.mem)
	}
	return cr(res)
}

//export cuModuleGetGlobal_v2
func cuModuleGetGlobal_v2(dptr *C.CUdeviceptr, bytes *C.size_t, mod C.CUmodule, name *C.char) (r C.CUresult) {
	defer guard(&r)
	s, ok := goString(name, abi.MaxName)
	if !ok {
		return errNull
	}
	p, n, res := moduleGetGlobal(key(unsafe.Pointer(mod)), s)
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

//export cuLibraryLoadData
func cuLibraryLoadData(lib *C.CUlibrary, code unsafe.Pointer, jo *C.CUjit_option, jv *unsafe.Pointer, nj C.uint, lo *C.CUlibraryOption, lv *unsafe.Pointer, nl C.uint) (r C.CUresult) {
	defer guard(&r)
	if lib == nil {
		return errNull
	}
	b, res := imageBytes(code)
	if res != abi.Success {
		return cr(res)
	}
	o, res := libraryLoad(b)
	if res == abi.Success {
		*lib = C.CUlibrary(o.mem)
	}
	return cr(res)
}

//export cuLibraryUnload
func cuLibraryUnload(lib C.CUlibrary) (r C.CUresult) {
	defer guard(&r)
	return cr(moduleUnload(key(unsafe.Pointer(lib)), kindLibrary))
}

//export cuLibraryGetKernel
func cuLibraryGetKernel(k *C.CUkernel, lib C.CUlibrary, name *C.char) (r C.CUresult) {
	defer guard(&r)
	if k == nil {
		return errNull
	}
	s, ok := goString(name, abi.MaxName)
	if !ok {
		return errNull
	}
	o, res := getFunction(key(unsafe.Pointer(lib)), kindLibrary, s, kindKernel)
	if res == abi.Success {
		*k = C.CUkernel(o.mem)
	}
	return cr(res)
}

//export cuKernelGetFunction
func cuKernelGetFunction(fn *C.CUfunction, k C.CUkernel) (r C.CUresult) {
	defer guard(&r)
	if fn == nil {
		return errNull
	}
	o, res := kernelFunction(key(unsafe.Pointer(k)))
	if res == abi.Success {
		*fn = C.CUfunction(o.mem)
	}
	return cr(res)
}

//export cuFuncGetAttribute
func cuFuncGetAttribute(pi *C.int, attr C.CUfunction_attribute, fn C.CUfunction) (r C.CUresult) {
	defer guard(&r)
	if pi == nil {
		return errNull
	}
	v, res := funcAttribute(int32(attr), key(unsafe.Pointer(fn)))
	if res == abi.Success {
		*pi = C.int(v)
	}
	return cr(res)
}

//export cuFuncGetParamInfo
func cuFuncGetParamInfo(fn C.CUfunction, index C.size_t, off, size *C.size_t) (r C.CUresult) {
	defer guard(&r)
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

//export cuLaunchKernel
func cuLaunchKernel(fn C.CUfunction, gx, gy, gz, bx, by, bz, shared C.uint, s C.CUstream, kp, extra *unsafe.Pointer) (r C.CUresult) {
	defer guard(&r)
	src, res := paramsOf(kp, extra)
	if res != abi.Success {
		return cr(res)
	}
	return cr(launch(key(unsafe.Pointer(fn)), abi.Dim3{X: uint32(gx), Y: uint32(gy), Z: uint32(gz)},
		abi.Dim3{X: uint32(bx), Y: uint32(by), Z: uint32(bz)}, uint32(shared), key(unsafe.Pointer(s)), src, nil))
}

//export cuLaunchKernelEx
func cuLaunchKernelEx(cfg *C.CUlaunchConfig, fn C.CUfunction, kp, extra *unsafe.Pointer) (r C.CUresult) {
	defer guard(&r)
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
		key(unsafe.Pointer(cfg.hStream)), src, attrs))
}

// Streams and events.

//export cuStreamCreate
func cuStreamCreate(ps *C.CUstream, flags C.uint) (r C.CUresult) {
	defer guard(&r)
	if ps == nil {
		return errNull
	}
	o, res := streamCreate(uint32(flags), 0)
	if res == abi.Success {
		*ps = C.CUstream(o.mem)
	}
	return cr(res)
}

//export cuStreamCreateWithPriority
func cuStreamCreateWithPriority(ps *C.CUstream, flags C.uint, prio C.int) (r C.CUresult) {
	defer guard(&r)
	if ps == nil {
		return errNull
	}
	o, res := streamCreate(uint32(flags), int32(prio))
	if res == abi.Success {
		*ps = C.CUstream(o.mem)
	}
	return cr(res)
}

//export cuStreamDestroy
func cuStreamDestroy(s C.CUstream) (r C.CUresult) {
	defer guard(&r)
	return cr(streamDestroy(key(unsafe.Pointer(s))))
}

//export cuStreamDestroy_v2
func cuStreamDestroy_v2(s C.CUstream) (r C.CUresult) {
	defer guard(&r)
	return cr(streamDestroy(key(unsafe.Pointer(s))))
}

//export cuStreamSynchronize
func cuStreamSynchronize(s C.CUstream) (r C.CUresult) {
	defer guard(&r)
	return cr(streamSynchronize(key(unsafe.Pointer(s))))
}

//export cuStreamQuery
func cuStreamQuery(s C.CUstream) (r C.CUresult) {
	defer guard(&r)
	return cr(streamQuery(key(unsafe.Pointer(s))))
}

//export cuStreamWaitEvent
func cuStreamWaitEvent(s C.CUstream, e C.CUevent, flags C.uint) (r C.CUresult) {
	defer guard(&r)
	return cr(streamWaitEvent(key(unsafe.Pointer(s)), key(unsafe.Pointer(e)), uint32(flags)))
}

//export cuEventCreate
func cuEventCreate(pe *C.CUevent, flags C.uint) (r C.CUresult) {
	defer guard(&r)
	if pe == nil {
		return errNull
	}
	o, res := eventCreate(uint32(flags))
	if res == abi.Success {
		*pe = C.CUevent(o.mem)
	}
	return cr(res)
}

//export cuEventRecord
func cuEventRecord(e C.CUevent, s C.CUstream) (r C.CUresult) {
	defer guard(&r)
	return cr(eventRecord(key(unsafe.Pointer(e)), key(unsafe.Pointer(s))))
}

//export cuEventQuery
func cuEventQuery(e C.CUevent) (r C.CUresult) {
	defer guard(&r)
	return cr(eventQuery(key(unsafe.Pointer(e))))
}

//export cuEventSynchronize
func cuEventSynchronize(e C.CUevent) (r C.CUresult) {
	defer guard(&r)
	return cr(eventSynchronize(key(unsafe.Pointer(e))))
}

//export cuEventElapsedTime
func cuEventElapsedTime(ms *C.float, start, end C.CUevent) (r C.CUresult) {
	defer guard(&r)
	if ms == nil {
		return errNull
	}
	v, res := eventElapsed(key(unsafe.Pointer(start)), key(unsafe.Pointer(end)))
	if res == abi.Success {
		*ms = C.float(v)
	}
	return cr(res)
}

//export cuEventDestroy
func cuEventDestroy(e C.CUevent) (r C.CUresult) {
	defer guard(&r)
	return cr(eventDestroy(key(unsafe.Pointer(e))))
}

//export cuEventDestroy_v2
func cuEventDestroy_v2(e C.CUevent) (r C.CUresult) {
	defer guard(&r)
	return cr(eventDestroy(key(unsafe.Pointer(e))))
}

//export kerfShutdown
func kerfShutdown() {
	defer func() { _ = recover() }()
	drv.shutdown()
}

func main() {}
