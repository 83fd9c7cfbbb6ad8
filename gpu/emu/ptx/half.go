package ptx

import (
	"math"
	"math/big"
	"math/bits"
)

// Half precision: f16 (IEEE 754 binary16) and bf16, alone or as pairs
// in a 32-bit register (f16x2, bf16x2). Values are computed in float64,
// where sums and products of two halves are exact, and rounded once to
// the half format; fma rounds to odd in float64 first so that its
// second rounding is still correct.

// halfFormat describes a 16-bit float format.
type halfFormat struct {
	prec    int     // significand bits, the implicit one included
	bias    int     // exponent bias
	maxVal  float64 // largest finite value
	nanBits uint16  // the canonical NaN
}

var (
	fmtF16  = halfFormat{prec: 11, bias: 15, maxVal: 65504, nanBits: 0x7fff}
	fmtBF16 = halfFormat{prec: 8, bias: 127, maxVal: math.Ldexp(255, 120), nanBits: 0x7fff}
)

func (t vtype) halfFormat() halfFormat {
	if t == tBF16 || t == tBF16x2 {
		return fmtBF16
	}
	return fmtF16
}

// decode returns the value of half bits h exactly.
func (f halfFormat) decode(h uint16) float64 {
	mbits := uint(f.prec - 1)
	expBits := 15 - mbits
	e := int(h>>mbits) & (1<<expBits - 1)
	m := float64(h & (1<<mbits - 1))
	var v float64
	switch {
	case e == 1<<expBits-1 && m != 0:
		return math.NaN()
	case e == 1<<expBits-1:
		v = math.Inf(1)
	case e == 0:
		v = math.Ldexp(m, 1-f.bias-int(mbits))
	default:
		v = math.Ldexp(m+float64(uint64(1)<<mbits), e-f.bias-int(mbits))
	}
	if h&0x8000 != 0 {
		v = -v
	}
	return v
}

// encode rounds v to the format with rounding mode mod (rn when
// rndNone).
func (f halfFormat) encode(v float64, mod uint8) uint16 {
	if v != v {
		return f.nanBits
	}
	var sign uint16
	if math.Signbit(v) {
		sign, v = 0x8000, -v
	}
	mbits := uint(f.prec - 1)
	inf := sign | uint16(1<<(15-mbits)-1)<<mbits
	// rounding toward zero for this sign
	towardZero := mod == rndRz || (mod == rndRm && sign == 0) || (mod == rndRp && sign != 0)
	if math.IsInf(v, 0) {
		return inf
	}
	if v == 0 {
		return sign
	}
	_, e := math.Frexp(v)
	qexp := max(e-f.prec, 1-f.bias-int(mbits)) // the quantum's exponent
	n := math.Ldexp(v, -qexp)
	switch {
	case towardZero:
		n = math.Floor(n)
	case mod == rndRm || mod == rndRp:
		n = math.Ceil(n) // away from zero
	default:
		n = math.RoundToEven(n)
	}
	r := math.Ldexp(n, qexp)
	if r > f.maxVal {
		if towardZero {
			return sign | f.encode(f.maxVal, rndRz)
		}
		return inf
	}
	if r == 0 {
		return sign
	}
	_, e = math.Frexp(r)
	be := e - 1 + f.bias
	if be <= 0 {
		return sign | uint16(math.Ldexp(r, f.bias-1+int(mbits)))
	}
	m := uint16(math.Ldexp(r, f.prec-e)) & (1<<mbits - 1)
	return sign | uint16(be)<<mbits | m
}

// roundToOdd returns x rounded to float64 with the last bit set when
// inexact, given the nearest-even result r and whether r is below x.
func roundToOdd(r float64, exact, below bool) float64 {
	if exact || math.IsInf(r, 0) || math.Float64bits(r)&1 != 0 {
		return r
	}
	if below {
		return math.Nextafter(r, math.Inf(1))
	}
	return math.Nextafter(r, math.Inf(-1))
}

// fmaOdd is a*b+c rounded to odd in float64, for halves a, b and c: the
// product is exact, the sum's error comes from TwoSum.
func fmaOdd(a, b, c float64) float64 {
	p := a * b
	s := p + c
	if math.IsInf(s, 0) || s != s {
		return s
	}
	bp := s - c
	err := (p - bp) + (c - (s - bp))
	return roundToOdd(s, err == 0, err > 0)
}

// fmaF32Odd is a*b+c rounded once for the cases the interpreter's fma
// loop cannot round from float64 directly: a sum that landed exactly
// halfway between two float32, or one in their subnormal range. It
// rounds the sum to odd first.
//
//go:noinline
func fmaF32Odd(a, b, c float32) float32 {
	return float32(fmaOdd(float64(a), float64(b), float64(c)))
}

// intToOdd converts an integer to float64 rounding to odd, so that a
// second rounding to a half is correct.
func intToOdd(v uint64, signed bool) float64 {
	x := new(big.Float).SetPrec(64)
	if signed {
		x.SetInt64(int64(v))
	} else {
		x.SetUint64(v)
	}
	r, acc := x.Float64()
	return roundToOdd(r, acc == big.Exact, acc == big.Below)
}

