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
		if m == "tf32" && (op.base == "wmma" || op.base == "mma" || op.base == "cvt") {
			// a modifier here: these decoders read it as the type
			op.mods[m] = true
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

// instrDecoder holds one raw instruction while it is decoded.
type instrDecoder struct {
	*decoder
	opc string // the opcode as written, for messages
	o   opcodeParts
	ops []rawOp
	in  instr
	// sat asks for a clamp of the result after in: .sat on a float
	// operation of type satType (only f32 is supported).
	sat     bool
	satType vtype
}

// decode appends the decoded form of ri to code.
func (d *decoder) decode(code []instr, ri *rawInstr) ([]instr, error) {
	x := &instrDecoder{decoder: d, opc: ri.opc, ops: ri.ops, in: instr{line: ri.line}}
	if ri.pred != "" {
		r, ok := d.lookupReg(ri.pred)
		if !ok {
			return code, d.errf("unknown predicate %q", ri.pred)
		}
		x.in.pred = r
		x.in.flags |= fPred
		if ri.predNeg {
			x.in.flags |= fPredNeg
		}
	}
	var err error
	if x.o, err = d.split(ri.opc); err != nil {
		return code, err
	}
	for _, t := range x.o.types {
		if !t.isHalf() {
			continue
		}
		switch x.o.base {
		case "add", "sub", "mul", "fma", "min", "max", "neg", "abs":
			if len(x.o.types) != 1 {
				return code, x.bad()
			}
			if err := x.halfDecode(t); err != nil {
				return code, err
			}
			return x.finish(code)
		case "setp", "cvt", "ld", "st", "mov", "selp", "atom", "red", "wmma", "mma":
		default:
			return code, x.bad()
		}
	}
	switch x.o.base {
	case "mov":
		err = x.mov()
	case "cvt":
		if x.o.mods["tf32"] {
			err = x.cvtTF32()
			break
		}
		if len(x.o.types) == 2 && x.o.types[0].isPair() {
			return x.cvtPair(code)
		}
		err = x.cvt()
	case "cvta":
		err = x.cvta()
	case "add", "sub":
		err = x.addSub()
	case "mul", "mad", "fma":
		err = x.mulMad()
	case "div", "rem", "min", "max":
		err = x.divRemMinMax()
	case "abs", "neg":
		err = x.absNeg()
	case "sqrt", "rcp", "rsqrt", "ex2", "lg2", "sin", "cos":
		err = x.floatFunc()
	case "and", "or", "xor", "not", "cnot":
		err = x.logic()
	case "shl", "shr":
		err = x.shift()
	case "popc", "clz", "brev":
		err = x.bitCount()
	case "bfe":
		err = x.bfe()
	case "bfi":
		err = x.bfi()
	case "prmt":
		err = x.prmt()
	case "setp":
		err = x.setp()
	case "selp":
		err = x.selp()
	case "ld", "st":
		err = x.ldSt()
	case "atom", "red":
		err = x.atom()
	case "shfl":
		err = x.shfl()
	case "vote":
		err = x.vote()
	case "activemask":
		err = x.activemask()
	case "bra":
		err = x.bra()
	case "ret", "exit":
		err = x.exit()
	case "cp":
		err = x.cpDecode()
	case "sad":
		err = x.sadDecode()
	case "shf":
		err = x.shfDecode()
	case "bfind":
		err = x.bfindDecode()
	case "dp4a", "dp2a":
		err = x.dpDecode()
	case "redux":
		err = x.reduxDecode()
	case "match":
		err = x.matchDecode()
	case "tex", "tld4":
		err = x.texDecode()
	case "suld", "sust":
		err = x.surfDecode()
	case "txq", "suq":
		err = x.queryDecode()
	case "wmma":
		err = x.wmmaDecode()
	case "mma":
		err = x.mmaSyncDecode()
	case "ldmatrix":
		err = x.ldmatrixDecode()
	case "mbarrier":
		err = x.mbarDecode()
	case "nanosleep":
		if t, ok := x.o.oneType(); !ok || t != tU32 || len(x.ops) != 1 {
			return code, x.bad()
		}
		x.in.op = opYield
		_, err = x.src(x.ops[0], tU32)
	case "trap":
		x.in.op = opTrap
	case "call":
		err = x.call()
	case "bar", "barrier":
		err = x.bar()
	case "membar", "fence":
		err = x.fence()
	default:
		err = x.bad()
	}
	if err != nil {
		return code, err
	}
	return x.finish(code)
}

// bad reports the instruction as unsupported.
func (x *instrDecoder) bad() error { return x.unsupported(x.opc) }

// dstSrcs decodes the common operand shape: a destination, then n
// sources of type t into a, b, c and e.
func (x *instrDecoder) dstSrcs(t vtype, n int) error {
	ops := x.ops
	if len(ops) != n+1 {
		return x.errf("%s: expected %d operands", x.opc, n+1)
	}
	var err error
	if x.in.d, err = x.dst(ops[0].s); err != nil || ops[0].kind != roValue {
		return x.errf("%s: bad destination", x.opc)
	}
	regs := []*uint16{&x.in.a, &x.in.b, &x.in.c, &x.in.e}
	for i := 1; i <= n; i++ {
		if *regs[i-1], err = x.src(ops[i], t); err != nil {
			return err
		}
	}
	return nil
}

// finish appends the decoded instruction to code, and after it the
// clamp that .sat asks for. A modifier left untaken is unsupported.
func (x *instrDecoder) finish(code []instr) ([]instr, error) {
	if len(x.o.mods) != 0 {
		return code, x.bad()
	}
	in := x.in
	code = append(code, in)
	if !x.sat {
		return code, nil
	}
	if x.satType != tF32 {
		return code, x.unsupported("sat on non-f32")
	}
	return append(code, instr{op: opSatF32, d: in.d, a: in.d, flags: in.flags & (fPred | fPredNeg), pred: in.pred, line: in.line}), nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
