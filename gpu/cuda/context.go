//go:build cgo

package cuda

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
)

// Context is one tenant's driver context.
//
// Locking: every method holds op for reading while it calls the driver
// with the context's handles; the calls that destroy handles (Close,
// stream and event Destroy, module Unload) hold it for writing, so that
// no handle is used after the driver freed it. bk guards the book-keeping
// and is never held across a blocking driver call.
type Context struct {
	info gpu.DeviceInfo
	dev  int     // CUdevice
	h    uintptr // CUcontext
	// imageLayouts: kernel parameter layouts come from module images,
	// the driver having no cuFuncGetParamInfo.
	imageLayouts bool

	sticky atomic.Pointer[abi.Error] // first execution fault, forever
	busy   atomic.Int64              // metered kernel nanoseconds
	// q is charged with allocations, module loads and the context's own
	// footprint. It locks itself.
	q *gpu.Quota

	op     sync.RWMutex
	closed bool // set under op held for writing

	bk      sync.Mutex
	allocs  map[uint64]uint64 // MemAlloc base → bytes charged
	mem     ranges            // what copies and memsets may name
	modules map[*Module]struct{}
	m       meter
	// texObjs and images are the context's texture and surface objects
	// and the driver arrays standing in for their images (texture.go).
	texObjs map[uint64]*texObject
	images  map[imageKey]*texImage

	gate gpu.Gate // paces launches by the compute share; nil: unpaced

	// part is the context's SM partition (nil: none, the whole GPU); h is
	// then the CUcontext of its green context. Replaced under op held for
	// writing, at a kernel boundary, when pending is set.
	part    *greenPart
	pending atomic.Pointer[SMPartition]
	streams map[*Stream]struct{} // live streams, recreated on a move; guarded by bk
	forget  func()               // drops the context from its backend's partitioned set
	moveErr atomic.Value         // errBox: how the last move ended
	vm      vmState              // virtual memory; guarded by bk
}

// errBox lets an atomic.Value hold a nil error.
type errBox struct{ err error }

// greenPart is a context's green context.
type greenPart struct {
	minSMs int // the SM group size the split asks for
	p      SMPartition
	green  uintptr // CUgreenCtx
	sms    int
}

var (
	_ gpu.Context     = (*Context)(nil)
	_ gpu.LimitSetter = (*Context)(nil)
)

func newContext(info gpu.DeviceInfo, dev int, memLimit uint64, paramInfo bool, gate gpu.Gate, part *greenPart) (*Context, error) {
	// The context's footprint is the drop in the device's free memory
	// across its creation. cuMemGetInfo needs a context, so a probe
	// context gives the "before" figure; it also takes the process's
	// one-time driver overhead, which is therefore not charged.
	probe, r := ctxCreate(dev)
	if r != 0 {
		return nil, driverError("cuCtxCreate", r)
	}
	defer ctxDestroy(probe)
	before, _, r := memInfo(probe)
	if r != 0 {
		return nil, driverError("cuMemGetInfo", r)
	}
	h, r := ctxCreate(dev)
	destroy := func() { ctxDestroy(h) }
	if part != nil {
		part.green, h, part.sms, r = greenCreate(dev, part.minSMs, part.p)
		destroy = func() { greenDestroy(part.green) }
		if r != 0 {
			return nil, driverError("cuGreenCtxCreate", r)
		}
	} else if r != 0 {
		return nil, driverError("cuCtxCreate", r)
	}
	after, _, r := memInfo(h)
	if r != 0 {
		destroy()
		return nil, driverError("cuMemGetInfo", r)
	}
	c := &Context{
		info:         info,
		dev:          dev,
		h:            h,
		imageLayouts: !paramInfo,
		q:            gpu.NewQuota(memLimit, info.TotalMem),
		allocs:       make(map[uint64]uint64),
		mem:          newRanges(),
		modules:      make(map[*Module]struct{}),
		texObjs:      make(map[uint64]*texObject),
		images:       make(map[imageKey]*texImage),
		gate:         gate,
		part:         part,
		streams:      make(map[*Stream]struct{}),
	}
	if err := c.q.Reserve(footprint(before, after), "the context's own device memory"); err != nil {
		destroy()
		return nil, err
	}
	return c, nil
}

// check turns a driver result into an error, latching execution faults.
func (c *Context) check(op string, r int) error {
	if r == 0 {
		return nil
	}
	err := driverError(op, r)
	if sticky(r) {
		c.sticky.CompareAndSwap(nil, err.(*abi.Error))
	}
	return err
}

// usable is the error every call gets on a closed or poisoned context.
// op is held.
func (c *Context) usable() error {
	if c.closed {
		return abi.Errorf(abi.ErrInvalidContext, "context was closed")
	}
	if e := c.sticky.Load(); e != nil {
		return e
	}
	return nil
}

// enter takes op for reading and checks the context; the caller must call
// c.op.RUnlock when err is nil.
func (c *Context) enter() error {
	c.op.RLock()
	if err := c.usable(); err != nil {
		c.op.RUnlock()
		return err
	}
	return nil
}

