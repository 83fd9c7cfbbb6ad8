package ptx

import (
	"math"
	"math/big"
	"math/rand/v2"
	"sort"
	"testing"
)

// Every finite half decodes and encodes back to itself; NaNs encode to
// the canonical NaN.
func TestHalfRoundTrip(t *testing.T) {
	for _, f := range []halfFormat{fmtF16, fmtBF16} {
		for h := 0; h < 1<<16; h++ {
			v := f.decode(uint16(h))
			got := f.encode(v, rndRn)
			if v != v {
				if got != f.nanBits {
					t.Fatalf("prec %d: NaN %#x encodes to %#x", f.prec, h, got)
				}
				continue
			}
			if got != uint16(h) {
				t.Fatalf("prec %d: %#x -> %v -> %#x", f.prec, h, v, got)
			}
		}
	}
}

// Rounding agrees with a search of the neighbouring halves, for every
// mode, on random float32 values across the whole range, with the
// edges: ties, the largest finite value, subnormals and ±0.
func TestHalfRounding(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	vals := []float64{0, math.Copysign(0, -1), 65504, 65519.99, 65520, 65536, 1 + 1.0/2048, 1 + 3.0/2048,
		math.Ldexp(1, -25), math.Ldexp(3, -26), math.Ldexp(1, -24), 1e-10, -1e-10, 3.4e38, math.MaxFloat32}
	for range 20000 {
		vals = append(vals, float64(math.Float32frombits(r.Uint32())))
	}
	for _, f := range []halfFormat{fmtF16, fmtBF16} {
		for _, v := range vals {
			if v != v {
				continue
			}
			for _, mod := range []uint8{rndRn, rndRz, rndRm, rndRp} {
				got := f.decode(f.encode(v, mod))
				want := halfRef(f, v, mod)
				if got != want && !(got == 0 && want == 0) || math.Signbit(got) != math.Signbit(want) {
					t.Fatalf("prec %d mode %d: %v rounds to %v, want %v", f.prec, mod, v, got, want)
				}
			}
		}
	}
}

// halfRef rounds v by looking at every finite half of its sign.
func halfRef(f halfFormat, v float64, mod uint8) float64 {
	sign := uint16(0)
	if math.Signbit(v) {
		sign = 0x8000
	}
	// the largest half at or below |v| and the smallest above
	a := math.Abs(v)
	infBits := uint16(1<<(16-f.prec)-1) << (f.prec - 1)
	// positive halves order as their bits do
	n := sort.Search(int(infBits), func(h int) bool { return f.decode(uint16(h)) > a })
	lo, hi := f.decode(uint16(n-1)), f.decode(uint16(n))
	if math.IsInf(hi, 0) && a > f.maxVal {
		// past the largest finite value: rounding away gives infinity
		hi = math.Inf(1)
	}
	var m float64
	towardZero := mod == rndRz || (mod == rndRm && sign == 0) || (mod == rndRp && sign != 0)
	switch {
	case lo == a:
		m = lo
	case towardZero:
		m = lo
	case mod != rndRn:
		m = hi
	case math.IsInf(hi, 0):
		// rn overflows to infinity from half an ulp past the largest value
		ulp := f.maxVal - f.decode(f.encode(f.maxVal, rndRn)-1)
		if a >= f.maxVal+ulp/2 {
			m = hi
		} else {
			m = lo
		}
	case a-lo < hi-a:
		m = lo
	case a-lo > hi-a:
		m = hi
	default: // tie: the even one
		if f.encode(lo, rndRn)&1 == 0 {
			m = lo
		} else {
			m = hi
		}
	}
	if sign != 0 {
		return -m
	}
	return m
}

// fma of halves is correctly rounded: no half lies nearer the exact
// a*b+c, and a tie goes to the even one.
func TestHalfFmaCorrectlyRounded(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, f := range []halfFormat{fmtF16, fmtBF16} {
		for range 20000 {
			a, b, c := uint16(r.Uint32()), uint16(r.Uint32()), uint16(r.Uint32())
			if r.IntN(4) == 0 {
				c ^= 0x7000 // exponents far apart
			}
			x, y, z := f.decode(a), f.decode(b), f.decode(c)
			h := halfOp(hFma, f, rndRn, false, a, b, c)
			exact := new(big.Float).SetPrec(300)
			if x != x || y != y || z != z || math.IsInf(x, 0) || math.IsInf(y, 0) || math.IsInf(z, 0) {
				continue
			}
			exact.Mul(big.NewFloat(x).SetPrec(300), big.NewFloat(y))
			exact.Add(exact, big.NewFloat(z))
			got := f.decode(h)
			if math.IsInf(got, 0) {
				if ef, _ := exact.Float64(); math.Abs(ef) < f.maxVal {
					t.Fatalf("fma(%v, %v, %v) = %v", x, y, z, got)
				}
				continue
			}
			dist := func(v float64) *big.Float {
				d := new(big.Float).SetPrec(300).Sub(exact, big.NewFloat(v))
				return d.Abs(d)
			}
			dg := dist(got)
			for _, nb := range []uint16{h + 1, h - 1, h ^ 0x8000} {
				v := f.decode(nb)
				if v != v || math.IsInf(v, 0) {
					continue
				}
				switch dist(v).Cmp(dg) {
				case -1:
					t.Fatalf("prec %d: fma(%v, %v, %v) = %v, but %v is nearer", f.prec, x, y, z, got, v)
				case 0:
					if v != got && h&1 != 0 {
						t.Fatalf("prec %d: fma(%v, %v, %v) = %v, a tie with the even %v", f.prec, x, y, z, got, v)
					}
				}
			}
		}
	}
}
