// Package hostmem is a gpu.Backend whose device memory is host memory. It
// really stores and returns bytes, runs streams in order and times events,
// but it has no kernels: module loads get CUDA_ERROR_NOT_SUPPORTED. It
// exists so the transport can be tested and benchmarked in isolation from
// any GPU model; kerfd never serves tenants with it.
package hostmem

import (
	"encoding/binary"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
)

// Backend is one host-memory device.
type Backend struct {
	// Total is the device memory size.
	Total uint64

	mem *gpu.Quota // the device's memory, shared by all contexts

	mu   sync.Mutex // guards next
	next uint64
}

var _ gpu.Backend = (*Backend)(nil)

// New returns a backend with total bytes of device memory.
func New(total uint64) *Backend {
	return &Backend{Total: total, mem: gpu.NewQuota(0, total), next: 1 << 40}
}

// allocGranule is what allocations are rounded up to.
const allocGranule = 256

var (
	errClosed       = abi.Errorf(abi.ErrInvalidContext, "context was closed")
	errZeroSize     = abi.Errorf(abi.ErrInvalidValue, "zero-size allocation")
	errNotAllocated = abi.Errorf(abi.ErrInvalidValue, "not the base of a live allocation")
	errOutside      = abi.Errorf(abi.ErrInvalidValue, "range is not inside one allocation of this context")
	errMemset       = abi.Errorf(abi.ErrInvalidValue, "memset element size is not 1, 2 or 4, or the count overflows")
	errHandle       = abi.Errorf(abi.ErrInvalidHandle, "stream or event was destroyed or belongs to another context")
	errNoTiming     = abi.Errorf(abi.ErrInvalidHandle, "event created with timing disabled")
	errNotRecorded  = abi.Errorf(abi.ErrNotReady, "event was never recorded")
	errFlags        = abi.Errorf(abi.ErrInvalidValue, "unknown flags")
)

// Used reports the bytes allocated by all contexts.
func (b *Backend) Used() uint64 { return b.mem.Used() }

// Devices implements gpu.Backend.
func (b *Backend) Devices() []gpu.DeviceInfo {
	return []gpu.DeviceInfo{b.info()}
}

func (b *Backend) info() gpu.DeviceInfo {
	return gpu.DeviceInfo{Name: "Kerf host-memory test device", TotalMem: b.Total, CCMajor: 8, SMs: 1, Emulated: true, DriverVersion: 12040}
}

// Open implements gpu.Backend.
func (b *Backend) Open(dev int, limit uint64) (gpu.Context, error) {
	if dev != 0 {
		return nil, abi.Errorf(abi.ErrInvalidDevice, "hostmem has one device")
	}
	return &Context{b: b, q: gpu.NewQuota(limit, b.Total), allocs: map[uint64][]byte{}}, nil
}

// Context is one tenant's context. Work runs synchronously in call order,
// which is a valid schedule for every stream.
type Context struct {
	b      *Backend
	q      *gpu.Quota
	mu     sync.Mutex
	allocs map[uint64][]byte
	bases  []uint64 // sorted
	closed bool
	// lastBase and lastMem cache the allocation found last.
	lastBase uint64
	lastMem  []byte
	vm       vmState
}

func (c *Context) Device() gpu.DeviceInfo { return c.b.info() }

func (c *Context) Attribute(attr uint32) (int32, error) {
	switch attr {
	case 10: // warp size
		return 32, nil
	case 16: // multiprocessor count
		return 1, nil
	}
	return 0, abi.Errorf(abi.ErrInvalidValue, "attribute %d not modelled by hostmem", attr)
}

func (c *Context) MemAlloc(size uint64) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, errClosed
	}
	if size == 0 {
		return 0, errZeroSize
	}
	rounded, ok := gpu.AlignUp(size, allocGranule)
	if !ok {
		return 0, abi.Errorf(abi.ErrOutOfMemory, "%d bytes requested", size)
	}
	if err := c.q.Reserve(rounded, "context"); err != nil {
		return 0, err
	}
	if err := c.b.mem.Reserve(rounded, "hostmem device"); err != nil {
		c.q.Release(rounded)
		return 0, err
	}
	c.b.mu.Lock()
	p := c.b.next
	c.b.next += rounded + 4096 // a gap, so adjacent overruns are visible
	c.b.mu.Unlock()
	c.insertLocked(p, make([]byte, size))
	return p, nil
}

