package ptx

// Moves and conversions: mov, cvt, cvta.

// mov decodes mov, including packing two 32-bit halves into a 64-bit
// register and unpacking them.
func (x *instrDecoder) mov() error {
	o, in, ops := &x.o, &x.in, x.ops
	var err error
	t, ok := o.oneType()
	if !ok || len(ops) != 2 {
		return x.bad()
	}
	switch {
	case ops[0].kind == roVec && t.size() == 4 && len(ops[0].list) == 2:
		in.op = opUnpack32
		if in.d, err = x.dst(ops[0].list[0]); err != nil {
			return err
		}
		if in.e, err = x.dst(ops[0].list[1]); err != nil {
			return err
		}
		in.a, err = x.src(ops[1], t)
		return err
	case ops[1].kind == roVec && t.size() == 4 && len(ops[1].list) == 2:
		in.op = opPack32
		if in.d, err = x.dst(ops[0].s); err != nil {
			return err
		}
		if in.a, err = x.src(rawOp{s: ops[1].list[0]}, tB16); err != nil {
			return err
		}
		in.b, err = x.src(rawOp{s: ops[1].list[1]}, tB16)
		return err
	case ops[0].kind == roVec:
		if t.size() != 8 || len(ops[0].list) != 2 {
			return x.bad()
		}
		in.op = opUnpack64
		if in.d, err = x.dst(ops[0].list[0]); err != nil {
			return err
		}
		if in.e, err = x.dst(ops[0].list[1]); err != nil {
			return err
		}
		if in.a, err = x.src(ops[1], t); err != nil {
			return err
		}
	case ops[1].kind == roVec:
		if t.size() != 8 || len(ops[1].list) != 2 {
			return x.bad()
		}
		in.op = opPack64
		if in.d, err = x.dst(ops[0].s); err != nil {
			return err
		}
		if in.a, err = x.src(rawOp{s: ops[1].list[0]}, tB32); err != nil {
			return err
		}
		if in.b, err = x.src(rawOp{s: ops[1].list[1]}, tB32); err != nil {
			return err
		}
	default:
		if clk, ok := timeRegs[ops[1].s]; ok && ops[1].kind == roValue && !x.isDeclared(ops[1].s) {
			in.op, in.mod = opClock, clk
			in.d, err = x.dst(ops[0].s)
			return err
		}
		in.op = opMov
		return x.dstSrcs(t, 1)
	}
	return nil
}

// cvt decodes cvt: its two types and rounding mode.
func (x *instrDecoder) cvt() error {
	o, in := &x.o, &x.in
	if len(o.types) != 2 {
		return x.bad()
	}
	in.op = opCvt
	in.typ, in.styp = o.types[0], o.types[1]
	if in.typ == tPred || in.styp == tPred || in.typ.isPair() || in.styp.isPair() {
		return x.bad()
	}
	if o.take("sat") {
		in.flags |= fSat
	}
	o.take("ftz")
	for m := range o.mods {
		if r, ok := rndNames[m]; ok {
			if in.mod != rndNone {
				return x.bad()
			}
			in.mod = r
			delete(o.mods, m)
		}
	}
	df, sf := in.typ.isFloat() || in.typ.isHalf(), in.styp.isFloat() || in.styp.isHalf()
	intRnd := in.mod >= rndRni
	switch {
	case df && sf:
		if in.mod == rndNone && in.typ.size() < in.styp.size() {
			return x.bad()
		}
	case sf: // float to int
		if !intRnd {
			return x.bad()
		}
	case df: // int to float
		if intRnd {
			return x.bad()
		}
		if in.mod == rndNone {
			in.mod = rndRn
		}
	default:
		if in.mod != rndNone {
			return x.bad()
		}
	}
	return x.dstSrcs(in.styp, 1)
}

// cvtPair decodes cvt.rnd.f16x2.f32 d, a, b (and bf16x2): a converted
// to the upper half of d, b to the lower, each rounded once. It appends
// two conversions into scratch registers and their packing.
func (x *instrDecoder) cvtPair(code []instr) ([]instr, error) {
	o, in := &x.o, &x.in
	half := tF16
	if o.types[0] == tBF16x2 {
		half = tBF16
	}
	rnd, ok := uint8(0), false
	for m := range o.mods {
		if r, isRnd := rndNames[m]; isRnd && r <= rndRp && !ok {
			rnd, ok = r, true
			delete(o.mods, m)
		}
	}
	if !ok || o.types[1] != tF32 || len(o.mods) != 0 || len(x.ops) != 3 {
		return code, x.bad()
	}
	d, err := x.dst(x.ops[0].s)
	if err != nil {
		return code, err
	}
	base, err := x.newRegs(2)
	if err != nil {
		return code, err
	}
	hi, lo := uint16(base), uint16(base+1)
	for i, t := range []uint16{hi, lo} {
		src, err := x.src(x.ops[1+i], tF32)
		if err != nil {
			return code, err
		}
		c := *in
		c.op, c.typ, c.styp, c.mod, c.d, c.a = opCvt, half, tF32, rnd, t, src
		code = append(code, c)
	}
	p := *in
	p.op, p.typ, p.d, p.a, p.b = opPack32, tB32, d, lo, hi
	return append(code, p), nil
}

// cvta decodes cvta between the generic window and a state space.
func (x *instrDecoder) cvta() error {
	o, in := &x.o, &x.in
	t, ok := o.oneType()
	if !ok || t.size() != 8 {
		return x.bad()
	}
	to := o.take("to")
	switch {
	case o.take("global", "const", "param"):
		in.op = opMov
	case o.take("shared"):
		in.op = opAddImm
		in.off = sharedWindowOff
	case o.take("local"):
		in.op = opAddImm
		in.off = localWindowOff
	default:
		return x.bad()
	}
	if to {
		in.off = -in.off
	}
	return x.dstSrcs(t, 1)
}
