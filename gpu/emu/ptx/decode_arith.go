package ptx

// Integer and float arithmetic.

// addSub decodes add and sub.
func (x *instrDecoder) addSub() error {
	o, in := &x.o, &x.in
	t, ok := o.oneType()
	if !ok {
		return x.bad()
	}
	sat := o.take("sat")
	if !t.isFloat() && t != tPred && t.size() <= 2 && !sat {
		return x.narrowOp(t, narrowNames[o.base], 2)
	}
	switch {
	case t == tF32 || t == tF64:
		if rnd := x.directedMode(); rnd != rndNone {
			if sat {
				return x.bad()
			}
			return x.directedDecode(t, map[string]uint8{"add": frAdd, "sub": frSub}[o.base], rnd, 2)
		}
		in.op = map[bool]map[string]opcode{true: {"add": opAddF32, "sub": opSubF32}, false: {"add": opAddF64, "sub": opSubF64}}[t == tF32][o.base]
	case t.size() == 4 && !sat && t != tPred:
		in.op = map[string]opcode{"add": opAdd32, "sub": opSub32}[o.base]
	case t.size() == 8 && !sat:
		in.op = map[string]opcode{"add": opAdd64, "sub": opSub64}[o.base]
	default:
		return x.bad()
	}
	x.sat, x.satType = sat, t
	return x.dstSrcs(t, 2)
}

// mulMad decodes mul, mad and fma.
func (x *instrDecoder) mulMad() error {
	o, in := &x.o, &x.in
	t, ok := o.oneType()
	if !ok {
		return x.bad()
	}
	n := 2
	if o.base != "mul" {
		n = 3
	}
	sat := o.take("sat")
	if t.isFloat() {
		if rnd := x.directedMode(); rnd != rndNone {
			if sat {
				return x.bad()
			}
			return x.directedDecode(t, map[string]uint8{"mul": frMul, "mad": frFma, "fma": frFma}[o.base], rnd, n)
		}
		switch {
		case o.base == "mul" && t == tF32:
			in.op = opMulF32
		case o.base == "mul":
			in.op = opMulF64
		case t == tF32:
			in.op = opFmaF32
		default:
			in.op = opFmaF64
		}
		x.sat, x.satType = sat, t
		return x.dstSrcs(t, n)
	}
	if sat || o.base == "fma" || t == tPred {
		return x.bad()
	}
	if t.size() <= 2 && !o.mods["wide"] {
		switch {
		case o.take("lo"):
			return x.narrowOp(t, [2]uint8{nMulLo, nMadLo}[n-2], n)
		case o.take("hi"):
			return x.narrowOp(t, [2]uint8{nMulHi, nMadHi}[n-2], n)
		}
		return x.bad()
	}
	if in.op, ok = o.intMulOpcode(t, n); !ok {
		return x.bad()
	}
	if err := x.dstSrcs(t, n); err != nil {
		return err
	}
	if in.op == opMadWideS32 || in.op == opMadWideU32 {
		// the addend is 64-bit
		var err error
		in.c, err = x.src(x.ops[3], tU64)
		return err
	}
	return nil
}

// intMulOpcode takes the .lo, .hi or .wide modifier of an integer mul
// (n == 2) or mad (n == 3) of type t and picks its opcode.
func (o *opcodeParts) intMulOpcode(t vtype, n int) (opcode, bool) {
	switch {
	case o.take("lo"):
		if t.size() != 4 && t.size() != 8 {
			return opNop, false
		}
		return map[bool][2]opcode{true: {opMulLo32, opMadLo32}, false: {opMulLo64, opMadLo64}}[t.size() == 4][n-2], true
	case o.take("hi"):
		switch {
		case n == 2 && t == tS32:
			return opMulHiS32, true
		case n == 2 && t == tU32:
			return opMulHiU32, true
		case n == 2 && t == tS64:
			return opMulHiS64, true
		case n == 2 && t == tU64:
			return opMulHiU64, true
		case n == 3 && t == tS32:
			return opMadHiS32, true
		case n == 3 && t == tU32:
			return opMadHiU32, true
		}
	case o.take("wide"):
		switch {
		case t == tS32:
			return [2]opcode{opMulWideS32, opMadWideS32}[n-2], true
		case t == tU32:
			return [2]opcode{opMulWideU32, opMadWideU32}[n-2], true
		case t == tS16 && n == 2:
			return opMulWideS16, true
		case t == tU16 && n == 2:
			return opMulWideU16, true
		}
	}
	return opNop, false
}