func (c *Context) MemFree(p uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errClosed
	}
	m, ok := c.allocs[p]
	if !ok {
		return errNotAllocated
	}
	c.freeLocked(p, m)
	return nil
}

func (c *Context) freeLocked(p uint64, m []byte) {
	rounded, _ := gpu.AlignUp(uint64(len(m)), allocGranule)
	c.removeLocked(p)
	c.q.Release(rounded)
	c.b.mem.Release(rounded)
}

// insertLocked makes m addressable at p.
func (c *Context) insertLocked(p uint64, m []byte) {
	c.allocs[p] = m
	i := sort.Search(len(c.bases), func(i int) bool { return c.bases[i] > p })
	c.bases = append(c.bases, 0)
	copy(c.bases[i+1:], c.bases[i:])
	c.bases[i] = p
}

// removeLocked makes the range at p unaddressable.
func (c *Context) removeLocked(p uint64) {
	delete(c.allocs, p)
	if c.lastBase == p {
		c.lastMem = nil
	}
	i := sort.Search(len(c.bases), func(i int) bool { return c.bases[i] >= p })
	c.bases = append(c.bases[:i], c.bases[i+1:]...)
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
	devFree, _ := c.b.mem.MemInfo()
	return min(free, devFree), total
}

// SetMemLimit changes the context's limit (0: the whole device).
func (c *Context) SetMemLimit(limit uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errClosed
	}
	return c.q.SetLimit(limit)
}

// AddressRange returns the allocation containing ptr.
func (c *Context) AddressRange(ptr uint64) (base, size uint64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, 0, errClosed
	}
	i := sort.Search(len(c.bases), func(i int) bool { return c.bases[i] > ptr }) - 1
	if i < 0 || ptr-c.bases[i] >= uint64(len(c.allocs[c.bases[i]])) {
		return 0, 0, abi.Errorf(abi.ErrNotFound, "%#x is not in an allocation of this context", ptr)
	}
	return c.bases[i], uint64(len(c.allocs[c.bases[i]])), nil
}

// span returns the n bytes at p inside one allocation. The allocation
// found last is tried first, inline.
func (c *Context) span(p, n uint64) ([]byte, error) {
	if m, off := c.lastMem, p-c.lastBase; p >= c.lastBase && off < uint64(len(m)) && n <= uint64(len(m))-off && !c.closed {
		return m[off : off+n], nil
	}
	return c.spanSlow(p, n)
}

func (c *Context) spanSlow(p, n uint64) ([]byte, error) {
	if c.closed {
		return nil, errClosed
	}
	i := sort.Search(len(c.bases), func(i int) bool { return c.bases[i] > p }) - 1
	if i < 0 {
		return nil, errOutside
	}
	base, m := c.bases[i], c.allocs[c.bases[i]]
	c.lastBase, c.lastMem = base, m
	off := p - base
	if off > uint64(len(m)) || n > uint64(len(m))-off {
		return nil, errOutside
	}
	return m[off : off+n], nil
}

func (c *Context) MemcpyHtoD(dst uint64, src []byte, s gpu.Stream) error {
	if err := c.checkStream(s); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := c.span(dst, uint64(len(src)))
	if err != nil {
		return err
	}
	copy(d, src)
	return nil
}

func (c *Context) MemcpyDtoH(dst []byte, src uint64, st gpu.Stream) error {
	if err := c.checkStream(st); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s, err := c.span(src, uint64(len(dst)))
	if err != nil {
		return err
	}
	copy(dst, s)
	return nil
}

func (c *Context) MemcpyDtoD(dst, src, size uint64, st gpu.Stream) error {
	if err := c.checkStream(st); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := c.span(dst, size)
	if err != nil {
		return err
	}
	s, err := c.span(src, size)
	if err != nil {
		return err
	}
	copy(d, s)
	return nil
}

func (c *Context) Memset(dst uint64, value uint32, elem uint32, count uint64, s gpu.Stream) error {
	if elem != 1 && elem != 2 && elem != 4 || count > 1<<62>>(elem>>1) { // 1<<62 / elem
		return errMemset
	}
	if err := c.checkStream(s); err != nil {
		return err
	}
	c.mu.Lock()
	d, err := c.span(dst, count*uint64(elem))
	if err == nil {
		fill(d, value, elem)
	}
	c.mu.Unlock()
	return err
}

