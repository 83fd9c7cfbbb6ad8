package emu

import (
	"encoding/binary"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/abi/fatbin/fatbintest"
)

const heapSource = `
extern "C" __global__ void alloc(int **heads, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  int *p = (int *)malloc(n * sizeof(int));
  if (p) for (int j = 0; j < n; j++) p[j] = i * j;
  heads[i] = p;
}
extern "C" __global__ void sum(int **heads, int n, int *out) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  int s = 0;
  if (heads[i]) for (int j = 0; j < n; j++) s += heads[i][j];
  out[i] = s;
}
extern "C" __global__ void release(int **heads) { free(heads[blockIdx.x * blockDim.x + threadIdx.x]); }
`

// Device malloc and free: blocks live across launches until freed, the
// heap is counted in the context's memory, malloc returns NULL when the
// heap is full, and freeing what malloc did not return fails the launch.
func TestDeviceHeap(t *testing.T) {
	img := fatbintest.Nvcc(t, heapSource, "arch=compute_80,code=compute_80")
	c := open(t, New(Config{MemoryBytes: 64 << 20}), 0, 32<<20)
	m := must(c.ModuleLoad(img))(t)
	alloc, sum, release := must(m.Function("alloc"))(t), must(m.Function("sum"))(t), must(m.Function("release"))(t)
	const threads, n = 256, 100
	heads := must(c.MemAlloc(8 * threads))(t)
	out := must(c.MemAlloc(4 * threads))(t)
	free0, _ := c.MemInfo()
	cfg := abi.LaunchConfig{Grid: one(2), Block: one(threads / 2)}
	np := binary.LittleEndian.AppendUint32(ptrParam(heads), n)
	ok(t, c.Launch(alloc, cfg, np, nil))
	ok(t, c.Launch(sum, cfg, binary.LittleEndian.AppendUint64(append(np, 0, 0, 0, 0), out), nil))
	got := make([]byte, 4*threads)
	ok(t, c.MemcpyDtoH(got, out, nil))
	for i := range threads {
		if v, want := binary.LittleEndian.Uint32(got[4*i:]), uint32(i*n*(n-1)/2); v != want {
			t.Fatalf("sum of list %d = %d, want %d", i, v, want)
		}
	}
	if free1, _ := c.MemInfo(); free0-free1 < DefaultHeapSize {
		t.Fatalf("the heap is not counted: free %d before, %d after", free0, free1)
	}
	ok(t, c.Launch(release, cfg, ptrParam(heads), nil))
	ok(t, c.Synchronize())

	// lists of 1 MiB each: the 8 MiB heap, empty again, holds 8
	big := binary.LittleEndian.AppendUint32(ptrParam(heads), 1<<18)
	ok(t, c.Launch(alloc, abi.LaunchConfig{Grid: one(1), Block: one(16)}, big, nil))
	ptrs := make([]byte, 8*16)
	ok(t, c.MemcpyDtoH(ptrs, heads, nil))
	nulls := 0
	for i := range 16 {
		if binary.LittleEndian.Uint64(ptrs[8*i:]) == 0 {
			nulls++
		}
	}
	if nulls != 16-DefaultHeapSize>>20 {
		t.Fatalf("%d of 16 mallocs of 1 MiB failed in an 8 MiB heap", nulls)
	}
	// a pointer malloc never returned
	binary.LittleEndian.PutUint64(ptrs, heads)
	ok(t, c.MemcpyHtoD(heads, ptrs[:8], nil))
	ok(t, c.Launch(release, abi.LaunchConfig{Grid: one(1), Block: one(1)}, ptrParam(heads), nil))
	wantCode(t, c.Synchronize(), abi.ErrIllegalAddress)

	// a context whose limit cannot hold the heap cannot launch them
	small := open(t, New(Config{MemoryBytes: 64 << 20}), 0, 4<<20)
	ms := must(small.ModuleLoad(img))(t)
	h2 := must(small.MemAlloc(8))(t)
	wantCode(t, small.Launch(must(ms.Function("release"))(t), abi.LaunchConfig{Grid: one(1), Block: one(1)}, ptrParam(h2), nil), abi.ErrOutOfMemory)
}

// cuCtxSetLimit(CU_LIMIT_MALLOC_HEAP_SIZE) sizes the heap before a kernel
// uses it, and is refused after.
func TestDeviceHeapLimit(t *testing.T) {
	img := fatbintest.Nvcc(t, heapSource, "arch=compute_80,code=compute_80")
	c := open(t, New(Config{MemoryBytes: 64 << 20}), 0, 32<<20)
	wantCode(t, c.SetLimit(abi.LimitMallocHeapSize, 0), abi.ErrInvalidValue)
	ok(t, c.SetLimit(abi.LimitMallocHeapSize, 3<<20))
	m := must(c.ModuleLoad(img))(t)
	alloc := must(m.Function("alloc"))(t)
	heads := must(c.MemAlloc(8 * 16))(t)
	// lists of 1 MiB each: a 3 MiB heap holds 3
	ok(t, c.Launch(alloc, abi.LaunchConfig{Grid: one(1), Block: one(16)}, binary.LittleEndian.AppendUint32(ptrParam(heads), 1<<18), nil))
	ptrs := make([]byte, 8*16)
	ok(t, c.MemcpyDtoH(ptrs, heads, nil))
	got := 0
	for i := range 16 {
		if binary.LittleEndian.Uint64(ptrs[8*i:]) != 0 {
			got++
		}
	}
	if got != 3 {
		t.Fatalf("%d of 16 mallocs of 1 MiB succeeded in a 3 MiB heap, want 3", got)
	}
	wantCode(t, c.SetLimit(abi.LimitMallocHeapSize, 16<<20), abi.ErrInvalidValue)
}
