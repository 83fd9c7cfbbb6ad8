package ptx

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/abi"
)

// loadNvcc compiles and loads corpus modules.
func loadNvcc(t *testing.T, names ...string) map[string]*Module {
	t.Helper()
	srcs := nvccPTX(t, t.TempDir(), names)
	out := map[string]*Module{}
	for _, n := range names {
		m, err := Load(srcs[n])
		if err != nil {
			t.Fatalf("load %s: %v", n, err)
		}
		out[n] = m
	}
	return out
}

func mustKernel(t *testing.T, m *Module, name string) *Kernel {
	t.Helper()
	k, err := m.Kernel(name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// globalsOf allocates and initialises m's globals in mem.
func globalsOf(mem *testMem, m *Module) map[string]uint64 {
	out := map[string]uint64{}
	for _, g := range m.Globals() {
		a := mem.alloc(int(g.Size))
		copy(mem.bytes(a), g.Init)
		out[g.Name] = a
	}
	return out
}

// Calls as nvcc emits them run: recursion through the per-thread stack,
// function pointers in a global table, virtual functions, structs
// passed and returned by value, local arrays in callees, printf and
// assert.
func TestNvccCalls(t *testing.T) {
	ms := loadNvcc(t, "recursion", "funcptr", "virtual", "noinline_calls", "printf", "assert")
	r := rand.New(rand.NewPCG(9, 10))
	const n = 100

	t.Run("recursion", func(t *testing.T) {
		mem := newTestMem()
		in := make([]uint32, n)
		for i := range in {
			in[i] = r.Uint32()
		}
		din, dout, df := mem.u32s(in), mem.alloc(4*n), mem.alloc(8*n)
		k := mustKernel(t, ms["recursion"], "recurse")
		if err := k.Run(launch(k, mem, [3]uint32{4, 1, 1}, [3]uint32{32, 1, 1}, 0, packParams(t, k, din, dout, df, n), 2)); err != nil {
			t.Fatal(err)
		}
		fib := func(x int) int {
			a, b := 0, 1
			for ; x > 0; x-- {
				a, b = b, a+b
			}
			return a
		}
		for i, v := range mem.getU32(dout, n) {
			x := int(in[i] & 15)
			f := uint64(1)
			for j := 2; j <= x; j++ {
				f *= uint64(j)
			}
			if int(v) != fib(x) || mem.getU64(df, n)[i] != f {
				t.Fatalf("fib/fact(%d) = %d/%d, want %d/%d", x, v, mem.getU64(df, n)[i], fib(x), f)
			}
		}
	})
	t.Run("funcptr", func(t *testing.T) {
		mem := newTestMem()
		m := ms["funcptr"]
		sel := make([]uint32, n)
		for i := range sel {
			sel[i] = uint32(r.IntN(30))
		}
		a, b := randF32(r, n, -5, 5), randF32(r, n, -5, 5)
		ds, da, db, dc := mem.u32s(sel), mem.f32s(a), mem.f32s(b), mem.alloc(4*n)
		k := mustKernel(t, m, "apply")
		l := launch(k, mem, [3]uint32{2, 1, 1}, [3]uint32{64, 1, 1}, 0, packParams(t, k, ds, da, db, dc, n), 1)
		l.Globals = globalsOf(mem, m)
		if err := k.Run(l); err != nil {
			t.Fatal(err)
		}
		for i, c := range mem.getF32(dc, n) {
			want := [3]float32{a[i] + b[i], a[i] * b[i], max(a[i], b[i])}[sel[i]%3]
			if c != want {
				t.Fatalf("apply[%d] op %d = %v, want %v", i, sel[i]%3, c, want)
			}
		}
	})
	t.Run("virtual", func(t *testing.T) {
		mem := newTestMem()
		m := ms["virtual"]
		x := randF32(r, n, 0, 3)
		dx, dy := mem.f32s(x), mem.alloc(4*n)
		k := mustKernel(t, m, "areas")
		l := launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{128, 1, 1}, 0, packParams(t, k, dx, dy, n), 1)
		l.Globals = globalsOf(mem, m)
		if err := k.Run(l); err != nil {
			t.Fatal(err)
		}
		for i, y := range mem.getF32(dy, n) {
			want := 3.14159 * x[i] * x[i]
			if i&1 == 1 {
				want = x[i] * x[i]
			}
			if !closeF32(y, want, 1e-6) {
				t.Fatalf("area[%d] = %v, want %v", i, y, want)
			}
		}
	})
	t.Run("noinline", func(t *testing.T) {
		mem := newTestMem()
		m := ms["noinline_calls"]
		x := randF32(r, n, -3, 3)
		a := make([]uint32, n+8)
		for i := range a {
			a[i] = uint32(r.IntN(1000))
		}
		dx, dy, da, db := mem.f32s(x), mem.f32s(make([]float32, n)), mem.u32s(a), mem.alloc(4*n)
		k := mustKernel(t, m, "calls")
		if err := k.Run(launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{128, 1, 1}, 0, packParams(t, k, dx, dy, da, db, n), 1)); err != nil {
			t.Fatal(err)
		}
		y, b := mem.getF32(dy, n), mem.getU32(db, n)
		for i := range n {
			if want := min(max(x[i], -1), 1); y[i] != want {
				t.Fatalf("y[%d] = %v, want %v", i, y[i], want)
			}
			cnt := 1 + i&3
			var buf [8]uint32
			for j := range buf {
				buf[j] = a[i+j%cnt]
			}
			var s uint32
			for j := range 8 {
				s += buf[(j*3)&7]
			}
			if b[i] != s {
				t.Fatalf("b[%d] = %d, want %d", i, b[i], s)
			}
		}
	})
	t.Run("printf", func(t *testing.T) {
		mem := newTestMem()
		m := ms["printf"]
		k := mustKernel(t, m, "hello")
		var out bytes.Buffer
		l := launch(k, mem, [3]uint32{2, 1, 1}, [3]uint32{4, 1, 1}, 0, packParams(t, k, 3), 1)
		l.Globals, l.Output = globalsOf(mem, m), &out
		if err := k.Run(l); err != nil {
			t.Fatal(err)
		}
		want := "thread 0 of block 0: 0.000000\nthread 1 of block 0: 1.500000\nthread 2 of block 0: 3.000000\n" +
			"thread 0 of block 1: 0.000000\nthread 1 of block 1: 1.500000\nthread 2 of block 1: 3.000000\n"
		if out.String() != want {
			t.Fatalf("printed %q, want %q", out.String(), want)
		}
	})
	t.Run("assert", func(t *testing.T) {
		mem := newTestMem()
		m := ms["assert"]
		k := mustKernel(t, m, "checked")
		v := []uint32{1, 2, 3, math.MaxUint32, 5}
		l := launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{32, 1, 1}, 0, packParams(t, k, mem.u32s(v), 3), 1)
		l.Globals = globalsOf(mem, m)
		if err := k.Run(l); err != nil {
			t.Fatalf("passing assertions: %v", err)
		}
		l.Params = packParams(t, k, mem.u32s(v), len(v))
		err := k.Run(l)
		if abi.ResultOf(err) != abi.ErrIllegalInstruction || !strings.Contains(err.Error(), "a[i] >= 0") {
			t.Fatalf("failing assertion: %v", err)
		}
	})
}

