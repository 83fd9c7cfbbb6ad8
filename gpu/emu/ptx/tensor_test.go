package ptx

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/abi"
)

// eighths returns n random multiples of 1/8 in [-4, 4] in the
// format f: sums of their products are exact in float32.
func eighths(r *rand.Rand, f halfFormat, n int) []uint16 {
	out := make([]uint16, n)
	for i := range out {
		out[i] = f.encode(float64(r.IntN(65)-32)/8, rndRn)
	}
	return out
}

// normalHalves returns n random normal values rounded to the format f.
func normalHalves(r *rand.Rand, f halfFormat, n int) []uint16 {
	out := make([]uint16, n)
	for i := range out {
		out[i] = f.encode(r.NormFloat64()*4, rndRn)
	}
	return out
}

func (m *testMem) halves(v []uint16) uint64 {
	a := m.alloc(2 * len(v))
	b := m.bytes(a)
	for i, x := range v {
		putN(b[2*i:], 2, uint64(x))
	}
	return a
}

func (m *testMem) getHalves(a uint64, n int) []uint16 {
	b := m.bytes(a)
	out := make([]uint16, n)
	for i := range out {
		out[i] = uint16(getN(b[2*i:], 2))
	}
	return out
}

// The wmma GEMM built by nvcc (mma.h, m16n16k16) computes C = A*B + C
// with f32 accumulators on f16 and bf16, and C = A*B with f16 ones, for
// both layouts of A and B: each mma_sync's result is its exact sum
// rounded once.
func TestNvccWmma(t *testing.T) {
	ms := loadNvcc(t, "wmma_gemm")
	r := rand.New(rand.NewPCG(31, 32))
	const m, n, k = 32, 48, 64
	h := fmtF16
	run := func(t *testing.T, name string, args ...any) {
		t.Helper()
		kn := mustKernel(t, ms["wmma_gemm"], name)
		warps := (m / 16) * (n / 16)
		if err := kn.Run(launch(kn, args[0].(*testMem), [3]uint32{uint32(warps / 2), 1, 1}, [3]uint32{64, 1, 1}, 0, packParams(t, kn, args[1:]...), 1)); err != nil {
			t.Fatal(err)
		}
	}
	// a is row-major; b column-major (f16) or row-major (bf16)
	for _, tc := range []struct {
		name, kernel string
		f            halfFormat
		gen          func(*rand.Rand, halfFormat, int) []uint16
		exact        bool
	}{
		{"f32/eighths", "wmma_f32", h, eighths, true},
		{"f32/normal", "wmma_f32", h, normalHalves, false},
		{"bf16/eighths", "wmma_bf16", fmtBF16, eighths, true},
		{"bf16/normal", "wmma_bf16", fmtBF16, normalHalves, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := newTestMem()
			a, b := tc.gen(r, tc.f, m*k), tc.gen(r, tc.f, k*n)
			bAt := func(kk, j int) uint16 { return b[j*k+kk] }
			if tc.kernel == "wmma_bf16" {
				bAt = func(kk, j int) uint16 { return b[kk*n+j] }
			}
			c0 := make([]float32, m*n)
			for i := range c0 {
				c0[i] = float32(r.IntN(1025)-512) / 64
			}
			da, db, dc := mem.halves(a), mem.halves(b), mem.f32s(c0)
			run(t, tc.kernel, mem, da, db, dc, uint32(m), uint32(n), uint32(k))
			got := mem.getF32(dc, m*n)
			for i := range m {
				for j := range n {
					acc := c0[i*n+j]
					var mag float64
					exact := float64(acc)
					for s := 0; s < k; s += 16 {
						sum := float64(acc)
						for kk := s; kk < s+16; kk++ {
							p := tc.f.decode(a[i*k+kk]) * tc.f.decode(bAt(kk, j))
							sum += p
							exact += p
							mag += math.Abs(p)
						}
						acc = float32(sum)
					}
					g := got[i*n+j]
					if tc.exact && (g != acc || float64(g) != exact) {
						t.Fatalf("c[%d][%d] = %v, want %v", i, j, g, exact)
					}
					// four roundings of at most half an ulp of the
					// running sums, bounded by the magnitudes
					if tol := 4 * mag * 0x1p-24; math.Abs(float64(g)-exact) > tol {
						t.Fatalf("c[%d][%d] = %v, want %v within %g", i, j, g, exact, tol)
					}
				}
			}
		})
	}
	t.Run("f16", func(t *testing.T) {
		mem := newTestMem()
		a, b := eighths(r, h, m*k), eighths(r, h, k*n) // a column-major, b row-major
		da, db, dc := mem.halves(a), mem.halves(b), mem.alloc(2*m*n)
		run(t, "wmma_f16", mem, da, db, dc, uint32(m), uint32(n), uint32(k))
		got := mem.getHalves(dc, m*n) // column-major
		for i := range m {
			for j := range n {
				var acc uint16
				for s := 0; s < k; s += 16 {
					sum := h.decode(acc)
					for kk := s; kk < s+16; kk++ {
						sum += h.decode(a[kk*m+i]) * h.decode(b[kk*n+j])
					}
					acc = h.encode(sum, rndRn)
				}
				if g := got[j*m+i]; g != acc {
					t.Fatalf("c[%d][%d] = %v, want %v", i, j, h.decode(g), h.decode(acc))
				}
			}
		}
	})
}

