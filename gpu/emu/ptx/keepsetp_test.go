package ptx

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// keepSrc counts per thread, in 4-bit fields of one word, how often
// each of its comparisons held. An inner loop compares registers that
// the outer loop writes, each through one form: the two registers of a
// vector load, the old value of an atomic add, a shuffle, the high half
// of an unpacked 64-bit register; it also compares the block index and
// a constant, which only a new block changes, and the inner counter,
// which it writes itself. Then odd lanes branch past a second loop
// that the even lanes run first; they come back into it by a branch,
// one of its compares' sources written on the way, the other not.
const keepSrc = `
.version 7.0
.target sm_70
.address_size 64
.visible .entry keep(.param .u64 pin, .param .u64 pcnt, .param .u64 pout)
{
	.reg .pred %p<16>;
	.reg .b32 %r<40>;
	.reg .b64 %rd<16>;
	mov.u32 %r0, %tid.x;
	mov.u32 %r1, %ctaid.x;
	mov.u32 %r2, %ntid.x;
	mad.lo.s32 %r3, %r1, %r2, %r0;
	ld.param.u64 %rd1, [pin];
	ld.param.u64 %rd2, [pout];
	ld.param.u64 %rd6, [pcnt];
	mul.wide.u32 %rd3, %r3, 4;
	add.s64 %rd5, %rd2, %rd3;
	add.s64 %rd9, %rd6, %rd3;
	mul.wide.u32 %rd3, %r3, 8;
	add.s64 %rd4, %rd1, %rd3;
	mov.u32 %r21, -2147483648;
	and.b32 %r16, %r0, 3;
	mov.u32 %r10, 0;
	mov.u32 %r11, 0;
OUTER:
	mul.wide.u32 %rd7, %r11, 8;
	add.s64 %rd8, %rd4, %rd7;
	ld.global.v2.u32 {%r5, %r6}, [%rd8];
	atom.global.add.u32 %r7, [%rd9], 1;
	shfl.sync.idx.b32 %r8, %r3, %r11, 31, -1;
	cvt.u64.u32 %rd10, %r11;
	shl.b64 %rd10, %rd10, 32;
	mov.b64 {%r14, %r15}, %rd10;
	mov.u32 %r12, 0;
INNER:
	setp.lt.u32 %p1, %r5, %r21;
	selp.u32 %r13, 1, 0, %p1;
	add.u32 %r10, %r10, %r13;
	setp.lt.u32 %p2, %r6, %r21;
	selp.u32 %r13, 16, 0, %p2;
	add.u32 %r10, %r10, %r13;
	setp.lt.u32 %p3, %r7, 2;
	selp.u32 %r13, 256, 0, %p3;
	add.u32 %r10, %r10, %r13;
	setp.lt.u32 %p4, %r8, %r3;
	selp.u32 %r13, 4096, 0, %p4;
	add.u32 %r10, %r10, %r13;
	setp.lt.u32 %p5, %r15, %r16;
	selp.u32 %r13, 65536, 0, %p5;
	add.u32 %r10, %r10, %r13;
	setp.eq.u32 %p6, %ctaid.x, 2;
	@%p6 add.u32 %r10, %r10, 1048576;
	setp.gt.u32 %p7, %r12, %r16;
	@%p7 add.u32 %r10, %r10, 16777216;
	add.u32 %r12, %r12, 1;
	setp.lt.u32 %p8, %r12, 3;
	@%p8 bra INNER;
	add.u32 %r11, %r11, 1;
	setp.lt.u32 %p9, %r11, 4;
	@%p9 bra OUTER;

	and.b32 %r30, %r0, 1;
	setp.ne.u32 %p10, %r30, 0;
	and.b32 %r32, %r3, 15;
	mov.u32 %r31, 0;
	@%p10 bra LATER;
LOOP2:
	setp.lt.u32 %p11, %r32, 8;
	selp.u32 %r13, 268435456, 0, %p11;
	add.u32 %r10, %r10, %r13;
	setp.lt.u32 %p12, %r0, 13;
	selp.u32 %r13, 1073741824, 0, %p12;
	add.u32 %r10, %r10, %r13;
	add.u32 %r31, %r31, 1;
	setp.lt.u32 %p13, %r31, 2;
	@%p13 bra LOOP2;
	bra DONE;
LATER:
	xor.b32 %r32, %r32, 8;
	bra LOOP2;
DONE:
	st.global.u32 [%rd5], %r10;
	ret;
}
`

// unkept returns a copy of k that keeps no setp: every comparison is
// made each time it runs.
func unkept(k *Kernel) *Kernel {
	c := *k
	c.code = append([]instr(nil), k.code...)
	for i := range c.code {
		in := &c.code[i]
		if in.op == opKill {
			*in = k.kills[i].in
		}
		if in.op >= opSetpSBits && in.op <= opSetpF64Bits {
			in.target = 0
		}
	}
	c.nkept, c.kills = 0, nil
	return &c
}

