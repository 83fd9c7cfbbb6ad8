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

// TestAddImmediates checks integer add and sub of an immediate at 32
// and 64 bits, of a register that differs per thread, of a parameter
// (a warp-uniform register) and under a guard, against Go's wrapping
// arithmetic.
func TestAddImmediates(t *testing.T) {
	type imm struct {
		lit string
		v   uint64
	}
	imms32 := []imm{{"0", 0}, {"1", 1}, {"16", 16}, {"-1", 1<<64 - 1}, {"-16", 1<<64 - 16},
		{"2147483647", 1<<31 - 1}, {"0x80000000", 1 << 31}, {"0xffffffff", 1<<32 - 1}}
	imms64 := append(imms32[:len(imms32):len(imms32)], imm{"0x100000000", 1 << 32},
		imm{"0x8000000000000000", 1 << 63}, imm{"-9223372036854775807", 1<<63 + 1})
	ops := []string{"add.s32", "add.u32", "sub.s32", "sub.u32", "add.s64", "add.u64", "sub.s64", "sub.u64"}
	type out struct {
		op   string
		v    uint64
		src  int // 0 per thread, 1 the parameter, 2 per thread on odd threads only
		is64 bool
	}
	var outs []out
	var body strings.Builder
	for _, op := range ops {
		is64 := strings.HasSuffix(op, "64")
		imms := imms32
		if is64 {
			imms = imms64
		}
		for _, im := range imms {
			for src := range 3 {
				// the parameter's sums go to registers that only
				// uniform sources write, which are tracked
				a, d := []string{"%r1", "%r4", "%r1"}[src], []string{"%r2", "%r3", "%r2"}[src]
				if is64 {
					a, d = []string{"%rd1", "%rd7", "%rd1"}[src], []string{"%rd4", "%rd2", "%rd4"}[src]
				}
				if src == 2 {
					fmt.Fprintf(&body, "\tmov.b%s %s, %s;\n", op[len(op)-2:], d, a)
					fmt.Fprintf(&body, "\t@%%p1 %s %s, %s, %s;\n", op, d, a, im.lit)
				} else {
					fmt.Fprintf(&body, "\t%s %s, %s, %s;\n", op, d, a, im.lit)
				}
				if !is64 {
					fmt.Fprintf(&body, "\tcvt.u64.u32 %%rd4, %s;\n", d)
					d = "%rd4"
				}
				fmt.Fprintf(&body, "\tst.global.u64 [%%rd3+%d], %s;\n", 8*len(outs), d)
				outs = append(outs, out{op, im.v, src, is64})
			}
		}
	}
	src := fmt.Sprintf(`
.version 7.0
.target sm_70
.address_size 64
.visible .entry t(.param .u64 px, .param .u64 pu, .param .u64 pout)
{
	.reg .pred %%p<2>;
	.reg .b32 %%r<8>;
	.reg .b64 %%rd<8>;
	mov.u32 %%r0, %%tid.x;
	and.b32 %%r5, %%r0, 1;
	setp.ne.u32 %%p1, %%r5, 0;
	mul.wide.u32 %%rd5, %%r0, 8;
	ld.param.u64 %%rd6, [px];
	add.s64 %%rd6, %%rd6, %%rd5;
	ld.global.u64 %%rd1, [%%rd6];
	cvt.u32.u64 %%r1, %%rd1;
	ld.param.u64 %%rd7, [pu];
	ld.param.u32 %%r4, [pu];
	mul.wide.u32 %%rd5, %%r0, %d;
	ld.param.u64 %%rd3, [pout];
	add.s64 %%rd3, %%rd3, %%rd5;
%s	ret;
}
`, 8*len(outs), body.String())
	m, err := Load([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	k, err := m.Kernel("t")
	if err != nil {
		t.Fatal(err)
	}
	nimm, uni := 0, 0
	for _, in := range k.code {
		op := in.op
		if op == opUni {
			op = opcode(in.mod)
			uni++
		}
		nimm += b2i(op == opAdd32Imm || op == opAddImm)
	}
	if nimm != len(outs) || uni == 0 {
		t.Errorf("%d adds of an immediate run as such (%d tracked), want %d and some tracked", nimm, uni, len(outs))
	}
	xs := []uint64{0, 1, 15, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 0x1_0000_0000, 0x1234_5678_9abc_def0, 1 << 63, 1<<64 - 1}
	const n = 40
	const u = 0xfedc_ba98_7654_3210
	x := make([]uint64, n)
	for i := range n {
		x[i] = xs[i%len(xs)]
	}
	mem := newTestMem()
	px, pout := mem.alloc(8*n), mem.alloc(8*n*len(outs))
	for i, v := range x {
		putN(mem.bytes(px)[8*i:], 8, v)
	}
	l := launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{n, 1, 1}, 0, packParams(t, k, px, uint64(u), pout), 1)
	if err := k.Run(l); err != nil {
		t.Fatal(err)
	}
	got := mem.getU64(pout, n*len(outs))
	for i := range n {
		for j, o := range outs {
			a := x[i]
			switch {
			case o.src == 1:
				a = u
			case o.src == 2 && i%2 == 0:
				a, o.op = x[i], "mov"
			}
			w := a
			switch o.op[:3] {
			case "add":
				w = a + o.v
			case "sub":
				w = a - o.v
			}
			if !o.is64 {
				w = uint64(uint32(w))
			}
			if g := got[i*len(outs)+j]; g != w {
				t.Errorf("thread %d: %s 0x%x, 0x%x (source %d) = 0x%x, want 0x%x", i, o.op, a, o.v, o.src, g, w)
			}
		}
	}
}

// TestAdd32HighBits checks that add.s32 of an immediate leaves no bits
// above the 32nd in its register, per thread and on a warp-uniform
// register: shared addresses that wrap past 2^32 reach the words they
// name.
func TestAdd32HighBits(t *testing.T) {
	const src = `
.version 7.0
.target sm_70
.address_size 64
.visible .entry t(.param .u32 pa, .param .u64 pout)
{
	.shared .align 4 .b8 buf[136];
	.reg .b32 %r<10>;
	.reg .b64 %rd<4>;
	ld.param.u32 %r1, [pa];
	mov.u32 %r0, %tid.x;
	shl.b32 %r7, %r0, 2;
	add.s32 %r8, %r0, 100;
	st.shared.u32 [%r7+4], %r8;
	bar.sync 0;
	add.s32 %r2, %r7, %r1;
	add.s32 %r3, %r2, 20;
	ld.shared.u32 %r5, [%r3];
	add.s32 %r4, %r1, 20;
	ld.shared.u32 %r6, [%r4];
	ld.param.u64 %rd1, [pout];
	mul.wide.u32 %rd2, %r0, 8;
	add.s64 %rd1, %rd1, %rd2;
	st.global.v2.u32 [%rd1], {%r5, %r6};
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
	const n = 32
	mem := newTestMem()
	pout := mem.alloc(8 * n)
	l := launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{n, 1, 1}, 0, packParams(t, k, uint32(0xfffffff0), pout), 1)
	if err := k.Run(l); err != nil {
		t.Fatal(err)
	}
	got := mem.getU32(pout, 2*n)
	for i := range n {
		if got[2*i] != uint32(i)+100 || got[2*i+1] != 100 {
			t.Errorf("thread %d read %d and %d, want %d and 100", i, got[2*i], got[2*i+1], i+100)
		}
	}
}
