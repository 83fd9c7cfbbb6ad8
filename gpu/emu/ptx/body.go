package ptx

import (
	"strconv"
	"strings"

	"github.com/kerf-edge/kerf/abi"
)

// Kernel is a decoded .entry function.
type Kernel struct {
	Name string
	// Params is the packed parameter buffer layout, as
	// cuFuncGetParamInfo reports it.
	Params []Param
	// ParamSize is the size of the packed parameter buffer.
	ParamSize uint32
	// SharedSize is the static shared memory per block, in bytes.
	SharedSize uint32
	// LocalSize is the local memory per thread, in bytes.
	LocalSize uint32
	// Regs estimates the 32-bit registers used per thread.
	Regs int
	// UsesHeap: the kernel may call malloc or free.
	UsesHeap bool

	code     []instr
	nregs    int
	consts   []regInit
	specials []regInit // val is a special register kind
	globRefs []globRef
	// registers uniform in every warp from the start (uniform.go)
	uniStatic []uint16
	dynOff    uint64 // offset of dynamic shared memory in the shared window
	// functions decoded into code, the calls, and the index in funcs of
	// each module function's address (-1: not in this kernel)
	funcs      []kfunc
	calls      []callSite
	funcByAddr []int32
	// operands of texture and surface instructions
	texOps []texOperands
	// operands of warp matrix instructions
	mmaOps []mmaOperands
	// setps kept between loop iterations, and per pc the instructions
	// that invalidate them (keepsetp.go)
	nkept int
	kills []kill
}

type regInit struct {
	reg uint16
	val uint64
}

type globRef struct {
	reg  uint16
	name string
}

// special register kinds
const (
	srTidX uint64 = iota
	srTidY
	srTidZ
	srNtidX
	srNtidY
	srNtidZ
	srCtaidX
	srCtaidY
	srCtaidZ
	srNctaidX
	srNctaidY
	srNctaidZ
	srLaneid
	srWarpid
	srNwarpid
	srLanemaskEq
	srLanemaskLt
	srLanemaskLe
	srLanemaskGt
	srLanemaskGe
	srZero      // %smid, %gridid: constant 0
	srOne       // %nsmid: the emulated device runs blocks as one SM
	srDynSmem   // %dynamic_smem_size
	srTotalSmem // %total_smem_size
	srEnvregHi  // %envreg1: the grid workspace's high half
	srEnvregLo  // %envreg2: its low half
)

// timeRegs are special registers that change as a thread runs; mov
// reads them with opClock.
var timeRegs = map[string]uint8{"%clock": clkClock, "%clock64": clkClock64, "%globaltimer": clkGlobaltimer,
	"%globaltimer_lo": clkGlobaltimerLo, "%globaltimer_hi": clkGlobaltimerHi}

const (
	clkClock uint8 = iota
	clkClock64
	clkGlobaltimer
	clkGlobaltimerLo
	clkGlobaltimerHi
)

var specialNames = map[string]uint64{
	"%tid.x": srTidX, "%tid.y": srTidY, "%tid.z": srTidZ,
	"%ntid.x": srNtidX, "%ntid.y": srNtidY, "%ntid.z": srNtidZ,
	"%ctaid.x": srCtaidX, "%ctaid.y": srCtaidY, "%ctaid.z": srCtaidZ,
	"%nctaid.x": srNctaidX, "%nctaid.y": srNctaidY, "%nctaid.z": srNctaidZ,
	"%laneid": srLaneid, "%warpid": srWarpid, "%nwarpid": srNwarpid,
	"%lanemask_eq": srLanemaskEq, "%lanemask_lt": srLanemaskLt, "%lanemask_le": srLanemaskLe,
	"%lanemask_gt": srLanemaskGt, "%lanemask_ge": srLanemaskGe,
	"%smid": srZero, "%nsmid": srOne, "%gridid": srZero,
	"%dynamic_smem_size": srDynSmem, "%total_smem_size": srTotalSmem,
	"%envreg1": srEnvregHi, "%envreg2": srEnvregLo,
}

