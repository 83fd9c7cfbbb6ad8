package ptx

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// predLogicSrc computes eight predicates per thread with setp of each
// kind, and, or, xor and not, under a guard and on both sides of a
// divergent branch, and stores them as the bits of one word, with the
// trip count of a loop whose exit each thread takes at its own time. %[1]s is
// an extra line after the branches join.
const predLogicSrc = `
.version 7.0
.target sm_70
.address_size 64
.visible .entry t(.param .u64 px, .param .u64 py, .param .u64 pf, .param .u64 pg, .param .u64 pout)
{
	.reg .pred %%p<12>;
	.reg .b32 %%r<20>;
	.reg .f32 %%f<3>;
	.reg .f64 %%d<3>;
	.reg .b64 %%rd<16>;
	mov.u32 %%r0, %%tid.x;
	mov.u32 %%r1, %%ctaid.x;
	mov.u32 %%r2, %%ntid.x;
	mad.lo.s32 %%r3, %%r1, %%r2, %%r0;
	mul.wide.u32 %%rd1, %%r3, 4;
	ld.param.u64 %%rd2, [px];
	add.s64 %%rd3, %%rd2, %%rd1;
	ld.global.u32 %%r4, [%%rd3];
	ld.param.u64 %%rd2, [py];
	add.s64 %%rd3, %%rd2, %%rd1;
	ld.global.u32 %%r5, [%%rd3];
	ld.param.u64 %%rd2, [pf];
	add.s64 %%rd3, %%rd2, %%rd1;
	ld.global.f32 %%f1, [%%rd3];
	ld.param.u64 %%rd2, [pg];
	add.s64 %%rd3, %%rd2, %%rd1;
	ld.global.f32 %%f2, [%%rd3];
	cvt.f64.f32 %%d1, %%f1;
	cvt.f64.f32 %%d2, %%f2;
	and.b32 %%r6, %%r0, 1;
	setp.ne.u32 %%p5, %%r6, 0;
	setp.ne.u32 %%p10, %%r0, %%r0;
	setp.lt.s32 %%p1, %%r4, %%r5;
	setp.eq.u32 %%p2, %%r0, %%r0;
	@%%p5 setp.hi.u32 %%p2, %%r4, %%r5;
	setp.gtu.f32 %%p3, %%f1, %%f2;
	or.pred %%p4, %%p1, %%p2;
	and.pred %%p6, %%p4, %%p3;
	xor.pred %%p7, %%p6, %%p1;
	not.pred %%p8, %%p7;
	@%%p1 bra TAKEN;
	setp.ne.s32 %%p9, %%r4, 0;
	@!%%p5 setp.lt.f64 %%p10, %%d1, %%d2;
	bra.uni JOIN;
TAKEN:
	setp.eq.s32 %%p9, %%r5, 0;
	@!%%p5 setp.ge.f64 %%p10, %%d1, %%d2;
JOIN:
	%[1]s
	selp.u32 %%r7, 1, 0, %%p1;
	selp.u32 %%r8, 2, 0, %%p2;
	or.b32 %%r7, %%r7, %%r8;
	selp.u32 %%r8, 4, 0, %%p3;
	or.b32 %%r7, %%r7, %%r8;
	selp.u32 %%r8, 8, 0, %%p4;
	or.b32 %%r7, %%r7, %%r8;
	selp.u32 %%r8, 16, 0, %%p6;
	or.b32 %%r7, %%r7, %%r8;
	selp.u32 %%r8, 32, 0, %%p7;
	or.b32 %%r7, %%r7, %%r8;
	selp.u32 %%r8, 64, 0, %%p8;
	or.b32 %%r7, %%r7, %%r8;
	selp.u32 %%r8, 128, 0, %%p9;
	or.b32 %%r7, %%r7, %%r8;
	@%%p10 or.b32 %%r7, %%r7, 256;
	@!%%p8 or.b32 %%r7, %%r7, 512;
	and.b32 %%r11, %%r4, 3;
	add.u32 %%r11, %%r11, 1;
	mov.u32 %%r10, 0;
LOOP:
	add.u32 %%r10, %%r10, 1;
	setp.lt.u32 %%p11, %%r10, %%r11;
	@%%p11 bra LOOP;
	shl.b32 %%r10, %%r10, 10;
	or.b32 %%r7, %%r7, %%r10;
	ld.param.u64 %%rd2, [pout];
	add.s64 %%rd3, %%rd2, %%rd1;
	st.global.u32 [%%rd3], %%r7;
	ret;
}
`

