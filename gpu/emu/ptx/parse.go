package ptx

import (
	"encoding/binary"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/kerf-edge/kerf/abi"
)

// Limits that keep hostile PTX from exhausting memory at load time.
const (
	maxRegs       = 1<<16 - 64 // registers per kernel, all classes together
	maxVarSize    = 1 << 30    // bytes in one variable
	maxSharedSize = 1 << 20    // static shared bytes per kernel
	maxLocalSize  = 1 << 20    // local bytes per thread
	maxParamSize  = 1 << 16    // parameter buffer bytes
	maxInitBytes  = 1 << 24    // bytes of initialisers per module
	maxInstrs     = 1 << 22    // instructions per kernel
	// instructions decoded for the whole module: a function is decoded
	// into every kernel that calls it
	maxModuleInstrs = 1 << 24
)

// Module is a loaded PTX module.
type Module struct {
	kernels map[string]*Kernel
	names   []string
	globals []Global
	// module-scope symbols by name
	syms map[string]*symbol
	// module-scope .shared variables, laid out at the start of every
	// kernel's shared memory
	shared     []*symbol
	sharedSize uint64
	// extern dynamic shared arrays at module scope
	dynShared []*symbol
	initBytes int
	// .func declarations by name; funcList[i] has address funcAddr(i)
	funcs    map[string]*funcDecl
	funcList []*funcDecl
	decoded  int // instructions decoded so far, all kernels together
}

// funcDecl is a .func: its parameters, its return parameter and, once
// defined, where its body lies.
type funcDecl struct {
	name    string
	idx     int
	params  []*varDecl
	ret     *varDecl // nil when it returns nothing
	body    *pendingBody
	builtin builtinFunc // an external function the interpreter provides
	line    int32
}

// Function addresses: a window no allocation reaches, one slot per
// .func, so that an indirect call can tell a function address from
// anything else.
const (
	funcWindow   uint64 = 0xfd00_0000_0000_0000
	funcAddrStep uint64 = 16
)

func funcAddr(idx int) uint64 { return funcWindow + uint64(idx)*funcAddrStep }

type symSpace uint8

const (
	symGlobal    symSpace = iota // .global or .const: address from Launch.Globals
	symShared                    // shared window offset
	symLocal                     // local window offset
	symParam                     // param buffer offset
	symDynShared                 // extern shared: after static shared
	symFunc                      // a .func or .entry
	symFrame                     // a function's frame offset: its parameters, locals and calls' arguments
)

type symbol struct {
	name  string
	space symSpace
	off   uint64 // offset in its window (shared, local, param)
	size  uint64
	align uint64
}

type parser struct {
	toks []token
	pos  int
	m    *Module // for function names in initialisers
}

func (p *parser) eof() bool { return p.pos >= len(p.toks) }

func (p *parser) peek() string {
	if p.pos >= len(p.toks) {
		return ""
	}
	return p.toks[p.pos].s
}

func (p *parser) line() int32 {
	if p.pos >= len(p.toks) {
		if len(p.toks) == 0 {
			return 0
		}
		return p.toks[len(p.toks)-1].line
	}
	return p.toks[p.pos].line
}

func (p *parser) next() string {
	if p.pos >= len(p.toks) {
		return ""
	}
	p.pos++
	return p.toks[p.pos-1].s
}

func (p *parser) errf(format string, args ...any) error {
	return abi.Errorf(abi.ErrInvalidPTX, "line %d: "+format, append([]any{p.line()}, args...)...)
}

func (p *parser) expect(s string) error {
	if p.peek() != s {
		if p.eof() {
			return p.errf("expected %q, found end of input", s)
		}
		return p.errf("expected %q, found %q", s, p.peek())
	}
	p.pos++
	return nil
}

// accept consumes s if it is next.
func (p *parser) accept(s string) bool {
	if p.peek() == s {
		p.pos++
		return true
	}
	return false
}

func (p *parser) ident() (string, error) {
	if p.eof() || p.toks[p.pos].kind != tkWord {
		return "", p.errf("expected a name, found %q", p.peek())
	}
	s := p.next()
	if !validIdent(s) {
		return "", p.errf("invalid name %q", s)
	}
	return s, nil
}

func validIdent(s string) bool {
	if s == "" {
		return false
	}
	c := s[0]
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '$' || c == '%') {
		return false
	}
	return !strings.Contains(s, ".")
}

