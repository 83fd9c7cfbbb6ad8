package emu

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/abi/fatbin/fatbintest"
	"github.com/kerf-edge/kerf/internal/testkit"
)

// A fatbin nvcc builds here and now (never a committed binary), with its
// PTX LZ4-compressed as nvcc 11.8 does, loads and runs on the emulator.
func TestNvccFatbinRuns(t *testing.T) {
	img := fatbintest.Nvcc(t, fatbintest.ScaleKernel, "arch=compute_80,code=compute_80")
	c := open(t, New(Config{MemoryBytes: 16 << 20}), 0, 0)
	m := must(c.ModuleLoad(img))(t)
	f := must(m.Function("kerf_scale"))(t)
	const n = 1000
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(i)
	}
	p := must(c.MemAlloc(4 * n))(t)
	ok(t, c.MemcpyHtoD(p, floatBytes(x), nil))
	params := binary.LittleEndian.AppendUint64(nil, p)
	params = binary.LittleEndian.AppendUint32(params, math.Float32bits(2.5))
	params = binary.LittleEndian.AppendUint32(params, n)
	ok(t, c.Launch(f, abi.LaunchConfig{Grid: one(8), Block: one(128)}, params, nil))
	got := make([]byte, 4*n)
	ok(t, c.MemcpyDtoH(got, p, nil))
	for i, v := range floats(got) {
		if v != x[i]*2.5 {
			t.Fatalf("x[%d] = %v, want %v", i, v, x[i]*2.5)
		}
	}
}

// printf in a kernel nvcc builds reaches Config.PrintfOutput.
func TestNvccPrintf(t *testing.T) {
	img := fatbintest.Nvcc(t, `#include <cstdio>
extern "C" __global__ void hello(int n) { if (threadIdx.x < n) printf("hi %d %.2f\n", threadIdx.x, 0.5 * threadIdx.x); }
`, "arch=compute_80,code=compute_80")
	var out testkit.SyncBuffer
	c := open(t, New(Config{MemoryBytes: 16 << 20, PrintfOutput: &out}), 0, 0)
	m := must(c.ModuleLoad(img))(t)
	f := must(m.Function("hello"))(t)
	ok(t, c.Launch(f, abi.LaunchConfig{Grid: one(1), Block: one(4)}, binary.LittleEndian.AppendUint32(nil, 2), nil))
	ok(t, c.Synchronize())
	if got, want := out.String(), "hi 0 0.00\nhi 1 0.50\n"; got != want {
		t.Fatalf("printed %q, want %q", got, want)
	}
}
