package emu

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/abi/fatbin"
	"github.com/kerf-edge/kerf/abi/fatbin/fatbintest"
	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/gpu/emu/kernels"
)

// These tests run the real kernels of gpu/emu/kernels through the PTX
// interpreter, end to end through the Context API.

// loadKernel loads kernels.PTX(file) into c and returns function name.
func loadKernel(t *testing.T, c *Context, file, name string) gpu.Function {
	t.Helper()
	src := kernels.PTX(file)
	if src == nil {
		t.Fatalf("no embedded kernel %q", file)
	}
	m := must(c.ModuleLoad(src))(t)
	return must(m.Function(name))(t)
}

// packParams packs args (uint64 or int32) as f's layout says.
func packParams(t *testing.T, f gpu.Function, args ...any) []byte {
	t.Helper()
	ps := must(f.Params())(t)
	if len(ps) != len(args) {
		t.Fatalf("%d params, %d args", len(ps), len(args))
	}
	var buf []byte
	for i, p := range ps {
		if need := int(p.Offset + p.Size); len(buf) < need {
			buf = append(buf, make([]byte, need-len(buf))...)
		}
		switch v := args[i].(type) {
		case uint64:
			binary.LittleEndian.PutUint64(buf[p.Offset:], v)
		case int32:
			binary.LittleEndian.PutUint32(buf[p.Offset:], uint32(v))
		case float32:
			binary.LittleEndian.PutUint32(buf[p.Offset:], math.Float32bits(v))
		}
	}
	return buf
}