// Device describes the context's device.
func (c *Context) Device() gpu.DeviceInfo { return c.info }

// SetLimit sets a limit of the context in the driver, as cuCtxSetLimit.
func (c *Context) SetLimit(limit uint32, value uint64) error {
	if err := c.enter(); err != nil {
		return err
	}
	defer c.op.RUnlock()
	return c.check("cuCtxSetLimit", ctxSetLimit(c.h, limit, value))
}

// Attribute returns a device attribute from the driver.
func (c *Context) Attribute(attr uint32) (int32, error) {
	if err := c.enter(); err != nil {
		return 0, err
	}
	defer c.op.RUnlock()
	v, r := deviceAttr(c.dev, attr)
	return v, c.check("cuDeviceGetAttribute", r)
}

// MemAlloc allocates size bytes, charging them (rounded as the driver
// rounds) to the quota first.
func (c *Context) MemAlloc(size uint64) (uint64, error) {
	if err := c.enter(); err != nil {
		return 0, err
	}
	defer c.op.RUnlock()
	if size == 0 {
		return 0, abi.Errorf(abi.ErrInvalidValue, "zero-size allocation")
	}
	n, ok := charge(size)
	if !ok {
		return 0, abi.Errorf(abi.ErrOutOfMemory, "%d bytes requested", size)
	}
	if err := c.q.Reserve(n, "allocation"); err != nil {
		return 0, err
	}
	p, r := memAlloc(c.h, size)
	if r != 0 {
		c.q.Release(n)
		return 0, c.check("cuMemAlloc", r)
	}
	c.bk.Lock()
	defer c.bk.Unlock()
	c.allocs[p] = n
	c.mem.add(p, size)
	return p, nil
}

// MemFree frees an allocation made by MemAlloc.
func (c *Context) MemFree(ptr uint64) error {
	if err := c.enter(); err != nil {
		return err
	}
	defer c.op.RUnlock()
	c.bk.Lock()
	n, ok := c.allocs[ptr]
	size := c.mem.sizes[ptr]
	if ok {
		delete(c.allocs, ptr) // no concurrent double free reaches the driver
		c.mem.remove(ptr)     // nor a copy into what is being freed
	}
	c.bk.Unlock()
	if !ok {
		return abi.Errorf(abi.ErrInvalidValue, "%#x is not the base of a live allocation", ptr)
	}
	if r := memFree(c.h, ptr); r != 0 {
		c.bk.Lock()
		c.allocs[ptr] = n
		c.mem.add(ptr, size)
		c.bk.Unlock()
		return c.check("cuMemFree", r)
	}
	c.q.Release(n)
	return nil
}

// AddressRange asks the driver for the allocation or global containing
// ptr.
func (c *Context) AddressRange(ptr uint64) (base, size uint64, err error) {
	if err := c.enter(); err != nil {
		return 0, 0, err
	}
	defer c.op.RUnlock()
	base, size, r := memRange(c.h, ptr)
	if r != 0 {
		return 0, 0, c.check("cuMemGetAddressRange", r)
	}
	return base, size, nil
}

// MemInfo reports the quota and what is left of it, never more than the
// device has free.
func (c *Context) MemInfo() (free, total uint64) {
	c.op.RLock()
	defer c.op.RUnlock()
	if c.closed {
		return 0, 0
	}
	devFree, r := uint64(0), -1
	if c.sticky.Load() == nil {
		devFree, _, r = memInfo(c.h)
	}
	free, total = c.q.MemInfo()
	if r == 0 {
		free = min(free, devFree)
	}
	return free, total
}

// SetMemLimit changes the quota in place (0: the whole device).
func (c *Context) SetMemLimit(limit uint64) error {
	if err := c.enter(); err != nil {
		return err
	}
	defer c.op.RUnlock()
	return c.q.SetLimit(limit)
}

// MemUsed is what the quota counts now: allocations, modules and the
// context's own footprint.
func (c *Context) MemUsed() uint64 { return c.q.Used() }

// streamHandle resolves s to a CUstream of this context (0: the legacy
// default stream).
func (c *Context) streamHandle(s gpu.Stream) (uintptr, error) {
	if s == nil {
		return 0, nil
	}
	st, ok := s.(*Stream)
	if ok && st == nil {
		return 0, nil
	}
	if !ok || st.c != c {
		return 0, abi.Errorf(abi.ErrInvalidHandle, "stream does not belong to this context")
	}
	c.bk.Lock()
	defer c.bk.Unlock()
	if st.destroyed {
		return 0, errDestroyedStream
	}
	return st.h, nil
}

// MemcpyHtoD copies src to the device, ordered in s. src is staged by the
// driver before the call returns.
func (c *Context) MemcpyHtoD(dst uint64, src []byte, s gpu.Stream) error {
	if err := c.enter(); err != nil {
		return err
	}
	defer c.op.RUnlock()
	sh, err := c.streamHandle(s)
	if err != nil || len(src) == 0 {
		return err
	}
	if err := c.checkRange("MemcpyHtoD destination", dst, uint64(len(src))); err != nil {
		return err
	}
	return c.check("cuMemcpyHtoDAsync", memcpyHtoD(c.h, dst, src, sh))
}

