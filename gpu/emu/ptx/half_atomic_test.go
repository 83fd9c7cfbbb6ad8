package ptx

import (
	"math"
	"math/big"
	"math/rand"
	"testing"
)

// f16Nearest returns the f16 bits of v, rounded to nearest even by
// math/big at the format's precision (a reference apart from
// halfFormat.encode, for normal results).
func f16Nearest(v float64) uint16 {
	if v == 0 || math.IsInf(v, 0) || math.IsNaN(v) || math.Abs(v) < math.Ldexp(1, -14) || math.Abs(v) >= 65520 {
		return fmtF16.encode(v, rndRn) // zero, subnormal, overflow: covered by TestHalfRounding
	}
	r, _ := new(big.Float).SetPrec(11).SetMode(big.ToNearestEven).SetFloat64(v).Float64()
	return fmtF16.encode(r, rndRn) // exact now
}

// Atomic adds on halves (atom.add.noftz.f16, .f16x2, and bf16 through
// cuda_bf16.h's CAS loop) give the sums when they are exact, and each
// add rounds once to nearest even.
func TestNvccHalfAtomics(t *testing.T) {
	m, err := Load(nvccPTX(t, t.TempDir(), []string{"half_atomics"})["half_atomics"])
	if err != nil {
		t.Fatal(err)
	}
	const n = 256
	// quarters: every partial sum is exact in f16 and bf16
	x := make([]float32, n)
	var sum float64
	for i := range x {
		x[i] = float32(i%9-4) / 4
		sum += float64(x[i])
	}
	k := mustKernel(t, m, "half_sums")
	mem := newTestMem()
	h, h2, b := mem.alloc(2), mem.alloc(4), mem.alloc(2)
	// one worker: the bf16 add is a CAS loop whose plain load of what
	// other blocks update atomically is a data race for Go's race detector
	if err := k.Run(launch(k, mem, [3]uint32{4, 1, 1}, [3]uint32{64, 1, 1}, 0, packParams(t, k, h, h2, b, mem.f32s(x), n), 1)); err != nil {
		t.Fatal(err)
	}
	got := mem.bytes(h)[:2]
	g2 := mem.bytes(h2)[:4]
	gb := mem.bytes(b)[:2]
	if v := fmtF16.decode(uint16(got[0]) | uint16(got[1])<<8); v != sum {
		t.Errorf("f16 sum %v, want %v", v, sum)
	}
	if lo, hi := fmtF16.decode(uint16(g2[0])|uint16(g2[1])<<8), fmtF16.decode(uint16(g2[2])|uint16(g2[3])<<8); lo != sum || hi != -2*sum {
		t.Errorf("f16x2 sums %v, %v; want %v, %v", lo, hi, sum, -2*sum)
	}
	if v := fmtBF16.decode(uint16(gb[0]) | uint16(gb[1])<<8); v != sum {
		t.Errorf("bf16 sum %v, want %v", v, sum)
	}

	// one add per element, on random halves, subnormals included
	rng := rand.New(rand.NewSource(3))
	acc, y := make([]uint16, n), make([]uint16, n)
	for i := range acc {
		acc[i], y[i] = uint16(rng.Intn(0x7c00)), uint16(rng.Intn(0x7c00))
		if rng.Intn(2) == 0 {
			y[i] |= 0x8000
		}
	}
	toBytes := func(v []uint16) uint64 {
		p := mem.alloc(2 * len(v))
		bs := mem.bytes(p)
		for i, u := range v {
			bs[2*i], bs[2*i+1] = byte(u), byte(u>>8)
		}
		return p
	}
	pa, py, po := toBytes(acc), toBytes(y), mem.alloc(2*n)
	ke := mustKernel(t, m, "half_add_each")
	if err := ke.Run(launch(ke, mem, [3]uint32{4, 1, 1}, [3]uint32{64, 1, 1}, 0, packParams(t, ke, pa, py, po, n), 2)); err != nil {
		t.Fatal(err)
	}
	ga, gold := mem.bytes(pa), mem.bytes(po)
	for i := range acc {
		want := f16Nearest(fmtF16.decode(acc[i]) + fmtF16.decode(y[i]))
		if g := uint16(ga[2*i]) | uint16(ga[2*i+1])<<8; g != want {
			t.Fatalf("%#x + %#x = %#x, want %#x", acc[i], y[i], g, want)
		}
		if o := uint16(gold[2*i]) | uint16(gold[2*i+1])<<8; o != acc[i] {
			t.Fatalf("old value %#x, want %#x", o, acc[i])
		}
	}
}

// cvt.rn.f16x2.f32 d, a, b puts a, rounded, in the upper half and b in
// the lower; cvt.rz.bf16x2.f32 likewise, truncated.
func TestCvtPair(t *testing.T) {
	const src = `
.version 7.8
.target sm_80
.address_size 64
.visible .entry pair(.param .u64 in, .param .u64 out)
{
	.reg .f32 %f<3>;
	.reg .b32 %r<4>;
	.reg .b64 %rd<8>;
	ld.param.u64 %rd1, [in];
	ld.param.u64 %rd2, [out];
	mov.u32 %r1, %tid.x;
	mul.wide.u32 %rd3, %r1, 8;
	add.s64 %rd4, %rd1, %rd3;
	ld.global.f32 %f1, [%rd4];
	ld.global.f32 %f2, [%rd4+4];
	cvt.rn.f16x2.f32 %r2, %f1, %f2;
	cvt.rz.bf16x2.f32 %r3, %f1, %f2;
	add.s64 %rd5, %rd2, %rd3;
	st.global.u32 [%rd5], %r2;
	st.global.u32 [%rd5+4], %r3;
	ret;
}
`
	m, err := Load([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	k := mustKernel(t, m, "pair")
	rng := rand.New(rand.NewSource(5))
	in := make([]float32, 64)
	for i := range in {
		in[i] = math.Float32frombits(rng.Uint32())
	}
	in[0], in[1] = 1e-7, -70000
	mem := newTestMem()
	pin, pout := mem.f32s(in), mem.alloc(4*64)
	if err := k.Run(launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{32, 1, 1}, 0, packParams(t, k, pin, pout), 1)); err != nil {
		t.Fatal(err)
	}
	got := mem.getU32(pout, 64)
	for i := 0; i < 32; i++ {
		a, b := float64(in[2*i]), float64(in[2*i+1])
		want := uint32(fmtF16.encode(a, rndRn))<<16 | uint32(fmtF16.encode(b, rndRn))
		wantBF := uint32(fmtBF16.encode(a, rndRz))<<16 | uint32(fmtBF16.encode(b, rndRz))
		if got[2*i] != want && !(math.IsNaN(a) || math.IsNaN(b)) {
			t.Errorf("cvt.rn.f16x2.f32 %g, %g = %#x, want %#x", a, b, got[2*i], want)
		}
		if got[2*i+1] != wantBF && !(math.IsNaN(a) || math.IsNaN(b)) {
			t.Errorf("cvt.rz.bf16x2.f32 %g, %g = %#x, want %#x", a, b, got[2*i+1], wantBF)
		}
	}
}