// raw operand kinds
const (
	roValue = iota // register, immediate or symbol
	roAddr         // [base+off]
	roVec          // {a, b, ...}
	roList         // (a, b, ...): a call's results or arguments
)

type rawOp struct {
	kind uint8
	s    string // register, literal or symbol; address base
	neg  bool   // leading '-' on a literal
	not  bool   // leading '!' on a predicate
	off  int64  // address offset
	list []string
	s2   string // second name after '|'
}

type rawInstr struct {
	line    int32
	pred    string
	predNeg bool
	opc     string
	ops     []rawOp
}

// kernelState is what the decoders of a kernel and of the functions it
// calls share: one register file, one code array.
type kernelState struct {
	m      *Module
	k      *Kernel
	consts map[uint64]uint16
	specs  map[uint64]uint16
	symReg map[string]uint16
	nregs  int
	regs32 int      // for the register estimate
	preds  []uint16 // registers declared .pred
	shared uint64
	dynAl  uint64
	// functions to decode, in order; funcOf maps a declaration to its
	// index in k.funcs
	queue  []*funcDecl
	funcOf map[*funcDecl]int
	// indirect is set once any decoded body calls through a register
	indirect bool
}

// decoder decodes one function body (the kernel's or a .func's).
type decoder struct {
	*kernelState
	regs   map[string]uint16
	ranges map[string][2]int
	labels map[string]int32
	protos map[string]bool
	syms   map[string]*symbol
	// scopes of nested { } blocks: a declared name to its unique name
	scopes  []map[string]string
	scopeID int
	fn      int    // index in k.funcs, or -1 for the kernel
	frame   uint64 // bytes of the frame laid out so far
	fbReg   uint16 // frame base register; a constant 0 in the kernel
	line    int32
}

func (d *decoder) errf(format string, args ...any) error {
	return abi.Errorf(abi.ErrInvalidPTX, "line %d: "+format, append([]any{d.line}, args...)...)
}

func (d *decoder) newRegs(n int) (int, error) {
	if n < 0 || d.nregs+n > maxRegs {
		return 0, d.errf("too many registers")
	}
	base := d.nregs
	d.nregs += n
	return base, nil
}

func newDecoder(ks *kernelState, fn int, line int32) *decoder {
	return &decoder{kernelState: ks, regs: map[string]uint16{}, ranges: map[string][2]int{},
		labels: map[string]int32{}, protos: map[string]bool{}, syms: map[string]*symbol{}, fn: fn, line: line}
}

// decodeKernel decodes the body of an .entry and of every function it
// may call.
func decodeKernel(m *Module, b pendingBody, p *parser) (*Kernel, error) {
	k := &Kernel{Name: b.name}
	ks := &kernelState{m: m, k: k, consts: map[uint64]uint16{}, specs: map[uint64]uint16{},
		symReg: map[string]uint16{}, nregs: 1, shared: m.sharedSize, dynAl: 16, funcOf: map[*funcDecl]int{}}
	for _, s := range m.dynShared {
		ks.dynAl = max(ks.dynAl, s.align)
	}
	d := newDecoder(ks, -1, b.line)
	// parameters
	var off uint64
	for _, pd := range b.params {
		off = alignUp(off, pd.align)
		if _, dup := d.syms[pd.name]; dup {
			return nil, abi.Errorf(abi.ErrInvalidPTX, "line %d: parameter %s redeclared", pd.line, pd.name)
		}
		d.syms[pd.name] = &symbol{name: pd.name, space: symParam, off: off, size: pd.size}
		k.Params = append(k.Params, Param{Name: pd.name, Offset: uint32(off), Size: uint32(pd.size), Align: uint32(pd.align)})
		off += pd.size
		if off > maxParamSize {
			return nil, abi.Errorf(abi.ErrInvalidPTX, "line %d: parameters too large", pd.line)
		}
	}
	k.ParamSize = uint32(off)
	var err error
	if d.fbReg, err = d.constReg(0); err != nil {
		return nil, err
	}
	raws, err := d.scan(b, p)
	if err != nil {
		return nil, err
	}
	k.SharedSize = uint32(ks.shared)
	k.dynOff = alignUp(ks.shared, ks.dynAl)
	k.code = make([]instr, 0, len(raws)+1)
	if err := d.decodeBody(raws); err != nil {
		return nil, err
	}
	kernelFrame := alignUp(d.frame, 16)
	if err := ks.decodeFuncs(p); err != nil {
		return nil, err
	}
	k.SharedSize = uint32(ks.shared)
	k.dynOff = alignUp(ks.shared, ks.dynAl)
	k.LocalSize = uint32(alignUp(kernelFrame+ks.layoutFrames(kernelFrame), 8))
	k.Regs = min(255, ks.regs32+8)
	k.nregs = ks.nregs
	k.packPreds(ks.preds)
	k.immShifts()
	k.findUniform()
	k.keepSetps()
	return k, nil
}

