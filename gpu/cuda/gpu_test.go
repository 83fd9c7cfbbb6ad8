//go:build cgo

package cuda

// These tests need an NVIDIA GPU and driver (CUDA 12.4+); elsewhere they
// skip with "no NVIDIA driver". They run the emulator's test kernels
// (gpu/emu/kernels PTX) on the real device.

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/gpu/emu/kernels"
)

// realContext opens a context on device 0 of the real driver, or skips.
func realContext(t *testing.T, limit uint64) *Context {
	t.Helper()
	b, err := New(Config{})
	switch {
	case errors.Is(err, ErrNoDriver), errors.Is(err, ErrNoDevice):
		t.Skip(err)
	case errors.Is(err, ErrDriverTooOld):
		t.Skip(err)
	case err != nil:
		t.Fatal(err)
	}
	g, err := b.Open(0, limit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g.(*Context)
}

func loadKernel(t *testing.T, c *Context, file, name string) gpu.Function {
	t.Helper()
	m, err := c.ModuleLoad(kernels.PTX(file))
	if err != nil {
		t.Fatalf("loading %s: %v", file, err)
	}
	f, err := m.Function(name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// pack lays out args (uint64 pointers, int32, float32) as f's
// cuFuncGetParamInfo layout says.
func pack(t *testing.T, f gpu.Function, args ...any) []byte {
	t.Helper()
	ps, err := f.Params()
	if err != nil || len(ps) != len(args) {
		t.Fatalf("params %v (%v) for %d args", ps, err, len(args))
	}
	buf := make([]byte, ps[len(ps)-1].Offset+ps[len(ps)-1].Size)
	for i, a := range args {
		p := buf[ps[i].Offset:]
		switch v := a.(type) {
		case uint64:
			binary.LittleEndian.PutUint64(p, v)
		case int32:
			binary.LittleEndian.PutUint32(p, uint32(v))
		case float32:
			binary.LittleEndian.PutUint32(p, math.Float32bits(v))
		}
	}
	return buf
}

func f32bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func bytesf32(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func upload(t *testing.T, c *Context, v []float32) uint64 {
	t.Helper()
	p, err := c.MemAlloc(uint64(4 * len(v)))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.MemcpyHtoD(p, f32bytes(v), nil); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGPUVadd(t *testing.T) {
	c := realContext(t, 0)
	f := loadKernel(t, c, "vadd", "vadd")
	const n = 1 << 20
	a, b := make([]float32, n), make([]float32, n)
	for i := range a {
		a[i], b[i] = float32(i), float32(2*i)+0.5
	}
	pa, pb := upload(t, c, a), upload(t, c, b)
	pc, err := c.MemAlloc(4 * n)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Memset(pc, 0xffffffff, 4, n, nil); err != nil {
		t.Fatal(err)
	}
	cfg := abi.LaunchConfig{Grid: abi.Dim3{X: n / 256, Y: 1, Z: 1}, Block: abi.Dim3{X: 256, Y: 1, Z: 1}}
	if err := c.Launch(f, cfg, pack(t, f, pa, pb, pc, int32(n)), nil); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 4*n)
	if err := c.MemcpyDtoH(out, pc, nil); err != nil {
		t.Fatal(err)
	}
	for i, x := range bytesf32(out) {
		if x != a[i]+b[i] {
			t.Fatalf("c[%d] = %v, want %v", i, x, a[i]+b[i])
		}
	}
	if c.BusyTime() <= 0 {
		t.Errorf("BusyTime %v after a launch", c.BusyTime())
	}
}

func TestGPUMatmulOnStream(t *testing.T) {
	c := realContext(t, 0)
	f := loadKernel(t, c, "matmul", "matmul")
	const M, N, K = 96, 80, 112
	r := rand.New(rand.NewPCG(1, 2))
	A, B := make([]float32, M*K), make([]float32, K*N)
	for i := range A {
		A[i] = r.Float32() - 0.5
	}
	for i := range B {
		B[i] = r.Float32() - 0.5
	}
	pa, pb := upload(t, c, A), upload(t, c, B)
	pc, err := c.MemAlloc(4 * M * N)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.StreamCreate(abi.StreamNonBlocking, 0)
	if err != nil {
		t.Fatal(err)
	}
	e0, _ := c.EventCreate(abi.EventDefault)
	e1, _ := c.EventCreate(abi.EventDefault)
	cfg := abi.LaunchConfig{Grid: abi.Dim3{X: (N + 15) / 16, Y: (M + 15) / 16, Z: 1}, Block: abi.Dim3{X: 16, Y: 16, Z: 1}}
	if err := e0.Record(s); err != nil {
		t.Fatal(err)
	}
	if err := c.Launch(f, cfg, pack(t, f, pa, pb, pc, int32(M), int32(N), int32(K)), s); err != nil {
		t.Fatal(err)
	}
	if err := e1.Record(s); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 4*M*N)
	if err := c.MemcpyDtoH(out, pc, s); err != nil {
		t.Fatal(err)
	}
	if ms, err := e1.ElapsedSince(e0); err != nil || ms < 0 {
		t.Errorf("elapsed %v, %v", ms, err)
	}
	got := bytesf32(out)
	for i := range M {
		for j := range N {
			var want float64
			for k := range K {
				want += float64(A[i*K+k]) * float64(B[k*N+j])
			}
			if d := math.Abs(float64(got[i*N+j]) - want); d > 1e-3 {
				t.Fatalf("C[%d][%d] = %v, want %v", i, j, got[i*N+j], want)
			}
		}
	}
	if err := s.Destroy(); err != nil {
		t.Fatal(err)
	}
}

func TestGPUQuota(t *testing.T) {
	c := realContext(t, 0)
	base := c.MemUsed()
	t.Logf("context footprint %d MiB", base>>20)
	if base == 0 {
		t.Error("the context's own footprint was not measured")
	}
	loadKernel(t, c, "matmul", "matmul")
	t.Logf("after a module load %d MiB", c.MemUsed()>>20)
	if err := c.SetMemLimit(c.MemUsed() + 64<<20); err != nil {
		t.Fatal(err)
	}
	p, err := c.MemAlloc(48 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.MemAlloc(32 << 20); abi.ResultOf(err) != abi.ErrOutOfMemory {
		t.Fatalf("allocation past the quota: %v", err)
	}
	if free, total := c.MemInfo(); free != 16<<20 || total != c.MemUsed()+16<<20 {
		t.Errorf("MemInfo = %d, %d", free, total)
	}
	if err := c.MemFree(p); err != nil {
		t.Fatal(err)
	}
	if _, err := c.MemAlloc(32 << 20); err != nil {
		t.Fatalf("after free: %v", err)
	}
}

func TestGPUIllegalAddress(t *testing.T) {
	c := realContext(t, 0)
	f := loadKernel(t, c, "oob", "oob_write")
	p, err := c.MemAlloc(4096)
	if err != nil {
		t.Fatal(err)
	}
	cfg := abi.LaunchConfig{Grid: abi.Dim3{X: 1, Y: 1, Z: 1}, Block: abi.Dim3{X: 32, Y: 1, Z: 1}}
	if err := c.Launch(f, cfg, pack(t, f, p, int32(1024)), nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Synchronize(); abi.ResultOf(err) != abi.ErrIllegalAddress {
		t.Fatalf("Synchronize after an out-of-bounds kernel: %v", err)
	}
	if _, err := c.MemAlloc(1); abi.ResultOf(err) != abi.ErrIllegalAddress {
		t.Fatalf("the fault should be sticky: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("closing the poisoned context: %v", err)
	}
	// A fresh context on the same device is unaffected.
	c2 := realContext(t, 0)
	if _, err := c2.MemAlloc(1 << 20); err != nil {
		t.Fatalf("fresh context after a neighbour's fault: %v", err)
	}
}
