package emu

import (
	"sync"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/gpu/emu/ptx"
)

// DefaultHeapSize is a context's device heap, which kernels' malloc and
// free use, until cuCtxSetLimit(CU_LIMIT_MALLOC_HEAP_SIZE) sets another:
// CUDA's default. The heap is reserved in the context's memory, counted
// in its slice, when the context first launches a kernel that calls
// malloc or free, and lives until the context closes.
const DefaultHeapSize = 8 << 20

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
	size := c.heapSize
	if size == 0 {
		size = DefaultHeapSize
	}
	a, err := c.allocLocked(size, false)
	if err != nil {
		return nil, err
	}
	c.heap = &devHeap{a: a, free: vaSpace{free: []extent{{a.base, size}}}, live: make(map[uint64]uint64)}
	return c.heap, nil
}

// setHeapSize sets the size of the heap the context will reserve. As on
// a GPU, it cannot change once a kernel has used the heap.
func (c *Context) setHeapSize(size uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.heap != nil {
		return abi.Errorf(abi.ErrInvalidValue, "the malloc heap limit cannot change once a kernel has used the heap")
	}
	aligned, ok := gpu.AlignUp(size, heapAlign)
	if size == 0 || !ok {
		return abi.Errorf(abi.ErrInvalidValue, "malloc heap size %d", size)
	}
	c.heapSize = aligned
	return nil
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
