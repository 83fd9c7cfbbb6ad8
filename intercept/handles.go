package main

import (
	"sync"

	"github.com/kerf-edge/kerf/abi"
)

// kind is what a handle the program holds refers to.
type kind uint8

const (
	kindContext kind = iota + 1
	kindModule
	kindFunction
	kindStream
	kindEvent
	kindLibrary
	kindKernel
	kindArray
	kindMipmap // a mipmapped array; its levels are its children
)

// object is the Go side of a handle. The program holds the address of a
// small C allocation (mem); Go finds the object by that address, so a
// handle the shim did not hand out, or has since destroyed, is simply not
// found.
type object struct {
	key  uintptr
	mem  cmem
	kind kind
	dev  *device
	wire uint64 // the session-local handle on kerfd

	primary     bool   // a device's primary context
	streamFlags uint32 // a stream's CU_STREAM_* flags
	// settings are a context's limits, flags and cache preference.
	// Guarded by driver.mu.
	settings *ctxSettings
	// storage is a context's context-local storage (cuGetExportTable),
	// keyed by the runtime's own pointers. Guarded by driver.mu.
	storage map[cmem]storageEntry

	children []*object  // a module's functions, a library's kernels
	parent   *object    // a function's module, a kernel's library
	fn       *object    // a kernel's function, made by cuKernelGetFunction
	array    *arrayInfo // a CUDA array's descriptor and memory, and a mipmapped array's level 0

	layoutMu   sync.Mutex
	layout     []abi.ParamInfo
	layoutOK   bool
	layoutSize int
}

// newObject registers a fresh handle.
func (d *driver) newObject(k kind, dv *device, wire uint64) (*object, Result) {
	mem, key := newHandleMem()
	if key == 0 {
		return nil, abi.ErrOutOfMemory
	}
	o := &object{key: key, mem: mem, kind: k, dev: dv, wire: wire}
	d.mu.Lock()
	d.objs[key] = o
	d.mu.Unlock()
	return o, abi.Success
}

// lookup finds a live handle of kind k.
func (d *driver) lookup(key uintptr, k kind) (*object, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, ok := d.objs[key]
	if !ok || o.kind != k {
		return nil, false
	}
	return o, true
}

// drop unregisters o and its children and frees their handle memory.
// d.mu is held.
func (d *driver) dropLocked(o *object) {
	if _, ok := d.objs[o.key]; !ok {
		return
	}
	delete(d.objs, o.key)
	for _, c := range o.children {
		d.dropLocked(c)
	}
	if o.fn != nil {
		d.dropLocked(o.fn)
	}
	// A context handle may still sit on another thread's stack; keeping its
	// 16 bytes means no later handle can take its address.
	if o.kind != kindContext {
		freeHandleMem(o.mem)
	}
}

func (d *driver) drop(o *object) {
	d.mu.Lock()
	d.dropLocked(o)
	d.mu.Unlock()
}

// take unregisters the handle key of kind k and returns it, so that two
// threads destroying one handle cannot both succeed.
func (d *driver) take(key uintptr, k kind) (*object, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, ok := d.objs[key]
	if !ok || o.kind != k {
		return nil, false
	}
	delete(d.objs, key)
	return o, true
}

// current returns the calling thread's current context.
func current() (*object, Result) {
	if _, res := drv.ready(); res != abi.Success {
		return nil, res
	}
	key := currentKey()
	if key == 0 {
		return nil, abi.ErrInvalidContext
	}
	o, ok := drv.lookup(key, kindContext)
	if !ok {
		return nil, abi.ErrInvalidContext
	}
	return o, abi.Success
}

// currentDevice returns the device of the calling thread's context.
func currentDevice() (*device, Result) {
	c, res := current()
	if res != abi.Success {
		return nil, res
	}
	return c.dev, abi.Success
}

// Special stream handles: NULL, CU_STREAM_LEGACY and CU_STREAM_PER_THREAD
// are all the session's default stream.
const (
	streamLegacy    = 0x1
	streamPerThread = 0x2
)

// streamOf resolves a stream handle: the default stream of the current
// context's device, or a stream the program created. It returns once the
// host functions queued on the stream have run, so that work the caller
// adds comes after them.
func streamOf(key uintptr) (*device, uint64, Result) {
	dv, s, res := resolveStream(key)
	if res == abi.Success && isDefaultStream(key) {
		res = legacyStreamUse(dv)
	}
	if res == abi.Success {
		waitHostCalls(dv, s)
	}
	return dv, s, res
}

