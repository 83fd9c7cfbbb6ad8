package hostmem

import (
	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
)

// Virtual memory: physical memory is a host buffer counted against the
// quotas; a mapping views part of one and joins the context's
// addressable ranges once access to it is set.

// vmGranule is the granularity of physical memory and mappings.
const vmGranule = 2 << 20

var _ gpu.VirtualMemory = (*Context)(nil)

type vmState struct {
	reserved map[uint64]uint64
	maps     map[uint64]*vmMapping
	phys     map[*physMem]bool
}

type vmMapping struct {
	size, off  uint64
	p          *physMem
	accessible bool
}

type physMem struct {
	c        *Context
	data     []byte
	maps     int
	released bool
}

var errVM = abi.Errorf(abi.ErrInvalidValue, "not a reservation, mapping or physical memory of this context")

func (c *Context) vmLocked() *vmState {
	if c.vm.reserved == nil {
		c.vm = vmState{reserved: map[uint64]uint64{}, maps: map[uint64]*vmMapping{}, phys: map[*physMem]bool{}}
	}
	return &c.vm
}

// Granularity implements gpu.VirtualMemory.
func (c *Context) Granularity(bool) uint64 { return vmGranule }

// AddressReserve implements gpu.VirtualMemory.
func (c *Context) AddressReserve(size, align uint64) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, errClosed
	}
	if size == 0 || size%vmGranule != 0 || align < vmGranule || align&(align-1) != 0 || size > 1<<40 || align > 1<<40 {
		return 0, errVM
	}
	c.b.mu.Lock()
	p := (c.b.next + align - 1) &^ (align - 1)
	c.b.next = p + size + vmGranule // a gap, as between allocations
	c.b.mu.Unlock()
	c.vmLocked().reserved[p] = size
	return p, nil
}

// AddressFree implements gpu.VirtualMemory.
func (c *Context) AddressFree(ptr, size uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	vm := c.vmLocked()
	if n, ok := vm.reserved[ptr]; !ok || n != size {
		return errVM
	}
	for base := range vm.maps {
		if base >= ptr && base-ptr < size {
			return errVM
		}
	}
	delete(vm.reserved, ptr)
	return nil
}

// MemCreate implements gpu.VirtualMemory.
func (c *Context) MemCreate(size uint64) (gpu.PhysicalMemory, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	if size == 0 || size%vmGranule != 0 || size > 1<<40 {
		return nil, errVM
	}
	if err := c.q.Reserve(size, "context"); err != nil {
		return nil, err
	}
	if err := c.b.mem.Reserve(size, "hostmem device"); err != nil {
		c.q.Release(size)
		return nil, err
	}
	p := &physMem{c: c, data: make([]byte, size)}
	c.vmLocked().phys[p] = true
	return p, nil
}

// Release implements gpu.PhysicalMemory.
func (p *physMem) Release() error {
	c := p.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.released {
		return errVM
	}
	p.released = true
	c.freePhysLocked(p)
	return nil
}

func (c *Context) freePhysLocked(p *physMem) {
	if !p.released || p.maps > 0 || p.data == nil {
		return
	}
	n := uint64(len(p.data))
	p.data = nil
	c.q.Release(n)
	c.b.mem.Release(n)
	delete(c.vm.phys, p)
}

// MemMap implements gpu.VirtualMemory.
func (c *Context) MemMap(ptr, size, offset uint64, m gpu.PhysicalMemory) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := m.(*physMem)
	if !ok || p.c != c || p.released || c.closed {
		return abi.Errorf(abi.ErrInvalidHandle, "not physical memory of this context")
	}
	vm := c.vmLocked()
	if size == 0 || size%vmGranule != 0 || offset > uint64(len(p.data)) || size > uint64(len(p.data))-offset {
		return errVM
	}
	inside := false
	for base, n := range vm.reserved {
		inside = inside || ptr >= base && ptr-base <= n && size <= n-(ptr-base)
	}
	if !inside {
		return errVM
	}
	for base, x := range vm.maps {
		if ptr < base+x.size && base < ptr+size {
			return errVM
		}
	}
	vm.maps[ptr] = &vmMapping{size: size, off: offset, p: p}
	p.maps++
	return nil
}

// MemUnmap implements gpu.VirtualMemory: one whole mapping.
func (c *Context) MemUnmap(ptr, size uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.vmLocked().maps[ptr]
	if m == nil || m.size != size {
		return errVM
	}
	c.unmapLocked(ptr, m)
	return nil
}

func (c *Context) unmapLocked(ptr uint64, m *vmMapping) {
	if m.accessible {
		c.removeLocked(ptr)
	}
	delete(c.vm.maps, ptr)
	m.p.maps--
	c.freePhysLocked(m.p)
}

// SetAccess implements gpu.VirtualMemory: one whole mapping.
func (c *Context) SetAccess(ptr, size uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.vmLocked().maps[ptr]
	if m == nil || m.size != size {
		return errVM
	}
	if !m.accessible {
		m.accessible = true
		c.insertLocked(ptr, m.p.data[m.off:m.off+size:m.off+size])
	}
	return nil
}

func (c *Context) closeVMLocked() {
	for ptr, m := range c.vm.maps {
		c.unmapLocked(ptr, m)
	}
	for p := range c.vm.phys {
		p.released = true
		c.freePhysLocked(p)
	}
	c.vm = vmState{}
}