// Operations of opHalf, in mod.
const (
	hAdd uint8 = iota
	hSub
	hMul
	hFma
	hMin
	hMax
	hMinNaN
	hMaxNaN
	hNeg
	hAbs
)

// halfOp computes one 16-bit lane of opHalf.
func halfOp(op uint8, f halfFormat, rnd uint8, relu bool, a, b, c uint16) uint16 {
	switch op {
	case hNeg:
		return a ^ 0x8000
	case hAbs:
		return a &^ 0x8000
	}
	x, y := f.decode(a), f.decode(b)
	var v float64
	switch op {
	case hAdd:
		v = x + y
	case hSub:
		v = x - y
	case hMul:
		v = x * y
	case hFma:
		v = fmaOdd(x, y, f.decode(c))
	case hMin, hMinNaN, hMax, hMaxNaN:
		// a NaN operand gives NaN with .NaN, else the other operand
		if (x != x || y != y) && (op >= hMinNaN || x != x && y != y) {
			return f.nanBits
		}
		if op == hMin || op == hMinNaN {
			v = ptxMin(x, y)
		} else {
			v = ptxMax(x, y)
		}
	}
	h := f.encode(v, rnd)
	if relu && (h&0x8000 != 0 || v != v) {
		return 0
	}
	return h
}

// isHalf reports whether t is a 16-bit float type or a pair of them.
func (t vtype) isHalf() bool { return t == tF16 || t == tBF16 || t == tF16x2 || t == tBF16x2 }

func (t vtype) isPair() bool { return t == tF16x2 || t == tBF16x2 }

// halfDecode decodes add, sub, mul, fma, min, max, neg and abs of the
// half types.
func (x *instrDecoder) halfDecode(t vtype) error {
	o, in := &x.o, &x.in
	o.take("ftz")
	in.op, in.typ = opHalf, t
	if o.take("relu") {
		in.flags |= fSat // relu: negative results become +0
	}
	n := 2
	switch o.base {
	case "add", "sub", "mul", "fma":
		in.mod = map[string]uint8{"add": hAdd, "sub": hSub, "mul": hMul, "fma": hFma}[o.base]
		if o.base == "fma" {
			n = 3
		}
		if o.take("sat") {
			return x.bad()
		}
		for m := range o.mods {
			if r, ok := rndNames[m]; ok && r <= rndRp {
				in.e = uint16(r)
				delete(o.mods, m)
			}
		}
	case "min", "max":
		in.mod = map[string]uint8{"min": hMin, "max": hMax}[o.base]
		if o.take("NaN") {
			in.mod += hMinNaN - hMin
		}
	case "neg", "abs":
		in.mod = map[string]uint8{"neg": hNeg, "abs": hAbs}[o.base]
		n = 1
	default:
		return x.bad()
	}
	ops := x.ops
	if len(ops) != n+1 {
		return x.errf("%s: expected %d operands", x.opc, n+1)
	}
	var err error
	if in.d, err = x.dst(ops[0].s); err != nil {
		return err
	}
	regs := []*uint16{&in.a, &in.b, &in.c}
	for i := 1; i <= n; i++ {
		if *regs[i-1], err = x.src(ops[i], t); err != nil {
			return err
		}
	}
	return nil
}

// half computes opHalf for the lanes in mask.
func (w *worker) half(wp *warp, in *instr, mask uint32) {
	r := wp.r
	a, b, c := &r[in.a], &r[in.b], &r[in.c]
	f := in.typ.halfFormat()
	rnd, relu := uint8(in.e), in.flags&fSat != 0
	for m := mask; m != 0; m &= m - 1 {
		l := bits.TrailingZeros32(m)
		v := uint64(halfOp(in.mod, f, rnd, relu, uint16(a[l]), uint16(b[l]), uint16(c[l])))
		if in.typ.isPair() {
			v |= uint64(halfOp(in.mod, f, rnd, relu, uint16(a[l]>>16), uint16(b[l]>>16), uint16(c[l]>>16))) << 16
		}
		w.tmp[l] = v
	}
	w.commitMasked(r, in.d, mask)
}

// setpHalf computes setp of a half type; a pair writes its high half's
// result to e.
func (w *worker) setpHalf(wp *warp, in *instr, mask uint32) {
	r := wp.r
	a, b := &r[in.a], &r[in.b]
	f := in.typ.halfFormat()
	for m := mask; m != 0; m &= m - 1 {
		l := bits.TrailingZeros32(m)
		w.tmp[l] = bool64(cmpFloat(in.mod, f.decode(uint16(a[l])), f.decode(uint16(b[l]))))
		if in.typ.isPair() {
			r[in.e][l] = bool64(cmpFloat(in.mod, f.decode(uint16(a[l]>>16)), f.decode(uint16(b[l]>>16))))
		}
	}
	w.commitMasked(r, in.d, mask)
}
