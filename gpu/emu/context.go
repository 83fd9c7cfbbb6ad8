package emu

import (
	"encoding/binary"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
)

// Context is one tenant's context on an emulated device.
type Context struct {
	b   *Backend
	dev *device
	mem memView // what the context's kernels can address

	sticky atomic.Pointer[abi.Error] // first sticky execution error, forever
	async  atomic.Pointer[abi.Error] // first non-sticky async error, until reported
	busy   atomic.Int64              // nanoseconds spent running kernels
	wg     sync.WaitGroup            // drain goroutines
	// stop is closed by Abort (or Close): running launches end between
	// blocks and queued ones do not start.
	stop      chan struct{}
	abortOnce sync.Once

	q *gpu.Quota // the tenant's limit and what its allocations and globals take

	printf printfFIFO // what the context's kernels print, until taken
	tex    texTable   // texture and surface objects
	heap   *devHeap   // the device heap, once a kernel needs it; guarded by mu

	heapSize uint64 // the heap's size as set by SetLimit; 0 for DefaultHeapSize; guarded by mu

	mu      sync.Mutex
	closed  bool
	allocs  map[uint64]*allocation // MemAlloc results by base
	def     *Stream
	streams map[*Stream]struct{} // created streams, until destroyed and idle
	events  map[*Event]struct{}
	modules map[*Module]struct{}
	vm      vmState // reservations, physical memory and mappings
}

var (
	_ gpu.Context = (*Context)(nil)
	_ gpu.Aborter = (*Context)(nil)
)

func newContext(b *Backend, d *device, limit uint64) *Context {
	c := &Context{
		b:       b,
		dev:     d,
		q:       gpu.NewQuota(limit, d.cfg.MemoryBytes),
		allocs:  make(map[uint64]*allocation),
		streams: make(map[*Stream]struct{}),
		events:  make(map[*Event]struct{}),
		modules: make(map[*Module]struct{}),
		stop:    make(chan struct{}),
	}
	c.def = &Stream{c: c, legacy: true}
	c.printf.size = DefaultPrintfFIFOSize
	return c
}

// usable returns the error every call gets on a closed or poisoned
// context.
func (c *Context) usable() error {
	if c.closed {
		return abi.Errorf(abi.ErrInvalidContext, "context was closed")
	}
	return c.stickyErr()
}

func (c *Context) stickyErr() error {
	if e := c.sticky.Load(); e != nil {
		return e
	}
	return nil
}

// fail records an error of asynchronous work. Execution faults poison
// the context for good, as on CUDA; other errors (a launch the
// interpreter refuses, say) are reported once by the next synchronising
// call.
func (c *Context) fail(err error) {
	code := abi.ResultOf(err)
	e, ok := err.(*abi.Error)
	if !ok || e.Code != code {
		e = &abi.Error{Code: code, Msg: err.Error()}
	}
	switch code {
	case abi.ErrIllegalAddress, abi.ErrLaunchTimeout, abi.ErrIllegalInstruction,
		abi.ErrMisalignedAddress, abi.ErrLaunchFailed:
		c.sticky.CompareAndSwap(nil, e)
	default:
		c.async.CompareAndSwap(nil, e)
	}
}

// syncErr is what a synchronising call returns once its wait is over:
// the sticky error, or else a pending non-sticky one, which it clears.
func (c *Context) syncErr() error {
	if e := c.sticky.Load(); e != nil {
		return e
	}
	if e := c.async.Swap(nil); e != nil {
		return e
	}
	return nil
}

// BusyTime is the wall-clock time the context's kernels have run, summed
// over launches (concurrent launches add up), for compute-share metering.
func (c *Context) BusyTime() time.Duration { return time.Duration(c.busy.Load()) }

// Device describes the context's device.
func (c *Context) Device() gpu.DeviceInfo { return c.dev.info }

// Attribute returns a device attribute.
func (c *Context) Attribute(attr uint32) (int32, error) {
	c.mu.Lock()
	err := c.usable()
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	v, ok := c.dev.attribute(attr)
	if !ok {
		return 0, abi.Errorf(abi.ErrInvalidValue, "device attribute %d is not supported by the emulator", attr)
	}
	return v, nil
}

