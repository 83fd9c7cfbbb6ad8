package ptx

import (
	"math"
	"math/bits"
)

// laneFn computes one lane of a rarer ALU instruction.
func alu(op opcode, a, b, c, e uint64) uint64 {
	switch op {
	case opMulHiS32:
		return uint64(uint32((int64(int32(a)) * int64(int32(b))) >> 32))
	case opMulHiU32:
		return (uint64(uint32(a)) * uint64(uint32(b))) >> 32
	case opMulHiS64:
		hi, _ := bits.Mul64(a, b)
		// signed correction of the unsigned high word
		if int64(a) < 0 {
			hi -= b
		}
		if int64(b) < 0 {
			hi -= a
		}
		return hi
	case opMulHiU64:
		hi, _ := bits.Mul64(a, b)
		return hi
	case opMulWideS16:
		return uint64(int64(int16(a)) * int64(int16(b)))
	case opMulWideU16:
		return uint64(uint16(a)) * uint64(uint16(b))
	case opMadHiS32:
		return uint64(uint32((int64(int32(a))*int64(int32(b)))>>32) + uint32(c))
	case opMadHiU32:
		return uint64(uint32((uint64(uint32(a))*uint64(uint32(b)))>>32) + uint32(c))
	// integer division by zero is unspecified in PTX: all ones for
	// div, the dividend for rem
	case opDivS32:
		if int32(b) == 0 {
			return 0xffffffff
		}
		return uint64(uint32(int32(a) / int32(b)))
	case opDivU32:
		if uint32(b) == 0 {
			return 0xffffffff
		}
		return uint64(uint32(a) / uint32(b))
	case opDivS64:
		if b == 0 {
			return math.MaxUint64
		}
		return uint64(int64(a) / int64(b))
	case opDivU64:
		if b == 0 {
			return math.MaxUint64
		}
		return a / b
	case opRemS32:
		if int32(b) == 0 {
			return uint64(uint32(a))
		}
		return uint64(uint32(int32(a) % int32(b)))
	case opRemU32:
		if uint32(b) == 0 {
			return uint64(uint32(a))
		}
		return uint64(uint32(a) % uint32(b))
	case opRemS64:
		if b == 0 {
			return a
		}
		return uint64(int64(a) % int64(b))
	case opRemU64:
		if b == 0 {
			return a
		}
		return a % b
	case opMinS32:
		return uint64(uint32(min(int32(a), int32(b))))
	case opMinU32:
		return uint64(min(uint32(a), uint32(b)))
	case opMinS64:
		return uint64(min(int64(a), int64(b)))
	case opMinU64:
		return min(a, b)
	case opMaxS32:
		return uint64(uint32(max(int32(a), int32(b))))
	case opMaxU32:
		return uint64(max(uint32(a), uint32(b)))
	case opMaxS64:
		return uint64(max(int64(a), int64(b)))
	case opMaxU64:
		return max(a, b)
	case opAbsS32:
		v := int32(a)
		if v < 0 {
			v = -v
		}
		return uint64(uint32(v))
	case opAbsS64:
		v := int64(a)
		if v < 0 {
			v = -v
		}
		return uint64(v)
	case opNeg32:
		return uint64(-uint32(a))
	case opNeg64:
		return -a
	case opNot:
		return ^a
	case opNotPred:
		return (a & 1) ^ 1
	case opCnot:
		return bool64(a == 0)
	case opPopc32:
		return uint64(bits.OnesCount32(uint32(a)))
	case opPopc64:
		return uint64(bits.OnesCount64(a))
	case opClz32:
		return uint64(bits.LeadingZeros32(uint32(a)))
	case opClz64:
		return uint64(bits.LeadingZeros64(a))
	case opBrev32:
		return uint64(bits.Reverse32(uint32(a)))
	case opBrev64:
		return bits.Reverse64(a)
	case opBfeU32, opBfeS32:
		return uint64(uint32(bfe(uint64(uint32(a)), uint8(b), uint8(c), 32, op == opBfeS32)))
	case opBfeU64, opBfeS64:
		return bfe(a, uint8(b), uint8(c), 64, op == opBfeS64)
	case opBfi32:
		return uint64(uint32(bfi(uint64(uint32(a)), uint64(uint32(b)), uint8(c), uint8(e), 32)))
	case opBfi64:
		return bfi(a, b, uint8(c), uint8(e), 64)
	case opPrmt:
		return uint64(prmt(uint32(a), uint32(b), uint32(c)))
	case opDivF32:
		return b32(f32(a) / f32(b))
	case opMinF32:
		return b32(ptxMin(f32(a), f32(b)))
	case opMaxF32:
		return b32(ptxMax(f32(a), f32(b)))
	case opAbsF32:
		return a & 0x7fffffff
	case opNegF32:
		return uint64(uint32(a) ^ 0x80000000)
	case opSqrtF32:
		return b32(float32(math.Sqrt(float64(f32(a)))))
	case opRcpF32:
		return b32(1 / f32(a))
	case opRsqrtF32:
		return b32(float32(1 / math.Sqrt(float64(f32(a)))))
	case opEx2F32:
		return b32(float32(math.Exp2(float64(f32(a)))))
	case opLg2F32:
		return b32(float32(math.Log2(float64(f32(a)))))
	case opSinF32:
		return b32(float32(math.Sin(float64(f32(a)))))
	case opCosF32:
		return b32(float32(math.Cos(float64(f32(a)))))
	case opSatF32:
		f := f32(a)
		switch {
		case f != f || f <= 0:
			return 0 // NaN saturates to 0, and -0 to +0
		case f > 1:
			return b32(1)
		}
		return a
	case opAddF64:
		return b64(f64(a) + f64(b))
	case opSubF64:
		return b64(f64(a) - f64(b))
	case opMulF64:
		return b64(f64(a) * f64(b))
	case opFmaF64:
		return b64(math.FMA(f64(a), f64(b), f64(c)))
	case opDivF64:
		return b64(f64(a) / f64(b))
	case opMinF64:
		return b64(ptxMin(f64(a), f64(b)))
	case opMaxF64:
		return b64(ptxMax(f64(a), f64(b)))
	case opAbsF64:
		return a &^ (1 << 63)
	case opNegF64:
		return a ^ (1 << 63)
	case opSqrtF64:
		return b64(math.Sqrt(f64(a)))
	case opRcpF64:
		return b64(1 / f64(a))
	case opRsqrtF64:
		return b64(1 / math.Sqrt(f64(a)))
	case opPack64:
		return uint64(uint32(a)) | uint64(uint32(b))<<32
	case opPack32:
		return uint64(uint16(a)) | uint64(uint16(b))<<16
	}
	return 0
}