func (p *parser) uint(max uint64) (uint64, error) {
	s := p.next()
	v, err := parseUint(s)
	if err != nil || v > max {
		p.pos--
		return 0, p.errf("bad number %q", s)
	}
	return v, nil
}

func parseUint(s string) (uint64, error) {
	s = strings.TrimSuffix(s, "U")
	if len(s) > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		return strconv.ParseUint(s[2:], 16, 64)
	}
	s = strings.TrimSuffix(s, "U")
	return strconv.ParseUint(s, 10, 64)
}

// Load parses and decodes PTX source.
func Load(src []byte) (*Module, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	m := &Module{kernels: map[string]*Kernel{}, syms: map[string]*symbol{}, funcs: map[string]*funcDecl{}}
	p := &parser{toks: toks, m: m}
	var bodies []pendingBody
	sawVersion := false
	for !p.eof() {
		t := p.next()
		switch t {
		case ".version":
			v := p.next()
			maj, _, _ := strings.Cut(v, ".")
			n, err := strconv.Atoi(maj)
			if err != nil {
				return nil, p.errf("bad .version %q", v)
			}
			if n > MaxISAMajor || n < 1 {
				return nil, abi.Errorf(abi.ErrUnsupportedPTXVersion, "PTX ISA version %s not supported", v)
			}
			sawVersion = true
		case ".target":
			for {
				if _, err := p.ident(); err != nil {
					return nil, err
				}
				if !p.accept(",") {
					break
				}
			}
		case ".address_size":
			n, err := p.uint(64)
			if err != nil {
				return nil, err
			}
			if n != 64 {
				return nil, p.errf(".address_size %d not supported", n)
			}
		case ".section":
			// debug information, as nvcc -G and -lineinfo write it
			if err := p.skipSection(); err != nil {
				return nil, err
			}
		case ".file", ".loc", ".pragma":
			p.skipLine()
		case ".visible", ".extern", ".weak", ".common":
			// linkage; what follows decides
			continue
		case ".entry":
			pb, err := p.function(m, true)
			if err != nil {
				return nil, err
			}
			if pb != nil {
				bodies = append(bodies, *pb)
			}
		case ".func":
			if err := p.funcDecl(m, p.pos >= 2 && p.toks[p.pos-2].s == ".extern"); err != nil {
				return nil, err
			}
		case ".global", ".const", ".shared":
			if err := p.moduleVar(m, t); err != nil {
				return nil, err
			}
		default:
			return nil, abi.Errorf(abi.ErrInvalidPTX, "line %d: unsupported directive %q", p.toks[p.pos-1].line, t)
		}
	}
	if !sawVersion {
		return nil, abi.Errorf(abi.ErrInvalidPTX, "missing .version directive")
	}
	for _, b := range bodies {
		k, err := decodeKernel(m, b, p)
		if err != nil {
			return nil, err
		}
		m.kernels[k.Name] = k
		m.names = append(m.names, k.Name)
	}
	sort.Strings(m.names)
	return m, nil
}

// skipLine skips a debug directive or hint: the rest of its line, and
// a ';' that ends it.
func (p *parser) skipLine() {
	line := p.toks[p.pos-1].line
	for !p.eof() && p.toks[p.pos].line == line && p.peek() != ";" {
		p.next()
	}
	p.accept(";")
}

// skipSection skips a .section's name and its braced contents.
func (p *parser) skipSection() error {
	p.next()
	if err := p.expect("{"); err != nil {
		return err
	}
	for depth := 1; depth > 0; {
		if p.eof() {
			return p.errf("unterminated .section")
		}
		switch p.next() {
		case "{":
			depth++
		case "}":
			depth--
		}
	}
	return nil
}

// varDecl is a parsed variable declaration: [.align N] [.v2|.v4] .type name[dims] [= init].
type varDecl struct {
	name    string
	typ     vtype
	align   uint64
	size    uint64 // total bytes; 0 with unsized for name[]
	unsized bool
	init    []byte
	line    int32
}

