package ptx

import (
	"math"
	"testing"
)

// genericPTX exercises generic addressing of shared, local and global
// memory, module globals with initialisers and atomics on each.
const genericPTX = `
.version 7.0
.target sm_70
.address_size 64
.global .align 4 .u32 gcount = 5;
.global .align 8 .b8 gtab[16] = {1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0};
.visible .entry gen(.param .u64 out)
{
	.reg .pred %p<3>;
	.reg .b32 %r<20>;
	.reg .b64 %rd<20>;
	.shared .align 4 .b8 sh[260];
	.local .align 4 .b8 loc[16];
	ld.param.u64 %rd1, [out];
	mov.u32 %r1, %tid.x;
	mov.u64 %rd2, sh;
	cvta.shared.u64 %rd3, %rd2;
	mul.wide.u32 %rd4, %r1, 4;
	add.s64 %rd5, %rd3, %rd4;
	st.u32 [%rd5], %r1;
	bar.sync 0;
	xor.b32 %r2, %r1, 1;
	mul.wide.u32 %rd6, %r2, 4;
	add.s64 %rd7, %rd2, %rd6;
	ld.shared.u32 %r3, [%rd7];
	add.s64 %rd8, %rd3, 256;
	atom.add.u32 %r4, [%rd8], 1;
	mov.u64 %rd9, loc;
	cvta.local.u64 %rd10, %rd9;
	st.u32 [%rd10+8], %r3;
	ld.local.u32 %r5, [%rd9+8];
	mov.u64 %rd11, gtab;
	cvta.global.u64 %rd12, %rd11;
	and.b32 %r6, %r1, 3;
	mul.wide.u32 %rd13, %r6, 4;
	add.s64 %rd14, %rd12, %rd13;
	ld.u32 %r7, [%rd14];
	atom.global.add.u32 %r8, [gcount], %r7;
	bar.sync 0;
	ld.shared.u32 %r9, [sh+256];
	mul.lo.s32 %r10, %r5, 1000;
	mad.lo.s32 %r11, %r7, 100, %r10;
	add.s32 %r12, %r11, %r9;
	cvta.to.global.u64 %rd15, %rd1;
	add.s64 %rd16, %rd15, %rd4;
	st.global.u32 [%rd16], %r12;
	ret;
}
`

func TestGenericAddressing(t *testing.T) {
	m, err := Load([]byte(genericPTX))
	if err != nil {
		t.Fatal(err)
	}
	k, err := m.Kernel("gen")
	if err != nil {
		t.Fatal(err)
	}
	if k.SharedSize != 260 || k.LocalSize != 16 {
		t.Fatalf("shared %d local %d", k.SharedSize, k.LocalSize)
	}
	mem := newTestMem()
	globals := map[string]uint64{}
	for _, g := range m.Globals() {
		a := mem.alloc(int(g.Size))
		copy(mem.bytes(a), g.Init)
		globals[g.Name] = a
	}
	out := mem.alloc(4 * 64)
	l := launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{64, 1, 1}, 0, packParams(t, k, out), 1)
	l.Globals = globals
	if err := k.Run(l); err != nil {
		t.Fatal(err)
	}
	for i, v := range mem.getU32(out, 64) {
		want := uint32((i^1)*1000 + (i&3+1)*100 + 64)
		if v != want {
			t.Fatalf("out[%d] = %d, want %d", i, v, want)
		}
	}
	if c := mem.getU32(globals["gcount"], 1)[0]; c != 165 {
		t.Fatalf("gcount = %d, want 165", c)
	}
}