// scan is pass 1 over a body: declarations, labels and raw
// instructions.
func (d *decoder) scan(b pendingBody, p *parser) ([]rawInstr, error) {
	m := d.m
	var raws []rawInstr
	sub := &parser{toks: p.toks[:b.end], pos: b.start, m: m}
	for !sub.eof() {
		d.line = sub.line()
		t := sub.peek()
		switch {
		case t == "{":
			sub.next()
			d.scopeID++
			d.scopes = append(d.scopes, map[string]string{})
			if len(d.scopes) > 256 {
				return nil, d.errf("blocks nested too deep")
			}
		case t == "}":
			sub.next()
			if len(d.scopes) == 0 {
				return nil, d.errf("unbalanced '}'")
			}
			d.scopes = d.scopes[:len(d.scopes)-1]
		case t == ".reg":
			sub.next()
			if err := d.regDecl(sub); err != nil {
				return nil, err
			}
		case t == ".shared" || t == ".local" || t == ".param":
			sub.next()
			vd, err := sub.varDecl(false)
			if err != nil {
				return nil, err
			}
			if err := sub.expect(";"); err != nil {
				return nil, err
			}
			vd.name = d.declare(vd.name)
			if d.syms[vd.name] != nil || (m.syms[vd.name] != nil && m.syms[vd.name].space != symFunc) {
				return nil, d.errf("%s redeclared", vd.name)
			}
			if err := d.place(t, vd); err != nil {
				return nil, err
			}
		case t == ".pragma" || t == ".loc" || t == ".file":
			sub.next()
			sub.skipLine()
		case strings.HasPrefix(t, "."):
			return nil, d.errf("unsupported directive %q in function body", t)
		default:
			if sub.pos+1 < len(sub.toks) && sub.toks[sub.pos+1].s == ":" && t != "@" {
				if !validIdent(t) {
					return nil, d.errf("bad label %q", t)
				}
				if sub.pos+2 < len(sub.toks) && sub.toks[sub.pos+2].s == ".callprototype" {
					// a prototype for indirect calls: the callee's
					// parameters are checked when the call runs
					d.protos[t] = true
					if err := sub.skipTo(";"); err != nil {
						return nil, err
					}
					continue
				}
				if _, dup := d.labels[t]; dup {
					return nil, d.errf("label %s redefined", t)
				}
				d.labels[t] = int32(len(raws))
				sub.pos += 2
				continue
			}
			ri, err := d.rawInstr(sub)
			if err != nil {
				return nil, err
			}
			raws = append(raws, ri)
			if len(raws) > maxInstrs {
				return nil, d.errf("too many instructions")
			}
		}
	}
	return raws, nil
}

// skipTo skips past the next s.
func (p *parser) skipTo(s string) error {
	for !p.eof() {
		if p.next() == s {
			return nil
		}
	}
	return p.errf("expected %q", s)
}

