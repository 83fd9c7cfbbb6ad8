package main

// The functions of cuGetExportTable's tables (exporttables.c), as exports
// the C tables point at. Each checks the pointers it is given, converts,
// and calls the logic in exporttables.go.

/*
#include "shim.h"
#include "exporttables.h"
*/
import "C"

import (
	"unsafe"

	"github.com/kerf-edge/kerf/abi"
)

func implGetExportTable(table *unsafe.Pointer, id *C.CUuuid) C.CUresult {
	if table == nil || id == nil {
		return errNull
	}
	*table = nil
	var u [16]byte
	for i := range u {
		u[i] = byte(id.bytes[i])
	}
	which, res := lookupExportTable(u)
	if res == abi.Success {
		*table = unsafe.Pointer(C.kerf_export_table(C.int(which)))
	}
	return cr(res)
}

//export kerfExportUnknownSlot
func kerfExportUnknownSlot(which, slot C.int) (r C.CUresult) {
	defer guard(&r)
	return cr(unknownSlot(int(which), int(slot)))
}

// The cudart interface.

//export kerfCudartModuleFromWrapper
func kerfCudartModuleFromWrapper(mod *C.CUmodule, wrapper unsafe.Pointer) (r C.CUresult) {
	defer guard(&r)
	return moduleLoadOut(mod, wrapper, 0, nil, nil)
}

//export kerfCudartModuleFromWrapperEx
func kerfCudartModuleFromWrapperEx(mod *C.CUmodule, wrapper, a3, a4 unsafe.Pointer, a5 C.uint) (r C.CUresult) {
	defer guard(&r)
	if res := moduleOptionsKnown(a3 != nil || a4 != nil || a5 != 0); res != abi.Success {
		return cr(res)
	}
	return moduleLoadOut(mod, wrapper, 0, nil, nil)
}

//export kerfCudartModuleFromFatbinEx
func kerfCudartModuleFromFatbinEx(fatbin unsafe.Pointer, mod *C.CUmodule, a3, a4 unsafe.Pointer, a5 C.uint) (r C.CUresult) {
	defer guard(&r)
	if res := moduleOptionsKnown(a3 != nil || a4 != nil || a5 != 0); res != abi.Success {
		return cr(res)
	}
	return moduleLoadOut(mod, fatbin, 0, nil, nil)
}

//export kerfCudartPrimaryContext
func kerfCudartPrimaryContext(pctx *C.CUcontext, dev C.CUdevice) (r C.CUresult) {
	defer guard(&r)
	if pctx == nil {
		return errNull
	}
	o, res := primaryContext(int(dev))
	if res == abi.Success {
		*pctx = C.CUcontext(o.mem)
	}
	return cr(res)
}

// kerfCudartLoadCompilers is where the driver loads its PTX compiler for
// the runtime: kerfd compiles PTX, so there is nothing to load here.
//
//export kerfCudartLoadCompilers
func kerfCudartLoadCompilers() C.CUresult { return 0 }

// Context-local storage.

//export kerfContextStoragePut
func kerfContextStoragePut(ctx C.CUcontext, k, value, dtor unsafe.Pointer) (r C.CUresult) {
	defer guard(&r)
	if k == nil {
		return errNull
	}
	return cr(storagePut(key(unsafe.Pointer(ctx)), k, value, dtor))
}

//export kerfContextStorageDelete
func kerfContextStorageDelete(ctx C.CUcontext, k unsafe.Pointer) (r C.CUresult) {
	defer guard(&r)
	if k == nil {
		return errNull
	}
	return cr(storageDelete(key(unsafe.Pointer(ctx)), k))
}

//export kerfContextStorageGet
func kerfContextStorageGet(value *unsafe.Pointer, ctx C.CUcontext, k unsafe.Pointer) (r C.CUresult) {
	defer guard(&r)
	if value == nil || k == nil {
		return errNull
	}
	v, res := storageGet(key(unsafe.Pointer(ctx)), k)
	if res == abi.Success {
		*value = v
	}
	return cr(res)
}

func callStorageDestructor(fn, ctx, k, value cmem) { C.kerf_call_cls_dtor(fn, ctx, k, value) }

// Context checks.

//export kerfContextCheck
func kerfContextCheck(ctx C.CUcontext, flags *C.uint, state *unsafe.Pointer) (r C.CUresult) {
	defer guard(&r)
	if flags == nil {
		return errNull
	}
	f, res := contextCheck(key(unsafe.Pointer(ctx)))
	if res == abi.Success {
		*flags = C.uint(f)
	}
	return cr(res)
}

// kerfContextFlagsAny reports whether any context carries the states the
// context checks look for: none does.
//
//export kerfContextFlagsAny
func kerfContextFlagsAny() C.uint { return 0 }

// Extended device attributes. result points at two words.

//export kerfDeviceAttributeExt
func kerfDeviceAttributeExt(dev C.CUdevice, attr C.uint, arg C.int, result *C.size_t) (r C.CUresult) {
	defer guard(&r)
	if result == nil {
		return errNull
	}
	return cr(deviceAttributeExt(int(dev), uint32(attr), int32(arg)))
}

// The integrity check. result points at two words.

//export kerfIntegrityCheck
func kerfIntegrityCheck(version C.uint, unixSeconds C.uint64_t, result *C.uint64_t) (r C.CUresult) {
	defer guard(&r)
	if result == nil {
		return errNull
	}
	addrs := integrityAddrs{
		cudartTable:    uint64(uintptr(C.kerf_export_table(etCudart))),
		integrityTable: uint64(uintptr(C.kerf_export_table(etIntegrity))),
		integrityFn:    uint64(uintptr(C.kerf_integrity_fn())),
	}
	sum, res := integrityCheck(uint32(version), uint64(unixSeconds), addrs, uint32(C.kerf_thread_word()))
	if res == abi.Success {
		out := unsafe.Slice(result, 2)
		out[0], out[1] = C.uint64_t(sum[0]), C.uint64_t(sum[1])
	}
	return cr(res)
}