// fill writes value, elem bytes wide, little-endian, across d.
func fill(d []byte, value, elem uint32) {
	switch elem {
	case 1:
		for i := range d {
			d[i] = byte(value)
		}
	case 2:
		for ; len(d) >= 2; d = d[2:] {
			binary.LittleEndian.PutUint16(d, uint16(value))
		}
	default:
		for ; len(d) >= 4; d = d[4:] {
			binary.LittleEndian.PutUint32(d, value)
		}
	}
}

func (c *Context) ModuleLoad([]byte) (gpu.Module, error) {
	return nil, abi.Errorf(abi.ErrNotSupported, "hostmem runs no kernels")
}

func (c *Context) Launch(gpu.Function, abi.LaunchConfig, []byte, gpu.Stream) error {
	return abi.Errorf(abi.ErrNotSupported, "hostmem runs no kernels")
}

func (c *Context) StreamCreate(flags uint32, _ int32) (gpu.Stream, error) {
	if err := c.live(); err != nil {
		return nil, err
	}
	if flags&^abi.StreamNonBlocking != 0 {
		return nil, errFlags
	}
	return &stream{c: c}, nil
}

func (c *Context) EventCreate(flags uint32) (gpu.Event, error) {
	if err := c.live(); err != nil {
		return nil, err
	}
	if flags&^(abi.EventBlockingSync|abi.EventDisableTiming|abi.EventInterprocess) != 0 {
		return nil, errFlags
	}
	return &event{c: c, timing: flags&abi.EventDisableTiming == 0}, nil
}

func (c *Context) Synchronize() error { return c.live() }

// live returns the error of a closed context.
func (c *Context) live() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errClosed
	}
	return nil
}

func (c *Context) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errClosed
	}
	c.closeVMLocked()
	for p, m := range c.allocs {
		c.freeLocked(p, m)
	}
	c.closed = true
	return nil
}

// checkStream refuses a stream of another context or one destroyed; nil
// is the default stream.
func (c *Context) checkStream(s gpu.Stream) error {
	if s == nil {
		return nil
	}
	st, ok := s.(*stream)
	if !ok || st.c != c || st.destroyed.Load() {
		return errHandle
	}
	return nil
}

// checkEvent refuses an event of another context or one destroyed.
func (c *Context) checkEvent(ev gpu.Event) (*event, error) {
	e, ok := ev.(*event)
	if !ok || e == nil || e.c != c || e.destroyed.Load() {
		return nil, errHandle
	}
	return e, nil
}

// stream is always idle: work completes before the call that queued it
// returns.
type stream struct {
	c         *Context
	destroyed atomic.Bool
}

func (s *stream) Synchronize() error { return s.c.checkStream(s) }
func (s *stream) Query() error       { return s.c.checkStream(s) }
func (s *stream) WaitEvent(ev gpu.Event) error {
	if err := s.c.checkStream(s); err != nil {
		return err
	}
	_, err := s.c.checkEvent(ev)
	return err
}
func (s *stream) Destroy() error {
	if s.destroyed.Swap(true) {
		return errHandle
	}
	return nil
}

type event struct {
	c         *Context
	destroyed atomic.Bool
	timing    bool
	mu        sync.Mutex
	at        time.Time
}

func (e *event) Record(s gpu.Stream) error {
	if _, err := e.c.checkEvent(e); err != nil {
		return err
	}
	if err := e.c.checkStream(s); err != nil {
		return err
	}
	e.mu.Lock()
	e.at = time.Now()
	e.mu.Unlock()
	return nil
}
func (e *event) Query() error {
	_, err := e.c.checkEvent(e)
	return err
}
func (e *event) Synchronize() error { return e.Query() }
func (e *event) Destroy() error {
	if e.destroyed.Swap(true) {
		return errHandle
	}
	return nil
}
func (e *event) ElapsedSince(start gpu.Event) (float32, error) {
	if _, err := e.c.checkEvent(e); err != nil {
		return 0, err
	}
	s, err := e.c.checkEvent(start)
	if err != nil {
		return 0, err
	}
	if !e.timing || !s.timing {
		return 0, errNoTiming
	}
	e.mu.Lock()
	end := e.at
	e.mu.Unlock()
	s.mu.Lock()
	begin := s.at
	s.mu.Unlock()
	if begin.IsZero() || end.IsZero() {
		return 0, errNotRecorded
	}
	return float32(end.Sub(begin).Seconds() * 1000), nil
}