// 8- and 16-bit integer code, dp4a and redux.sync agree with Go
// references of the same C expressions on random inputs.
func TestNvccNarrowAndWarpOps(t *testing.T) {
	ms := loadNvcc(t, "small_ints", "dp4a", "warp_reduce_sync")
	r := rand.New(rand.NewPCG(11, 12))
	t.Run("small_ints", func(t *testing.T) {
		const n = 200
		mem := newTestMem()
		da, db, dc, dd := mem.alloc(n), mem.alloc(n), mem.alloc(2*n), mem.alloc(2*n)
		for _, p := range []uint64{da, db, dc, dd} {
			b := mem.bytes(p)
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			if p == dc { // edge values
				copy(b, []byte{0x00, 0x80, 0xff, 0x7f, 0x01, 0x00})
			}
		}
		o8, o16, u16 := mem.alloc(2*n), mem.alloc(4*n), mem.alloc(2*n)
		k := mustKernel(t, ms["small_ints"], "small_ints")
		if err := k.Run(launch(k, mem, [3]uint32{2, 1, 1}, [3]uint32{128, 1, 1}, 0, packParams(t, k, da, db, dc, dd, o8, o16, u16, n), 1)); err != nil {
			t.Fatal(err)
		}
		A, B, C, D := mem.bytes(da), mem.bytes(db), mem.bytes(dc), mem.bytes(dd)
		O8, O16, U16 := mem.bytes(o8), mem.bytes(o16), mem.bytes(u16)
		s16 := func(b []byte, i int) int { return int(int16(uint16(b[2*i]) | uint16(b[2*i+1])<<8)) }
		for i := range n {
			x, y := int(int8(A[i])), int(int8(B[i]))
			s, tt := s16(C, i), s16(D, i)
			us, ut := uint16(s), uint16(tt)
			w8 := int8(x*y + (x & y) - (x ^ 3))
			w16 := int16(s*tt - (s >> 2) + (tt | 5))
			wu := ut / (us | 1)
			if us > ut {
				wu = us - ut
			}
			got := [5]int{int(int8(O8[i])), s16(O16, i), s16(U16, i), s16(O16, n+i), int(int8(O8[n+i]))}
			want := [5]int{int(w8), int(w16), int(int16(wu)), min(s, tt), max(x, y)}
			if got != want {
				t.Fatalf("i=%d x=%d y=%d s=%d t=%d: got %v, want %v", i, x, y, s, tt, got, want)
			}
		}
	})
	t.Run("dp4a", func(t *testing.T) {
		const n = 64
		mem := newTestMem()
		a, b := make([]uint32, n), make([]uint32, n)
		for i := range a {
			a[i], b[i] = r.Uint32(), r.Uint32()
		}
		da, db, do, du := mem.u32s(a), mem.u32s(b), mem.alloc(4*n), mem.alloc(4*n)
		k := mustKernel(t, ms["dp4a"], "dot8")
		if err := k.Run(launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{64, 1, 1}, 0, packParams(t, k, da, db, do, du, n), 1)); err != nil {
			t.Fatal(err)
		}
		out, uout := mem.getU32(do, n), mem.getU32(du, n)
		for i := range n {
			var s, u int32 = int32(i), 7
			for j := 0; j < 4; j++ {
				s += int32(int8(a[i]>>(8*j))) * int32(int8(b[i]>>(8*j)))
				u += int32(uint8(a[i]>>(8*j))) * int32(uint8(b[i]>>(8*j)))
			}
			lo, hi := int32(1), int32(2)
			for j := 0; j < 2; j++ {
				lo += int32(int16(a[i]>>(16*j))) * int32(int8(b[i]>>(8*j)))
				hi += int32(uint16(a[i]>>(16*j))) * int32(uint8(b[i]>>(8*(j+2))))
			}
			if out[i] != uint32(s) || uout[i] != uint32(u+lo+hi) {
				t.Fatalf("dp[%d] = %d, %d; want %d, %d", i, int32(out[i]), uout[i], s, uint32(u+lo+hi))
			}
		}
	})
	t.Run("redux", func(t *testing.T) {
		mem := newTestMem()
		in := make([]uint32, 32)
		for i := range in {
			in[i] = r.Uint32()
		}
		din, dout := mem.u32s(in), mem.alloc(4*4*32)
		k := mustKernel(t, ms["warp_reduce_sync"], "warp_redux")
		if err := k.Run(launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{32, 1, 1}, 0, packParams(t, k, din, dout), 1)); err != nil {
			t.Fatal(err)
		}
		var add, or, xor uint32
		and, mn, mx := ^uint32(0), ^uint32(0), int32(math.MinInt32)
		for _, v := range in {
			add += v
			and &= v
			or |= v
			xor ^= v
			mn = min(mn, v)
			mx = max(mx, int32(v))
		}
		out := mem.getU32(dout, 4*32)
		for l := range 32 {
			if got, want := [4]uint32(out[4*l:4*l+4]), [4]uint32{add, mn, uint32(mx), or ^ and ^ xor}; got != want {
				t.Fatalf("lane %d: %v, want %v", l, got, want)
			}
		}
	})
}

