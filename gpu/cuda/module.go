//go:build cgo

package cuda

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/abi/fatbin"
	"github.com/kerf-edge/kerf/gpu"
)

// Module is a loaded PTX, cubin or fatbin image.
type Module struct {
	c    *Context
	h    uintptr
	cost uint64 // device memory the load took, charged to the quota

	// layouts are the kernels' parameter layouts read from the image,
	// when the driver has no cuFuncGetParamInfo; layoutErr says why they
	// could not be read.
	layouts   kernelLayouts
	layoutErr error

	// Guarded by c.bk.
	unloaded bool
	funcs    map[string]*Function
	globals  map[uint64]bool // bases of the globals handed out, in c.mem
}

var _ gpu.Module = (*Module)(nil)

// Function is a kernel of a loaded module.
type Function struct {
	m      *Module
	name   string
	h      uintptr
	params []abi.ParamInfo
	offs   []uint32 // params' offsets, for the launch
	need   uint32   // bytes of parameter buffer the layout covers
	// maxDynamicShared is the function's dynamic shared memory limit
	// (CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES), checked at each
	// launch: not every driver refuses a launch over it at once.
	maxDynamicShared atomic.Int32
}

var _ gpu.Function = (*Function)(nil)

var errUnloaded = abi.Errorf(abi.ErrInvalidHandle, "module was unloaded")

// ModuleLoad loads a PTX, cubin or fatbin image with cuModuleLoadDataEx
// (every kernel eagerly, see New; the driver's JIT error log becomes
// part of a failure's error) and charges the device memory the load
// took — code, globals, constant banks — to the quota. Loads are
// serialised per context so the measurement sees only this load; other
// processes' activity can still blur it.
//
// The driver gets the image unchanged (with a NUL after it, for PTX). It
// reads a fatbin or cubin by its own headers, given no length, so an image
// whose headers reach past its bytes, or a fatbin wrapper (which holds
// addresses in the tenant's process), is refused here first.
func (c *Context) ModuleLoad(image []byte) (gpu.Module, error) {
	if len(image) == 0 {
		return nil, abi.Errorf(abi.ErrInvalidImage, "empty module image")
	}
	if _, err := fatbin.Check(image); err != nil {
		return nil, err
	}
	// Held for writing: no allocation of this context runs meanwhile.
	c.op.Lock()
	defer c.op.Unlock()
	if err := c.usable(); err != nil {
		return nil, err
	}
	before, _, r := memInfo(c.h)
	if err := c.check("cuMemGetInfo", r); err != nil {
		return nil, err
	}
	h, r, log := moduleLoad(c.h, image)
	if err := c.check("cuModuleLoadDataEx", r); err != nil {
		if log != "" {
			return nil, fmt.Errorf("%w: %s", err, log)
		}
		return nil, err
	}
	after, _, r := memInfo(c.h)
	if err := c.check("cuMemGetInfo", r); err != nil {
		moduleUnload(c.h, h)
		return nil, err
	}
	m := &Module{c: c, h: h, cost: footprint(before, after), funcs: map[string]*Function{}}
	if c.imageLayouts {
		m.layouts, m.layoutErr = imageLayouts(image, c.info.CCMajor, c.info.CCMinor)
	}
	if err := c.q.Reserve(m.cost, "module load"); err != nil {
		moduleUnload(c.h, h)
		return nil, err
	}
	c.bk.Lock()
	defer c.bk.Unlock()
	c.modules[m] = struct{}{}
	return m, nil
}

// enter checks the context and module; op is held on success.
func (m *Module) enter() error {
	if err := m.c.enter(); err != nil {
		return err
	}
	m.c.bk.Lock()
	u := m.unloaded
	m.c.bk.Unlock()
	if u {
		m.c.op.RUnlock()
		return errUnloaded
	}
	return nil
}