func bfe(a uint64, pos, ln uint8, width uint, signed bool) uint64 {
	p, l := uint(pos), uint(ln)
	var sbit uint64
	if signed && l != 0 {
		sb := min(p+l-1, width-1)
		sbit = (a >> sb) & 1
	}
	var d uint64
	for i := uint(0); i < width; i++ {
		var bit uint64
		if i < l && p+i <= width-1 {
			bit = (a >> (p + i)) & 1
		} else {
			bit = sbit
		}
		d |= bit << i
	}
	return d
}

func bfi(a, b uint64, pos, ln uint8, width uint) uint64 {
	d := b
	p, l := uint(pos), uint(ln)
	for i := uint(0); i < l && p+i < width; i++ {
		d = d&^(1<<(p+i)) | ((a>>i)&1)<<(p+i)
	}
	return d
}

func prmt(a, b, c uint32) uint32 {
	tmp := uint64(b)<<32 | uint64(a)
	var d uint32
	for i := 0; i < 4; i++ {
		sel := (c >> (4 * i)) & 0xf
		byt := uint32(tmp>>(8*(sel&7))) & 0xff
		if sel&8 != 0 {
			// replicate the sign bit
			byt = 0
			if tmp>>(8*(sel&7)+7)&1 != 0 {
				byt = 0xff
			}
		}
		d |= byt << (8 * i)
	}
	return d
}