// keptLines returns the source lines of k's kept setps.
func keptLines(k *Kernel) []int32 {
	var ls []int32
	for _, in := range k.code {
		if in.op >= opSetpSBits && in.op <= opSetpF64Bits && in.target != 0 {
			ls = append(ls, in.line)
		}
	}
	return ls
}

// TestKeepSetp runs keepSrc with its loop-invariant setps kept and with
// none kept, on one worker so that warps run block after block, in
// whole warps and in a block whose last warp is partial; the words
// must match.
func TestKeepSetp(t *testing.T) {
	m, err := Load([]byte(keepSrc))
	if err != nil {
		t.Fatal(err)
	}
	k, err := m.Kernel("keep")
	if err != nil {
		t.Fatal(err)
	}
	// kept: the five compares of what the outer loop writes, the block
	// index's and both of the second loop's; not the compares of the
	// loop counters
	if n := len(keptLines(k)); n != 8 || k.nkept != 8 {
		t.Errorf("%d setps kept (%d slots), want 8", n, k.nkept)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct {
		name      string
		grid, blk uint32
	}{
		{"warps", 3, 64},
		{"partial", 2, 48},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := int(tc.grid * tc.blk)
			xs := make([]uint32, 2*(n+4))
			for i := range xs {
				xs[i] = rng.Uint32()
			}
			var words [2][]uint32
			for j, run := range []*Kernel{k, unkept(k)} {
				mem := newTestMem()
				pin, pcnt, pout := mem.u32s(xs), mem.alloc(4*n), mem.alloc(4*n)
				l := launch(run, mem, [3]uint32{tc.grid, 1, 1}, [3]uint32{tc.blk, 1, 1}, 0,
					packParams(t, run, pin, pcnt, pout), 1)
				if err := run.Run(l); err != nil {
					t.Fatal(err)
				}
				words[j] = mem.getU32(pout, n)
			}
			seen := map[uint32]bool{}
			for i, w := range words[0] {
				seen[w] = true
				if w != words[1][i] {
					t.Errorf("thread %d: kept 0x%08x, recomputed 0x%08x", i, w, words[1][i])
				}
			}
			if len(seen) < n/4 {
				t.Errorf("%d distinct words for %d threads: the compares hardly vary", len(seen), n)
			}
		})
	}
}

// TestKeepSetpNvccMatmul runs nvcc's tiled matrix multiply, whose tile
// loop compares the row and column against the bounds, with those
// setps kept and with none kept, on shapes whose edges cut tiles and
// warps, on one worker so that warps run block after block.
func TestKeepSetpNvccMatmul(t *testing.T) {
	k := nvccTiledMatmul(t)
	if k.nkept == 0 {
		t.Fatal("no setp kept in the tile loop")
	}
	r := rand.New(rand.NewPCG(7, 8))
	for _, s := range [][3]int{{17, 23, 5}, {33, 16, 47}, {40, 9, 16}, {20, 37, 33}} {
		mm, n, kk := s[0], s[1], s[2]
		t.Run(fmt.Sprintf("%dx%dx%d", mm, n, kk), func(t *testing.T) {
			a, b := randF32(r, mm*kk, -1, 1), randF32(r, kk*n, -1, 1)
			var cs [2][]float32
			for j, run := range []*Kernel{k, unkept(k)} {
				mem := newTestMem()
				da, db, dc := mem.f32s(a), mem.f32s(b), mem.alloc(4*mm*n)
				l := launch(run, mem, [3]uint32{ceilDiv(n, 16), ceilDiv(mm, 16), 1}, [3]uint32{16, 16, 1}, 0,
					packParams(t, run, da, db, dc, mm, n, kk), 1)
				if err := run.Run(l); err != nil {
					t.Fatal(err)
				}
				cs[j] = mem.getF32(dc, mm*n)
			}
			want := matmulRef(a, b, mm, n, kk)
			for i, c := range cs[0] {
				if math.Float32bits(c) != math.Float32bits(cs[1][i]) || !closeF32(c, want[i], 1e-4) {
					t.Fatalf("C[%d]: kept %v, recomputed %v, want %v", i, c, cs[1][i], want[i])
				}
			}
		})
	}
}

// nvccTiledMatmul loads nvcc's tiled matrix multiply (needs nvcc).
func nvccTiledMatmul(tb testing.TB) *Kernel {
	tb.Helper()
	m, err := Load(nvccPTX(tb, tb.TempDir(), []string{"matmul_tiled"})["matmul_tiled"])
	if err != nil {
		tb.Fatal(err)
	}
	k, err := m.Kernel("matmul")
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
