package ptx

import (
	"math"
	"math/big"
)

// cvt converts one lane's value as cvt.{mod}{.sat}.typ.styp does.
// Results are stored zero-extended from the destination size; every
// consumer extends by its own type.
func cvt(in *instr, x uint64) uint64 {
	dt, st := in.typ, in.styp
	sat := in.flags&fSat != 0
	if dt.isHalf() || st.isHalf() {
		return cvtHalf(in, x)
	}
	switch {
	case st.isFloat() && dt.isFloat():
		f := f64(x)
		if st == tF32 {
			f = float64(f32(x))
		}
		if in.mod >= rndRni {
			f = roundInt(f, in.mod)
		}
		if sat {
			f = satFloat(f)
		}
		if dt == tF64 {
			return b64(f)
		}
		return b32(toF32(f, in.mod))
	case st.isFloat():
		f := f64(x)
		if st == tF32 {
			f = float64(f32(x))
		}
		return floatToInt(roundInt(f, in.mod), dt)
	case dt.isFloat():
		v := st.extend(x)
		if dt == tF64 {
			if st.signed() {
				return b64(intToFloat(float64(int64(v)), new(big.Float).SetInt64(int64(v)), in.mod, 53))
			}
			return b64(intToFloat(float64(v), new(big.Float).SetUint64(v), in.mod, 53))
		}
		var f float64
		if st.signed() {
			if in.mod == rndRn {
				f = float64(float32(int64(v)))
			} else {
				f = intToFloat(0, new(big.Float).SetInt64(int64(v)), in.mod, 24)
			}
		} else {
			if in.mod == rndRn {
				f = float64(float32(v))
			} else {
				f = intToFloat(0, new(big.Float).SetUint64(v), in.mod, 24)
			}
		}
		if sat {
			f = satFloat(f)
		}
		return b32(float32(f))
	}
	v := st.extend(x)
	if sat {
		v = satInt(v, st.signed(), dt)
	}
	return truncate(v, dt.size())
}

// cvtHalf is cvt to or from f16 or bf16.
func cvtHalf(in *instr, x uint64) uint64 {
	dt, st := in.typ, in.styp
	var v float64
	switch {
	case st.isHalf():
		v = st.halfFormat().decode(uint16(x))
	case st == tF32:
		v = float64(f32(x))
	case st == tF64:
		v = f64(x)
	default:
		v = intToOdd(st.extend(x), st.signed())
	}
	if in.mod >= rndRni {
		v = roundInt(v, in.mod)
	}
	if in.flags&fSat != 0 {
		v = satFloat(v)
	}
	switch {
	case dt.isHalf():
		mod := in.mod
		if mod >= rndRni || mod == rndNone {
			mod = rndRn
		}
		return uint64(dt.halfFormat().encode(v, mod))
	case dt == tF32:
		return b32(float32(v))
	case dt == tF64:
		return b64(v)
	}
	return floatToInt(v, dt)
}

func truncate(v uint64, size int) uint64 {
	if size >= 8 {
		return v
	}
	return v & (1<<(8*uint(size)) - 1)
}

func satFloat(f float64) float64 {
	if f != f || f <= 0 {
		return 0
	}
	return min(f, 1)
}

func roundInt(f float64, mod uint8) float64 {
	switch mod {
	case rndRni:
		return math.RoundToEven(f)
	case rndRzi:
		return math.Trunc(f)
	case rndRmi:
		return math.Floor(f)
	case rndRpi:
		return math.Ceil(f)
	}
	return f
}

// toF32 narrows f with rounding mode mod.
func toF32(f float64, mod uint8) float32 {
	if mod == rndRz || mod == rndRm || mod == rndRp {
		if f != f || math.IsInf(f, 0) {
			return float32(f)
		}
		v, _ := new(big.Float).SetPrec(24).SetMode(bigMode(mod)).SetFloat64(f).Float32()
		return v
	}
	return float32(f)
}

func bigMode(mod uint8) big.RoundingMode {
	switch mod {
	case rndRz:
		return big.ToZero
	case rndRm:
		return big.ToNegativeInf
	case rndRp:
		return big.ToPositiveInf
	}
	return big.ToNearestEven
}

// intToFloat converts exactly held x to prec bits with rounding mode
// mod; rn uses the fast value.
func intToFloat(fast float64, x *big.Float, mod uint8, prec uint) float64 {
	if mod == rndRn && prec == 53 {
		return fast
	}
	r := new(big.Float).SetPrec(prec).SetMode(bigMode(mod))
	r.Set(x)
	f, _ := r.Float64()
	return f
}

// floatToInt converts an integral f to integer type t, saturating;
// NaN converts to 0.
func floatToInt(f float64, t vtype) uint64 {
	if f != f {
		return 0
	}
	n := uint(8 * t.size())
	if t.signed() {
		lo, hi := -math.Ldexp(1, int(n-1)), math.Ldexp(1, int(n-1))
		var v int64
		switch {
		case f < lo:
			v = -1 << (n - 1)
		case f >= hi:
			v = 1<<(n-1) - 1
		default:
			v = int64(f)
		}
		return truncate(uint64(v), t.size())
	}
	hi := math.Ldexp(1, int(n))
	switch {
	case f <= 0:
		return 0
	case f >= hi:
		return truncate(math.MaxUint64, t.size())
	}
	return uint64(f)
}

// satInt clamps v (signed or not) to the range of t.
func satInt(v uint64, signed bool, t vtype) uint64 {
	n := uint(8 * t.size())
	if t.signed() {
		lo, hi := int64(-1)<<(n-1), int64(uint64(1)<<(n-1)-1)
		if signed {
			return uint64(min(max(int64(v), lo), hi))
		}
		return min(v, uint64(hi))
	}
	var hi uint64 = math.MaxUint64
	if n < 64 {
		hi = 1<<n - 1
	}
	if signed && int64(v) < 0 {
		return 0
	}
	return min(v, hi)
}
