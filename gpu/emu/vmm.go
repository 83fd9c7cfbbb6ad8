package emu

import (
	"math"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
)

// Virtual memory (gpu.VirtualMemory): a reservation is a range of the
// device's address space; physical memory is host memory counted against
// the context's quota and the device's memory; a mapping views part of
// it at an address inside a reservation, and becomes addressable by the
// context's kernels and copies, as an entry of its memory view, once
// access to it is set. Two mappings of one physical memory share its
// bytes. A kernel's access, like a copy, lies within one mapping: an
// access that runs from one mapping into the next faults.

// vmmGranularity is the emulated device's granularity of physical memory
// and mappings, minimum and recommended: the 2 MiB page NVIDIA's GPUs map.
const vmmGranularity = 2 << 20

var _ gpu.VirtualMemory = (*Context)(nil)

// physMem is physical memory made by MemCreate.
type physMem struct {
	c        *Context
	size     uint64
	data     []byte
	hostMap  bool // data comes from hostAlloc's mmap
	maps     int  // mappings using it; guarded by c.mu
	released bool // guarded by c.mu
}

// vmMapping is one mapping; a is its entry in the memory view, nil until
// access to it is set.
type vmMapping struct {
	base, size, off uint64
	phys            *physMem
	a               *allocation
}

// vmState is a context's virtual memory. Guarded by the context's mu.
type vmState struct {
	reserved map[uint64]uint64 // reservation size by base
	maps     map[uint64]*vmMapping
	phys     map[*physMem]struct{}
}

// vmLocked is the context's virtual memory state, made on first use.
func (c *Context) vmLocked() *vmState {
	if c.vm.reserved == nil {
		c.vm = vmState{reserved: map[uint64]uint64{}, maps: map[uint64]*vmMapping{}, phys: map[*physMem]struct{}{}}
	}
	return &c.vm
}

// Granularity implements gpu.VirtualMemory.
func (c *Context) Granularity(bool) uint64 { return vmmGranularity }

// AddressReserve implements gpu.VirtualMemory.
func (c *Context) AddressReserve(size, align uint64) (uint64, error) {
	if size == 0 || size%vmmGranularity != 0 || align < vmmGranularity || align&(align-1) != 0 || size > vaStride || align > vaStride {
		return 0, abi.Errorf(abi.ErrInvalidValue, "reservation of %d bytes aligned to %d", size, align)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return 0, err
	}
	d := c.dev
	d.mu.Lock()
	span := size + align - vmmGranularity // address space is handed out in granules
	raw, ok := d.va.take(span)
	var base uint64
	if ok {
		base = (raw + align - 1) &^ (align - 1)
		if head := base - raw; head > 0 {
			d.va.give(raw, head)
		}
		if tail := raw + span - (base + size); tail > 0 {
			d.va.give(base+size, tail)
		}
	}
	d.mu.Unlock()
	if !ok {
		return 0, abi.Errorf(abi.ErrOutOfMemory, "emulated device %d: no %d bytes of address space left", d.ord, size)
	}
	c.vmLocked().reserved[base] = size
	return base, nil
}

// AddressFree implements gpu.VirtualMemory.
func (c *Context) AddressFree(ptr, size uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	if got, ok := c.vm.reserved[ptr]; !ok || got != size {
		return abi.Errorf(abi.ErrInvalidValue, "[%#x, +%d) is not a reservation of this context", ptr, size)
	}
	for _, m := range c.vm.maps {
		if m.base >= ptr && m.base-ptr < size {
			return abi.Errorf(abi.ErrInvalidValue, "the reservation at %#x still has a mapping at %#x", ptr, m.base)
		}
	}
	delete(c.vm.reserved, ptr)
	c.dev.mu.Lock()
	c.dev.va.give(ptr, size)
	c.dev.mu.Unlock()
	return nil
}

// MemCreate implements gpu.VirtualMemory.
func (c *Context) MemCreate(size uint64) (gpu.PhysicalMemory, error) {
	if size == 0 || size%vmmGranularity != 0 || size > math.MaxInt {
		return nil, abi.Errorf(abi.ErrInvalidValue, "physical memory of %d bytes", size)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return nil, err
	}
	if err := c.q.Reserve(size, "context"); err != nil {
		return nil, err
	}
	if err := c.dev.mem.Reserve(size, c.dev.info.Name); err != nil {
		c.q.Release(size)
		return nil, err
	}
	data, hostMap, err := hostAlloc(size)
	if err != nil {
		c.dev.mem.Release(size)
		c.q.Release(size)
		return nil, abi.Errorf(abi.ErrOutOfMemory, "host cannot back %d bytes of emulated device memory: %v", size, err)
	}
	p := &physMem{c: c, size: size, data: data, hostMap: hostMap}
	c.vmLocked().phys[p] = struct{}{}
	return p, nil
}