// MemcpyDtoH copies device memory to dst and waits for it.
func (c *Context) MemcpyDtoH(dst []byte, src uint64, s gpu.Stream) error {
	if err := c.enter(); err != nil {
		return err
	}
	defer c.op.RUnlock()
	sh, err := c.streamHandle(s)
	if err != nil || len(dst) == 0 {
		return err
	}
	if err := c.checkRange("MemcpyDtoH source", src, uint64(len(dst))); err != nil {
		return err
	}
	return c.check("cuMemcpyDtoHAsync", memcpyDtoH(c.h, dst, src, sh))
}

// MemcpyDtoD copies size bytes between device ranges, ordered in s.
func (c *Context) MemcpyDtoD(dst, src, size uint64, s gpu.Stream) error {
	if err := c.enter(); err != nil {
		return err
	}
	defer c.op.RUnlock()
	sh, err := c.streamHandle(s)
	if err != nil || size == 0 {
		return err
	}
	if err := c.checkRange("MemcpyDtoD source", src, size); err != nil {
		return err
	}
	if err := c.checkRange("MemcpyDtoD destination", dst, size); err != nil {
		return err
	}
	return c.check("cuMemcpyDtoDAsync", memcpyDtoD(c.h, dst, src, size, sh))
}

// Memset sets count elements of elemSize bytes at dst to value.
func (c *Context) Memset(dst uint64, value uint32, elemSize uint32, count uint64, s gpu.Stream) error {
	if err := c.enter(); err != nil {
		return err
	}
	defer c.op.RUnlock()
	switch elemSize {
	case 1, 2, 4:
	default:
		return abi.Errorf(abi.ErrInvalidValue, "memset element size %d is not 1, 2 or 4", elemSize)
	}
	sh, err := c.streamHandle(s)
	if err != nil || count == 0 {
		return err
	}
	if count > math.MaxUint64/uint64(elemSize) {
		return abi.Errorf(abi.ErrInvalidValue, "memset of %d elements of %d bytes", count, elemSize)
	}
	if err := c.checkRange("Memset destination", dst, count*uint64(elemSize)); err != nil {
		return err
	}
	return c.check("cuMemsetD*Async", memset(c.h, dst, value, elemSize, count, sh))
}

// release frees the context's allocations and unloads its modules; op is
// held for writing. Failures are left to cuCtxDestroy.
func (c *Context) release() {
	c.releaseTextures()
	c.bk.Lock()
	defer c.bk.Unlock()
	for p := range c.allocs {
		memFree(c.h, p)
	}
	c.releaseVMLocked()
	for m := range c.modules {
		moduleUnload(c.h, m.h)
		m.unloaded = true
	}
}

// checkRange refuses a device range outside the context's own memory.
func (c *Context) checkRange(what string, addr, n uint64) error {
	c.bk.Lock()
	defer c.bk.Unlock()
	return c.mem.check(what, addr, n)
}

// Synchronize waits for all of the context's work and returns the first
// error of its asynchronous work.
func (c *Context) Synchronize() error {
	if err := c.enter(); err != nil {
		return err
	}
	defer c.op.RUnlock()
	err := c.check("cuCtxSynchronize", ctxSync(c.h))
	c.harvest()
	return err
}

// BusyTime is the GPU time of the context's completed kernel launches,
// measured with events around each launch and summed (concurrent
// launches add up), for compute-share metering. It is device wall time:
// a kernel time-sliced with other processes' work counts the waits too.
func (c *Context) BusyTime() time.Duration {
	if c.enter() == nil {
		c.harvest()
		c.op.RUnlock()
	}
	return time.Duration(c.busy.Load())
}

// Close waits for the context's work, frees what the tenant left
// (allocations, modules), destroys the driver context and returns its
// quota. The driver frees a context's memory when it is destroyed, but
// not every driver does so at once (Kerf's own shim keeps it for the
// session), so nothing is left to it. Closing a poisoned
// context succeeds.
func (c *Context) Close() error {
	c.op.Lock()
	defer c.op.Unlock()
	if c.closed {
		return abi.Errorf(abi.ErrInvalidContext, "context was closed")
	}
	c.closed = true
	if c.sticky.Load() == nil {
		ctxSync(c.h)
		c.harvest()
		c.release()
	}
	var r int
	if c.part != nil {
		r = greenDestroy(c.part.green)
		c.forget()
	} else {
		r = ctxDestroy(c.h)
	}
	c.stopWatching() // what a faulted context left pending is charged as zero
	c.bk.Lock()
	defer c.bk.Unlock()
	c.allocs, c.modules = nil, nil
	c.m = meter{}
	c.q.Release(c.q.Used()) // op is held for writing: nothing charges meanwhile
	if r != 0 {
		return driverError("cuCtxDestroy", r)
	}
	return nil
}
