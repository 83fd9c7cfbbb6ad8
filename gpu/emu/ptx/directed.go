package ptx

import (
	"math"
	"math/big"
	"math/bits"
)

// Float arithmetic with a directed rounding mode (.rz, .rm, .rp):
// computed exactly, or to 300 bits in the same direction (directed
// roundings compose), with math/big, then rounded once to the
// destination format, subnormals included.

// Operations of opFloatRnd, in mod.
const (
	frAdd uint8 = iota
	frSub
	frMul
	frFma
	frDiv
	frSqrt
	frRcp
)

// directedDecode decodes op of float type t with rounding mode rnd
// (rndRz, rndRm or rndRp) and n sources.
func (x *instrDecoder) directedDecode(t vtype, op uint8, rnd uint8, n int) error {
	x.in.op, x.in.mod, x.in.typ, x.in.e = opFloatRnd, op, t, uint16(rnd)
	return x.dstSrcs(t, n) // n <= 3: e stays the rounding mode
}

// directedMode takes a directed rounding modifier, returning it, or
// rndNone when the rounding is to nearest.
func (x *instrDecoder) directedMode() uint8 {
	x.o.take("ftz", "rn")
	for _, m := range []string{"rz", "rm", "rp"} {
		if x.o.take(m) {
			return rndNames[m]
		}
	}
	return rndNone
}

// floatRnd computes opFloatRnd for the lanes in mask.
func (w *worker) floatRnd(wp *warp, in *instr, mask uint32) {
	r := wp.r
	a, b, c := &r[in.a], &r[in.b], &r[in.c]
	for m := mask; m != 0; m &= m - 1 {
		l := bits.TrailingZeros32(m)
		w.tmp[l] = directed(in.mod, in.typ, uint8(in.e), a[l], b[l], c[l])
	}
	w.commitMasked(r, in.d, mask)
}

func directed(op uint8, t vtype, rnd uint8, a, b, c uint64) uint64 {
	val := func(v uint64) float64 {
		if t == tF32 {
			return float64(f32(v))
		}
		return f64(v)
	}
	x, y, z := val(a), val(b), val(c)
	// IEEE special cases (NaN, ∞, exact zeros) come from float64,
	// where they do not depend on the rounding mode, except the sign
	// of an exact zero sum, which is -0 when rounding down.
	var near float64
	switch op {
	case frAdd:
		near = x + y
	case frSub:
		near = x - y
	case frMul:
		near = x * y
	case frFma:
		near = math.FMA(x, y, z)
	case frDiv:
		near = x / y
	case frSqrt:
		near = math.Sqrt(x)
	case frRcp:
		near = 1 / x
	}
	special := func(v float64) bool { return v != v || math.IsInf(v, 0) }
	if special(x) || special(y) || special(z) || op == frSqrt && x < 0 {
		return pack(near, t)
	}
	const prec = 300
	mode := bigMode(rnd)
	bx, by, bz := big.NewFloat(x).SetPrec(prec), big.NewFloat(y).SetPrec(prec), big.NewFloat(z).SetPrec(prec)
	res := new(big.Float).SetPrec(prec).SetMode(mode)
	switch op {
	case frAdd:
		res.Add(bx, by)
	case frSub:
		res.Sub(bx, by)
	case frMul:
		res.Mul(bx, by)
	case frFma:
		res.Mul(bx, by)
		res.Add(res, bz)
	case frDiv:
		if y == 0 {
			return pack(near, t)
		}
		res.Quo(bx, by)
	case frSqrt:
		if x == 0 {
			return pack(near, t)
		}
		res.Sqrt(bx)
	case frRcp:
		if x == 0 {
			return pack(near, t)
		}
		res.Quo(big.NewFloat(1).SetPrec(prec), bx)
	}
	if res.Sign() == 0 {
		if op != frAdd && op != frSub && op != frFma {
			return pack(near, t) // exact: the sign is the operands'
		}
		// a sum of two zeros of one sign keeps it; any other exact
		// zero sum is +0, or -0 rounding down
		p, q := x, y
		switch op {
		case frSub:
			q = -y
		case frFma:
			p, q = x*y, z
		}
		if p == 0 && q == 0 && math.Signbit(p) == math.Signbit(q) {
			return pack(p, t)
		}
		if rnd == rndRm {
			return pack(math.Copysign(0, -1), t)
		}
		return pack(0, t)
	}
	if t == tF32 {
		return pack(roundBig(res, 24, -149, math.MaxFloat32, rnd), t)
	}
	return pack(roundBig(res, 53, -1074, math.MaxFloat64, rnd), t)
}

func pack(v float64, t vtype) uint64 {
	if t == tF32 {
		return b32(float32(v))
	}
	return b64(v)
}

// roundBig rounds nonzero v to a binary format of prec significand bits,
// smallest quantum 2^minExp and largest finite value maxVal, with a
// directed rounding mode. The result is exact in float64.
func roundBig(v *big.Float, prec int, minExp int, maxVal float64, rnd uint8) float64 {
	neg := v.Sign() < 0
	e := v.MantExp(nil) // v = m × 2^e, 0.5 <= |m| < 1
	bitsKept := prec
	if e-prec < minExp {
		bitsKept = e - minExp
	}
	var r float64
	if bitsKept <= 0 {
		// below half the smallest quantum's scale: 0 or the smallest
		// subnormal, by direction
		away := rnd == rndRp && !neg || rnd == rndRm && neg
		if away {
			r = math.Ldexp(1, minExp)
		}
		if neg {
			r = -r
		}
	} else {
		q := new(big.Float).SetPrec(uint(bitsKept)).SetMode(bigMode(rnd)).Set(v)
		r, _ = q.Float64()
	}
	if math.Abs(r) > maxVal || math.IsInf(r, 0) {
		towardZero := rnd == rndRz || rnd == rndRm && !neg || rnd == rndRp && neg
		r = math.Inf(1)
		if towardZero {
			r = maxVal
		}
		if neg {
			r = -r
		}
	}
	return r
}
