package ptx

import "math/bits"

// 8- and 16-bit integer operations, and the rarer bit operations:
// funnel shift, bfind, dp4a and dp2a.

// Operations of opNarrow, in mod.
const (
	nAdd uint8 = iota
	nSub
	nMulLo
	nMulHi
	nMadLo
	nMadHi
	nDiv
	nRem
	nMin
	nMax
	nAnd
	nOr
	nXor
	nNot
	nShl
	nShr
	nNeg
	nAbs
)

var narrowNames = map[string]uint8{"add": nAdd, "sub": nSub, "div": nDiv, "rem": nRem, "min": nMin, "max": nMax,
	"and": nAnd, "or": nOr, "xor": nXor, "not": nNot, "shl": nShl, "shr": nShr, "neg": nNeg, "abs": nAbs}

// narrow computes one lane of an opNarrow instruction of type t: the
// operands extended by t, the result truncated to t's size.
func narrow(op uint8, t vtype, a, b, c uint64) uint64 {
	size := t.size()
	x, y, z := t.extend(a), t.extend(b), t.extend(c)
	var v uint64
	switch op {
	case nAdd:
		v = x + y
	case nSub:
		v = x - y
	case nMulLo:
		v = x * y
	case nMulHi:
		v = (x * y) >> (8 * uint(size))
		if t.signed() {
			v = uint64(int64(x)*int64(y)) >> (8 * uint(size))
		}
	case nMadLo:
		v = x*y + z
	case nMadHi:
		p := (x * y) >> (8 * uint(size))
		if t.signed() {
			p = uint64(int64(x)*int64(y)) >> (8 * uint(size))
		}
		v = p + z
	case nDiv:
		switch {
		case truncate(y, size) == 0:
			v = ^uint64(0)
		case t.signed():
			v = uint64(int64(x) / int64(y))
		default:
			v = x / y
		}
	case nRem:
		switch {
		case truncate(y, size) == 0:
			v = x
		case t.signed():
			v = uint64(int64(x) % int64(y))
		default:
			v = x % y
		}
	case nMin, nMax:
		less := x < y
		if t.signed() {
			less = int64(x) < int64(y)
		}
		v = y
		if less == (op == nMin) {
			v = x
		}
	case nAnd:
		v = x & y
	case nOr:
		v = x | y
	case nXor:
		v = x ^ y
	case nNot:
		v = ^x
	case nShl:
		if uint32(b) < 64 {
			v = x << uint32(b)
		}
	case nShr:
		sh := min(uint32(b), 63)
		if t.signed() {
			v = uint64(int64(x) >> sh)
		} else if sh < 64 {
			v = x >> sh
		}
	case nNeg:
		v = -x
	case nAbs:
		v = x
		if int64(x) < 0 {
			v = -x
		}
	}
	return truncate(v, size)
}

// narrowOp decodes a 16-bit (or 8-bit) integer operation with n sources.
func (x *instrDecoder) narrowOp(t vtype, op uint8, n int) error {
	x.in.op, x.in.mod, x.in.typ = opNarrow, op, t
	if err := x.dstSrcs(t, n); err != nil {
		return err
	}
	if op == nShl || op == nShr {
		var err error
		x.in.b, err = x.src(x.ops[2], tU32)
		return err
	}
	return nil
}

// shf computes a funnel shift of b:a by c.
func shf(a, b, c uint64, mod uint8) uint64 {
	n := uint32(c)
	if mod&2 != 0 {
		n = min(n, 32)
	} else {
		n &= 31
	}
	v := uint64(uint32(b))<<32 | uint64(uint32(a))
	if mod&1 != 0 {
		return uint64(uint32(v >> n))
	}
	return uint64(uint32((v << n) >> 32))
}

// bfind returns the bit position of the most significant non-sign bit
// of a (of type t), or all ones when there is none.
func bfind(a uint64, t vtype, shiftAmt bool) uint64 {
	w := 8 * t.size()
	v := truncate(a, t.size())
	if t.signed() && v>>(w-1) != 0 {
		v = truncate(^v, t.size())
	}
	if v == 0 {
		return 0xffffffff
	}
	pos := uint64(63 - bits.LeadingZeros64(v))
	if shiftAmt {
		return uint64(w-1) - pos
	}
	return pos
}