// Function returns the kernel called name, with its parameter layout
// from cuFuncGetParamInfo, or from the module image where the driver
// lacks that call.
func (m *Module) Function(name string) (gpu.Function, error) {
	if err := m.enter(); err != nil {
		return nil, err
	}
	c := m.c
	defer c.op.RUnlock()
	c.bk.Lock()
	f, ok := m.funcs[name]
	c.bk.Unlock()
	if ok {
		return f, nil
	}
	h, r := moduleFunction(c.h, m.h, name)
	err := c.check("cuModuleGetFunction", r)
	if err != nil {
		return nil, err
	}
	f = &Function{m: m, name: name, h: h}
	if c.imageLayouts {
		err = f.layoutFromImage()
	} else {
		err = f.layoutFromDriver()
	}
	if err != nil {
		return nil, err
	}
	maxDyn, r := funcAttr(c.h, h, abi.FuncAttrMaxDynamicShared)
	if err := c.check("cuFuncGetAttribute", r); err != nil {
		return nil, err
	}
	f.maxDynamicShared.Store(maxDyn)
	c.bk.Lock()
	defer c.bk.Unlock()
	m.funcs[name] = f
	return f, nil
}

// layoutFromDriver asks cuFuncGetParamInfo for each parameter in turn,
// until it answers CUDA_ERROR_INVALID_VALUE (past the last).
func (f *Function) layoutFromDriver() error {
	c := f.m.c
	var ps []abi.ParamInfo
	for i := 0; ; i++ {
		off, size, r := funcParam(c.h, f.h, i)
		if r == int(abi.ErrInvalidValue) {
			break
		}
		if err := c.check("cuFuncGetParamInfo", r); err != nil {
			return err
		}
		if off+size > abi.MaxKernelParams || i >= abi.MaxKernelParams {
			return abi.Errorf(abi.ErrNotSupported, "kernel %q: parameters exceed %d bytes", f.name, abi.MaxKernelParams)
		}
		ps = append(ps, abi.ParamInfo{Offset: uint32(off), Size: uint32(size)})
	}
	f.setParams(ps)
	return nil
}

// layoutFromImage takes the layout the module image declares.
func (f *Function) layoutFromImage() error {
	m := f.m
	if m.layoutErr != nil {
		return abi.Errorf(abi.ErrNotSupported, "kernel %q: the driver has no cuFuncGetParamInfo and the image's parameter layout is unreadable: %v", f.name, m.layoutErr)
	}
	ps, ok := m.layouts[f.name]
	if !ok {
		return abi.Errorf(abi.ErrNotSupported, "kernel %q: the driver has no cuFuncGetParamInfo and the image declares no parameters for it", f.name)
	}
	f.setParams(ps)
	return nil
}

func (f *Function) setParams(ps []abi.ParamInfo) {
	f.params = ps
	for _, p := range ps {
		f.offs = append(f.offs, p.Offset)
		f.need = max(f.need, p.Offset+p.Size)
	}
}

// Global returns the address and size of a module global.
func (m *Module) Global(name string) (uint64, uint64, error) {
	if err := m.enter(); err != nil {
		return 0, 0, err
	}
	defer m.c.op.RUnlock()
	p, n, r := moduleGlobal(m.c.h, m.h, name)
	if err := m.c.check("cuModuleGetGlobal", r); err != nil {
		return 0, 0, err
	}
	m.c.bk.Lock()
	defer m.c.bk.Unlock()
	if !m.globals[p] && !m.unloaded {
		if m.globals == nil {
			m.globals = map[uint64]bool{}
		}
		m.globals[p] = true
		m.c.mem.add(p, n)
	}
	return p, n, nil
}

// Unload waits for the context's work, unloads the module and returns
// its footprint to the quota.
func (m *Module) Unload() error {
	c := m.c
	c.op.Lock()
	defer c.op.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	c.bk.Lock()
	u := m.unloaded
	c.bk.Unlock()
	if u {
		return errUnloaded
	}
	if err := c.check("cuCtxSynchronize", ctxSync(c.h)); err != nil {
		return err
	}
	if err := c.check("cuModuleUnload", moduleUnload(c.h, m.h)); err != nil {
		return err
	}
	c.bk.Lock()
	defer c.bk.Unlock()
	m.unloaded = true
	m.funcs = nil
	for p := range m.globals {
		c.mem.remove(p)
	}
	delete(c.modules, m)
	c.q.Release(m.cost)
	return nil
}