// Release implements gpu.PhysicalMemory: the memory goes once no mapping
// uses it.
func (p *physMem) Release() error {
	c := p.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.released || c.closed {
		return abi.Errorf(abi.ErrInvalidValue, "physical memory already released")
	}
	p.released = true
	c.freePhysLocked(p)
	return nil
}

// freePhysLocked frees p once it is released and unmapped. c.mu is held.
func (c *Context) freePhysLocked(p *physMem) {
	if !p.released || p.maps > 0 || p.data == nil {
		return
	}
	hostFree(p.data, p.hostMap)
	p.data = nil
	c.dev.mem.Release(p.size)
	c.q.Release(p.size)
	delete(c.vm.phys, p)
}

// MemMap implements gpu.VirtualMemory.
func (c *Context) MemMap(ptr, size, offset uint64, m gpu.PhysicalMemory) error {
	p, ok := m.(*physMem)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	if !ok || p.c != c || p.released {
		return abi.Errorf(abi.ErrInvalidHandle, "not physical memory of this context")
	}
	if size == 0 || size%vmmGranularity != 0 || ptr%vmmGranularity != 0 || offset%vmmGranularity != 0 ||
		offset > p.size || size > p.size-offset {
		return abi.Errorf(abi.ErrInvalidValue, "mapping [%#x, +%d) of physical memory at offset %d of %d bytes", ptr, size, offset, p.size)
	}
	if !c.inReservationLocked(ptr, size) {
		return abi.Errorf(abi.ErrInvalidValue, "[%#x, +%d) is not inside one reservation of this context", ptr, size)
	}
	for _, x := range c.vm.maps {
		if ptr < x.base+x.size && x.base < ptr+size {
			return abi.Errorf(abi.ErrInvalidValue, "[%#x, +%d) overlaps the mapping at %#x", ptr, size, x.base)
		}
	}
	c.vm.maps[ptr] = &vmMapping{base: ptr, size: size, off: offset, phys: p}
	p.maps++
	return nil
}

func (c *Context) inReservationLocked(ptr, size uint64) bool {
	for base, n := range c.vm.reserved {
		if ptr >= base && ptr-base <= n && size <= n-(ptr-base) {
			return true
		}
	}
	return false
}

// mappingsLocked returns the mappings that make up [ptr, ptr+size)
// exactly, in address order, or nil. c.mu is held.
func (c *Context) mappingsLocked(ptr, size uint64) []*vmMapping {
	var out []*vmMapping
	for at, end := ptr, ptr+size; at < end; {
		m := c.vm.maps[at]
		if m == nil || m.size > end-at {
			return nil
		}
		out = append(out, m)
		at += m.size
	}
	return out
}

// MemUnmap implements gpu.VirtualMemory.
func (c *Context) MemUnmap(ptr, size uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	ms := c.mappingsLocked(ptr, size)
	if ms == nil || size == 0 {
		return abi.Errorf(abi.ErrInvalidValue, "[%#x, +%d) is not made of whole mappings of this context", ptr, size)
	}
	c.drainLocked() // the device's work so far may still use them
	for _, m := range ms {
		c.unmapLocked(m)
	}
	return nil
}

func (c *Context) unmapLocked(m *vmMapping) {
	if m.a != nil {
		c.mem.remove(m.a)
	}
	delete(c.vm.maps, m.base)
	m.phys.maps--
	c.freePhysLocked(m.phys)
}

// SetAccess implements gpu.VirtualMemory.
func (c *Context) SetAccess(ptr, size uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	ms := c.mappingsLocked(ptr, size)
	if ms == nil || size == 0 {
		return abi.Errorf(abi.ErrInvalidValue, "[%#x, +%d) is not made of whole mappings of this context", ptr, size)
	}
	for _, m := range ms {
		if m.a == nil {
			m.a = &allocation{base: m.base, rsize: m.size, data: m.phys.data[m.off : m.off+m.size : m.off+m.size], global: true}
			c.mem.add(m.a)
		}
	}
	return nil
}

// closeVMLocked frees the context's mappings, physical memory and
// reservations. c.mu is held and the context's work is done.
func (c *Context) closeVMLocked() {
	for _, m := range c.vm.maps {
		c.unmapLocked(m)
	}
	for p := range c.vm.phys {
		p.released = true
		c.freePhysLocked(p)
	}
	c.dev.mu.Lock()
	for base, n := range c.vm.reserved {
		c.dev.va.give(base, n)
	}
	c.dev.mu.Unlock()
	c.vm = vmState{}
}