// Warp intrinsics built by nvcc agree with their definitions: ballot,
// any, all, every shuffle mode (one with a width), match.any and
// match.all, activemask; and atomics of every kind, 16-bit CAS
// included, add up.
func TestNvccWarpAndAtomics(t *testing.T) {
	ms := loadNvcc(t, "warp_intrinsics", "atomics")
	r := rand.New(rand.NewPCG(19, 20))
	t.Run("warp", func(t *testing.T) {
		mem := newTestMem()
		in := make([]uint32, 32)
		for i := range in {
			in[i] = uint32(r.IntN(300) - 150)
		}
		din, dout := mem.u32s(in), mem.alloc(4*8*32)
		k := mustKernel(t, ms["warp_intrinsics"], "warp_ops")
		if err := k.Run(launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{32, 1, 1}, 0, packParams(t, k, din, dout), 1)); err != nil {
			t.Fatal(err)
		}
		out := mem.getU32(dout, 8*32)
		v := func(l int) int32 { return int32(in[l]) }
		var ballot uint32
		anyBig, allSmall := 0, 1
		for l := range 32 {
			if v(l) > 0 {
				ballot |= 1 << l
			}
			if v(l) > 100 {
				anyBig = 1
			}
			if v(l) <= -100 {
				allSmall = 0
			}
		}
		for l := range 32 {
			up, dn := l, l
			if l >= 3 {
				up = l - 3
			}
			if l%16+5 < 16 {
				dn = l + 5
			}
			var m, parity uint32
			for j := range 32 {
				if in[j]&3 == in[l]&3 {
					m |= 1 << j
				}
				if in[j]&1 == in[0]&1 {
					parity |= 1 << j
				}
			}
			allEq, ma := uint32(0), uint32(0)
			if parity == fullMask {
				allEq, ma = 1, fullMask
			}
			want := [8]uint32{ballot, uint32(anyBig + 2*allSmall), in[up], in[dn], in[(l*7)&31], in[l^9], m, ma + allEq + fullMask}
			if got := [8]uint32(out[8*l : 8*l+8]); got != want {
				t.Fatalf("lane %d: %v, want %v", l, got, want)
			}
		}
	})
	t.Run("atomics", func(t *testing.T) {
		mem := newTestMem()
		const n = 1000
		i32, u32, u64 := mem.alloc(4*4), mem.u32s([]uint32{fullMask, 0, 0, 0, 0, 0, fullMask}), mem.alloc(8*5)
		f32s, f64s := mem.alloc(4), mem.alloc(8)
		binary.LittleEndian.PutUint64(mem.bytes(u64)[8:], math.MaxUint64)
		m := ms["atomics"]
		k := mustKernel(t, m, "atomics")
		if err := k.Run(launch(k, mem, [3]uint32{8, 1, 1}, [3]uint32{128, 1, 1}, 0, packParams(t, k, i32, u32, u64, f32s, f64s, n), 3)); err != nil {
			t.Fatal(err)
		}
		sum := int32(n * (n - 1) / 2)
		if got := mem.getU32(i32, 4); int32(got[0]) != sum || int32(got[1]) != -sum || int32(got[2]) != -(n-1) || int32(got[3]) != n-1 {
			t.Fatalf("int32 atomics: %v", got)
		}
		if got := mem.getU32(u32, 7); got[0] != 0 || got[1] != fullMask {
			t.Fatalf("and/or: %#x %#x", got[0], got[1])
		}
		if got := mem.getU64(u64, 5); got[0] != uint64(sum) || got[1] != 0 || got[2] != n-1 || int64(got[4]) != -(n-1) {
			t.Fatalf("u64 atomics: %v", got)
		}
		if got := mem.getF32(f32s, 1)[0]; got != n*0.5 {
			t.Fatalf("f32 add: %v", got)
		}
		if got := math.Float64frombits(mem.getU64(f64s, 1)[0]); got != n*0.25 {
			t.Fatalf("f64 add: %v", got)
		}
		// one worker: the CAS loop's plain load of what other blocks
		// update atomically is a data race for Go's race detector
		k = mustKernel(t, m, "atomic_cas16")
		p := mem.alloc(4)
		if err := k.Run(launch(k, mem, [3]uint32{4, 1, 1}, [3]uint32{100, 1, 1}, 0, packParams(t, k, p, 333), 1)); err != nil {
			t.Fatal(err)
		}
		if got := mem.getU32(p, 1)[0]; got != 333 {
			t.Fatalf("16-bit CAS loop counted %d, want 333 (the high half untouched)", got)
		}
	})
}

