package ptx

import (
	"strings"

	"github.com/kerf-edge/kerf/abi"
)

// Window bases for generic addresses of shared and local memory. Global
// addresses must lie below sharedWindow.
const (
	sharedWindow uint64 = 0xfe00_0000_0000_0000
	localWindow  uint64 = 0xff00_0000_0000_0000
	windowSize   uint64 = 1 << 40
)

// The window bases as offsets for opAddImm (addition wraps).
const (
	sharedWindowOff int64 = -0x0200_0000_0000_0000
	localWindowOff  int64 = -0x0100_0000_0000_0000
)

// opcodeParts splits an opcode into base, types and the other modifiers.
type opcodeParts struct {
	base  string
	types []vtype
	mods  map[string]bool
}

func (d *decoder) unsupported(opc string) error {
	return abi.Errorf(abi.ErrInvalidPTX, "line %d: unsupported instruction %q", d.line, opc)
}

func (d *decoder) split(opc string) (opcodeParts, error) {
	parts := strings.Split(opc, ".")
	op := opcodeParts{base: parts[0], mods: map[string]bool{}}
	for _, m := range parts[1:] {
		if t, ok := typeNames[m]; ok {
			op.types = append(op.types, t)
			continue
		}
		if unsupportedTypes[m] {
			return op, abi.Errorf(abi.ErrInvalidPTX, "line %d: unsupported type .%s in instruction %q", d.line, m, opc)
		}
		if m == "" {
			return op, d.errf("bad opcode %q", opc)
		}
		op.mods[m] = true
	}
	return op, nil
}

// take removes the listed modifiers, reporting which were present.
func (o *opcodeParts) take(names ...string) bool {
	found := false
	for _, n := range names {
		if o.mods[n] {
			delete(o.mods, n)
			found = true
		}
	}
	return found
}

func (o *opcodeParts) oneType() (vtype, bool) {
	if len(o.types) != 1 {
		return 0, false
	}
	return o.types[0], true
}