// place lays out a variable declared in a body: .shared in the block's
// shared memory, .local and .param (the arguments and results of calls)
// in the function's frame.
func (d *decoder) place(space string, vd *varDecl) error {
	switch {
	case space == ".shared" && vd.unsized:
		d.syms[vd.name] = &symbol{name: vd.name, space: symDynShared}
		d.dynAl = max(d.dynAl, vd.align)
	case space == ".shared":
		o := alignUp(d.shared, vd.align)
		d.syms[vd.name] = &symbol{name: vd.name, space: symShared, off: o, size: vd.size}
		d.shared = o + vd.size
		if d.shared > maxSharedSize {
			return d.errf("shared memory too large")
		}
	default:
		if vd.unsized {
			return d.errf("%s has no size", vd.name)
		}
		o := alignUp(d.frame, vd.align)
		sp := symLocal
		if d.fn >= 0 {
			sp = symFrame
		}
		d.syms[vd.name] = &symbol{name: vd.name, space: sp, off: o, size: vd.size}
		d.frame = o + vd.size
		if d.frame > maxLocalSize {
			return d.errf("local memory too large")
		}
	}
	return nil
}

// declare gives a name declared in a nested block a unique name, so
// that blocks may declare the same names (call sequences do).
func (d *decoder) declare(name string) string {
	if len(d.scopes) == 0 {
		return name
	}
	u := name + "~" + strconv.Itoa(d.scopeID) + "~"
	d.scopes[len(d.scopes)-1][name] = u
	return u
}

// resolve maps a name as written to its unique name in the innermost
// block that declares it (or the name itself).
func (d *decoder) resolve(name string) string {
	if len(d.scopes) == 0 || name == "" {
		return name
	}
	for i := len(d.scopes) - 1; i >= 0; i-- {
		if u, ok := d.scopes[i][name]; ok {
			return u
		}
	}
	// a register of a range: %r3 of %r<4>
	j := len(name)
	for j > 0 && name[j-1] >= '0' && name[j-1] <= '9' {
		j--
	}
	if j == len(name) || j == 0 {
		return name
	}
	for i := len(d.scopes) - 1; i >= 0; i-- {
		if u, ok := d.scopes[i][name[:j]]; ok {
			return u + name[j:]
		}
	}
	return name
}

// decodeBody is pass 2: it decodes raws onto the end of k.code.
func (d *decoder) decodeBody(raws []rawInstr) error {
	k := d.k
	base := len(k.code)
	rawToCode := make([]int32, len(raws)+1)
	for i := range raws {
		d.line = raws[i].line
		rawToCode[i] = int32(len(k.code))
		var err error
		k.code, err = d.decode(k.code, &raws[i])
		if err != nil {
			return err
		}
		if len(k.code) > maxInstrs {
			return d.errf("too many instructions")
		}
		if d.m.decoded++; d.m.decoded > maxModuleInstrs {
			return d.errf("module too large: over %d instructions decoded", maxModuleInstrs)
		}
	}
	// falling off the end returns
	rawToCode[len(raws)] = int32(len(k.code))
	end := instr{op: opExit, line: d.line}
	if d.fn >= 0 {
		end = instr{op: opRet, off: int64(d.fn), line: d.line}
	}
	k.code = append(k.code, end)
	// branch targets were raw instruction indices; decode may expand
	// one raw instruction into several
	for i := base; i < len(k.code); i++ {
		if k.code[i].op == opBra {
			k.code[i].target = rawToCode[k.code[i].target]
		}
	}
	return nil
}

// regDecl parses the rest of a .reg statement.
func (d *decoder) regDecl(p *parser) error {
	if p.peek() == ".v2" || p.peek() == ".v4" {
		return d.errf("vector registers not supported")
	}
	tn := p.next()
	typ, ok := typeNames[strings.TrimPrefix(tn, ".")]
	if !ok || !strings.HasPrefix(tn, ".") {
		return d.errf("unsupported register type %q", tn)
	}
	for {
		name := p.next()
		if !validIdent(name) {
			return d.errf("bad register name %q", name)
		}
		name = d.declare(name)
		if p.accept("<") {
			n, err := p.uint(maxRegs)
			if err != nil {
				return err
			}
			if err := p.expect(">"); err != nil {
				return err
			}
			if _, dup := d.ranges[name]; dup {
				return d.errf("registers %s redeclared", name)
			}
			base, err := d.newRegs(int(n))
			if err != nil {
				return err
			}
			d.ranges[name] = [2]int{base, int(n)}
			d.count(typ, int(n))
			d.declared(typ, base, int(n))
		} else {
			if _, dup := d.regs[name]; dup {
				return d.errf("register %s redeclared", name)
			}
			base, err := d.newRegs(1)
			if err != nil {
				return err
			}
			d.regs[name] = uint16(base)
			d.count(typ, 1)
			d.declared(typ, base, 1)
		}
		if !p.accept(",") {
			break
		}
	}
	return p.expect(";")
}

