package ptx

// Memory: loads, stores and atomics.

// ldSt decodes ld and st, scalar or vector, in any state space but
// st.param.
func (x *instrDecoder) ldSt() error {
	o, in, ops := &x.o, &x.in, x.ops
	var err error
	sync := o.mods["volatile"] || o.mods["relaxed"] || o.mods["acquire"] || o.mods["release"]
	o.take("weak", "volatile", "relaxed", "ca", "cg", "cs", "lu", "cv", "wb", "wt", "nc",
		"cta", "gpu", "sys", "L1::evict_normal", "L1::no_allocate")
	if o.take("acquire", "release") {
		// treated as relaxed: blocks of a launch are interleaved
		// only at instruction boundaries per goroutine, and the
		// interpreter does not reorder memory operations
		o.take("cta", "gpu", "sys")
	}
	in.space = o.takeSpace(spGlobal, spShared, spLocal, spParam, spConst)
	in.vec = 1
	if o.take("v2") {
		in.vec = 2
	} else if o.take("v4") {
		in.vec = 4
	}
	t, ok := o.oneType()
	if !ok || t == tPred || len(ops) != 2 {
		return x.bad()
	}
	in.typ = t
	if sync && in.vec == 1 && (t.size() == 4 || t.size() == 8) {
		in.flags |= fSync
	}
	regOp, addrOp := ops[0], ops[1]
	in.op = opLd
	if o.base == "st" {
		in.op = opSt
		regOp, addrOp = ops[1], ops[0]
	}
	if in.a, in.off, err = x.addr(addrOp); err != nil {
		return err
	}
	if sym := x.syms[addrOp.s]; in.space == spParam && sym != nil && (sym.space == symLocal || sym.space == symFrame) {
		// a call's arguments and results, and a function's
		// parameters, live in the caller's or callee's frame
		in.space = spLocal
	}
	if in.op == opSt && in.space == spParam {
		return x.bad()
	}
	if addrOp.kind == roAddr && !x.isRegName(addrOp.s) && in.space != spLocal {
		in.flags |= fUniform
	}
	names := []string{regOp.s}
	if in.vec > 1 {
		if regOp.kind != roVec || len(regOp.list) != int(in.vec) {
			return x.errf("%s: expected a %d-element vector", x.opc, in.vec)
		}
		names = regOp.list
	} else if regOp.kind != roValue {
		return x.errf("%s: bad register operand", x.opc)
	}
	for i, n := range names {
		if o.base == "ld" {
			in.regs[i], err = x.dst(n)
		} else {
			in.regs[i], err = x.src(rawOp{s: n, neg: i == 0 && regOp.neg && in.vec == 1}, t)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// atom decodes atom and red (an atom without a result).
func (x *instrDecoder) atom() error {
	o, in, ops := &x.o, &x.in, x.ops
	var err error
	o.take("relaxed", "cta", "gpu", "sys", "acq_rel", "acquire", "release")
	in.space = o.takeSpace(spGlobal, spShared)
	var nops int
	in.mod, nops = o.takeAtomOp()
	t, ok := o.oneType()
	if nops != 1 || !ok || !atomTypeOK(in.mod, t) {
		return x.bad()
	}
	// half adds keep subnormals, and PTX requires them to say so
	if half := t.isHalf(); half != o.take("noftz") {
		return x.bad()
	}
	in.op = opAtom
	in.typ = t
	first := 0
	in.d = 0
	if o.base == "atom" {
		if len(ops) < 1 {
			return x.bad()
		}
		if in.d, err = x.dst(ops[0].s); err != nil {
			return err
		}
		first = 1
	}
	want := first + 2
	if in.mod == atCas {
		want++
	}
	if len(ops) != want {
		return x.bad()
	}
	if in.a, in.off, err = x.addr(ops[first]); err != nil {
		return err
	}
	if in.b, err = x.src(ops[first+1], t); err != nil {
		return err
	}
	if in.mod == atCas {
		if in.c, err = x.src(ops[first+2], t); err != nil {
			return err
		}
	}
	return nil
}

// takeAtomOp takes the operation of an atom, red or redux and counts
// the operations named: exactly one is valid, and two (atom.xor.max)
// are refused the same way whatever order the modifiers come in.
func (o *opcodeParts) takeAtomOp() (op uint8, n int) {
	for m := range o.mods {
		if a, ok := atomNames[m]; ok {
			n++
			op = a
			delete(o.mods, m)
		}
	}
	return op, n
}

// takeSpace takes the first of the state-space modifiers of spaces that
// is present and returns its space; spGeneric when none is.
func (o *opcodeParts) takeSpace(spaces ...uint8) uint8 {
	for _, sp := range spaces {
		if o.take(spaceNames[sp]) {
			return sp
		}
	}
	return spGeneric
}

// atomTypeOK reports whether atomic operation op supports type t.
func atomTypeOK(op uint8, t vtype) bool {
	switch op {
	case atAdd:
		return t == tU32 || t == tS32 || t == tU64 || t == tS64 || t == tF32 || t == tF64 ||
			t == tF16 || t == tF16x2 || t == tBF16 || t == tBF16x2
	case atMin, atMax:
		return t == tU32 || t == tS32 || t == tU64 || t == tS64
	case atCas:
		return t == tB16 || t == tU16 || t == tS16 || t == tB32 || t == tB64 || t == tU32 || t == tS32 || t == tU64 || t == tS64
	case atAnd, atOr, atXor, atExch:
		return t == tB32 || t == tB64 || t == tU32 || t == tS32 || t == tU64 || t == tS64
	case atInc, atDec:
		return t == tU32
	}
	return false
}
