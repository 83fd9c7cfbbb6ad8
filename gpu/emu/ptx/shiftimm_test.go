package ptx

import (
	"fmt"
	"strings"
	"testing"
)

// TestShiftAmounts checks shl and shr of each width and signedness, by
// a register and by immediates below, at and above the width, against
// Go's shifts with PTX's clamping: a shift by the width or more gives 0,
// or the sign in every bit for shr.s.
func TestShiftAmounts(t *testing.T) {
	imms := []uint64{0, 1, 7, 31, 32, 33, 63, 64, 100, 1<<32 - 1}
	ops := []string{"shl.b32", "shl.b64", "shr.u32", "shr.s32", "shr.u64", "shr.s64"}
	var body strings.Builder
	nout := 0
	emit := func(op, amount string) {
		dst, src := "%r2", "%r1"
		if strings.HasSuffix(op, "64") {
			dst, src = "%rd4", "%rd1"
		}
		fmt.Fprintf(&body, "\t%s %s, %s, %s;\n", op, dst, src, amount)
		if dst == "%r2" {
			fmt.Fprintf(&body, "\tcvt.u64.u32 %%rd4, %%r2;\n")
		}
		fmt.Fprintf(&body, "\tst.global.u64 [%%rd3+%d], %%rd4;\n", 8*nout)
		nout++
	}
	for _, op := range ops {
		emit(op, "%r3")
		for _, n := range imms {
			emit(op, fmt.Sprint(n))
		}
	}
	src := fmt.Sprintf(`
.version 7.0
.target sm_70
.address_size 64
.visible .entry t(.param .u64 px, .param .u64 pn, .param .u64 pout)
{
	.reg .b32 %%r<4>;
	.reg .b64 %%rd<8>;
	mov.u32 %%r0, %%tid.x;
	mul.wide.u32 %%rd5, %%r0, 8;
	ld.param.u64 %%rd6, [px];
	add.s64 %%rd6, %%rd6, %%rd5;
	ld.global.u64 %%rd1, [%%rd6];
	cvt.u32.u64 %%r1, %%rd1;
	mul.wide.u32 %%rd5, %%r0, 4;
	ld.param.u64 %%rd6, [pn];
	add.s64 %%rd6, %%rd6, %%rd5;
	ld.global.u32 %%r3, [%%rd6];
	mul.wide.u32 %%rd5, %%r0, %d;
	ld.param.u64 %%rd3, [pout];
	add.s64 %%rd3, %%rd3, %%rd5;
%s	ret;
}
`, 8*nout, body.String())
	m, err := Load([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	k, err := m.Kernel("t")
	if err != nil {
		t.Fatal(err)
	}
	imm := 0
	for _, in := range k.code {
		imm += b2i(in.op >= opShl32Imm && in.op <= opShrS64Imm)
	}
	if imm != len(ops)*len(imms) {
		t.Errorf("%d shifts by an immediate run as such, want %d", imm, len(ops)*len(imms))
	}
	xs := []uint64{0, 1, 0x8000_0001, 0xffff_ffff, 0x1234_5678_9abc_def0, 1 << 63, 1<<64 - 1, 0x8765_4321_8000_0000}
	amounts := []uint32{0, 1, 5, 31, 32, 33, 63, 64, 65, 1<<32 - 1}
	const n = 80
	x, a := make([]uint64, n), make([]uint32, n)
	for i := range n {
		x[i], a[i] = xs[i%len(xs)], amounts[i/len(xs)%len(amounts)]
	}
	mem := newTestMem()
	px, pa, pout := mem.alloc(8*n), mem.u32s(a), mem.alloc(8*n*nout)
	for i, v := range x {
		putN(mem.bytes(px)[8*i:], 8, v)
	}
	l := launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{n, 1, 1}, 0, packParams(t, k, px, pa, pout), 1)
	if err := k.Run(l); err != nil {
		t.Fatal(err)
	}
	got := mem.getU64(pout, n*nout)
	for i := range n {
		j := 0
		for _, op := range ops {
			for _, s := range append([]uint64{uint64(a[i])}, imms...) {
				if w := shiftRef(op, x[i], uint32(s)); got[i*nout+j] != w {
					t.Errorf("%s 0x%x, %d = 0x%x, want 0x%x", op, x[i], uint32(s), got[i*nout+j], w)
				}
				j++
			}
		}
	}
}

// shiftRef is the PTX shift op of x by n, zero-extended to 64 bits.
func shiftRef(op string, x uint64, n uint32) uint64 {
	switch op {
	case "shl.b32":
		if n >= 32 {
			return 0
		}
		return uint64(uint32(x) << n)
	case "shl.b64":
		if n >= 64 {
			return 0
		}
		return x << n
	case "shr.u32":
		if n >= 32 {
			return 0
		}
		return uint64(uint32(x) >> n)
	case "shr.s32":
		return uint64(uint32(int32(x) >> min(n, 31)))
	case "shr.u64":
		if n >= 64 {
			return 0
		}
		return x >> n
	case "shr.s64":
		return uint64(int64(x) >> min(n, 63))
	}
	panic("unknown shift " + op)
}

// TestShl32HighBits checks that shl.b32 by an immediate leaves no bits
// above the 32nd in its register: a shared address made with it
// reaches the word it names.
func TestShl32HighBits(t *testing.T) {
	const src = `
.version 7.0
.target sm_70
.address_size 64
.visible .entry t(.param .u32 px, .param .u64 pout)
{
	.shared .align 4 .b8 buf[64];
	.reg .b32 %r<6>;
	.reg .b64 %rd<2>;
	ld.param.u32 %r1, [px];
	mov.u32 %r3, 7;
	st.shared.u32 [buf+4], %r3;
	shl.b32 %r2, %r1, 2;
	ld.shared.u32 %r4, [%r2];
	ld.param.u64 %rd1, [pout];
	st.global.u32 [%rd1], %r4;
	ret;
}
`
	m, err := Load([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	k, err := m.Kernel("t")
	if err != nil {
		t.Fatal(err)
	}
	mem := newTestMem()
	pout := mem.alloc(4)
	// 0x4000_0001 << 2 is 4 in 32 bits
	l := launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{32, 1, 1}, 0, packParams(t, k, uint32(0x4000_0001), pout), 1)
	if err := k.Run(l); err != nil {
		t.Fatal(err)
	}
	if got := mem.getU32(pout, 1)[0]; got != 7 {
		t.Errorf("loaded %d through the shifted address, want 7", got)
	}
}