func floats(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func floatBytes(f []float32) []byte {
	b := make([]byte, 4*len(f))
	for i, v := range f {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// vadd runs c = a + b for n elements on stream s and checks the result.
func runVadd(t *testing.T, c *Context, n int, s gpu.Stream) {
	t.Helper()
	vaddWith(t, c, loadKernel(t, c, "vadd", "vadd"), n, s)
}

// vaddWith runs vadd kernel f for n elements on stream s and checks the
// result.
func vaddWith(t *testing.T, c *Context, f gpu.Function, n int, s gpu.Stream) {
	t.Helper()
	a, b := make([]float32, n), make([]float32, n)
	for i := range n {
		a[i], b[i] = float32(i)*0.5, float32(n-i)*0.25
	}
	pa := must(c.MemAlloc(uint64(4 * n)))(t)
	pb := must(c.MemAlloc(uint64(4 * n)))(t)
	pc := must(c.MemAlloc(uint64(4 * n)))(t)
	ok(t, c.MemcpyHtoD(pa, floatBytes(a), s))
	ok(t, c.MemcpyHtoD(pb, floatBytes(b), s))
	const block = 128
	grid := uint32((n + block - 1) / block)
	ok(t, c.Launch(f, abi.LaunchConfig{Grid: one(grid), Block: one(block)},
		packParams(t, f, pa, pb, pc, int32(n)), s))
	out := make([]byte, 4*n)
	ok(t, c.MemcpyDtoH(out, pc, s))
	for i, v := range floats(out) {
		if v != a[i]+b[i] {
			t.Fatalf("vadd[%d] = %v, want %v", i, v, a[i]+b[i])
		}
	}
	for _, p := range []uint64{pa, pb, pc} {
		ok(t, c.MemFree(p))
	}
}

func TestVaddEndToEnd(t *testing.T) {
	b := New(Config{MemoryBytes: 64 << 20})
	c := open(t, b, 0, 0)
	runVadd(t, c, 1000, nil)
	s := must(c.StreamCreate(abi.StreamNonBlocking, 0))(t)
	runVadd(t, c, 4099, s)
	if c.BusyTime() <= 0 {
		t.Error("no busy time metered")
	}
}

// A fatbin container's PTX entry runs as the PTX itself would: plain or
// LZ4-compressed, picked from among entries for other architectures and
// cubins the emulator cannot run.
func TestVaddFromFatbin(t *testing.T) {
	vadd := kernels.PTX("vadd")
	newer := []byte(".version 8.0\n.target sm_90\nnot for this device\n")
	cubin := fatbintest.Entry{Kind: fatbin.KindELF, Arch: 80, Payload: fatbintest.ELF(256)}
	tests := []struct {
		name    string
		entries []fatbintest.Entry
	}{
		{"plain", []fatbintest.Entry{fatbintest.PTX(80, vadd, false)}},
		{"lz4", []fatbintest.Entry{fatbintest.PTX(80, vadd, true)}},
		{"among others", []fatbintest.Entry{cubin, fatbintest.PTX(90, newer, false), fatbintest.PTX(70, vadd, true), cubin}},
	}
	b := New(Config{MemoryBytes: 64 << 20})
	c := open(t, b, 0, 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := must(c.ModuleLoad(fatbintest.Container(tt.entries...)))(t)
			vaddWith(t, c, must(m.Function("vadd"))(t), 1000, nil)
			ok(t, m.Unload())
		})
	}
}

func TestMatmulEndToEnd(t *testing.T) {
	const M, N, K = 37, 29, 45
	b := New(Config{MemoryBytes: 64 << 20})
	c := open(t, b, 0, 0)
	f := loadKernel(t, c, "matmul", "matmul")
	A, B := make([]float32, M*K), make([]float32, K*N)
	for i := range A {
		A[i] = float32(i%7 - 3) // small integers: exact in float32
	}
	for i := range B {
		B[i] = float32(i%5 - 2)
	}
	pa := must(c.MemAlloc(4 * M * K))(t)
	pb := must(c.MemAlloc(4 * K * N))(t)
	pc := must(c.MemAlloc(4 * M * N))(t)
	s := must(c.StreamCreate(0, 0))(t)
	start := must(c.EventCreate(0))(t)
	end := must(c.EventCreate(0))(t)
	ok(t, c.MemcpyHtoD(pa, floatBytes(A), s))
	ok(t, c.MemcpyHtoD(pb, floatBytes(B), s))
	ok(t, start.Record(s))
	ok(t, c.Launch(f, abi.LaunchConfig{Grid: abi.Dim3{X: (N + 15) / 16, Y: (M + 15) / 16, Z: 1}, Block: abi.Dim3{X: 16, Y: 16, Z: 1}},
		packParams(t, f, pa, pb, pc, int32(M), int32(N), int32(K)), s))
	ok(t, end.Record(s))
	out := make([]byte, 4*M*N)
	ok(t, c.MemcpyDtoH(out, pc, s))
	got := floats(out)
	for i := range M {
		for j := range N {
			var want float32
			for k := range K {
				want += A[i*K+k] * B[k*N+j]
			}
			if got[i*N+j] != want {
				t.Fatalf("C[%d][%d] = %v, want %v", i, j, got[i*N+j], want)
			}
		}
	}
	ms, err := end.ElapsedSince(start)
	if err != nil || ms < 0 {
		t.Fatalf("elapsed %v, %v", ms, err)
	}
}

func TestOutOfBoundsKernelPoisonsOnlyItsContext(t *testing.T) {
	b := New(Config{MemoryBytes: 128 << 20})
	bad := open(t, b, 0, 0)
	good := open(t, b, 0, 0)
	f := loadKernel(t, bad, "oob", "oob_write")
	const n = 256
	p := must(bad.MemAlloc(4 * n))(t)
	// oob_write stores to p[i+n+2^24] for i < 256: make those addresses
	// another context's live memory, which must stay out of reach.
	victim := must(good.MemAlloc(65 << 20))(t)
	target := p + 4*(n+1<<24)
	if target < victim || target+4*n > victim+65<<20 {
		t.Fatalf("victim [%#x, +65MiB) does not cover the stray store at %#x", victim, target)
	}
	ok(t, bad.Launch(f, abi.LaunchConfig{Grid: one(2), Block: one(128)}, packParams(t, f, p, int32(n)), nil))
	wantCode(t, bad.Synchronize(), abi.ErrIllegalAddress)
	wantCode(t, bad.MemcpyDtoH(make([]byte, 4), p, nil), abi.ErrIllegalAddress)
	_, err := bad.MemAlloc(4)
	wantCode(t, err, abi.ErrIllegalAddress)

	runVadd(t, good, 777, nil)
	ok(t, good.Synchronize())
	stray := make([]byte, 4*n)
	ok(t, good.MemcpyDtoH(stray, target, nil))
	for i, v := range stray {
		if v != 0 {
			t.Fatalf("stray store reached the other context at byte %d", i)
		}
	}

	ok(t, bad.Close())
	ok(t, good.MemFree(victim))
	ok(t, good.Close())
	if got := b.UsedBytes(0); got != 0 {
		t.Errorf("UsedBytes = %d after Close", got)
	}
}

func TestAllEmbeddedKernelsLoad(t *testing.T) {
	b := New(Config{})
	c := open(t, b, 0, 0)
	for _, name := range kernels.Names() {
		m, err := c.ModuleLoad(kernels.PTX(name))
		if err != nil {
			t.Logf("kernel file %s does not load (yet): %v", name, err)
			continue
		}
		ok(t, m.Unload())
	}
}

func TestRealKernelAttributesAndSharedLimit(t *testing.T) {
	b := New(Config{})
	c := open(t, b, 0, 0)
	f := loadKernel(t, c, "matmul", "matmul")
	shared := must(f.Attribute(abi.FuncAttrSharedSizeBytes))(t)
	if shared != 2*16*16*4 {
		t.Errorf("matmul static shared = %d, want %d", shared, 2*16*16*4)
	}
	maxDyn := must(f.Attribute(abi.FuncAttrMaxDynamicShared))(t)
	if maxDyn != 48<<10-shared {
		t.Errorf("max dynamic shared = %d, want %d", maxDyn, 48<<10-shared)
	}
	ps := must(f.Params())(t)
	if len(ps) != 6 || ps[0] != (abi.ParamInfo{Offset: 0, Size: 8}) || ps[5] != (abi.ParamInfo{Offset: 32, Size: 4}) {
		t.Errorf("matmul params = %v", ps)
	}
	params := make([]byte, 36)
	cfg := abi.LaunchConfig{Grid: one(1), Block: abi.Dim3{X: 16, Y: 16, Z: 1}, SharedBytes: uint32(maxDyn) + 1}
	wantCode(t, c.Launch(f, cfg, params, nil), abi.ErrInvalidValue)
	wantCode(t, c.Launch(f, abi.LaunchConfig{Grid: one(1), Block: one(16)}, params[:35], nil), abi.ErrInvalidValue)
	ok(t, c.Synchronize())
}

func TestRealKernelsConcurrentContexts(t *testing.T) {
	b := New(Config{MemoryBytes: 64 << 20, SMs: 2})
	ctxs := []*Context{open(t, b, 0, 0), open(t, b, 0, 0)}
	done := make(chan struct{})
	for i, c := range ctxs {
		go func() {
			defer func() { done <- struct{}{} }()
			s, err := c.StreamCreate(uint32(i), 0)
			if err != nil {
				t.Error(err)
				return
			}
			for range 3 {
				runVadd(t, c, 2000+i, s)
			}
		}()
	}
	for range ctxs {
		<-done
	}
	for _, c := range ctxs {
		ok(t, c.Close())
	}
	if got := b.UsedBytes(0); got != 0 {
		t.Errorf("UsedBytes = %d after Close", got)
	}
}

// TestStencilGlobals runs a kernel that reads a .const table and counts
// its calls in a .global, both reached through Module.Global.
func TestStencilGlobals(t *testing.T) {
	const W, H = 19, 13
	b := New(Config{MemoryBytes: 16 << 20})
	c := open(t, b, 0, 0)
	m := must(c.ModuleLoad(kernels.PTX("stencil")))(t)
	f := must(m.Function("stencil5"))(t)
	wPtr, wSize := must2(m.Global("kerf_stencil_w"))(t)
	calls, callsSize := must2(m.Global("kerf_stencil_calls"))(t)
	if wSize != 20 || callsSize != 4 {
		t.Fatalf("global sizes %d, %d", wSize, callsSize)
	}
	in := make([]float32, W*H)
	for i := range in {
		in[i] = float32(i%11 - 5)
	}
	pin := must(c.MemAlloc(4 * W * H))(t)
	pout := must(c.MemAlloc(4 * W * H))(t)
	ok(t, c.MemcpyHtoD(pin, floatBytes(in), nil))
	run := func(w [5]float32) {
		t.Helper()
		ok(t, c.Launch(f, abi.LaunchConfig{Grid: abi.Dim3{X: (W + 7) / 8, Y: (H + 7) / 8, Z: 1}, Block: abi.Dim3{X: 8, Y: 8, Z: 1}},
			packParams(t, f, pin, pout, int32(W), int32(H)), nil))
		raw := make([]byte, 4*W*H)
		ok(t, c.MemcpyDtoH(raw, pout, nil))
		out := floats(raw)
		for y := range H {
			for x := range W {
				i := y*W + x
				want := in[i]
				if x > 0 && y > 0 && x < W-1 && y < H-1 {
					want = w[0]*in[i] + w[1]*in[i-1] + w[2]*in[i+1] + w[3]*in[i-W] + w[4]*in[i+W]
				}
				if out[i] != want {
					t.Fatalf("out[%d][%d] = %v, want %v", y, x, out[i], want)
				}
			}
		}
	}
	run([5]float32{0.5, 0.125, 0.125, 0.125, 0.125}) // the initialiser
	newW := [5]float32{1, 2, -1, 0.5, 4}
	ok(t, c.MemcpyHtoD(wPtr, floatBytes(newW[:]), nil))
	run(newW)
	cnt := make([]byte, 4)
	ok(t, c.MemcpyDtoH(cnt, calls, nil))
	if n := binary.LittleEndian.Uint32(cnt); n != 2 {
		t.Errorf("kerf_stencil_calls = %d, want 2", n)
	}
	ok(t, m.Unload())
	ok(t, c.MemFree(pin))
	ok(t, c.MemFree(pout))
	if got := b.UsedBytes(0); got != 0 {
		t.Errorf("UsedBytes = %d after unload and frees", got)
	}
}

func must2[A, B any](a A, b B, err error) func(t *testing.T) (A, B) {
	return func(t *testing.T) (A, B) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}
