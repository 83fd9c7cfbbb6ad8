//go:build cgo

package cuda

import (
	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
)

// Virtual memory (gpu.VirtualMemory) goes to the driver's own calls, on
// pinned memory of the context's device. Physical memory is charged to
// the quota at its size (a multiple of the granularity, which the driver
// does not round) until it is released and unmapped. A mapping joins the
// ranges copies and memsets may name once access to it is set.

var _ gpu.VirtualMemory = (*Context)(nil)

// vmState is the context's virtual memory; guarded by c.bk.
type vmState struct {
	reserved map[uint64]uint64 // size by base
	maps     map[uint64]*vmMapping
	phys     map[*physMem]struct{}
}

type vmMapping struct {
	size       uint64
	p          *physMem
	accessible bool
}

// physMem is physical memory made by MemCreate.
type physMem struct {
	c        *Context
	h        uint64 // CUmemGenericAllocationHandle
	size     uint64
	maps     int  // guarded by c.bk
	released bool // guarded by c.bk
}

func (c *Context) vmLocked() *vmState {
	if c.vm.reserved == nil {
		c.vm = vmState{reserved: map[uint64]uint64{}, maps: map[uint64]*vmMapping{}, phys: map[*physMem]struct{}{}}
	}
	return &c.vm
}

// Granularity implements gpu.VirtualMemory: the driver's, or 0 when it
// cannot say (every size is then refused).
func (c *Context) Granularity(recommended bool) uint64 {
	if err := c.enter(); err != nil {
		return 0
	}
	defer c.op.RUnlock()
	g, r := vmGranularity(c.h, c.dev, recommended)
	if r != 0 {
		return 0
	}
	return g
}

// AddressReserve implements gpu.VirtualMemory.
func (c *Context) AddressReserve(size, align uint64) (uint64, error) {
	if err := c.enter(); err != nil {
		return 0, err
	}
	defer c.op.RUnlock()
	p, r := vmReserve(c.h, size, align)
	if r != 0 {
		return 0, c.check("cuMemAddressReserve", r)
	}
	c.bk.Lock()
	c.vmLocked().reserved[p] = size
	c.bk.Unlock()
	return p, nil
}

// AddressFree implements gpu.VirtualMemory.
func (c *Context) AddressFree(ptr, size uint64) error {
	if err := c.enter(); err != nil {
		return err
	}
	defer c.op.RUnlock()
	c.bk.Lock()
	n, ok := c.vmLocked().reserved[ptr]
	if ok && n == size {
		delete(c.vm.reserved, ptr)
	}
	c.bk.Unlock()
	if !ok || n != size {
		return abi.Errorf(abi.ErrInvalidValue, "[%#x, +%d) is not a reservation of this context", ptr, size)
	}
	return c.check("cuMemAddressFree", vmFree(c.h, ptr, size))
}

// MemCreate implements gpu.VirtualMemory.
func (c *Context) MemCreate(size uint64) (gpu.PhysicalMemory, error) {
	if err := c.enter(); err != nil {
		return nil, err
	}
	defer c.op.RUnlock()
	if err := c.q.Reserve(size, "physical memory"); err != nil {
		return nil, err
	}
	h, r := vmCreate(c.h, c.dev, size)
	if r != 0 {
		c.q.Release(size)
		return nil, c.check("cuMemCreate", r)
	}
	p := &physMem{c: c, h: h, size: size}
	c.bk.Lock()
	c.vmLocked().phys[p] = struct{}{}
	c.bk.Unlock()
	return p, nil
}

// Release implements gpu.PhysicalMemory. The driver keeps mapped memory
// until its last unmap; so does the quota.
func (p *physMem) Release() error {
	c := p.c
	if err := c.enter(); err != nil {
		return err
	}
	defer c.op.RUnlock()
	c.bk.Lock()
	if p.released {
		c.bk.Unlock()
		return abi.Errorf(abi.ErrInvalidValue, "physical memory already released")
	}
	p.released = true
	c.unchargeLocked(p)
	c.bk.Unlock()
	return c.check("cuMemRelease", vmRelease(c.h, p.h))
}

// unchargeLocked gives p's bytes back to the quota once it is released
// and unmapped. c.bk is held.
func (c *Context) unchargeLocked(p *physMem) {
	if _, ok := c.vm.phys[p]; ok && p.released && p.maps == 0 {
		delete(c.vm.phys, p)
		c.q.Release(p.size)
	}
}

// MemMap implements gpu.VirtualMemory.
func (c *Context) MemMap(ptr, size, offset uint64, m gpu.PhysicalMemory) error {
	p, ok := m.(*physMem)
	if !ok || p.c != c {
		return abi.Errorf(abi.ErrInvalidHandle, "not physical memory of this context")
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.op.RUnlock()
	c.bk.Lock()
	released := p.released
	c.bk.Unlock()
	if released {
		return abi.Errorf(abi.ErrInvalidHandle, "physical memory was released")
	}
	if r := vmMap(c.h, ptr, size, offset, p.h); r != 0 {
		return c.check("cuMemMap", r)
	}
	c.bk.Lock()
	c.vmLocked().maps[ptr] = &vmMapping{size: size, p: p}
	p.maps++
	c.bk.Unlock()
	return nil
}

// MemUnmap implements gpu.VirtualMemory: one whole mapping, once the
// context's work so far is done.
func (c *Context) MemUnmap(ptr, size uint64) error {
	if err := c.enter(); err != nil {
		return err
	}
	defer c.op.RUnlock()
	c.bk.Lock()
	m := c.vmLocked().maps[ptr]
	if m == nil || m.size != size {
		c.bk.Unlock()
		return abi.Errorf(abi.ErrInvalidValue, "[%#x, +%d) is not a mapping of this context", ptr, size)
	}
	delete(c.vm.maps, ptr)
	if m.accessible {
		c.mem.remove(ptr) // no copy names it from here on
	}
	c.bk.Unlock()
	ctxSync(c.h)
	r := vmUnmap(c.h, ptr, size)
	c.bk.Lock()
	m.p.maps--
	c.unchargeLocked(m.p)
	c.bk.Unlock()
	return c.check("cuMemUnmap", r)
}

// SetAccess implements gpu.VirtualMemory: one whole mapping.
func (c *Context) SetAccess(ptr, size uint64) error {
	if err := c.enter(); err != nil {
		return err
	}
	defer c.op.RUnlock()
	c.bk.Lock()
	m := c.vmLocked().maps[ptr]
	c.bk.Unlock()
	if m == nil || m.size != size {
		return abi.Errorf(abi.ErrInvalidValue, "[%#x, +%d) is not a mapping of this context", ptr, size)
	}
	if r := vmAccess(c.h, c.dev, ptr, size); r != 0 {
		return c.check("cuMemSetAccess", r)
	}
	c.bk.Lock()
	defer c.bk.Unlock()
	if !m.accessible && c.vm.maps[ptr] == m {
		m.accessible = true
		c.mem.add(ptr, size)
	}
	return nil
}

// releaseVM unmaps, releases and frees everything the context holds, as
// it closes. c.bk is held.
func (c *Context) releaseVMLocked() {
	for ptr, m := range c.vm.maps {
		vmUnmap(c.h, ptr, m.size)
	}
	for p := range c.vm.phys {
		if !p.released {
			vmRelease(c.h, p.h)
		}
	}
	for ptr, n := range c.vm.reserved {
		vmFree(c.h, ptr, n)
	}
	c.vm = vmState{}
}