// mma.sync m16n8k16 on f16, with its fragments loaded by ldmatrix (x4,
// and x2 transposed), and m16n8k8 on bf16 with fragments gathered by
// hand, give d = a*b + c in the layouts the PTX ISA documents.
func TestNvccMmaSync(t *testing.T) {
	ms := loadNvcc(t, "mma_sync")
	r := rand.New(rand.NewPCG(33, 34))
	for _, tc := range []struct {
		name string
		f    halfFormat
		k    int
	}{{"mma_f16", fmtF16, 16}, {"mma_bf16", fmtBF16, 8}} {
		t.Run(tc.name, func(t *testing.T) {
			for _, gen := range []func(*rand.Rand, halfFormat, int) []uint16{eighths, normalHalves} {
				mem := newTestMem()
				a, b := gen(r, tc.f, 16*tc.k), gen(r, tc.f, tc.k*8)
				c := make([]float32, 16*8)
				if tc.k == 8 {
					for i := range c {
						c[i] = float32(r.NormFloat64())
					}
				}
				da, db, dc, dd := mem.halves(a), mem.halves(b), mem.f32s(c), mem.alloc(4*16*8)
				kn := mustKernel(t, ms["mma_sync"], tc.name)
				args := []any{da, db, dc, dd}
				if tc.k == 16 {
					args = []any{da, db, dd}
				}
				if err := kn.Run(launch(kn, mem, [3]uint32{1, 1, 1}, [3]uint32{32, 1, 1}, 0, packParams(t, kn, args...), 1)); err != nil {
					t.Fatal(err)
				}
				got := mem.getF32(dd, 16*8)
				for i := range 16 {
					for j := range 8 {
						exact := float64(c[i*8+j])
						for kk := range tc.k {
							// mma_f16 holds b row-major, mma_bf16 column-major
							bv := b[kk*8+j]
							if tc.k == 8 {
								bv = b[j*8+kk]
							}
							exact += tc.f.decode(a[i*tc.k+kk]) * tc.f.decode(bv)
						}
						if g := got[i*8+j]; g != float32(exact) {
							t.Fatalf("d[%d][%d] = %v, want %v", i, j, g, float32(exact))
						}
					}
				}
			}
		})
	}
}