func (p *parser) varDecl(allowInit bool) (*varDecl, error) {
	d := &varDecl{line: p.line()}
	vec := uint64(1)
	for {
		t := p.peek()
		if t == ".align" {
			p.next()
			a, err := p.uint(1 << 16)
			if err != nil {
				return nil, err
			}
			if a == 0 || a&(a-1) != 0 {
				return nil, p.errf("bad alignment %d", a)
			}
			d.align = a
			continue
		}
		if t == ".v2" || t == ".v4" {
			p.next()
			vec = uint64(t[2] - '0')
			continue
		}
		if t == ".ptr" || t == ".global" || t == ".const" || t == ".shared" || t == ".local" {
			// .ptr.space qualifiers on params
			p.next()
			continue
		}
		break
	}
	tn := p.next()
	if !strings.HasPrefix(tn, ".") {
		p.pos--
		return nil, p.errf("expected a type, found %q", tn)
	}
	typ, ok := typeNames[tn[1:]]
	if !ok || typ == tPred {
		p.pos--
		return nil, p.errf("unsupported type %q", tn)
	}
	d.typ = typ
	name, err := p.ident()
	if err != nil {
		return nil, err
	}
	d.name = name
	elem := uint64(typ.size()) * vec
	count := uint64(1)
	for p.peek() == "[" {
		p.next()
		if p.accept("]") {
			if d.unsized || count != 1 {
				return nil, p.errf("only the first dimension may be unsized")
			}
			d.unsized = true
			continue
		}
		n, err := p.uint(maxVarSize)
		if err != nil {
			return nil, err
		}
		if err := p.expect("]"); err != nil {
			return nil, err
		}
		count *= n
		if count > maxVarSize {
			return nil, p.errf("variable %s too large", name)
		}
	}
	if d.unsized {
		count = 0
	}
	d.size = elem * count
	if d.size > maxVarSize {
		return nil, p.errf("variable %s too large", name)
	}
	if d.align == 0 {
		d.align = uint64(typ.size())
	}
	if p.accept("=") {
		if !allowInit {
			return nil, p.errf("initialiser not allowed here")
		}
		init, err := p.initialiser(typ, d.size)
		if err != nil {
			return nil, err
		}
		if d.unsized {
			d.size = uint64(len(init))
			d.unsized = false
		}
		d.init = init
	}
	return d, nil
}

// initialiser parses = value or = {v, v, ...} (nested braces flattened)
// into little-endian bytes of typ.
func (p *parser) initialiser(typ vtype, max uint64) ([]byte, error) {
	var out []byte
	depth := 0
	for {
		t := p.peek()
		switch t {
		case "{":
			p.next()
			depth++
			continue
		case "}":
			p.next()
			depth--
			if depth < 0 {
				return nil, p.errf("unbalanced '}' in initialiser")
			}
			if depth == 0 {
				return out, nil
			}
			p.accept(",")
			continue
		}
		neg := p.accept("-")
		s := p.next()
		if fd := p.m.funcs[s]; fd != nil && !neg && typ.size() == 8 && !typ.isFloat() {
			var b [8]byte
			binary.LittleEndian.PutUint64(b[:], funcAddr(fd.idx))
			out = append(out, b[:]...)
			if max > 0 && uint64(len(out)) > max {
				return nil, p.errf("initialiser too long")
			}
			if depth == 0 {
				return out, nil
			}
			if !p.accept(",") && p.peek() != "}" {
				return nil, p.errf("expected ',' or '}' in initialiser, found %q", p.peek())
			}
			continue
		}
		if validIdent(s) && !(s[0] >= '0' && s[0] <= '9') {
			p.pos--
			return nil, p.errf("address of %s in an initialiser not supported: only function addresses are", s)
		}
		v, err := immBits(s, typ, neg)
		if err != nil {
			p.pos--
			return nil, p.errf("bad initialiser value %q: %v", s, err)
		}
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], v)
		out = append(out, b[:typ.size()]...)
		if uint64(len(out)) > maxInitBytes || (max > 0 && uint64(len(out)) > max) {
			return nil, p.errf("initialiser too long")
		}
		if depth == 0 {
			return out, nil
		}
		if !p.accept(",") && p.peek() != "}" {
			return nil, p.errf("expected ',' or '}' in initialiser, found %q", p.peek())
		}
	}
}

