package main

import (
	"errors"
	"os"

	"github.com/kerf-edge/kerf/abi"
)

// moduleLoad loads image on the current context's device as a module (or,
// with k == kindLibrary, as a library). On failure it also returns why, as
// the JIT error log has it: the PTX parser's line and instruction on the
// emulated GPU, the driver's JIT log on a real one.
func moduleLoad(image []byte, k kind) (*object, Result, string) {
	dv, res := currentDevice()
	if res != abi.Success {
		return nil, res, ""
	}
	return loadOn(dv, image, k)
}

func loadOn(dv *device, image []byte, k kind) (*object, Result, string) {
	if len(image) == 0 {
		return nil, abi.ErrInvalidImage, ""
	}
	w, err := dv.cl.ModuleLoad(image)
	if err != nil {
		log := errorLog(err)
		if log != "" {
			say("module load: %s", log)
		}
		return nil, abi.ResultOf(err), log
	}
	o, res := drv.newObject(k, dv, w)
	if res != abi.Success {
		dv.cl.Call(abi.CallModuleUnload, new(abi.Values).Word(w), nil)
	}
	return o, res, ""
}

// errorLog is the text of a failed load for the JIT error log: the
// message kerfd sent, or none.
func errorLog(err error) string {
	var e *abi.Error
	if errors.As(err, &e) {
		return e.Msg
	}
	return ""
}

// libraryLoad implements cuLibraryLoadData: a library is context-free in
// CUDA; here it lives on the current context's device, or device 0.
func libraryLoad(image []byte) (*object, Result, string) {
	dv, res := currentDevice()
	if res == abi.ErrInvalidContext {
		dv, res = drv.device(0)
	}
	if res != abi.Success {
		return nil, res, ""
	}
	return loadOn(dv, image, kindLibrary)
}

func moduleUnload(key uintptr, k kind) Result {
	if _, res := drv.ready(); res != abi.Success {
		return res
	}
	drv.mu.Lock()
	o, ok := drv.objs[key]
	if !ok || o.kind != k {
		drv.mu.Unlock()
		return abi.ErrInvalidHandle
	}
	drv.dropLocked(o)
	drv.mu.Unlock()
	return abi.ResultOf(o.dev.cl.Call(abi.CallModuleUnload, new(abi.Values).Word(o.wire), nil))
}

// getFunction looks a kernel up in a module (kindFunction) or library
// (kindKernel).
func getFunction(modKey uintptr, mk kind, name string, fk kind) (*object, Result) {
	if _, res := drv.ready(); res != abi.Success {
		return nil, res
	}
	m, ok := drv.lookup(modKey, mk)
	if !ok {
		return nil, abi.ErrInvalidHandle
	}
	if name == "" || len(name) > abi.MaxName {
		return nil, abi.ErrInvalidValue
	}
	w, err := m.dev.cl.ModuleGetFunction(m.wire, name)
	if err != nil {
		return nil, abi.ResultOf(err)
	}
	o, res := drv.newObject(fk, m.dev, w)
	if res != abi.Success {
		return nil, res
	}
	drv.mu.Lock()
	defer drv.mu.Unlock()
	if _, live := drv.objs[m.key]; !live {
		drv.dropLocked(o) // unloaded meanwhile
		return nil, abi.ErrInvalidHandle
	}
	o.parent = m
	m.children = append(m.children, o)
	return o, abi.Success
}

// kernelFunction implements cuKernelGetFunction.
func kernelFunction(key uintptr) (*object, Result) {
	if _, res := drv.ready(); res != abi.Success {
		return nil, res
	}
	k, ok := drv.lookup(key, kindKernel)
	if !ok {
		return nil, abi.ErrInvalidHandle
	}
	drv.mu.Lock()
	defer drv.mu.Unlock()
	if k.fn == nil {
		mem, hk := newHandleMem()
		if hk == 0 {
			return nil, abi.ErrOutOfMemory
		}
		k.fn = &object{key: hk, mem: mem, kind: kindFunction, dev: k.dev, wire: k.wire, parent: k}
		drv.objs[hk] = k.fn
	}
	return k.fn, abi.Success
}

// moduleGetGlobal looks a global up in a module (kindModule) or library
// (kindLibrary).
func moduleGetGlobal(key uintptr, k kind, name string) (uint64, uint64, Result) {
	if _, res := drv.ready(); res != abi.Success {
		return 0, 0, res
	}
	m, ok := drv.lookup(key, k)
	if !ok {
		return 0, 0, abi.ErrInvalidHandle
	}
	if name == "" || len(name) > abi.MaxName {
		return 0, 0, abi.ErrInvalidValue
	}
	var res abi.Values
	err := m.dev.cl.Call(abi.CallModuleGetGlobal, new(abi.Values).Word(m.wire).Blob([]byte(name)), &res)
	return res.Words[0], res.Words[1], abi.ResultOf(err)
}

func funcAttribute(attr int32, key uintptr) (int32, Result) {
	if _, res := drv.ready(); res != abi.Success {
		return 0, res
	}
	f, ok := drv.lookup(key, kindFunction)
	if !ok {
		return 0, abi.ErrInvalidHandle
	}
	return f.attribute(attr)
}

// kernelAttribute implements cuKernelGetAttribute. A library lives on one
// device here (the one it was loaded on), so only that device's answer
// exists; another device gets CUDA_ERROR_NOT_SUPPORTED.
func kernelAttribute(attr int32, key uintptr, dev int) (int32, Result) {
	dv, res := drv.device(dev)
	if res != abi.Success {
		return 0, res
	}
	k, ok := drv.lookup(key, kindKernel)
	if !ok {
		return 0, abi.ErrInvalidHandle
	}
	if k.dev != dv {
		return 0, abi.ErrNotSupported
	}
	return k.attribute(attr)
}

// attribute asks kerfd for a function attribute of f, a function or a
// kernel (whose wire handle is its function's).
func (f *object) attribute(attr int32) (int32, Result) {
	if attr < 0 {
		return 0, abi.ErrInvalidValue
	}
	var res abi.Values
	err := f.dev.cl.Call(abi.CallFuncGetAttribute, new(abi.Values).Word(f.wire).Word(uint64(attr)), &res)
	return int32(uint32(res.Words[0])), abi.ResultOf(err)
}

func funcParamInfo(key uintptr, index uint64) (uint64, uint64, Result) {
	if _, res := drv.ready(); res != abi.Success {
		return 0, 0, res
	}
	f, ok := drv.lookup(key, kindFunction)
	if !ok {
		return 0, 0, abi.ErrInvalidHandle
	}
	l, res := f.params()
	if res != abi.Success {
		return 0, 0, res
	}
	if index >= uint64(len(l)) {
		return 0, 0, abi.ErrInvalidValue
	}
	return uint64(l[index].Offset), uint64(l[index].Size), abi.Success
}

// Module loading modes (CUmoduleLoadingMode).
const (
	moduleLoadingEager = 1
	moduleLoadingLazy  = 2
)

// moduleLoadingMode implements cuModuleGetLoadingMode: lazy unless
// CUDA_MODULE_LOADING=EAGER, the default of the CUDA 12 drivers whose
// version the shim reports.
func moduleLoadingMode() (int, Result) {
	if _, res := drv.ready(); res != abi.Success {
		return 0, res
	}
	if os.Getenv("CUDA_MODULE_LOADING") == "EAGER" {
		return moduleLoadingEager, abi.Success
	}
	return moduleLoadingLazy, abi.Success
}