// allocLocked reserves size bytes for the context. c.mu is held.
func (c *Context) allocLocked(size uint64, global bool) (*allocation, error) {
	rsize, ok := gpu.AlignUp(max(size, 1), allocAlign)
	if !ok || size > math.MaxInt {
		return nil, abi.Errorf(abi.ErrOutOfMemory, "%d bytes requested", size)
	}
	if err := c.q.Reserve(rsize, "context"); err != nil {
		return nil, err
	}
	base, err := c.dev.reserve(rsize)
	if err != nil {
		c.q.Release(rsize)
		return nil, err
	}
	data, mapped, err := hostAlloc(size)
	if err != nil {
		c.dev.release(base, rsize)
		c.q.Release(rsize)
		return nil, abi.Errorf(abi.ErrOutOfMemory, "host cannot back %d bytes of emulated device memory: %v", size, err)
	}
	a := &allocation{base: base, rsize: rsize, data: data, global: global, mapped: mapped}
	c.mem.add(a)
	return a, nil
}

// freeLocked releases a. c.mu is held and no queued work may still
// reference a: the caller has drained the context.
func (c *Context) freeLocked(a *allocation) {
	c.mem.remove(a)
	hostFree(a.data, a.mapped)
	a.data = nil
	c.dev.release(a.base, a.rsize)
	c.q.Release(a.rsize)
}

// drainLocked waits for all queued work. c.mu is held, which keeps new
// work out; workers never take c.mu, so this cannot deadlock.
func (c *Context) drainLocked() {
	for _, t := range c.pendingLocked() {
		<-t.done
	}
}

// MemAlloc allocates size bytes of device memory, 256-byte aligned.
func (c *Context) MemAlloc(size uint64) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return 0, err
	}
	if size == 0 {
		return 0, abi.Errorf(abi.ErrInvalidValue, "zero-size allocation")
	}
	a, err := c.allocLocked(size, false)
	if err != nil {
		return 0, err
	}
	c.allocs[a.base] = a
	return a.base, nil
}

// MemFree frees an allocation made by MemAlloc once the context's
// pending work is done, as cuMemFree does.
func (c *Context) MemFree(ptr uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	a, ok := c.allocs[ptr]
	if !ok {
		return abi.Errorf(abi.ErrInvalidValue, "%#x is not the base of a live allocation", ptr)
	}
	c.drainLocked()
	if err := c.stickyErr(); err != nil {
		return err
	}
	delete(c.allocs, ptr)
	c.freeLocked(a)
	return nil
}

// AddressRange returns the allocation or module global containing ptr.
func (c *Context) AddressRange(ptr uint64) (base, size uint64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return 0, 0, err
	}
	a := c.mem.lookup(ptr)
	if a == nil {
		return 0, 0, abi.Errorf(abi.ErrNotFound, "%#x is not in an allocation of this context", ptr)
	}
	return a.base, uint64(len(a.data)), nil
}

// MemInfo reports the context's limit and what is left of it, never more
// than the device has left.
func (c *Context) MemInfo() (free, total uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, 0
	}
	free, total = c.q.MemInfo()
	return min(free, c.dev.free()), total
}

// SetMemLimit changes the context's limit (0: the whole device).
func (c *Context) SetMemLimit(limit uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	return c.q.SetLimit(limit)
}

// streamLocked resolves s to one of c's live streams. c.mu is held.
func (c *Context) streamLocked(s gpu.Stream) (*Stream, error) {
	if s == nil {
		return c.def, nil
	}
	st, ok := s.(*Stream)
	if ok && st == nil {
		return c.def, nil
	}
	if !ok || st.c != c {
		return nil, abi.Errorf(abi.ErrInvalidHandle, "stream does not belong to this context")
	}
	if st.destroyed {
		return nil, errDestroyedStream
	}
	return st, nil
}

// enqueueLocked queues t on s with the legacy default stream's implicit
// synchronisation. c.mu is held.
func (c *Context) enqueueLocked(s *Stream, t *task) {
	switch {
	case s.legacy:
		for st := range c.streams {
			if st.blocking() {
				t.after(st.last)
			}
		}
	case s.blocking():
		t.after(c.def.last)
	}
	s.last = t
	s.push(t)
}