// PTX min/max return the other operand when one is NaN, and order -0
// below +0 (Go's min and max return NaN).
func ptxMin[F float32 | float64](a, b F) F {
	switch {
	case a != a:
		return b
	case b != b:
		return a
	case a == b && math.Signbit(float64(b)):
		return b
	case a <= b:
		return a
	}
	return b
}

func ptxMax[F float32 | float64](a, b F) F {
	switch {
	case a != a:
		return b
	case b != b:
		return a
	case a == b && math.Signbit(float64(a)):
		return b
	case a >= b:
		return a
	}
	return b
}

// slow executes the rarer instructions lane by lane.
func (w *worker) slow(wp *warp, in *instr, mask uint32) error {
	r := wp.r
	switch in.op {
	case opCvt:
		a := &r[in.a]
		for m := mask; m != 0; m &= m - 1 {
			l := bits.TrailingZeros32(m)
			w.tmp[l] = cvt(in, a[l])
		}
		w.commitMasked(r, in.d, mask)
	case opUnpack32:
		a := r[in.a]
		for m := mask; m != 0; m &= m - 1 {
			l := bits.TrailingZeros32(m)
			r[in.d][l] = uint64(uint16(a[l]))
			r[in.e][l] = uint64(uint16(a[l] >> 16))
		}
	case opUnpack64:
		a := r[in.a]
		for m := mask; m != 0; m &= m - 1 {
			l := bits.TrailingZeros32(m)
			r[in.d][l] = uint64(uint32(a[l]))
			r[in.e][l] = a[l] >> 32
		}
	case opShfl:
		w.shfl(wp, in, mask)
	case opVote:
		a := &r[in.a]
		var ballot uint32
		for m := mask; m != 0; m &= m - 1 {
			l := bits.TrailingZeros32(m)
			if a[l]&1 != 0 {
				ballot |= 1 << l
			}
		}
		var v uint64
		switch in.mod {
		case voteAll:
			v = bool64(ballot == mask)
		case voteAny:
			v = bool64(ballot != 0)
		case voteUni:
			v = bool64(ballot == 0 || ballot == mask)
		case voteBallot:
			v = uint64(ballot)
		}
		for m := mask; m != 0; m &= m - 1 {
			r[in.d][bits.TrailingZeros32(m)] = v
		}
	case opNarrow, opSad32, opShf, opBfind, opBfindShift, opDp4a, opDp2aLo, opDp2aHi:
		a, b, c := &r[in.a], &r[in.b], &r[in.c]
		for m := mask; m != 0; m &= m - 1 {
			l := bits.TrailingZeros32(m)
			var v uint64
			switch in.op {
			case opNarrow:
				v = narrow(in.mod, in.typ, a[l], b[l], c[l])
			case opShf:
				v = shf(a[l], b[l], c[l], in.mod)
			case opSad32:
				v = sad(a[l], b[l], c[l], in.mod == 1)
			case opBfind, opBfindShift:
				v = bfind(a[l], in.typ, in.op == opBfindShift)
			case opDp4a:
				v = dp4a(a[l], b[l], c[l], in.mod)
			default:
				v = dp2a(a[l], b[l], c[l], in.mod, in.op == opDp2aHi)
			}
			w.tmp[l] = v
		}
		w.commitMasked(r, in.d, mask)
	case opTex, opTld4:
		return w.tex(wp, in, mask)
	case opSuld, opSust:
		return w.surf(wp, in, mask)
	case opTxq:
		return w.txq(wp, in, mask)
	case opMbar:
		return w.mbar(wp, in, mask)
	case opHalf:
		w.half(wp, in, mask)
	case opSetpHalf:
		w.setpHalf(wp, in, mask)
	case opFloatRnd:
		w.floatRnd(wp, in, mask)
	case opCpAsync:
		return w.cpAsync(wp, in, mask)
	case opRedux:
		w.redux(wp, in, mask)
	case opMatch:
		w.match(wp, in, mask)
	case opMma:
		return w.mma(wp, in, mask)
	case opCvtTF32:
		a := &r[in.a]
		for m := mask; m != 0; m &= m - 1 {
			l := bits.TrailingZeros32(m)
			w.tmp[l] = uint64(roundTF32(uint32(a[l])))
		}
		w.commitMasked(r, in.d, mask)
	case opActivemask:
		for m := mask; m != 0; m &= m - 1 {
			r[in.d][bits.TrailingZeros32(m)] = uint64(mask)
		}
	default:
		a, b, c, e := &r[in.a], &r[in.b], &r[in.c], &r[in.e]
		for m := mask; m != 0; m &= m - 1 {
			l := bits.TrailingZeros32(m)
			w.tmp[l] = alu(in.op, a[l], b[l], c[l], e[l])
		}
		w.commitMasked(r, in.d, mask)
	}
	return nil
}