// declared notes the n registers from base of type t.
func (d *decoder) declared(t vtype, base, n int) {
	if t != tPred {
		return
	}
	for i := range n {
		d.preds = append(d.preds, uint16(base+i))
	}
}

func (d *decoder) count(t vtype, n int) {
	switch {
	case t == tPred:
	case t.size() == 8:
		d.regs32 += 2 * n
	default:
		d.regs32 += n
	}
	d.regs32 = min(d.regs32, 1<<20)
}

// knownBases are the opcodes decode handles (in some forms).
var knownBases = map[string]bool{}

func init() {
	for _, b := range strings.Fields(`mov add sub mul mad fma div rem min max abs neg and or xor not cnot
		shl shr popc clz brev bfe bfi prmt sqrt rcp rsqrt ex2 lg2 sin cos setp selp cvt cvta
		ld st atom red shfl vote activemask bra ret exit bar barrier membar fence call
		cp sad shf bfind dp4a dp2a redux match trap tex tld4 suld sust txq suq mbarrier nanosleep
		wmma mma ldmatrix`) {
		knownBases[b] = true
	}
}

// rawInstr parses [@[!]%p] opcode operands ;
func (d *decoder) rawInstr(p *parser) (rawInstr, error) {
	ri := rawInstr{line: p.line()}
	if p.accept("@") {
		ri.predNeg = p.accept("!")
		ri.pred = d.resolve(p.next())
	}
	ri.opc = p.next()
	if ri.opc == "" || !(ri.opc[0] >= 'a' && ri.opc[0] <= 'z') {
		return ri, d.errf("expected an instruction, found %q", ri.opc)
	}
	base, _, _ := strings.Cut(ri.opc, ".")
	if !knownBases[base] {
		d.line = ri.line
		return ri, d.unsupported(ri.opc)
	}
	if p.accept(";") {
		return ri, nil
	}
	for {
		op, err := d.rawOperand(p)
		if err != nil {
			return ri, abi.Errorf(abi.ErrInvalidPTX, "line %d: instruction %q: %s", ri.line, ri.opc, strings.TrimPrefix(err.Error(), "CUDA_ERROR_INVALID_PTX: "))
		}
		op.s, op.s2 = d.resolve(op.s), d.resolve(op.s2)
		for i := range op.list {
			op.list[i] = d.resolve(op.list[i])
		}
		ri.ops = append(ri.ops, op)
		if len(ri.ops) > 8 {
			return ri, d.errf("too many operands")
		}
		if p.accept(";") {
			return ri, nil
		}
		if err := p.expect(","); err != nil {
			return ri, err
		}
	}
}

