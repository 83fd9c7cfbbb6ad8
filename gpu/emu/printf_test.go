package emu

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/abi/fatbin/fatbintest"
)

// A context keeps its kernels' printf output, in order, until TakePrintf,
// and drops the printf calls that do not fit its FIFO.
func TestContextPrintfFIFO(t *testing.T) {
	img := fatbintest.Nvcc(t, `#include <cstdio>
extern "C" __global__ void hello(int base) { printf("line %d\n", base + (int)threadIdx.x); }
`, "arch=compute_80,code=compute_80")
	c := open(t, New(Config{MemoryBytes: 16 << 20}), 0, 0)
	m := must(c.ModuleLoad(img))(t)
	f := must(m.Function("hello"))(t)
	launch := func(base, threads uint32) {
		t.Helper()
		ok(t, c.Launch(f, abi.LaunchConfig{Grid: one(1), Block: one(threads)}, binary.LittleEndian.AppendUint32(nil, base), nil))
	}
	lines := func(from, n int) string {
		var b strings.Builder
		for i := from; i < from+n; i++ {
			fmt.Fprintf(&b, "line %d\n", i)
		}
		return b.String()
	}

	launch(0, 4)
	launch(4, 4)
	ok(t, c.Synchronize())
	if got, want := string(c.TakePrintf()), lines(0, 8); got != want {
		t.Fatalf("took %q, want %q", got, want)
	}
	if got := c.TakePrintf(); len(got) != 0 {
		t.Fatalf("second take: %q, want nothing", got)
	}

	// "line 10\n" is 8 bytes: a 20-byte FIFO holds two lines
	c.SetPrintfFIFOSize(20)
	launch(10, 4)
	ok(t, c.Synchronize())
	if got, want := string(c.TakePrintf()), lines(10, 2); got != want {
		t.Fatalf("with a 20-byte FIFO took %q, want %q", got, want)
	}
}

// SetLimit sizes the printf FIFO, accepts the limits that bound nothing
// here, and refuses the others.
func TestContextSetLimit(t *testing.T) {
	c := open(t, New(Config{MemoryBytes: 16 << 20}), 0, 0)
	ok(t, c.SetLimit(abi.LimitPrintfFIFOSize, 20))
	// "line 10\n" is 8 bytes: the third does not fit in 20.
	for i := range 3 {
		fmt.Fprintf(&c.printf, "line %d\n", 10+i)
	}
	if got, want := string(c.TakePrintf()), "line 10\nline 11\n"; got != want {
		t.Fatalf("after SetLimit(printf FIFO, 20) took %q, want %q", got, want)
	}
	ok(t, c.SetLimit(abi.LimitStackSize, 4096))
	ok(t, c.SetLimit(abi.LimitMallocHeapSize, 1<<20))
	for _, l := range []uint32{abi.LimitMaxL2FetchGranularity, 99} {
		if err := c.SetLimit(l, 1); abi.ResultOf(err) != abi.ErrUnsupportedLimit {
			t.Errorf("SetLimit(%d): %v, want CUDA_ERROR_UNSUPPORTED_LIMIT", l, err)
		}
	}
}
