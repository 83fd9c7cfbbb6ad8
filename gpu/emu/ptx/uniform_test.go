package ptx

import (
	"math/rand/v2"
	"testing"
)

// uniformSrc writes per thread a word of comparisons on registers that
// are uniform in some places and not in others: one written under a
// guard, two (an add, a parameter load) written on one side of a
// divergent branch and read after the join by the whole warp, one
// that is uniform until the whole warp writes it from such a register,
// a loop counter with a uniform bound that
// each thread leaves at its own time, a register that a mov writes and
// then a per-thread load, signed and unsigned compares of parameters,
// and a guarded write after some threads have exited.
const uniformSrc = `
.version 7.0
.target sm_70
.address_size 64
.visible .entry u(.param .u64 pin, .param .u32 pn, .param .u32 pm, .param .u64 pw, .param .u64 pout)
{
	.reg .pred %p<13>;
	.reg .b32 %r<30>;
	.reg .b64 %rd<8>;
	mov.u32 %r0, %tid.x;
	mov.u32 %r1, %ctaid.x;
	mov.u32 %r2, %ntid.x;
	mad.lo.s32 %r3, %r1, %r2, %r0;
	mul.wide.u32 %rd1, %r3, 4;
	ld.param.u64 %rd2, [pin];
	add.s64 %rd3, %rd2, %rd1;
	ld.global.u32 %r4, [%rd3];
	ld.param.u64 %rd2, [pout];
	add.s64 %rd4, %rd2, %rd1;
	ld.param.u32 %r5, [pn];
	and.b32 %r6, %r0, 1;
	setp.ne.u32 %p1, %r6, 0;

	mov.u32 %r7, 7;
	@%p1 add.u32 %r7, %r7, 1;
	setp.eq.u32 %p2, %r7, 7;
	selp.u32 %r20, 1, 0, %p2;

	mov.u32 %r8, %r5;
	mov.u32 %r18, %r5;
	mov.u32 %r17, 1;
	@%p1 bra SKIP;
	add.u32 %r8, %r8, 3;
	ld.param.u32 %r17, [pm];
SKIP:
	setp.eq.u32 %p11, %r17, 1;
	selp.u32 %r22, 16384, 0, %p11;
	or.b32 %r20, %r20, %r22;
	add.u32 %r9, %r8, 1;
	add.u32 %r10, %r5, 1;
	setp.eq.u32 %p3, %r9, %r10;
	selp.u32 %r22, 2, 0, %p3;
	or.b32 %r20, %r20, %r22;
	add.u32 %r18, %r8, 1;
	setp.eq.u32 %p12, %r18, %r10;
	selp.u32 %r22, 32768, 0, %p12;
	or.b32 %r20, %r20, %r22;

	and.b32 %r11, %r4, 7;
	mov.u32 %r12, 0;
LOOP:
	setp.ge.u32 %p4, %r12, %r11;
	@%p4 bra OUT;
	add.u32 %r12, %r12, 1;
	setp.lt.u32 %p5, %r12, %r5;
	@%p5 bra LOOP;
OUT:
	add.u32 %r13, %r12, 0;
	shl.b32 %r22, %r13, 2;
	or.b32 %r20, %r20, %r22;
	setp.gt.u32 %p6, %r13, 3;
	selp.u32 %r22, 64, 0, %p6;
	or.b32 %r20, %r20, %r22;

	mov.u32 %r14, 3;
	setp.eq.u32 %p7, %r14, 3;
	selp.u32 %r22, 128, 0, %p7;
	or.b32 %r20, %r20, %r22;
	ld.global.u32 %r14, [%rd3];
	mov.u32 %r15, -2147483648;
	setp.lt.u32 %p8, %r14, %r15;
	selp.u32 %r22, 256, 0, %p8;
	or.b32 %r20, %r20, %r22;

	ld.param.u32 %r16, [pm];
	setp.lt.s32 %p8, %r16, 1;
	selp.u32 %r22, 512, 0, %p8;
	or.b32 %r20, %r20, %r22;
	setp.lt.u32 %p8, %r16, 1;
	selp.u32 %r22, 1024, 0, %p8;
	or.b32 %r20, %r20, %r22;
	ld.param.u64 %rd5, [pw];
	setp.gt.s64 %p8, %rd5, 0;
	selp.u32 %r22, 2048, 0, %p8;
	or.b32 %r20, %r20, %r22;
	setp.gt.u64 %p8, %rd5, 0;
	selp.u32 %r22, 4096, 0, %p8;
	or.b32 %r20, %r20, %r22;

	rem.u32 %r21, %r0, 3;
	setp.eq.u32 %p9, %r21, 0;
	@%p9 st.global.u32 [%rd4], %r20;
	@%p9 exit;
	@%p1 mov.u32 %r5, 9;
	setp.eq.u32 %p10, %r5, 9;
	selp.u32 %r22, 8192, 0, %p10;
	or.b32 %r20, %r20, %r22;
	st.global.u32 [%rd4], %r20;
	ret;
}
`