// TestPredLogic checks predicates held as lane masks against Go's
// comparisons and logic: setp of each kind, guarded and in divergent
// branches (lanes that do not run it keep their bits), and, or, xor,
// not, selp and guards, and a setp that runs the branch after it. A vote on a predicate keeps that predicate and
// those it is combined with as one value per lane; the results are the
// same.
func TestPredLogic(t *testing.T) {
	const n = 256
	rng := rand.New(rand.NewPCG(1, 2))
	edges := []uint32{0, 1, 2, 0x7fffffff, 0x80000000, 0xffffffff}
	fedges := []float32{0, 1, -1, float32(math.NaN()), float32(math.Inf(1)), 1e-40}
	xs, ys := make([]uint32, n), make([]uint32, n)
	fs, gs := make([]float32, n), make([]float32, n)
	for i := range n {
		xs[i], ys[i] = edges[rng.IntN(len(edges))], edges[rng.IntN(len(edges))]
		fs[i], gs[i] = fedges[rng.IntN(len(fedges))], fedges[rng.IntN(len(fedges))]
		if i%3 == 0 {
			xs[i], ys[i] = rng.Uint32(), rng.Uint32()
		}
	}
	want := make([]uint32, n)
	for i := range n {
		x, y, f, g := xs[i], ys[i], fs[i], gs[i]
		odd := i%2 == 1
		p1 := int32(x) < int32(y)
		p2 := !odd || x > y
		p3 := !(f <= g)
		p4 := p1 || p2
		p6 := p4 && p3
		p7 := p6 != p1
		p8 := !p7
		p9 := x != 0
		p10 := !odd && float64(f) < float64(g)
		if p1 {
			p9 = y == 0
			p10 = !odd && float64(f) >= float64(g)
		}
		var w uint32
		for b, p := range []bool{p1, p2, p3, p4, p6, p7, p8, p9, p10, !p8} {
			w |= uint32(b2i(p)) << b
		}
		want[i] = w | (x&3+1)<<10
	}
	for _, tc := range []struct {
		name, extra string
		packed      bool // %p9 and the setps that write it run on lane masks
	}{
		{"masks", "", true},
		{"vote", "vote.sync.ballot.b32 %r9, %p9, -1;", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Load(fmt.Appendf(nil, predLogicSrc, tc.extra))
			if err != nil {
				t.Fatal(err)
			}
			k, err := m.Kernel("t")
			if err != nil {
				t.Fatal(err)
			}
			ops := map[opcode]int{}
			for _, in := range k.code {
				ops[in.op]++
			}
			if ops[opOrBits] != 1 || ops[opAndBits] != 1 || ops[opXorBits] != 1 || ops[opNotBits] != 1 ||
				ops[opSetpF32Bits] != 1 || ops[opSetpF64Bits] != 2 {
				t.Errorf("mask forms %v: want one each of or, and, xor, not, setp.f32, two setp.f64", ops)
			}
			fused := 0
			for _, in := range k.code {
				fused += b2i(in.flags&fBraNext != 0)
			}
			if fused != 1 {
				t.Errorf("%d mask forms run the branch after them, want 1 (the loop's)", fused)
			}
			if got, want := ops[opSetpSBits], map[bool]int{true: 3, false: 1}[tc.packed]; got != want {
				t.Errorf("%d signed setp on masks, want %d", got, want)
			}
			mem := newTestMem()
			px, py, pout := mem.u32s(xs), mem.u32s(ys), mem.alloc(4*n)
			pf, pg := mem.f32s(fs), mem.f32s(gs)
			l := launch(k, mem, [3]uint32{n / 64, 1, 1}, [3]uint32{64, 1, 1}, 0, packParams(t, k, px, py, pf, pg, pout), 1)
			l.MaxBlockInstructions = 1 << 20 // a loop that never ends fails
			if err := k.Run(l); err != nil {
				t.Fatal(err)
			}
			for i, g := range mem.getU32(pout, n) {
				if g != want[i] {
					t.Errorf("thread %d (x 0x%x y 0x%x f %g g %g): predicates 0b%b, want 0b%b", i, xs[i], ys[i], fs[i], gs[i], g, want[i])
				}
			}
		})
	}
}