// submit checks the context and stream, then queues on the stream the
// work prepare returns. prepare may instead do the work itself when the
// stream is idle (see idleLocked), and return none.
func (c *Context) submit(s gpu.Stream, prepare func(st *Stream) (func() error, error)) (*task, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return nil, err
	}
	st, err := c.streamLocked(s)
	if err != nil {
		return nil, err
	}
	run, err := prepare(st)
	if err != nil || run == nil {
		return nil, err
	}
	t := newTask(run)
	c.enqueueLocked(st, t)
	return t, nil
}

// MemcpyHtoD copies src to device memory, ordered in s. src is copied
// before the call returns.
func (c *Context) MemcpyHtoD(dst uint64, src []byte, s gpu.Stream) error {
	_, err := c.submit(s, func(st *Stream) (func() error, error) {
		if len(src) == 0 {
			return nil, nil
		}
		d, err := c.mem.rangeOf(dst, uint64(len(src)), "destination")
		if err != nil {
			return nil, err
		}
		if c.idleLocked(st) {
			copy(d, src) // nothing to wait for: no staging copy of src
			return nil, nil
		}
		buf := append([]byte(nil), src...)
		return func() error { copy(d, buf); return nil }, nil
	})
	return err
}

// idleLocked reports whether work queued on s now would start at once:
// s and every stream it is ordered after have finished their work.
func (c *Context) idleLocked(s *Stream) bool {
	if s.last != nil && !s.last.isDone() {
		return false
	}
	switch {
	case s.legacy:
		for st := range c.streams {
			if st.blocking() && st.last != nil && !st.last.isDone() {
				return false
			}
		}
	case s.blocking():
		if c.def.last != nil && !c.def.last.isDone() {
			return false
		}
	}
	return true
}

// MemcpyDtoH copies device memory to dst once prior work in s is done.
func (c *Context) MemcpyDtoH(dst []byte, src uint64, s gpu.Stream) error {
	t, err := c.submit(s, func(st *Stream) (func() error, error) {
		if len(dst) == 0 {
			return nil, nil
		}
		d, err := c.mem.rangeOf(src, uint64(len(dst)), "source")
		if err != nil {
			return nil, err
		}
		return func() error { copy(dst, d); return nil }, nil
	})
	if err != nil || t == nil {
		return err
	}
	<-t.done
	return c.syncErr()
}

// MemcpyDtoD copies size bytes between device ranges, which may overlap.
func (c *Context) MemcpyDtoD(dst, src, size uint64, s gpu.Stream) error {
	_, err := c.submit(s, func(st *Stream) (func() error, error) {
		if size == 0 {
			return nil, nil
		}
		d, err := c.mem.rangeOf(dst, size, "destination")
		if err != nil {
			return nil, err
		}
		sr, err := c.mem.rangeOf(src, size, "source")
		if err != nil {
			return nil, err
		}
		return func() error { copy(d, sr); return nil }, nil
	})
	return err
}

// Memset sets count elements of elemSize bytes at dst to value.
func (c *Context) Memset(dst uint64, value uint32, elemSize uint32, count uint64, s gpu.Stream) error {
	_, err := c.submit(s, func(st *Stream) (func() error, error) {
		switch elemSize {
		case 1, 2, 4:
		default:
			return nil, abi.Errorf(abi.ErrInvalidValue, "memset element size %d is not 1, 2 or 4", elemSize)
		}
		if count == 0 {
			return nil, nil
		}
		if dst%uint64(elemSize) != 0 {
			return nil, abi.Errorf(abi.ErrInvalidValue, "memset destination %#x is not %d-byte aligned", dst, elemSize)
		}
		if count > math.MaxUint64/uint64(elemSize) {
			return nil, abi.Errorf(abi.ErrInvalidValue, "memset of %d elements overflows", count)
		}
		d, err := c.mem.rangeOf(dst, count*uint64(elemSize), "destination")
		if err != nil {
			return nil, err
		}
		return func() error { fill(d, value, elemSize); return nil }, nil
	})
	return err
}

// fill writes value as little-endian elements of size bytes over d, whose
// length is a multiple of size.
func fill(d []byte, value uint32, size uint32) {
	var pat [4]byte
	binary.LittleEndian.PutUint32(pat[:], value)
	n := copy(d, pat[:size])
	for n < len(d) {
		n += copy(d[n:], d[:n])
	}
}