// resolveStream is streamOf without waiting for host functions.
func resolveStream(key uintptr) (*device, uint64, Result) {
	if key == 0 || key == streamLegacy || key == streamPerThread {
		dv, res := currentDevice()
		return dv, 0, res
	}
	if _, res := drv.ready(); res != abi.Success {
		return nil, 0, res
	}
	s, ok := drv.lookup(key, kindStream)
	if !ok {
		return nil, 0, abi.ErrInvalidHandle
	}
	return s.dev, s.wire, abi.Success
}

// streamFor resolves the stream of a memory operation: it must belong to
// the current context's device, whose addresses the operation uses.
func streamFor(key uintptr) (*device, uint64, Result) {
	dv, res := currentDevice()
	if res != abi.Success {
		return nil, 0, res
	}
	sdv, wire, res := streamOf(key)
	if res != abi.Success {
		return nil, 0, res
	}
	if sdv != dv {
		return nil, 0, abi.ErrInvalidHandle
	}
	return dv, wire, abi.Success
}

// Contexts.

func ctxCreate(flags uint32, n int) (*object, Result) {
	dv, res := drv.device(n)
	if res != abi.Success {
		return nil, res
	}
	if !validCtxFlags(flags) {
		return nil, abi.ErrInvalidValue
	}
	o, res := drv.newObject(kindContext, dv, 0)
	if res != abi.Success {
		return nil, res
	}
	drv.mu.Lock()
	o.settings = newCtxSettings(flags)
	drv.mu.Unlock()
	if !pushContext(o.mem) {
		drv.drop(o)
		return nil, abi.ErrOutOfMemory
	}
	return o, abi.Success
}

func ctxDestroy(key uintptr) Result {
	if _, res := drv.ready(); res != abi.Success {
		return res
	}
	drv.mu.Lock()
	o, ok := drv.objs[key]
	if !ok || o.kind != kindContext {
		drv.mu.Unlock()
		return abi.ErrInvalidContext
	}
	if o.primary {
		drv.mu.Unlock()
		return abi.ErrInvalidContext // primary contexts are released, not destroyed
	}
	forgetContext(o.mem)
	drv.dropLocked(o)
	stored := takeStorageLocked(o)
	drv.mu.Unlock()
	runStorageDestructors(o, stored)
	// The device's work is the context's: wait for it, as cuCtxDestroy
	// does. A sticky error of that work is not the destroy's to report.
	_ = o.dev.cl.Synchronize()
	if lastContext(o.dev) {
		destroyDeviceContext(o.dev)
	}
	return abi.Success
}

// destroyDeviceContext ends kerfd's context of dv once nothing of the
// device's is left to the program: it goes, with its memory (returned to
// the slice's quota), modules, streams, events and any sticky error, and
// the device's next context is a fresh one. The device's work has been
// waited for.
func destroyDeviceContext(dv *device) {
	dropMirrors(dv)
	_ = dv.cl.Call(abi.CallCtxReset, nil, nil)
}

// lastContext reports whether dv has no context left: none created and
// alive, and its primary context not retained.
func lastContext(dv *device) bool {
	drv.mu.Lock()
	defer drv.mu.Unlock()
	if dv.primaryRefs > 0 {
		return false
	}
	for _, o := range drv.objs {
		if o.kind == kindContext && o.dev == dv && !o.primary {
			return false
		}
	}
	return true
}

func ctxPush(key uintptr) Result {
	if _, res := drv.ready(); res != abi.Success {
		return res
	}
	o, ok := drv.lookup(key, kindContext)
	if !ok {
		return abi.ErrInvalidContext
	}
	if !pushContext(o.mem) {
		return abi.ErrInvalidValue
	}
	return abi.Success
}

func ctxPop() (cmem, Result) {
	if _, res := drv.ready(); res != abi.Success {
		return nil, res
	}
	if currentKey() == 0 {
		return nil, abi.ErrInvalidContext
	}
	return popContext(), abi.Success
}

func ctxSet(key uintptr) Result {
	if _, res := drv.ready(); res != abi.Success {
		return res
	}
	if key == 0 {
		setContext(nil)
		return abi.Success
	}
	o, ok := drv.lookup(key, kindContext)
	if !ok {
		return abi.ErrInvalidContext
	}
	setContext(o.mem)
	return abi.Success
}