func TestALUEdges(t *testing.T) {
	for _, c := range []struct {
		op      opcode
		a, b, c uint64
		want    uint64
	}{
		{opDivS32, 7, 0, 0, 0xffffffff},
		{opDivU64, 7, 0, 0, math.MaxUint64},
		{opRemU32, 7, 0, 0, 7},
		{opDivS32, 0x80000000, 0xffffffff, 0, 0x80000000},
		{opDivS64, 1 << 63, math.MaxUint64, 0, 1 << 63},
		{opRemS64, 1 << 63, math.MaxUint64, 0, 0},
		{opDivS32, uint64(uint32(0xfffffff9)), 2, 0, 0xfffffffd}, // -7/2 = -3
		{opRemS32, uint64(uint32(0xfffffff9)), 2, 0, 0xffffffff}, // -7%2 = -1
		{opMulHiS64, math.MaxUint64, 2, 0, math.MaxUint64},       // -1*2 >> 64 = -1
		{opMulHiU64, math.MaxUint64, 2, 0, 1},
		{opBfeU32, 0xf0, 4, 4, 0xf},
		{opBfeS32, 0xf0, 4, 4, 0xffffffff},
		{opBfeU32, 0xf0, 4, 0, 0},
		{opBfi32, 0x3, 0xff00, 4, 0xff30},
		{opPrmt, 0x33221100, 0x77665544, 0x7531, 0x77553311},
		{opClz32, 0, 0, 0, 32},
		{opNotPred, 1, 0, 0, 0},
		{opMinF32, uint64(math.Float32bits(float32(math.NaN()))), uint64(math.Float32bits(2)), 0, uint64(math.Float32bits(2))},
		{opMaxF32, uint64(math.Float32bits(float32(math.Copysign(0, -1)))), 0, 0, 0},
		{opSatF32, uint64(math.Float32bits(float32(math.NaN()))), 0, 0, 0},
	} {
		e := uint64(0)
		if c.op == opBfi32 {
			e = 2
			c.c = 4
		}
		if got := alu(c.op, c.a, c.b, c.c, e); got != c.want {
			t.Errorf("op %d (%#x, %#x, %#x) = %#x, want %#x", c.op, c.a, c.b, c.c, got, c.want)
		}
	}
	// shifts at and beyond the width
	w := &worker{}
	wp := &warp{r: make([][32]uint64, 4)}
	wp.r[1][0], wp.r[2][0] = 0x80000000, 40
	for _, c := range []struct {
		op   opcode
		want uint64
	}{{opShl32, 0}, {opShrU32, 0}, {opShrS32, 0xffffffff}, {opShrU64, 0}, {opShrS64, 0}} {
		code := []instr{{op: c.op, d: 3, a: 1, b: 2}, {op: opExit}}
		w.k = &Kernel{code: code}
		wp.live, wp.active, wp.pc, wp.nextPC = 1, 1, 0, math.MaxInt32
		w.l = &Launch{}
		if err := w.runWarp(wp); err != nil {
			t.Fatal(err)
		}
		if wp.r[3][0] != c.want {
			t.Errorf("op %d: %#x, want %#x", c.op, wp.r[3][0], c.want)
		}
	}
}

// divergePTX has the else-block of a branch laid out after the join
// point, branching back: lanes at the join must wait for the others
// before shuffling and voting.
const divergePTX = `
.version 7.0
.target sm_70
.address_size 64
.visible .entry diverge(.param .u64 out)
{
	.reg .pred %p<4>;
	.reg .b32 %r<20>;
	.reg .b64 %rd<8>;
	ld.param.u64 %rd1, [out];
	cvta.to.global.u64 %rd2, %rd1;
	mov.u32 %r1, %tid.x;
	mul.wide.u32 %rd3, %r1, 12;
	add.s64 %rd4, %rd2, %rd3;
	and.b32 %r2, %r1, 1;
	setp.eq.u32 %p1, %r2, 1;
	mov.u32 %r3, 100;
	@%p1 bra ODD;
JOIN:
	shfl.sync.bfly.b32 %r4, %r3, 1, 31, -1;
	setp.eq.u32 %p2, %r3, 200;
	vote.sync.ballot.b32 %r5, %p2, -1;
	activemask.b32 %r6;
	st.global.u32 [%rd4], %r4;
	st.global.u32 [%rd4+4], %r5;
	st.global.u32 [%rd4+8], %r6;
	ret;
ODD:
	mov.u32 %r3, 200;
	bra.uni JOIN;
}
`

func TestDivergentShuffle(t *testing.T) {
	m, err := Load([]byte(divergePTX))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := m.Kernel("diverge")
	for _, bs := range []uint32{32, 40} {
		mem := newTestMem()
		out := mem.alloc(12 * int(bs))
		if err := k.Run(launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{bs, 1, 1}, 0, packParams(t, k, out), 1)); err != nil {
			t.Fatal(err)
		}
		got := mem.getU32(out, 3*int(bs))
		for i := 0; i < int(bs); i++ {
			n := min(32, int(bs)-i/32*32)
			full := uint32(1<<n - 1)
			want := [3]uint32{100, 0xaaaaaaaa & full, full}
			if i%2 == 0 {
				want[0] = 200
			}
			for j := range want {
				if got[3*i+j] != want[j] {
					t.Fatalf("block %d thread %d out %d = %#x, want %#x", bs, i, j, got[3*i+j], want[j])
				}
			}
		}
	}
}
