package emu

import (
	"sync"

	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/gpu/emu/ptx"
)

// HeapSize is a context's device heap, which kernels' malloc and free
// use: CUDA's default malloc heap limit. The heap is reserved in the
// context's memory, counted in its slice, when the context first
// launches a kernel that calls malloc or free, and lives until the
// context closes.
const HeapSize = 8 << 20

// heapAlign is the alignment of the blocks malloc returns, as on a GPU.
const heapAlign = 16

// devHeap is a context's device heap: first-fit blocks of one
// allocation, safe for every block of every launch at once.
type devHeap struct {
	a    *allocation
	mu   sync.Mutex
	free vaSpace
	live map[uint64]uint64 // block address to its size
}

var _ ptx.DeviceHeap = (*devHeap)(nil)

// heapLocked returns the context's heap, reserving it on first use.
// c.mu is held.
func (c *Context) heapLocked() (*devHeap, error) {
	if c.heap != nil {
		return c.heap, nil
	}
	a, err := c.allocLocked(HeapSize, false)
	if err != nil {
		return nil, err
	}
	c.heap = &devHeap{a: a, free: vaSpace{free: []extent{{a.base, HeapSize}}}, live: make(map[uint64]uint64)}
	return c.heap, nil
}

func (h *devHeap) Malloc(size uint64) uint64 {
	n, ok := gpu.AlignUp(size, heapAlign)
	if size == 0 || !ok {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.free.take(n)
	if !ok {
		return 0
	}
	h.live[p] = n
	return p
}

func (h *devHeap) Free(p uint64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	n, ok := h.live[p]
	if !ok {
		return false
	}
	delete(h.live, p)
	h.free.give(p, n)
	return true
}
