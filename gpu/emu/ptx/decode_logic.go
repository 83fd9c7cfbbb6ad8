package ptx

// Logic, shifts and bit fields.

// logic decodes and, or, xor, not and cnot.
func (x *instrDecoder) logic() error {
	o, in := &x.o, &x.in
	t, ok := o.oneType()
	if ok && t.size() == 2 && !t.isFloat() && o.base != "cnot" {
		return x.narrowOp(t, narrowNames[o.base], map[bool]int{true: 1, false: 2}[o.base == "not"])
	}
	if !ok || (t.size() != 4 && t.size() != 8 && t != tPred) {
		return x.bad()
	}
	n := 2
	switch o.base {
	case "and":
		in.op = opAnd
	case "or":
		in.op = opOr
	case "xor":
		in.op = opXor
	case "not":
		n = 1
		in.op = opNot
		if t == tPred {
			in.op = opNotPred
		}
	case "cnot":
		n = 1
		in.op = opCnot
		if t == tPred {
			return x.bad()
		}
	}
	return x.dstSrcs(t, n)
}

// shift decodes shl and shr; the shift amount is always u32.
func (x *instrDecoder) shift() error {
	o, in := &x.o, &x.in
	t, ok := o.oneType()
	if ok && t.size() == 2 && !t.isFloat() {
		return x.narrowOp(t, narrowNames[o.base], 2)
	}
	if !ok || (t.size() != 4 && t.size() != 8) || t.isFloat() {
		return x.bad()
	}
	switch {
	case o.base == "shl":
		in.op = map[bool]opcode{true: opShl32, false: opShl64}[t.size() == 4]
	case t.signed():
		in.op = map[bool]opcode{true: opShrS32, false: opShrS64}[t.size() == 4]
	default:
		in.op = map[bool]opcode{true: opShrU32, false: opShrU64}[t.size() == 4]
	}
	if err := x.dstSrcs(t, 2); err != nil {
		return err
	}
	var err error
	in.b, err = x.src(x.ops[2], tU32)
	return err
}

// bitCount decodes popc, clz and brev.
func (x *instrDecoder) bitCount() error {
	o, in := &x.o, &x.in
	t, ok := o.oneType()
	if !ok || (t != tB32 && t != tB64) {
		return x.bad()
	}
	w := t.size() == 4
	in.op = map[string][2]opcode{"popc": {opPopc64, opPopc32}, "clz": {opClz64, opClz32}, "brev": {opBrev64, opBrev32}}[o.base][b2i(w)]
	return x.dstSrcs(t, 1)
}

// bfe decodes bfe (bit field extract).
func (x *instrDecoder) bfe() error {
	o, in := &x.o, &x.in
	t, ok := o.oneType()
	if !ok {
		return x.bad()
	}
	switch t {
	case tU32:
		in.op = opBfeU32
	case tS32:
		in.op = opBfeS32
	case tU64:
		in.op = opBfeU64
	case tS64:
		in.op = opBfeS64
	default:
		return x.bad()
	}
	return x.dstSrcs(t, 3)
}

// bfi decodes bfi (bit field insert).
func (x *instrDecoder) bfi() error {
	o, in := &x.o, &x.in
	t, ok := o.oneType()
	if !ok || (t != tB32 && t != tB64) {
		return x.bad()
	}
	in.op = map[bool]opcode{true: opBfi32, false: opBfi64}[t == tB32]
	return x.dstSrcs(t, 4)
}

// prmt decodes prmt (byte permute).
func (x *instrDecoder) prmt() error {
	o, in := &x.o, &x.in
	t, ok := o.oneType()
	if !ok || t != tB32 {
		return x.bad()
	}
	in.op = opPrmt
	return x.dstSrcs(t, 3)
}