// mma.sync m16n8k16 with f16 accumulators, its fragments loaded by
// ldmatrix x2 and x1.trans, rounds each element of a*b + c once.
func TestNvccMmaSyncHalfAccumulator(t *testing.T) {
	ms := loadNvcc(t, "mma_sync")
	r := rand.New(rand.NewPCG(35, 36))
	h := fmtF16
	for _, gen := range []func(*rand.Rand, halfFormat, int) []uint16{eighths, normalHalves} {
		mem := newTestMem()
		a, b, c := gen(r, h, 16*16), gen(r, h, 16*8), gen(r, h, 16*8)
		da, db, dc, dd := mem.halves(a), mem.halves(b), mem.halves(c), mem.alloc(2*16*8)
		kn := mustKernel(t, ms["mma_sync"], "mma_h16")
		if err := kn.Run(launch(kn, mem, [3]uint32{1, 1, 1}, [3]uint32{32, 1, 1}, 0, packParams(t, kn, da, db, dc, dd), 1)); err != nil {
			t.Fatal(err)
		}
		got := mem.getHalves(dd, 16*8)
		for i := range 16 {
			for j := range 8 {
				exact := h.decode(c[i*8+j])
				for kk := range 16 {
					exact += h.decode(a[i*16+kk]) * h.decode(b[kk*8+j])
				}
				if want := h.encode(exact, rndRn); got[i*8+j] != want {
					t.Fatalf("d[%d][%d] = %v, want %v", i, j, h.decode(got[i*8+j]), h.decode(want))
				}
			}
		}
	}
}

// tf32RNA rounds x to tf32 (11 significant bits), ties away from zero,
// as cvt.rna.tf32.f32 does.
func tf32RNA(x float32) float64 {
	fr, e := math.Frexp(float64(x))
	return math.Ldexp(math.Round(fr*2048), e-11)
}

// wmma on tf32 (m16n16k8), its inputs rounded by __float_to_tf32
// (cvt.rna.tf32.f32), multiplies 32x48x64 into f32: exactly on random
// multiples of 1/8, and within the bound of its roundings on random
// normal floats, where rounding the inputs to nearest (not truncating)
// is what keeps the result within it.
func TestNvccWmmaTF32(t *testing.T) {
	ms := loadNvcc(t, "wmma_gemm")
	r := rand.New(rand.NewPCG(37, 38))
	const m, n, k = 32, 48, 64
	for _, exactIn := range []bool{true, false} {
		mem := newTestMem()
		gen := func(cnt int) []float32 {
			out := make([]float32, cnt)
			for i := range out {
				if exactIn {
					out[i] = float32(r.IntN(65)-32) / 8
				} else {
					out[i] = float32(r.NormFloat64() * 4)
				}
			}
			return out
		}
		a, b := gen(m*k), gen(k*n) // a row-major, b column-major
		da, db, dc := mem.f32s(a), mem.f32s(b), mem.alloc(4*m*n)
		kn := mustKernel(t, ms["wmma_gemm"], "wmma_tf32")
		if err := kn.Run(launch(kn, mem, [3]uint32{3, 1, 1}, [3]uint32{64, 1, 1}, 0, packParams(t, kn, da, db, dc, uint32(m), uint32(n), uint32(k)), 1)); err != nil {
			t.Fatal(err)
		}
		got := mem.getF32(dc, m*n)
		for i := range m {
			for j := range n {
				var exact, mag float64
				for kk := range k {
					p := tf32RNA(a[i*k+kk]) * tf32RNA(b[j*k+kk])
					exact += p
					mag += math.Abs(p)
				}
				g := float64(got[i*n+j])
				if exactIn && g != exact {
					t.Fatalf("c[%d][%d] = %v, want %v", i, j, g, exact)
				}
				// eight roundings of the running sums
				if tol := 8 * mag * 0x1p-24; math.Abs(g-exact) > tol {
					t.Fatalf("c[%d][%d] = %v, want %v within %g", i, j, g, exact, tol)
				}
			}
		}
	}
}