// Half-precision kernels built by nvcc (cuda_fp16.h, cuda_bf16.h) run:
// each result is the correctly rounded value of the C expression,
// checked with float64 arithmetic and the neighbouring halves.
func TestNvccHalf(t *testing.T) {
	ms := loadNvcc(t, "half_math", "bf16_math")
	r := rand.New(rand.NewPCG(21, 22))
	const n = 256
	h := fmtF16
	half := func(v float64) uint16 { return h.encode(v, rndRn) }
	t.Run("haxpy", func(t *testing.T) {
		mem := newTestMem()
		x, y := mem.alloc(2*n), mem.alloc(2*n)
		xs, ys := mem.bytes(x), mem.bytes(y)
		for i := range n {
			putN(xs[2*i:], 2, uint64(half(r.NormFloat64()*10)))
			putN(ys[2*i:], 2, uint64(half(r.NormFloat64()*10)))
		}
		y0 := append([]byte(nil), ys...)
		a := half(1.5)
		k := mustKernel(t, ms["half_math"], "haxpy")
		params := packParams(t, k, n, uint32(a), x, y)
		if err := k.Run(launch(k, mem, [3]uint32{2, 1, 1}, [3]uint32{128, 1, 1}, 0, params, 1)); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			xv, yv := h.decode(uint16(getN(xs[2*i:], 2))), h.decode(uint16(getN(y0[2*i:], 2)))
			// 1.5*x is exact in float64, and so is the sum: one rounding
			want := half(1.5*xv + yv)
			if got := uint16(getN(ys[2*i:], 2)); got != want {
				t.Fatalf("haxpy[%d]: %#x, want %#x", i, got, want)
			}
		}
	})
	t.Run("bf16", func(t *testing.T) {
		mem := newTestMem()
		in := randF32(r, n, -100, 100)
		din, dout, dback := mem.f32s(in), mem.alloc(2*n), mem.alloc(4*n)
		k := mustKernel(t, ms["bf16_math"], "bf16ops")
		if err := k.Run(launch(k, mem, [3]uint32{2, 1, 1}, [3]uint32{128, 1, 1}, 0, packParams(t, k, n, din, dout, dback), 1)); err != nil {
			t.Fatal(err)
		}
		bf := fmtBF16
		out, back := mem.bytes(dout), mem.getF32(dback, n)
		for i := range n {
			b := bf.decode(bf.encode(float64(in[i]), rndRn))
			c := bf.decode(bf.encode(b*b, rndRn))
			want := bf.encode(c+b, rndRn)
			if got := uint16(getN(out[2*i:], 2)); got != want || float64(back[i]) != bf.decode(want) {
				t.Fatalf("bf16[%d] of %v: %#x (%v), want %#x", i, in[i], got, back[i], want)
			}
		}
	})
}