// commitMasked copies the active lanes of scratch into register d.
func (w *worker) commitMasked(r [][32]uint64, d uint16, mask uint32) {
	dst := &r[d]
	for m := mask; m != 0; m &= m - 1 {
		l := bits.TrailingZeros32(m)
		dst[l] = w.tmp[l]
	}
}

// shfl implements shfl.sync as the PTX ISA describes it. A source lane
// that is not active contributes its register's current value.
func (w *worker) shfl(wp *warp, in *instr, mask uint32) {
	r := wp.r
	src := r[in.a] // copy: d may alias a
	b, c := &r[in.b], &r[in.c]
	for m := mask; m != 0; m &= m - 1 {
		lane := bits.TrailingZeros32(m)
		bval := int(b[lane] & 0x1f)
		cval := int(c[lane] & 0x1f)
		seg := int((c[lane] >> 8) & 0x1f)
		maxLane := (lane & seg) | (cval &^ seg)
		minLane := lane & seg
		var j int
		var ok bool
		switch in.mod {
		case shflUp:
			j = lane - bval
			ok = j >= maxLane
		case shflDown:
			j = lane + bval
			ok = j <= maxLane
		case shflBfly:
			j = lane ^ bval
			ok = j <= maxLane
		default:
			j = minLane | (bval &^ seg)
			ok = j <= maxLane
		}
		if !ok || j < 0 || j > 31 {
			j = lane
		}
		r[in.d][lane] = uint64(uint32(src[j]))
		if in.flags&fPredOut != 0 {
			r[in.e][lane] = bool64(ok)
		}
	}
}

// redux implements redux.sync over the lanes in mask.
func (w *worker) redux(wp *warp, in *instr, mask uint32) {
	r := wp.r
	a := &r[in.a]
	first := true
	var acc uint64
	for m := mask; m != 0; m &= m - 1 {
		v := uint64(uint32(a[bits.TrailingZeros32(m)]))
		if first {
			acc, first = v, false
			continue
		}
		switch in.mod {
		case atAdd:
			acc = uint64(uint32(acc + v))
		case atMin, atMax:
			less := v < acc
			if in.typ == tS32 {
				less = int32(v) < int32(acc)
			}
			if less == (in.mod == atMin) {
				acc = v
			}
		case atAnd:
			acc &= v
		case atOr:
			acc |= v
		case atXor:
			acc ^= v
		}
	}
	for m := mask; m != 0; m &= m - 1 {
		r[in.d][bits.TrailingZeros32(m)] = acc
	}
}

// match implements match.any.sync and match.all.sync over the lanes in
// mask.
func (w *worker) match(wp *warp, in *instr, mask uint32) {
	r := wp.r
	src := r[in.a]
	size := in.typ.size()
	for m := mask; m != 0; m &= m - 1 {
		l := bits.TrailingZeros32(m)
		var same uint32
		for o := mask; o != 0; o &= o - 1 {
			j := bits.TrailingZeros32(o)
			if truncate(src[j], size) == truncate(src[l], size) {
				same |= 1 << j
			}
		}
		v := uint64(same)
		if in.mod == 1 && same != mask {
			v = 0
		}
		r[in.d][l] = v
		if in.flags&fPredOut != 0 {
			r[in.e][l] = bool64(same == mask)
		}
	}
}