// mma.sync m16n8k8 on tf32, with fragments gathered by hand in the
// ISA's layout, gives d = a*b + c (inputs that tf32 holds exactly).
func TestNvccMmaSyncTF32(t *testing.T) {
	ms := loadNvcc(t, "mma_sync")
	r := rand.New(rand.NewPCG(39, 40))
	mem := newTestMem()
	gen := func(cnt int) []float32 {
		out := make([]float32, cnt)
		for i := range out {
			out[i] = float32(r.IntN(65)-32) / 8
		}
		return out
	}
	a, b, c := gen(16*8), gen(8*8), gen(16*8) // b column-major
	da, db, dc, dd := mem.f32s(a), mem.f32s(b), mem.f32s(c), mem.alloc(4*16*8)
	kn := mustKernel(t, ms["mma_sync"], "mma_tf32")
	if err := kn.Run(launch(kn, mem, [3]uint32{1, 1, 1}, [3]uint32{32, 1, 1}, 0, packParams(t, kn, da, db, dc, dd), 1)); err != nil {
		t.Fatal(err)
	}
	got := mem.getF32(dd, 16*8)
	for i := range 16 {
		for j := range 8 {
			want := float64(c[i*8+j])
			for kk := range 8 {
				want += float64(a[i*8+kk]) * float64(b[j*8+kk])
			}
			if g := float64(got[i*8+j]); g != want {
				t.Fatalf("d[%d][%d] = %v, want %v", i, j, g, want)
			}
		}
	}
}

// tensorPTX runs each kind of matrix instruction once on memory at its
// parameter; it seeds FuzzLoad.
const tensorPTX = `
.version 7.0
.target sm_80
.address_size 64

.visible .entry tc(
	.param .u64 tc_param_0
)
{
	.shared .align 16 .b8 sm[512];
	.reg .b32 	%r<40>;
	.reg .f32 	%f<20>;
	.reg .b64 	%rd<4>;
	ld.param.u64 	%rd1, [tc_param_0];
	mov.u32 	%r30, 16;
	wmma.load.a.sync.aligned.row.m16n16k16.global.f16 	{%r1, %r2, %r3, %r4, %r5, %r6, %r7, %r8}, [%rd1], %r30;
	wmma.load.b.sync.aligned.col.m16n16k16.global.f16 	{%r9, %r10, %r11, %r12, %r13, %r14, %r15, %r16}, [%rd1], %r30;
	wmma.load.c.sync.aligned.row.m16n16k16.global.f32 	{%f1, %f2, %f3, %f4, %f5, %f6, %f7, %f8}, [%rd1+512], %r30;
	wmma.mma.sync.aligned.row.col.m16n16k16.f32.f32 {%f1, %f2, %f3, %f4, %f5, %f6, %f7, %f8}, {%r1, %r2, %r3, %r4, %r5, %r6, %r7, %r8}, {%r9, %r10, %r11, %r12, %r13, %r14, %r15, %r16}, {%f1, %f2, %f3, %f4, %f5, %f6, %f7, %f8};
	wmma.store.d.sync.aligned.row.m16n16k16.global.f32 	[%rd1+1536], {%f1, %f2, %f3, %f4, %f5, %f6, %f7, %f8}, %r30;
	mov.u32 	%r31, %tid.x;
	and.b32 	%r31, %r31, 15;
	shl.b32 	%r31, %r31, 4;
	mov.u32 	%r32, sm;
	add.s32 	%r31, %r31, %r32;
	ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%r17, %r18, %r19, %r20}, [%r31];
	mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%f9, %f10, %f11, %f12}, {%r17, %r18, %r19, %r20}, {%r1, %r2}, {%f1, %f2, %f3, %f4};
	mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%f9, %f10, %f11, %f12}, {%r17, %r18, %r19, %r20}, {%r1, %r2}, {%f9, %f10, %f11, %f12};
	st.global.v4.f32 	[%rd1+3072], {%f9, %f10, %f11, %f12};
	ret;
}
`

// A matrix instruction runs on whole warps, and fails the launch when
// part of a warp reaches it.
func TestTensorWholeWarp(t *testing.T) {
	m, err := Load([]byte(tensorPTX))
	if err != nil {
		t.Fatal(err)
	}
	k := mustKernel(t, m, "tc")
	for _, threads := range []uint32{32, 40} {
		mem := newTestMem()
		buf := mem.alloc(4096)
		err := k.Run(launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{threads, 1, 1}, 0, packParams(t, k, buf), 1))
		if threads == 32 && err != nil {
			t.Fatal(err)
		}
		if threads == 40 && (abi.ResultOf(err) != abi.ErrIllegalInstruction || !strings.Contains(err.Error(), "whole warp")) {
			t.Fatalf("40 threads: %v, want a fault naming the whole warp", err)
		}
	}
}