// decode appends the decoded form of ri to code.
func (d *decoder) decode(code []instr, ri *rawInstr) ([]instr, error) {
	in := instr{line: ri.line}
	if ri.pred != "" {
		r, ok := d.lookupReg(ri.pred)
		if !ok {
			return code, d.errf("unknown predicate %q", ri.pred)
		}
		in.pred = r
		in.flags |= fPred
		if ri.predNeg {
			in.flags |= fPredNeg
		}
	}
	o, err := d.split(ri.opc)
	if err != nil {
		return code, err
	}
	bad := func() ([]instr, error) { return code, d.unsupported(ri.opc) }
	nops := func(n int) bool { return len(ri.ops) == n }
	ops := ri.ops
	// common operand shapes
	dab := func(t vtype, n int) error {
		if !nops(n + 1) {
			return d.errf("%s: expected %d operands", ri.opc, n+1)
		}
		var err error
		if in.d, err = d.dst(ops[0].s); err != nil || ops[0].kind != roValue {
			return d.errf("%s: bad destination", ri.opc)
		}
		regs := []*uint16{&in.a, &in.b, &in.c, &in.e}
		for i := 1; i <= n; i++ {
			if *regs[i-1], err = d.src(ops[i], t); err != nil {
				return err
			}
		}
		return nil
	}
	// float rounding modifiers: only round-to-nearest is implemented
	floatMods := func() bool {
		o.take("ftz", "rn")
		return !o.take("rz", "rm", "rp")
	}
	emit := func() ([]instr, error) {
		if len(o.mods) != 0 {
			return bad()
		}
		return append(code, in), nil
	}
	switch o.base {
	case "mov":
		t, ok := o.oneType()
		if !ok || len(ops) != 2 {
			return bad()
		}
		switch {
		case ops[0].kind == roVec:
			if t.size() != 8 || len(ops[0].list) != 2 {
				return bad()
			}
			in.op = opUnpack64
			if in.d, err = d.dst(ops[0].list[0]); err != nil {
				return code, err
			}
			if in.e, err = d.dst(ops[0].list[1]); err != nil {
				return code, err
			}
			if in.a, err = d.src(ops[1], t); err != nil {
				return code, err
			}
		case ops[1].kind == roVec:
			if t.size() != 8 || len(ops[1].list) != 2 {
				return bad()
			}
			in.op = opPack64
			if in.d, err = d.dst(ops[0].s); err != nil {
				return code, err
			}
			if in.a, err = d.src(rawOp{s: ops[1].list[0]}, tB32); err != nil {
				return code, err
			}
			if in.b, err = d.src(rawOp{s: ops[1].list[1]}, tB32); err != nil {
				return code, err
			}
		default:
			in.op = opMov
			if err := dab(t, 1); err != nil {
				return code, err
			}
		}
		return emit()

	case "add", "sub":
		t, ok := o.oneType()
		if !ok {
			return bad()
		}
		sat := o.take("sat")
		switch {
		case t == tF32 || t == tF64:
			if !floatMods() {
				return bad()
			}
			in.op = map[bool]map[string]opcode{true: {"add": opAddF32, "sub": opSubF32}, false: {"add": opAddF64, "sub": opSubF64}}[t == tF32][o.base]
		case t.size() == 4 && !sat && t != tPred:
			in.op = map[string]opcode{"add": opAdd32, "sub": opSub32}[o.base]
		case t.size() == 8 && !sat:
			in.op = map[string]opcode{"add": opAdd64, "sub": opSub64}[o.base]
		default:
			return bad()
		}
		if err := dab(t, 2); err != nil {
			return code, err
		}
		return d.withSat(emit, &code, in, sat, t)

	case "mul", "mad", "fma":
		t, ok := o.oneType()
		if !ok {
			return bad()
		}
		n := 2
		if o.base != "mul" {
			n = 3
		}
		sat := o.take("sat")
		if t.isFloat() {
			if !floatMods() {
				return bad()
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
			if err := dab(t, n); err != nil {
				return code, err
			}
			return d.withSat(emit, &code, in, sat, t)
		}
		if sat || o.base == "fma" || t == tPred {
			return bad()
		}
		srcT := t
		switch {
		case o.take("lo"):
			in.op = map[bool][2]opcode{true: {opMulLo32, opMadLo32}, false: {opMulLo64, opMadLo64}}[t.size() == 4][n-2]
			if t.size() != 4 && t.size() != 8 {
				return bad()
			}
		case o.take("hi"):
			switch {
			case n == 2 && t == tS32:
				in.op = opMulHiS32
			case n == 2 && t == tU32:
				in.op = opMulHiU32
			case n == 2 && t == tS64:
				in.op = opMulHiS64
			case n == 2 && t == tU64:
				in.op = opMulHiU64
			case n == 3 && t == tS32:
				in.op = opMadHiS32
			case n == 3 && t == tU32:
				in.op = opMadHiU32
			default:
				return bad()
			}
		case o.take("wide"):
			switch {
			case t == tS32:
				in.op = [2]opcode{opMulWideS32, opMadWideS32}[n-2]
			case t == tU32:
				in.op = [2]opcode{opMulWideU32, opMadWideU32}[n-2]
			case t == tS16 && n == 2:
				in.op = opMulWideS16
			case t == tU16 && n == 2:
				in.op = opMulWideU16
			default:
				return bad()
			}
		default:
			return bad()
		}
		if err := dab(srcT, n); err != nil {
			return code, err
		}
		if n == 3 && (in.op == opMadWideS32 || in.op == opMadWideU32) {
			// the addend is 64-bit
			if in.c, err = d.src(ops[3], tU64); err != nil {
				return code, err
			}
		}
		return emit()

	case "div", "rem", "min", "max":
		t, ok := o.oneType()
		if !ok || t == tPred {
			return bad()
		}
		if t.isFloat() {
			if o.base == "rem" {
				return bad()
			}
			o.take("approx", "full")
			if !floatMods() {
				return bad()
			}
			idx := map[string]int{"div": 0, "min": 1, "max": 2}[o.base]
			if t == tF32 {
				in.op = [3]opcode{opDivF32, opMinF32, opMaxF32}[idx]
			} else {
				in.op = [3]opcode{opDivF64, opMinF64, opMaxF64}[idx]
			}
		} else {
			if t.size() != 4 && t.size() != 8 {
				return bad()
			}
			if (o.base == "min" || o.base == "max") && t.kind() == kindB {
				return bad()
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
		if err := dab(t, 2); err != nil {
			return code, err
		}
		return emit()

	case "abs", "neg":
		t, ok := o.oneType()
		if !ok {
			return bad()
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
		default:
			return bad()
		}
		if err := dab(t, 1); err != nil {
			return code, err
		}
		return emit()

	case "and", "or", "xor", "not", "cnot":
		t, ok := o.oneType()
		if !ok || (t.size() != 4 && t.size() != 8 && t != tPred) {
			return bad()
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
				return bad()
			}
		}
		if err := dab(t, n); err != nil {
			return code, err
		}
		return emit()

	case "shl", "shr":
		t, ok := o.oneType()
		if !ok || (t.size() != 4 && t.size() != 8) || t.isFloat() {
			return bad()
		}
		switch {
		case o.base == "shl":
			in.op = map[bool]opcode{true: opShl32, false: opShl64}[t.size() == 4]
		case t.signed():
			in.op = map[bool]opcode{true: opShrS32, false: opShrS64}[t.size() == 4]
		default:
			in.op = map[bool]opcode{true: opShrU32, false: opShrU64}[t.size() == 4]
		}
		if err := dab(t, 2); err != nil {
			return code, err
		}
		if in.b, err = d.src(ops[2], tU32); err != nil {
			return code, err
		}
		return emit()

	case "popc", "clz", "brev":
		t, ok := o.oneType()
		if !ok || (t != tB32 && t != tB64) {
			return bad()
		}
		w := t.size() == 4
		in.op = map[string][2]opcode{"popc": {opPopc64, opPopc32}, "clz": {opClz64, opClz32}, "brev": {opBrev64, opBrev32}}[o.base][b2i(w)]
		if err := dab(t, 1); err != nil {
			return code, err
		}
		return emit()

	case "bfe":
		t, ok := o.oneType()
		if !ok {
			return bad()
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
			return bad()
		}
		if err := dab(t, 3); err != nil {
			return code, err
		}
		return emit()

	case "bfi":
		t, ok := o.oneType()
		if !ok || (t != tB32 && t != tB64) {
			return bad()
		}
		in.op = map[bool]opcode{true: opBfi32, false: opBfi64}[t == tB32]
		if err := dab(t, 4); err != nil {
			return code, err
		}
		return emit()

	case "prmt":
		t, ok := o.oneType()
		if !ok || t != tB32 {
			return bad()
		}
		in.op = opPrmt
		if err := dab(t, 3); err != nil {
			return code, err
		}
		return emit()

	case "sqrt", "rcp", "rsqrt", "ex2", "lg2", "sin", "cos":
		t, ok := o.oneType()
		if !ok || !t.isFloat() {
			return bad()
		}
		o.take("approx")
		if !floatMods() {
			return bad()
		}
		if t == tF32 {
			in.op = map[string]opcode{"sqrt": opSqrtF32, "rcp": opRcpF32, "rsqrt": opRsqrtF32,
				"ex2": opEx2F32, "lg2": opLg2F32, "sin": opSinF32, "cos": opCosF32}[o.base]
		} else {
			in.op = map[string]opcode{"sqrt": opSqrtF64, "rcp": opRcpF64, "rsqrt": opRsqrtF64}[o.base]
			if in.op == opNop {
				return bad()
			}
		}
		if err := dab(t, 1); err != nil {
			return code, err
		}
		return emit()

	case "setp":
		t, ok := o.oneType()
		if !ok || len(ops) != 3 || ops[0].s2 != "" || t == tPred {
			return bad()
		}
		found := false
		for m := range o.mods {
			if c, ok := cmpNames[m]; ok {
				if found {
					return bad()
				}
				found = true
				in.mod = c
				delete(o.mods, m)
			}
		}
		if !found {
			return bad()
		}
		switch {
		case t == tF32:
			in.op = opSetpF32
			o.take("ftz")
		case t == tF64:
			in.op = opSetpF64
		case in.mod >= cmpEqu:
			return bad()
		case t.signed():
			in.op = opSetpS
		default:
			in.op = opSetpU
		}
		in.typ = t
		if err := dab(t, 2); err != nil {
			return code, err
		}
		return emit()

	case "selp":
		t, ok := o.oneType()
		if !ok || t == tPred {
			return bad()
		}
		in.op = opSelp
		if !nops(4) {
			return bad()
		}
		if err := dab(t, 3); err != nil {
			return code, err
		}
		if in.c, err = d.src(ops[3], tPred); err != nil {
			return code, err
		}
		return emit()

	case "cvt":
		if len(o.types) != 2 {
			return bad()
		}
		in.op = opCvt
		in.typ, in.styp = o.types[0], o.types[1]
		if in.typ == tPred || in.styp == tPred {
			return bad()
		}
		if o.take("sat") {
			in.flags |= fSat
		}
		o.take("ftz")
		for m := range o.mods {
			if r, ok := rndNames[m]; ok {
				if in.mod != rndNone {
					return bad()
				}
				in.mod = r
				delete(o.mods, m)
			}
		}
		df, sf := in.typ.isFloat(), in.styp.isFloat()
		intRnd := in.mod >= rndRni
		switch {
		case df && sf:
			if in.mod == rndNone && in.typ.size() < in.styp.size() {
				return bad()
			}
		case sf: // float to int
			if !intRnd {
				return bad()
			}
		case df: // int to float
			if intRnd {
				return bad()
			}
			if in.mod == rndNone {
				in.mod = rndRn
			}
		default:
			if in.mod != rndNone {
				return bad()
			}
		}
		if err := dab(in.styp, 1); err != nil {
			return code, err
		}
		return emit()

	case "cvta":
		t, ok := o.oneType()
		if !ok || t.size() != 8 {
			return bad()
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
			return bad()
		}
		if to {
			in.off = -in.off
		}
		if err := dab(t, 1); err != nil {
			return code, err
		}
		return emit()

	case "ld", "st":
		o.take("weak", "volatile", "relaxed", "ca", "cg", "cs", "lu", "cv", "wb", "wt", "nc",
			"cta", "gpu", "sys", "L1::evict_normal", "L1::no_allocate")
		if o.take("acquire", "release") {
			// treated as relaxed: blocks of a launch are interleaved
			// only at instruction boundaries per goroutine, and the
			// interpreter does not reorder memory operations
			o.take("cta", "gpu", "sys")
		}
		in.space = spGeneric
		switch {
		case o.take("global"):
			in.space = spGlobal
		case o.take("shared"):
			in.space = spShared
		case o.take("local"):
			in.space = spLocal
		case o.take("param"):
			in.space = spParam
		case o.take("const"):
			in.space = spConst
		}
		in.vec = 1
		if o.take("v2") {
			in.vec = 2
		} else if o.take("v4") {
			in.vec = 4
		}
		t, ok := o.oneType()
		if !ok || t == tPred || len(ops) != 2 {
			return bad()
		}
		in.typ = t
		regOp, addrOp := ops[0], ops[1]
		in.op = opLd
		if o.base == "st" {
			in.op = opSt
			regOp, addrOp = ops[1], ops[0]
			if in.space == spParam {
				return bad()
			}
		}
		if in.a, in.off, err = d.addr(addrOp); err != nil {
			return code, err
		}
		if addrOp.kind == roAddr && !isReg(addrOp.s) {
			in.flags |= fUniform
		}
		names := []string{regOp.s}
		if in.vec > 1 {
			if regOp.kind != roVec || len(regOp.list) != int(in.vec) {
				return code, d.errf("%s: expected a %d-element vector", ri.opc, in.vec)
			}
			names = regOp.list
		} else if regOp.kind != roValue {
			return code, d.errf("%s: bad register operand", ri.opc)
		}
		for i, n := range names {
			if o.base == "ld" {
				in.regs[i], err = d.dst(n)
			} else {
				in.regs[i], err = d.src(rawOp{s: n, neg: i == 0 && regOp.neg && in.vec == 1}, t)
			}
			if err != nil {
				return code, err
			}
		}
		return emit()

	case "atom", "red":
		o.take("relaxed", "cta", "gpu", "sys", "acq_rel", "acquire", "release")
		in.space = spGeneric
		switch {
		case o.take("global"):
			in.space = spGlobal
		case o.take("shared"):
			in.space = spShared
		}
		found := false
		for m := range o.mods {
			if a, ok := atomNames[m]; ok && !found {
				found = true
				in.mod = a
				delete(o.mods, m)
			}
		}
		t, ok := o.oneType()
		if !found || !ok || !atomTypeOK(in.mod, t) {
			return bad()
		}
		in.op = opAtom
		in.typ = t
		first := 0
		in.d = 0
		if o.base == "atom" {
			if len(ops) < 1 {
				return bad()
			}
			if in.d, err = d.dst(ops[0].s); err != nil {
				return code, err
			}
			first = 1
		}
		want := first + 2
		if in.mod == atCas {
			want++
		}
		if len(ops) != want {
			return bad()
		}
		if in.a, in.off, err = d.addr(ops[first]); err != nil {
			return code, err
		}
		if in.b, err = d.src(ops[first+1], t); err != nil {
			return code, err
		}
		if in.mod == atCas {
			if in.c, err = d.src(ops[first+2], t); err != nil {
				return code, err
			}
		}
		return emit()

	case "shfl":
		if !o.take("sync") || len(ops) != 5 {
			return bad()
		}
		switch {
		case o.take("up"):
			in.mod = shflUp
		case o.take("down"):
			in.mod = shflDown
		case o.take("bfly"):
			in.mod = shflBfly
		case o.take("idx"):
			in.mod = shflIdx
		default:
			return bad()
		}
		if t, ok := o.oneType(); !ok || t != tB32 {
			return bad()
		}
		in.op = opShfl
		if in.d, err = d.dst(ops[0].s); err != nil {
			return code, err
		}
		if ops[0].s2 != "" {
			in.flags |= fPredOut
			if in.e, err = d.dst(ops[0].s2); err != nil {
				return code, err
			}
		}
		if in.a, err = d.src(ops[1], tB32); err != nil {
			return code, err
		}
		if in.b, err = d.src(ops[2], tB32); err != nil {
			return code, err
		}
		if in.c, err = d.src(ops[3], tB32); err != nil {
			return code, err
		}
		// membermask is not needed: lanes run together when they
		// reach the same instruction
		if _, err = d.src(ops[4], tB32); err != nil {
			return code, err
		}
		return emit()

	case "vote":
		if !o.take("sync") || len(ops) != 3 {
			return bad()
		}
		t, ok := o.oneType()
		switch {
		case o.take("all") && t == tPred:
			in.mod = voteAll
		case o.take("any") && t == tPred:
			in.mod = voteAny
		case o.take("uni") && t == tPred:
			in.mod = voteUni
		case o.take("ballot") && t == tB32:
			in.mod = voteBallot
		default:
			return bad()
		}
		if !ok {
			return bad()
		}
		in.op = opVote
		if in.d, err = d.dst(ops[0].s); err != nil {
			return code, err
		}
		if in.a, err = d.src(ops[1], tPred); err != nil {
			return code, err
		}
		if _, err = d.src(ops[2], tB32); err != nil {
			return code, err
		}
		return emit()

	case "activemask":
		if t, ok := o.oneType(); !ok || t != tB32 || !nops(1) {
			return bad()
		}
		in.op = opActivemask
		if in.d, err = d.dst(ops[0].s); err != nil {
			return code, err
		}
		return emit()

	case "bra":
		o.take("uni")
		if !nops(1) || ops[0].kind != roValue || isReg(ops[0].s) {
			return bad()
		}
		tgt, ok := d.labels[ops[0].s]
		if !ok {
			return code, d.errf("unknown label %q", ops[0].s)
		}
		in.op = opBra
		in.target = tgt
		return emit()

	case "ret", "exit":
		if len(ops) != 0 {
			return bad()
		}
		o.take("uni")
		in.op = opExit
		return emit()

	case "bar", "barrier":
		o.take("aligned")
		if o.base == "bar" && o.take("warp") {
			if !o.take("sync") || !nops(1) {
				return bad()
			}
			in.op = opNop
			return emit()
		}
		if !o.take("sync") || len(ops) < 1 || len(ops) > 2 {
			return bad()
		}
		for i := range ops {
			if _, err := d.src(ops[i], tU32); err != nil {
				return code, err
			}
		}
		in.op = opBar
		return emit()

	case "membar", "fence":
		o.take("cta", "gl", "gpu", "sys", "sc", "acq_rel")
		in.op = opNop
		return emit()
	}
	return bad()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// withSat appends in and, for .sat on f32, a clamp of its result.
func (d *decoder) withSat(emit func() ([]instr, error), code *[]instr, in instr, sat bool, t vtype) ([]instr, error) {
	out, err := emit()
	if err != nil || !sat {
		return out, err
	}
	if t != tF32 {
		return out, d.unsupported("sat on " + "non-f32")
	}
	return append(out, instr{op: opSatF32, d: in.d, a: in.d, flags: in.flags & (fPred | fPredNeg), pred: in.pred, line: in.line}), nil
}

func atomTypeOK(op uint8, t vtype) bool {
	switch op {
	case atAdd:
		return t == tU32 || t == tS32 || t == tU64 || t == tS64 || t == tF32 || t == tF64
	case atMin, atMax:
		return t == tU32 || t == tS32 || t == tU64 || t == tS64
	case atAnd, atOr, atXor, atExch, atCas:
		return t == tB32 || t == tB64 || t == tU32 || t == tS32 || t == tU64
	case atInc, atDec:
		return t == tU32
	}
	return false
}