// StreamCreate creates a stream (flag abi.StreamNonBlocking: no implicit
// synchronisation with the default stream). Priorities are accepted and
// ignored.
func (c *Context) StreamCreate(flags uint32, priority int32) (gpu.Stream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return nil, err
	}
	if flags&^abi.StreamNonBlocking != 0 {
		return nil, abi.Errorf(abi.ErrInvalidValue, "unknown stream flags %#x", flags)
	}
	c.pruneStreams()
	s := &Stream{c: c, flags: flags}
	c.streams[s] = struct{}{}
	return s, nil
}

// pruneStreams forgets destroyed streams whose work is done. c.mu is held.
func (c *Context) pruneStreams() {
	for s := range c.streams {
		if s.destroyed && (s.last == nil || s.last.isDone()) {
			delete(c.streams, s)
		}
	}
}

// EventCreate creates an event.
func (c *Context) EventCreate(flags uint32) (gpu.Event, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return nil, err
	}
	const known = abi.EventBlockingSync | abi.EventDisableTiming | abi.EventInterprocess
	if flags&^known != 0 {
		return nil, abi.Errorf(abi.ErrInvalidValue, "unknown event flags %#x", flags)
	}
	if flags&abi.EventInterprocess != 0 && flags&abi.EventDisableTiming == 0 {
		return nil, abi.Errorf(abi.ErrInvalidValue, "interprocess events need timing disabled")
	}
	e := &Event{c: c, flags: flags}
	c.events[e] = struct{}{}
	return e, nil
}

// waitEvent queues on s a wait for ev's last record.
func (c *Context) waitEvent(s *Stream, ev gpu.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	st, err := c.streamLocked(s)
	if err != nil {
		return err
	}
	e, ok := ev.(*Event)
	if !ok || e == nil || e.c != c {
		return abi.Errorf(abi.ErrInvalidHandle, "event does not belong to this context")
	}
	if e.destroyed {
		return errDestroyedEvent
	}
	t := newTask(nil)
	t.after(e.rec)
	c.enqueueLocked(st, t)
	return nil
}

// pendingLocked returns the last task of every stream. c.mu is held.
func (c *Context) pendingLocked() []*task {
	var ts []*task
	if c.def.last != nil {
		ts = append(ts, c.def.last)
	}
	for s := range c.streams {
		if s.last != nil {
			ts = append(ts, s.last)
		}
	}
	return ts
}

// Synchronize waits for all work of the context and returns its sticky
// error, if any.
func (c *Context) Synchronize() error {
	c.mu.Lock()
	if err := c.usable(); err != nil {
		c.mu.Unlock()
		return err
	}
	ts := c.pendingLocked()
	c.mu.Unlock()
	for _, t := range ts {
		<-t.done
	}
	return c.syncErr()
}

// Abort implements gpu.Aborter: the kernel running now ends at its next
// block (or backward branch) and queued kernels do not run, each failing
// with CUDA_ERROR_LAUNCH_FAILED, which poisons the context. Copies and
// memsets still run; they are short. It does not wait.
func (c *Context) Abort() {
	c.abortOnce.Do(func() { close(c.stop) })
}

func (c *Context) aborted() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

// Close aborts the context's kernels, waits for its work, frees
// everything it holds and makes it unusable. Closing a poisoned context
// succeeds.
func (c *Context) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return abi.Errorf(abi.ErrInvalidContext, "context was closed")
	}
	c.closed = true
	c.Abort()
	ts := c.pendingLocked()
	c.mu.Unlock()
	for _, t := range ts {
		<-t.done
	}
	c.wg.Wait()

	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.allocs {
		c.freeLocked(a)
	}
	if c.heap != nil {
		c.freeLocked(c.heap.a)
		c.heap = nil
	}
	c.closeVMLocked()
	for m := range c.modules {
		m.releaseLocked()
	}
	for s := range c.streams {
		s.destroyed = true
	}
	for e := range c.events {
		e.destroyed = true
		e.rec = nil
	}
	c.allocs, c.streams, c.events, c.modules = nil, nil, nil, nil
	c.def.last = nil
	c.mem.clear()
	return nil
}
