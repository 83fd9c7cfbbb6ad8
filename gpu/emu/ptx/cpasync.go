package ptx

import (
	"math"
	"math/bits"
)

// cp.async copies from global to shared memory. The interpreter copies
// at once: the copy is complete before any wait, as a program that
// waits before reading (cp.async.wait_group, wait_all) requires.

// cpDecode decodes cp.async.{ca,cg}.shared.global [dst], [src], size[, srcsize]
// and the group commits and waits, which need no work.
func (x *instrDecoder) cpDecode() error {
	o, in, ops := &x.o, &x.in, x.ops
	if !o.take("async") {
		return x.bad()
	}
	switch {
	case o.take("commit_group"), o.take("wait_all"):
		if len(ops) != 0 {
			return x.bad()
		}
		in.op = opNop
		return nil
	case o.take("wait_group"):
		if len(ops) != 1 {
			return x.bad()
		}
		_, err := x.src(ops[0], tU32)
		in.op = opNop
		return err
	}
	o.take("ca", "cg", "L2::64B", "L2::128B", "L2::256B")
	if !o.take("shared") || !o.take("global") || len(ops) < 3 || len(ops) > 4 {
		return x.bad()
	}
	size, err := parseUint(ops[2].s)
	if err != nil || (size != 4 && size != 8 && size != 16) || ops[2].kind != roValue {
		return x.errf("%s: copy size must be 4, 8 or 16", x.opc)
	}
	in.op, in.mod = opCpAsync, uint8(size)
	if in.a, in.off, err = x.addr(ops[0]); err != nil {
		return err
	}
	var srcOff int64
	if in.b, srcOff, err = x.addr(ops[1]); err != nil {
		return err
	}
	if srcOff > math.MaxInt32 || srcOff < math.MinInt32 {
		return x.errf("%s: source offset too large", x.opc)
	}
	in.target = int32(srcOff)
	if len(ops) == 4 {
		in.c, err = x.src(ops[3], tU32)
	} else {
		in.c, err = x.constReg(size)
	}
	return err
}

// cpAsync copies for the lanes in mask; bytes past the source size are
// zero.
func (w *worker) cpAsync(wp *warp, in *instr, mask uint32) error {
	r := wp.r
	n := uint64(in.mod)
	for m := mask; m != 0; m &= m - 1 {
		l := bits.TrailingZeros32(m)
		t := wp.idx*32 + l
		dst, err := w.access(in, spShared, r[in.a][l]+uint64(in.off), n, t)
		if err != nil {
			return err
		}
		srcN := min(uint64(uint32(r[in.c][l])), n)
		clear(dst)
		if srcN == 0 {
			continue
		}
		src, err := w.access(in, spGlobal, r[in.b][l]+uint64(int64(in.target)), srcN, t)
		if err != nil {
			return err
		}
		copy(dst, src)
	}
	return nil
}