// immBits converts a PTX literal to the bit pattern of typ.
func immBits(s string, typ vtype, neg bool) (uint64, error) {
	if s == "" {
		return 0, strconv.ErrSyntax
	}
	if len(s) > 2 && s[0] == '0' && (s[1] == 'f' || s[1] == 'F' || s[1] == 'd' || s[1] == 'D') {
		bits, err := strconv.ParseUint(s[2:], 16, 64)
		if err != nil {
			return 0, err
		}
		var f float64
		if s[1] == 'f' || s[1] == 'F' {
			if len(s) != 10 {
				return 0, strconv.ErrSyntax
			}
			f = float64(math.Float32frombits(uint32(bits)))
		} else {
			if len(s) != 18 {
				return 0, strconv.ErrSyntax
			}
			f = math.Float64frombits(bits)
		}
		if neg {
			f = -f
		}
		return floatBits(f, typ), nil
	}
	if typ.isFloat() && strings.ContainsAny(s, ".eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, err
		}
		if neg {
			f = -f
		}
		return floatBits(f, typ), nil
	}
	u, err := parseUint(s)
	if err != nil {
		return 0, err
	}
	if typ.isFloat() {
		f := float64(u)
		if neg {
			f = -f
		}
		return floatBits(f, typ), nil
	}
	if neg {
		u = -u
	}
	return u, nil
}

func floatBits(f float64, typ vtype) uint64 {
	if typ.isHalf() {
		return uint64(typ.halfFormat().encode(f, rndRn))
	}
	if typ == tF32 {
		return uint64(math.Float32bits(float32(f)))
	}
	return math.Float64bits(f)
}

func alignUp(v, a uint64) uint64 {
	if a <= 1 {
		return v
	}
	return (v + a - 1) &^ (a - 1)
}

func (p *parser) moduleVar(m *Module, space string) error {
	d, err := p.varDecl(space != ".shared")
	if err != nil {
		return err
	}
	if err := p.expect(";"); err != nil {
		return err
	}
	if _, dup := m.syms[d.name]; dup {
		return abi.Errorf(abi.ErrInvalidPTX, "line %d: %s redeclared", d.line, d.name)
	}
	switch space {
	case ".shared":
		if d.unsized {
			s := &symbol{name: d.name, space: symDynShared, align: d.align}
			m.syms[d.name] = s
			m.dynShared = append(m.dynShared, s)
			return nil
		}
		off := alignUp(m.sharedSize, d.align)
		s := &symbol{name: d.name, space: symShared, off: off, size: d.size, align: d.align}
		m.sharedSize = off + d.size
		if m.sharedSize > maxSharedSize {
			return abi.Errorf(abi.ErrInvalidPTX, "line %d: shared memory too large", d.line)
		}
		m.syms[d.name] = s
		m.shared = append(m.shared, s)
	default:
		if d.unsized {
			return abi.Errorf(abi.ErrInvalidPTX, "line %d: global %s has no size", d.line, d.name)
		}
		m.initBytes += len(d.init)
		if m.initBytes > maxInitBytes {
			return abi.Errorf(abi.ErrInvalidPTX, "line %d: initialisers too large", d.line)
		}
		m.syms[d.name] = &symbol{name: d.name, space: symGlobal, size: d.size, align: d.align}
		m.globals = append(m.globals, Global{Name: d.name, Size: d.size, Align: d.align, Init: d.init})
	}
	return nil
}

// pendingBody is a function whose body is decoded after all module
// symbols are known.
type pendingBody struct {
	name   string
	params []*varDecl
	start  int // token index after '{'
	end    int // token index of the matching '}'
	line   int32
}

// paramList parses ( .param decl, ... ); the parentheses are optional.
func (p *parser) paramList() ([]*varDecl, error) {
	var params []*varDecl
	if !p.accept("(") {
		return nil, nil
	}
	for !p.accept(")") {
		if p.eof() {
			return nil, p.errf("unterminated parameter list")
		}
		if err := p.expect(".param"); err != nil {
			return nil, err
		}
		d, err := p.varDecl(false)
		if err != nil {
			return nil, err
		}
		if d.unsized {
			return nil, p.errf("parameter %s has no size", d.name)
		}
		params = append(params, d)
		if len(params) > 1024 {
			return nil, p.errf("too many parameters")
		}
		if !p.accept(",") && p.peek() != ")" {
			return nil, p.errf("expected ',' or ')' in parameter list, found %q", p.peek())
		}
	}
	return params, nil
}