// perLane returns a copy of k that runs every instruction lane by lane,
// tracking no register's uniformity.
func perLane(k *Kernel) *Kernel {
	c := *k
	c.code = append([]instr(nil), k.code...)
	for i := range c.code {
		in := &c.code[i]
		switch in.op {
		case opUni:
			in.op, in.mod = opcode(in.mod), 0
		case opLdUni:
			in.op = opLd
		}
	}
	c.uniStatic = nil
	return &c
}

// TestUniformRegs checks comparisons of registers whose uniformity is
// tracked against Go's and against the same kernel run lane by lane,
// in whole warps and in a block whose last warp is partial.
func TestUniformRegs(t *testing.T) {
	m, err := Load([]byte(uniformSrc))
	if err != nil {
		t.Fatal(err)
	}
	k, err := m.Kernel("u")
	if err != nil {
		t.Fatal(err)
	}
	ops := map[opcode]int{}
	for _, in := range k.code {
		ops[in.op]++
	}
	// tracked: the movs of %ctaid and %ntid, %r7's mov and add, %r8's
	// mov and add, %r18's mov and add, %r17's mov, %r9, %r10, %r12's mov and add, %r13, %r15
	// and %r5's mov; the loads of all five parameters and pm's second. %r14, which a per-thread
	// load also writes, is not tracked.
	if ops[opUni] != 16 || ops[opLdUni] != 6 {
		t.Errorf("%d tracked operations and %d tracked loads, want 16 and 6", ops[opUni], ops[opLdUni])
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name      string
		grid, blk uint32
		n, m      uint32
		w         uint64
	}{
		{"warps", 4, 64, 5, 0xfffffffd, 1 << 63},
		{"partial", 3, 48, 3, 1, 1 << 32},
		{"bound0", 2, 64, 0, 0x80000000, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := int(tc.grid * tc.blk)
			xs := make([]uint32, n)
			for i := range xs {
				xs[i] = rng.Uint32()
			}
			want := make([]uint32, n)
			for i := range want {
				tid, x := uint32(i)%tc.blk, xs[i]
				odd := tid&1 != 0
				var w uint32
				set := func(b int, p bool) { w |= uint32(b2i(p)) << b }
				set(0, !odd)
				set(1, odd)
				lim := x & 7
				cnt := min(lim, max(tc.n, 1))
				if lim == 0 {
					cnt = 0
				}
				w |= cnt << 2
				set(6, cnt > 3)
				set(7, true)
				set(8, x < 0x80000000)
				set(9, int32(tc.m) < 1)
				set(10, tc.m < 1)
				set(11, int64(tc.w) > 0)
				set(12, tc.w > 0)
				set(13, tid%3 != 0 && odd)
				set(14, odd || tc.m == 1)
				set(15, odd)
				want[i] = w
			}
			for _, run := range []struct {
				name string
				k    *Kernel
			}{{"tracked", k}, {"per lane", perLane(k)}} {
				mem := newTestMem()
				pin, pout := mem.u32s(xs), mem.alloc(4*n)
				l := launch(run.k, mem, [3]uint32{tc.grid, 1, 1}, [3]uint32{tc.blk, 1, 1}, 0,
					packParams(t, run.k, pin, tc.n, tc.m, tc.w, pout), 1)
				l.MaxBlockInstructions = 1 << 20
				if err := run.k.Run(l); err != nil {
					t.Fatal(err)
				}
				for i, g := range mem.getU32(pout, n) {
					if g != want[i] {
						t.Errorf("%s: thread %d (x 0x%x): 0b%b, want 0b%b", run.name, i, xs[i], g, want[i])
					}
				}
			}
		})
	}
}