// enter checks the context and the function's module; op is held on
// success.
func (f *Function) enter() error { return f.m.enter() }

// Params returns the kernel's parameter layout.
func (f *Function) Params() ([]abi.ParamInfo, error) {
	if err := f.enter(); err != nil {
		return nil, err
	}
	defer f.m.c.op.RUnlock()
	return append([]abi.ParamInfo(nil), f.params...), nil
}

// Attribute returns a function attribute (CUfunction_attribute).
func (f *Function) Attribute(attr uint32) (int32, error) {
	if err := f.enter(); err != nil {
		return 0, err
	}
	defer f.m.c.op.RUnlock()
	v, r := funcAttr(f.m.c.h, f.h, attr)
	return v, f.m.c.check("cuFuncGetAttribute", r)
}

// SetAttribute sets a function attribute, as cuFuncSetAttribute does.
func (f *Function) SetAttribute(attr uint32, value int32) error {
	if err := f.enter(); err != nil {
		return err
	}
	defer f.m.c.op.RUnlock()
	if err := f.m.c.check("cuFuncSetAttribute", funcSetAttr(f.m.c.h, f.h, attr, value)); err != nil {
		return err
	}
	if attr == abi.FuncAttrMaxDynamicShared {
		f.maxDynamicShared.Store(value)
	}
	return nil
}

// Launch queues a kernel launch on s, timed for BusyTime. A context paced
// by a gate enters it first, and charges it the launch's GPU time, as its
// events measure it, when the launch completes.
func (c *Context) Launch(f gpu.Function, cfg abi.LaunchConfig, params []byte, s gpu.Stream) error {
	return c.launch(f, cfg, params, s, false)
}

// LaunchCooperative queues a launch whose blocks all run at once, as
// cuLaunchCooperativeKernel does; the driver refuses a grid larger than
// the device holds at once with CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE.
func (c *Context) LaunchCooperative(f gpu.Function, cfg abi.LaunchConfig, params []byte, s gpu.Stream) error {
	return c.launch(f, cfg, params, s, true)
}

func (c *Context) launch(f gpu.Function, cfg abi.LaunchConfig, params []byte, s gpu.Stream, coop bool) (err error) {
	fn, ok := f.(*Function)
	if !ok || fn == nil || fn.m.c != c {
		return abi.Errorf(abi.ErrInvalidHandle, "function does not belong to this context")
	}
	if c.pending.Load() != nil {
		c.moveErr.Store(errBox{c.applyMove()}) // a failed move leaves the kernel where it was
	}
	var done func(time.Duration)
	if c.gate != nil {
		done = c.gate.Enter()
		defer func() {
			if done != nil { // not handed to the meter
				done(0)
			}
		}()
	}
	if err := fn.enter(); err != nil {
		return err
	}
	defer c.op.RUnlock()
	sh, err := c.streamHandle(s)
	if err != nil {
		return err
	}
	if maxDyn := fn.maxDynamicShared.Load(); int64(cfg.SharedBytes) > int64(maxDyn) {
		return abi.Errorf(abi.ErrInvalidValue, "kernel %s: %d bytes of dynamic shared memory exceed its limit of %d",
			fn.name, cfg.SharedBytes, maxDyn)
	}
	if uint64(len(params)) < uint64(fn.need) {
		return abi.Errorf(abi.ErrInvalidValue, "kernel %s: parameter buffer of %d bytes, layout needs %d",
			fn.name, len(params), fn.need)
	}
	if err := c.imagesIn(sh); err != nil {
		return err
	}
	p := c.pair()
	r := launch(c.h, fn.h,
		[3]uint32{cfg.Grid.X, cfg.Grid.Y, cfg.Grid.Z},
		[3]uint32{cfg.Block.X, cfg.Block.Y, cfg.Block.Z},
		cfg.SharedBytes, sh, params[:fn.need], fn.offs, p[0], p[1], coop)
	c.settle(p, r == 0, done)
	done = nil
	op := "cuLaunchKernel"
	if coop {
		op = "cuLaunchCooperativeKernel"
	}
	if err := c.check(op, r); err != nil {
		return err
	}
	return c.imagesOut(sh)
}