// function parses an .entry header and finds its body's extent.
func (p *parser) function(m *Module, entry bool) (*pendingBody, error) {
	line := p.line()
	name, err := p.ident()
	if err != nil {
		return nil, err
	}
	if _, dup := m.syms[name]; dup {
		return nil, p.errf("%s redeclared", name)
	}
	m.syms[name] = &symbol{name: name, space: symFunc}
	params, err := p.paramList()
	if err != nil {
		return nil, err
	}
	body, err := p.bodyExtent(name)
	if err != nil || body == nil {
		return nil, err
	}
	body.params, body.line = params, line
	return body, nil
}

// funcDecl parses a .func: a prototype, an external declaration or a
// definition, which may follow a prototype of the same function.
func (p *parser) funcDecl(m *Module, extern bool) error {
	line := p.line()
	var ret []*varDecl
	if p.peek() == "(" {
		var err error
		if ret, err = p.paramList(); err != nil {
			return err
		}
		if len(ret) > 1 {
			return p.errf("more than one return parameter")
		}
	}
	name, err := p.ident()
	if err != nil {
		return err
	}
	params, err := p.paramList()
	if err != nil {
		return err
	}
	fd := m.funcs[name]
	if fd == nil {
		if _, dup := m.syms[name]; dup {
			return p.errf("%s redeclared", name)
		}
		fd = &funcDecl{name: name, idx: len(m.funcList), params: params, line: line}
		if len(ret) == 1 {
			fd.ret = ret[0]
		}
		m.funcs[name] = fd
		m.funcList = append(m.funcList, fd)
		m.syms[name] = &symbol{name: name, space: symFunc}
	} else if !sameParams(fd.params, params) || (fd.ret == nil) != (len(ret) == 0) ||
		(fd.ret != nil && !sameParams([]*varDecl{fd.ret}, ret)) {
		return p.errf("%s redeclared with other parameters", name)
	}
	if extern {
		fd.builtin = builtins[name]
	}
	body, err := p.bodyExtent(name)
	if err != nil || body == nil {
		return err
	}
	if fd.body != nil {
		return p.errf("%s defined twice", name)
	}
	fd.params = params // the definition's names
	if len(ret) == 1 {
		fd.ret = ret[0]
	}
	body.name, body.params, body.line = name, params, line
	fd.body = body
	return nil
}

// sameParams reports whether two parameter lists have the same shape.
func sameParams(a, b []*varDecl) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].size != b[i].size {
			return false
		}
	}
	return true
}

// bodyExtent skips performance directives, then returns nil for a
// prototype (';') or the extent of a body.
func (p *parser) bodyExtent(name string) (*pendingBody, error) {
	for strings.HasPrefix(p.peek(), ".") {
		switch p.next() {
		case ".maxntid", ".reqntid", ".minnctapersm", ".maxnreg", ".maxnctapersm", ".noreturn", ".pragma":
			for !p.eof() && p.peek() != "{" && p.peek() != ";" && !strings.HasPrefix(p.peek(), ".") {
				p.next()
			}
		default:
			p.pos--
			return nil, p.errf("unsupported function directive %q", p.peek())
		}
	}
	if p.accept(";") {
		return nil, nil // prototype
	}
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	start := p.pos
	depth := 1
	for depth > 0 {
		if p.eof() {
			return nil, p.errf("unterminated body of %s", name)
		}
		switch p.next() {
		case "{":
			depth++
		case "}":
			depth--
		}
	}
	return &pendingBody{name: name, start: start, end: p.pos - 1}, nil
}

// Kernel returns the kernel (.entry) called name.
func (m *Module) Kernel(name string) (*Kernel, error) {
	k, ok := m.kernels[name]
	if !ok {
		return nil, abi.Errorf(abi.ErrNotFound, "no kernel %q in module", name)
	}
	return k, nil
}

// Kernels lists the module's kernel names, sorted.
func (m *Module) Kernels() []string { return append([]string(nil), m.names...) }

// Globals lists the module's .global and .const variables in
// declaration order. The emulated device allocates each and passes the
// addresses in Launch.Globals.
func (m *Module) Globals() []Global {
	out := make([]Global, len(m.globals))
	for i, g := range m.globals {
		g.Init = append([]byte(nil), g.Init...)
		out[i] = g
	}
	return out
}