// divRemMinMax decodes div, rem, min and max.
func (x *instrDecoder) divRemMinMax() error {
	o, in := &x.o, &x.in
	t, ok := o.oneType()
	if !ok || t == tPred {
		return x.bad()
	}
	if t.isFloat() {
		if o.base == "rem" {
			return x.bad()
		}
		approx := o.take("approx", "full")
		if rnd := x.directedMode(); rnd != rndNone {
			if o.base != "div" || approx {
				return x.bad()
			}
			return x.directedDecode(t, frDiv, rnd, 2)
		}
		idx := map[string]int{"div": 0, "min": 1, "max": 2}[o.base]
		if t == tF32 {
			in.op = [3]opcode{opDivF32, opMinF32, opMaxF32}[idx]
		} else {
			in.op = [3]opcode{opDivF64, opMinF64, opMaxF64}[idx]
		}
	} else {
		if t.size() <= 2 && (t.kind() != kindB || o.base == "div" || o.base == "rem") {
			return x.narrowOp(t, narrowNames[o.base], 2)
		}
		if t.size() != 4 && t.size() != 8 {
			return x.bad()
		}
		if (o.base == "min" || o.base == "max") && t.kind() == kindB {
			return x.bad()
		}
		signed := t.signed()
		ops4 := map[string][4]opcode{
			"div": {opDivU32, opDivS32, opDivU64, opDivS64},
			"rem": {opRemU32, opRemS32, opRemU64, opRemS64},
			"min": {opMinU32, opMinS32, opMinU64, opMinS64},
			"max": {opMaxU32, opMaxS32, opMaxU64, opMaxS64},
		}[o.base]
		i := 0
		if signed {
			i = 1
		}
		if t.size() == 8 {
			i += 2
		}
		in.op = ops4[i]
	}
	return x.dstSrcs(t, 2)
}

// absNeg decodes abs and neg.
func (x *instrDecoder) absNeg() error {
	o, in := &x.o, &x.in
	t, ok := o.oneType()
	if !ok {
		return x.bad()
	}
	switch {
	case t == tF32:
		in.op = map[string]opcode{"abs": opAbsF32, "neg": opNegF32}[o.base]
		o.take("ftz")
	case t == tF64:
		in.op = map[string]opcode{"abs": opAbsF64, "neg": opNegF64}[o.base]
	case t == tS32:
		in.op = map[string]opcode{"abs": opAbsS32, "neg": opNeg32}[o.base]
	case t == tS64:
		in.op = map[string]opcode{"abs": opAbsS64, "neg": opNeg64}[o.base]
	case t == tS16:
		return x.narrowOp(t, narrowNames[o.base], 1)
	default:
		return x.bad()
	}
	return x.dstSrcs(t, 1)
}

// floatFunc decodes the one-operand float functions: sqrt, rcp, rsqrt, ex2,
// lg2, sin and cos.
func (x *instrDecoder) floatFunc() error {
	o, in := &x.o, &x.in
	t, ok := o.oneType()
	if !ok || !t.isFloat() {
		return x.bad()
	}
	approx := o.take("approx")
	if rnd := x.directedMode(); rnd != rndNone {
		op, ok := map[string]uint8{"sqrt": frSqrt, "rcp": frRcp}[o.base]
		if !ok || approx {
			return x.bad()
		}
		return x.directedDecode(t, op, rnd, 1)
	}
	if t == tF32 {
		in.op = map[string]opcode{"sqrt": opSqrtF32, "rcp": opRcpF32, "rsqrt": opRsqrtF32,
			"ex2": opEx2F32, "lg2": opLg2F32, "sin": opSinF32, "cos": opCosF32}[o.base]
	} else {
		in.op = map[string]opcode{"sqrt": opSqrtF64, "rcp": opRcpF64, "rsqrt": opRsqrtF64}[o.base]
		if in.op == opNop {
			return x.bad()
		}
	}
	return x.dstSrcs(t, 1)
}
