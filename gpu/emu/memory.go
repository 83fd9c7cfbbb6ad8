package emu

import (
	"slices"
	"sync/atomic"

	"github.com/kerf-edge/kerf/abi"
)

// Address space layout: device n owns [vaBase+n*vaStride, +vaStride).
// The base keeps device pointers away from 0 and from where Linux usually
// maps a tenant's host memory.
const (
	allocAlign = 256
	vaBase     = 0x7000_0000_0000
	vaStride   = 1 << 40
)

// extent is a range of device addresses.
type extent struct{ base, size uint64 }

// vaSpace hands out device addresses first-fit from a sorted list of free
// extents, coalescing on release. The caller serialises access.
type vaSpace struct{ free []extent }

func (v *vaSpace) take(size uint64) (uint64, bool) {
	for i := range v.free {
		e := &v.free[i]
		if e.size < size {
			continue
		}
		base := e.base
		e.base += size
		e.size -= size
		if e.size == 0 {
			v.free = slices.Delete(v.free, i, i+1)
		}
		return base, true
	}
	return 0, false
}

func (v *vaSpace) give(base, size uint64) {
	i, _ := slices.BinarySearchFunc(v.free, base, func(e extent, b uint64) int {
		switch {
		case e.base < b:
			return -1
		case e.base > b:
			return 1
		}
		return 0
	})
	prev := i > 0 && v.free[i-1].base+v.free[i-1].size == base
	next := i < len(v.free) && base+size == v.free[i].base
	switch {
	case prev && next:
		v.free[i-1].size += size + v.free[i].size
		v.free = slices.Delete(v.free, i, i+1)
	case prev:
		v.free[i-1].size += size
	case next:
		v.free[i].base = base
		v.free[i].size += size
	default:
		v.free = slices.Insert(v.free, i, extent{base, size})
	}
}

// allocation is one range of device memory owned by a context: a
// MemAlloc result or a module global.
type allocation struct {
	base   uint64
	rsize  uint64 // reserved bytes, a multiple of allocAlign
	data   []byte // the bytes a tenant may touch, len = requested size
	global bool   // owned by a module, not freeable by MemFree
	mapped bool   // data comes from hostAlloc's mmap
}

// memView is a context's address space as kernels see it: an immutable,
// sorted slice of allocations replaced on every change, so that lookups
// take no lock. It implements ptx.Memory.
type memView struct {
	tab atomic.Pointer[[]*allocation]
}

// Span returns the allocation containing addr.
func (m *memView) Span(addr uint64) (uint64, []byte, bool) {
	a := m.lookup(addr)
	if a == nil {
		return 0, nil, false
	}
	return a.base, a.data, true
}

// lookup returns the allocation whose bytes contain addr, or nil.
func (m *memView) lookup(addr uint64) *allocation {
	p := m.tab.Load()
	if p == nil {
		return nil
	}
	s := *p
	lo, hi := 0, len(s) // first index with base > addr
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if s[mid].base <= addr {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return nil
	}
	a := s[lo-1]
	if addr-a.base >= uint64(len(a.data)) {
		return nil
	}
	return a
}

// add and remove publish a new table; the context's lock serialises them.
func (m *memView) add(a *allocation) {
	var old []*allocation
	if p := m.tab.Load(); p != nil {
		old = *p
	}
	i, _ := slices.BinarySearchFunc(old, a.base, func(x *allocation, b uint64) int {
		switch {
		case x.base < b:
			return -1
		case x.base > b:
			return 1
		}
		return 0
	})
	s := make([]*allocation, 0, len(old)+1)
	s = append(s, old[:i]...)
	s = append(s, a)
	s = append(s, old[i:]...)
	m.tab.Store(&s)
}

func (m *memView) remove(a *allocation) {
	p := m.tab.Load()
	if p == nil {
		return
	}
	s := make([]*allocation, 0, len(*p))
	for _, x := range *p {
		if x != a {
			s = append(s, x)
		}
	}
	m.tab.Store(&s)
}

func (m *memView) clear() { m.tab.Store(nil) }

// rangeOf returns the n bytes at addr, which must lie inside one
// allocation of the context.
func (m *memView) rangeOf(addr, n uint64, what string) ([]byte, error) {
	a := m.lookup(addr)
	if a == nil {
		return nil, abi.Errorf(abi.ErrInvalidValue, "%s %#x is not in an allocation of this context", what, addr)
	}
	off := addr - a.base
	if n > uint64(len(a.data))-off {
		return nil, abi.Errorf(abi.ErrInvalidValue, "%s range [%#x, +%d) overruns its allocation [%#x, +%d)",
			what, addr, n, a.base, len(a.data))
	}
	return a.data[off : off+n : off+n], nil
}