// ctxGet returns the current context's handle, nil when there is none.
func ctxGet() (cmem, Result) {
	if _, res := drv.ready(); res != abi.Success {
		return nil, res
	}
	key := currentKey()
	if key == 0 {
		return nil, abi.Success
	}
	o, ok := drv.lookup(key, kindContext)
	if !ok {
		return nil, abi.ErrInvalidContext
	}
	return o.mem, abi.Success
}

func ctxGetDevice() (int, Result) {
	dv, res := currentDevice()
	if res != abi.Success {
		return 0, res
	}
	return dv.idx, abi.Success
}

func ctxSynchronize() Result {
	dv, res := currentDevice()
	if res != abi.Success {
		return res
	}
	if res := unsafeInCapture(); res != abi.Success {
		return res
	}
	waitHostCalls(dv, 0)
	if err := dv.cl.Synchronize(); err != nil {
		return abi.ResultOf(err)
	}
	return toHost(dv)
}

func primaryRetain(n int) (*object, Result) {
	dv, res := drv.device(n)
	if res != abi.Success {
		return nil, res
	}
	drv.mu.Lock()
	defer drv.mu.Unlock()
	o, res := primaryHandleLocked(dv)
	if res == abi.Success {
		dv.primaryRefs++
	}
	return o, res
}

// primaryHandleLocked returns dv's primary context handle, made at first
// use. drv.mu is held.
func primaryHandleLocked(dv *device) (*object, Result) {
	if dv.primary == nil {
		mem, key := newHandleMem()
		if key == 0 {
			return nil, abi.ErrOutOfMemory
		}
		dv.primary = &object{key: key, mem: mem, kind: kindContext, dev: dv, primary: true, settings: newCtxSettings(0)}
		drv.objs[key] = dv.primary
	}
	return dv.primary, abi.Success
}

func primaryRelease(n int) Result {
	dv, res := drv.device(n)
	if res != abi.Success {
		return res
	}
	drv.mu.Lock()
	if dv.primaryRefs == 0 {
		drv.mu.Unlock()
		return abi.ErrInvalidContext
	}
	// The handle stays valid: programs keep using a released primary
	// context's handle as the runtime retains it again. With the last
	// reference the context goes, as the driver destroys it: its
	// context-local storage, its settings and, unless a context the
	// program created still shares the device's session, kerfd's context
	// with its memory; the next retain gets a fresh one.
	dv.primaryRefs--
	last := dv.primaryRefs == 0
	var stored map[cmem]storageEntry
	if last {
		stored = takeStorageLocked(dv.primary)
		dv.primary.settings = newCtxSettings(dv.primaryFlags)
	}
	drv.mu.Unlock()
	runStorageDestructors(dv.primary, stored)
	if last {
		// The device's work is the context's: wait for it, as the
		// destroying release does. A sticky error of that work is not
		// the release's to report.
		_ = dv.cl.Synchronize()
		if lastContext(dv) {
			destroyDeviceContext(dv)
		}
	}
	return abi.Success
}

// primaryReset implements cuDevicePrimaryCtxReset: the device's work is
// waited for, every reference dropped, and the context-local storage's
// destructors run. The handle stays valid, as after the last release.
func primaryReset(n int) Result {
	dv, res := drv.device(n)
	if res != abi.Success {
		return res
	}
	drv.mu.Lock()
	p := dv.primary
	var stored map[cmem]storageEntry
	if p != nil {
		stored = takeStorageLocked(p)
		p.settings = newCtxSettings(dv.primaryFlags)
	}
	dv.primaryRefs = 0
	drv.mu.Unlock()
	if p != nil {
		runStorageDestructors(p, stored)
	}
	// A sticky error of earlier work is not the reset's to report.
	_ = dv.cl.Synchronize()
	dropMirrors(dv)
	dropPoolBlocks(dv)
	// kerfd's context goes, with everything in it and its sticky error.
	return abi.ResultOf(dv.cl.Call(abi.CallCtxReset, nil, nil))
}

func primaryState(n int) (uint32, bool, Result) {
	dv, res := drv.device(n)
	if res != abi.Success {
		return 0, false, res
	}
	drv.mu.Lock()
	defer drv.mu.Unlock()
	return dv.primaryFlags, dv.primaryRefs > 0, abi.Success
}