func (d *decoder) rawOperand(p *parser) (rawOp, error) {
	var op rawOp
	switch {
	case p.accept("["):
		op.kind = roAddr
		if p.peek() != "]" {
			t := p.next()
			if t == "-" || t == "+" {
				return op, d.errf("bad address")
			}
			op.s = t
			if len(t) > 0 && t[0] >= '0' && t[0] <= '9' {
				v, err := parseUint(t)
				if err != nil || v > 1<<62 {
					return op, d.errf("bad address %q", t)
				}
				op.s = ""
				op.off = int64(v)
			}
			if p.accept("+") {
				neg := p.accept("-")
				v, err := parseUint(p.next())
				if err != nil || v > 1<<62 {
					return op, d.errf("bad address offset")
				}
				if neg {
					op.off -= int64(v)
				} else {
					op.off += int64(v)
				}
			} else if p.accept("-") {
				v, err := parseUint(p.next())
				if err != nil || v > 1<<62 {
					return op, d.errf("bad address offset")
				}
				op.off -= int64(v)
			}
		}
		if p.accept(",") {
			// a texture or surface access: [handle, coordinates]
			list, err := d.coordList(p)
			if err != nil {
				return op, err
			}
			op.list = list
		}
		if err := p.expect("]"); err != nil {
			return op, err
		}
	case p.accept("("):
		op.kind = roList
		for !p.accept(")") {
			t := p.next()
			if t == "" || p.toks[p.pos-1].kind != tkWord {
				return op, d.errf("bad operand list")
			}
			op.list = append(op.list, t)
			if len(op.list) > 1024 {
				return op, d.errf("operand list too long")
			}
			if !p.accept(",") && p.peek() != ")" {
				return op, d.errf("expected ',' or ')' in operand list")
			}
		}
	case p.accept("{"):
		op.kind = roVec
		list, err := d.vecList(p)
		if err != nil {
			return op, err
		}
		op.list = list
	default:
		op.neg = p.accept("-")
		op.not = p.accept("!")
		op.s = p.next()
		if op.s == "" || len(op.s) > 0 && p.toks[p.pos-1].kind != tkWord {
			p.pos--
			return op, d.errf("unexpected %q in operand", p.peek())
		}
		if p.accept("|") {
			op.s2 = p.next()
		}
	}
	return op, nil
}

// vecList parses the rest of a vector operand after its '{'.
func (d *decoder) vecList(p *parser) ([]string, error) {
	var list []string
	for {
		t := p.next()
		if t == "" || t == "}" || t == "," {
			return nil, d.errf("bad vector operand")
		}
		list = append(list, t)
		if len(list) > 8 {
			return nil, d.errf("vector too long")
		}
		if p.accept("}") {
			return list, nil
		}
		if err := p.expect(","); err != nil {
			return nil, err
		}
	}
}

// coordList parses a texture access's coordinates: a vector, or one
// register.
func (d *decoder) coordList(p *parser) ([]string, error) {
	if p.accept("{") {
		return d.vecList(p)
	}
	t := p.next()
	if t == "" || p.toks[p.pos-1].kind != tkWord {
		return nil, d.errf("bad coordinates")
	}
	return []string{t}, nil
}

// isReg reports whether s names a register or special register.
func isReg(s string) bool { return strings.HasPrefix(s, "%") }

// isDeclared reports whether s is a declared register.
func (d *decoder) isDeclared(s string) bool {
	_, ok := d.lookupReg(s)
	return ok
}

// isRegName reports whether s names a register, with or without '%'.
func (d *decoder) isRegName(s string) bool {
	_, ok := d.lookupReg(s)
	return ok || isReg(s)
}

// lookupReg resolves a declared register name.
func (d *decoder) lookupReg(s string) (uint16, bool) {
	if r, ok := d.regs[s]; ok {
		return r, true
	}
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	if i == len(s) || i == 0 {
		return 0, false
	}
	if len(s)-i > 1 && s[i] == '0' {
		return 0, false
	}
	rg, ok := d.ranges[s[:i]]
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s[i:])
	if err != nil || n >= rg[1] {
		return 0, false
	}
	return uint16(rg[0] + n), true
}

// dst resolves a destination register ("_" is the sink).
func (d *decoder) dst(s string) (uint16, error) {
	if s == "_" {
		return 0, nil
	}
	if r, ok := d.lookupReg(s); ok {
		return r, nil
	}
	return 0, d.errf("unknown destination register %q", s)
}

func (d *decoder) constReg(v uint64) (uint16, error) {
	if r, ok := d.consts[v]; ok {
		return r, nil
	}
	base, err := d.newRegs(1)
	if err != nil {
		return 0, err
	}
	d.consts[v] = uint16(base)
	d.k.consts = append(d.k.consts, regInit{reg: uint16(base), val: v})
	return uint16(base), nil
}