// dp4a is the four-way byte dot product plus c; mod bit 0 makes a's
// bytes signed, bit 1 b's.
func dp4a(a, b, c uint64, mod uint8) uint64 {
	s := uint32(c)
	for i := 0; i < 4; i++ {
		s += uint32(byteOf(a, i, mod&1 != 0) * byteOf(b, i, mod&2 != 0))
	}
	return uint64(s)
}

// dp2a is the two-way 16-bit by 8-bit dot product plus c, using the low
// (hi false) or high bytes of b.
func dp2a(a, b, c uint64, mod uint8, hi bool) uint64 {
	s := uint32(c)
	off := 0
	if hi {
		off = 2
	}
	for i := 0; i < 2; i++ {
		h := int64(uint16(a >> (16 * i)))
		if mod&1 != 0 {
			h = int64(int16(a >> (16 * i)))
		}
		s += uint32(h * byteOf(b, off+i, mod&2 != 0))
	}
	return uint64(s)
}

func byteOf(v uint64, i int, signed bool) int64 {
	if signed {
		return int64(int8(v >> (8 * i)))
	}
	return int64(uint8(v >> (8 * i)))
}

// sadDecode decodes sad.{u32,s32}: d = |a - b| + c.
func (x *instrDecoder) sadDecode() error {
	o, in := &x.o, &x.in
	t, ok := o.oneType()
	if !ok || (t != tU32 && t != tS32) {
		return x.bad()
	}
	in.op = opSad32
	if t == tS32 {
		in.mod = 1
	}
	return x.dstSrcs(t, 3)
}

func sad(a, b, c uint64, signed bool) uint64 {
	var d uint32
	if signed {
		x, y := int64(int32(a)), int64(int32(b))
		d = uint32(max(x-y, y-x))
	} else {
		x, y := uint32(a), uint32(b)
		if x < y {
			d = y - x
		} else {
			d = x - y
		}
	}
	return uint64(d + uint32(c))
}

// shfDecode decodes shf.{l,r}.{wrap,clamp}.b32.
func (x *instrDecoder) shfDecode() error {
	o, in := &x.o, &x.in
	t, ok := o.oneType()
	if !ok || t != tB32 {
		return x.bad()
	}
	switch {
	case o.take("l"):
	case o.take("r"):
		in.mod |= 1
	default:
		return x.bad()
	}
	switch {
	case o.take("wrap"):
	case o.take("clamp"):
		in.mod |= 2
	default:
		return x.bad()
	}
	in.op = opShf
	return x.dstSrcs(t, 3)
}

// bfindDecode decodes bfind[.shiftamt].{u32,s32,u64,s64}; the result is
// a u32.
func (x *instrDecoder) bfindDecode() error {
	o, in := &x.o, &x.in
	t, ok := o.oneType()
	if !ok || (t != tU32 && t != tS32 && t != tU64 && t != tS64) {
		return x.bad()
	}
	in.op, in.typ = opBfind, t
	if o.take("shiftamt") {
		in.op = opBfindShift
	}
	return x.dstSrcs(t, 1)
}

// dpDecode decodes dp4a.atype.btype and dp2a.{lo,hi}.atype.btype.
func (x *instrDecoder) dpDecode() error {
	o, in := &x.o, &x.in
	if len(o.types) != 2 {
		return x.bad()
	}
	for i, t := range o.types {
		switch t {
		case tS32:
			in.mod |= 1 << i
		case tU32:
		default:
			return x.bad()
		}
	}
	in.op = opDp4a
	if o.base == "dp2a" {
		switch {
		case o.take("lo"):
			in.op = opDp2aLo
		case o.take("hi"):
			in.op = opDp2aHi
		default:
			return x.bad()
		}
	}
	return x.dstSrcs(tU32, 3)
}