// src resolves a source operand of type typ to a register index.
func (d *decoder) src(op rawOp, typ vtype) (uint16, error) {
	if op.kind != roValue || op.s2 != "" {
		return 0, d.errf("bad operand")
	}
	if op.not {
		return 0, d.errf("negated predicate operand not supported")
	}
	s := op.s
	if r, ok := d.lookupReg(s); ok && !op.neg {
		return r, nil
	}
	if isReg(s) {
		if op.neg {
			return 0, d.errf("bad operand -%s", s)
		}
		if r, ok := d.lookupReg(s); ok {
			return r, nil
		}
		if sr, ok := specialNames[s]; ok {
			if r, ok := d.specs[sr]; ok {
				return r, nil
			}
			base, err := d.newRegs(1)
			if err != nil {
				return 0, err
			}
			d.specs[sr] = uint16(base)
			d.k.specials = append(d.k.specials, regInit{reg: uint16(base), val: sr})
			return uint16(base), nil
		}
		return 0, d.errf("unknown register %q", s)
	}
	if s[0] >= '0' && s[0] <= '9' {
		it := typ
		if typ == tPred {
			it = tU64
		}
		v, err := immBits(s, it, op.neg)
		if typ == tPred && v != 0 {
			v = 1
		}
		if err != nil {
			return 0, d.errf("bad immediate %q", s)
		}
		return d.constReg(v)
	}
	if op.neg {
		return 0, d.errf("bad operand -%s", s)
	}
	return d.symAddr(s)
}

// symAddr returns a register holding the address of symbol s in its
// own window (param, shared, local) or in global memory.
func (d *decoder) symAddr(s string) (uint16, error) {
	sym := d.syms[s]
	if sym == nil {
		sym = d.m.syms[s]
	}
	if sym == nil {
		if _, ok := d.labels[s]; ok {
			return 0, d.errf("label %s used as a value", s)
		}
		return 0, d.errf("unknown symbol %q", s)
	}
	switch sym.space {
	case symParam, symShared, symLocal:
		return d.constReg(sym.off)
	case symDynShared:
		return d.constReg(d.k.dynOff)
	case symFrame:
		// set, with the frame base, when the function is called
		key := s + "@" + strconv.Itoa(d.fn)
		if r, ok := d.symReg[key]; ok {
			return r, nil
		}
		base, err := d.newRegs(1)
		if err != nil {
			return 0, err
		}
		d.symReg[key] = uint16(base)
		f := &d.k.funcs[d.fn]
		f.symRegs = append(f.symRegs, regInit{reg: uint16(base), val: sym.off})
		return uint16(base), nil
	case symFunc:
		fd := d.m.funcs[s]
		if fd == nil || fd.body == nil {
			return 0, d.errf("address of function %s, which has no body here", s)
		}
		d.need(fd)
		return d.constReg(funcAddr(fd.idx))
	case symGlobal:
		if r, ok := d.symReg[s]; ok {
			return r, nil
		}
		base, err := d.newRegs(1)
		if err != nil {
			return 0, err
		}
		d.symReg[s] = uint16(base)
		d.k.globRefs = append(d.k.globRefs, globRef{reg: uint16(base), name: s})
		return uint16(base), nil
	}
	return 0, d.errf("kernel %s used as a value", s)
}

// addr resolves [base+off] to a base register and offset.
func (d *decoder) addr(op rawOp) (uint16, int64, error) {
	if op.kind != roAddr || len(op.list) != 0 {
		return 0, 0, d.errf("expected an address operand")
	}
	if op.s == "" {
		r, err := d.constReg(0)
		return r, op.off, err
	}
	if r, ok := d.lookupReg(op.s); ok {
		return r, op.off, nil
	}
	if sym := d.syms[op.s]; sym != nil && sym.space == symFrame {
		return d.fbReg, op.off + int64(sym.off), nil
	}
	if isReg(op.s) {
		return 0, 0, d.errf("unknown register %q", op.s)
	}
	r, err := d.symAddr(op.s)
	return r, op.off, err
}
