package ptx

import (
	"github.com/kerf-edge/kerf/abi"
)

// Calls. Every function a kernel may call is decoded into the kernel's
// code after the kernel's own instructions, with registers of its own.
// Each thread keeps a stack of frames in its local memory: the kernel's
// frame at 0, a callee's right above its caller's. A frame holds the
// return address, the parameters and the return value, the function's
// .local variables and its calls' argument variables, and, for a
// function that may be active twice in one thread (recursion), the
// caller's values of the function's registers.

// frameSlot is a variable in a frame.
type frameSlot struct{ off, size uint64 }

// kfunc is a function as decoded into one kernel.
type kfunc struct {
	fd           *funcDecl
	entry        int32
	regLo, regHi uint16 // its registers
	fbReg        uint16 // its frame base
	symRegs      []regInit
	params       []frameSlot
	ret          frameSlot
	static       uint64 // frame bytes without saved registers
	save         bool   // recursive: registers are saved in the frame
	frameSize    uint64
	callees      []int // direct calls, by index in Kernel.funcs
	indirect     bool  // calls through a register
}

// frameHeader is the return address at the start of a function's frame.
const frameHeader = 8

// recursionStack is the stack each thread gets when its kernel's calls
// may recurse, past the kernel's own frame.
const recursionStack = 16 << 10

// callSite is one call instruction.
type callSite struct {
	caller  int    // index in Kernel.funcs, -1 for the kernel
	fbReg   uint16 // the caller's frame base
	frame   uint64 // the caller's frame size
	direct  int    // index in Kernel.funcs, -1 through register in.a
	builtin builtinFunc
	args    []frameSlot
	ret     frameSlot
}

// need queues fd for decoding into the kernel and returns its index.
func (ks *kernelState) need(fd *funcDecl) int {
	if i, ok := ks.funcOf[fd]; ok {
		return i
	}
	i := len(ks.k.funcs)
	ks.funcOf[fd] = i
	ks.k.funcs = append(ks.k.funcs, kfunc{fd: fd})
	ks.queue = append(ks.queue, fd)
	return i
}

// decodeFuncs decodes the queued functions, and all defined functions
// once some body calls through a register.
func (ks *kernelState) decodeFuncs(p *parser) error {
	for len(ks.queue) > 0 || ks.indirect && len(ks.funcOf) < ks.definedFuncs() {
		if len(ks.queue) == 0 {
			for _, fd := range ks.m.funcList {
				if fd.body != nil {
					ks.need(fd)
				}
			}
			continue
		}
		fd := ks.queue[0]
		ks.queue = ks.queue[1:]
		if err := ks.decodeFunc(fd, p); err != nil {
			return err
		}
	}
	ks.k.funcByAddr = make([]int32, len(ks.m.funcList))
	for i, fd := range ks.m.funcList {
		ks.k.funcByAddr[i] = -1
		if j, ok := ks.funcOf[fd]; ok {
			ks.k.funcByAddr[i] = int32(j)
		}
	}
	return nil
}

func (ks *kernelState) definedFuncs() int {
	n := 0
	for _, fd := range ks.m.funcList {
		if fd.body != nil {
			n++
		}
	}
	return n
}

// decodeFunc decodes the body of fd onto the end of the kernel's code.
func (ks *kernelState) decodeFunc(fd *funcDecl, p *parser) error {
	fi := ks.funcOf[fd]
	d := newDecoder(ks, fi, fd.line)
	f := &ks.k.funcs[fi]
	f.regLo = uint16(ks.nregs)
	fb, err := d.newRegs(1)
	if err != nil {
		return err
	}
	d.fbReg, f.fbReg = uint16(fb), uint16(fb)
	d.frame = frameHeader
	slot := func(vd *varDecl) frameSlot {
		o := alignUp(d.frame, vd.align)
		d.syms[vd.name] = &symbol{name: vd.name, space: symFrame, off: o, size: vd.size}
		d.frame = o + vd.size
		return frameSlot{o, vd.size}
	}
	for _, pd := range fd.params {
		if d.syms[pd.name] != nil {
			return d.errf("parameter %s redeclared", pd.name)
		}
		f.params = append(f.params, slot(pd))
	}
	if fd.ret != nil {
		if d.syms[fd.ret.name] != nil {
			return d.errf("parameter %s redeclared", fd.ret.name)
		}
		f.ret = slot(fd.ret)
	}
	shared := ks.shared
	raws, err := d.scan(*fd.body, p)
	if err != nil {
		return err
	}
	if ks.shared != shared {
		return d.errf("shared variable declared in function %s not supported", fd.name)
	}
	f = &ks.k.funcs[fi]
	f.entry = int32(len(ks.k.code))
	if err := d.decodeBody(raws); err != nil {
		return err
	}
	f = &ks.k.funcs[fi]
	f.regHi = uint16(ks.nregs)
	f.static = alignUp(d.frame, 16)
	return nil
}

// layoutFrames decides which functions save their registers and sets
// every frame size; it returns the stack a thread needs past the
// kernel's frame.
func (ks *kernelState) layoutFrames(kernelFrame uint64) uint64 {
	k := ks.k
	if len(k.funcs) == 0 {
		return 0
	}
	n := len(k.funcs)
	edges := func(i int) []int {
		if k.funcs[i].indirect {
			all := make([]int, n)
			for j := range all {
				all[j] = j
			}
			return all
		}
		return k.funcs[i].callees
	}
	recursive := false
	for i := range k.funcs {
		// does i reach itself?
		seen := make([]bool, n)
		stack := append([]int(nil), edges(i)...)
		for len(stack) > 0 && !k.funcs[i].save {
			j := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if j == i {
				k.funcs[i].save = true
				recursive = true
			}
			if !seen[j] {
				seen[j] = true
				stack = append(stack, edges(j)...)
			}
		}
	}
	for i := range k.funcs {
		f := &k.funcs[i]
		f.frameSize = f.static
		if f.save {
			f.frameSize += 8 * uint64(f.regHi-f.regLo)
		}
	}
	for i := range k.calls {
		c := &k.calls[i]
		c.frame = kernelFrame
		if c.caller >= 0 {
			c.frame = k.funcs[c.caller].frameSize
		}
	}
	if recursive {
		return recursionStack
	}
	// no recursion: the deepest chain of frames
	depth := make([]uint64, n)
	done := make([]bool, n)
	var visit func(i int) uint64
	visit = func(i int) uint64 {
		if done[i] {
			return depth[i]
		}
		var deepest uint64
		for _, j := range edges(i) {
			deepest = max(deepest, visit(j))
		}
		depth[i], done[i] = k.funcs[i].frameSize+deepest, true
		return depth[i]
	}
	var deepest uint64
	for _, c := range k.calls {
		if c.caller >= 0 {
			continue
		}
		if c.direct >= 0 {
			deepest = max(deepest, visit(c.direct))
		} else if c.builtin == 0 {
			for j := range k.funcs {
				deepest = max(deepest, visit(j))
			}
		}
	}
	return deepest
}

// call decodes call: [(ret),] target, [(args)] [, prototype].
func (x *instrDecoder) call() error {
	o, in, ops := &x.o, &x.in, x.ops
	o.take("uni")
	site := callSite{caller: x.fn, fbReg: x.fbReg, direct: -1}
	var rets []string
	if len(ops) > 0 && ops[0].kind == roList {
		rets, ops = ops[0].list, ops[1:]
	}
	if len(ops) == 0 || ops[0].kind != roValue || len(rets) > 1 {
		return x.bad()
	}
	target := ops[0].s
	var args []string
	if len(ops) > 1 {
		if ops[1].kind != roList {
			return x.bad()
		}
		args = ops[1].list
	}
	if len(ops) > 2 && (ops[2].kind != roValue || !x.protos[ops[2].s]) {
		return x.errf("%s: unknown prototype %q", x.opc, ops[2].s)
	}
	if len(ops) > 3 {
		return x.bad()
	}
	slot := func(name string) (frameSlot, error) {
		sym := x.syms[name]
		if sym == nil || (sym.space != symLocal && sym.space != symFrame) {
			return frameSlot{}, x.errf("%s: %q is not a parameter variable of this function", x.opc, name)
		}
		return frameSlot{sym.off, sym.size}, nil
	}
	for _, a := range args {
		s, err := slot(a)
		if err != nil {
			return err
		}
		site.args = append(site.args, s)
	}
	if len(rets) == 1 {
		s, err := slot(rets[0])
		if err != nil {
			return err
		}
		site.ret = s
	}
	if r, ok := x.lookupReg(target); ok {
		in.a = r
		x.indirect = true
		if x.fn >= 0 {
			x.k.funcs[x.fn].indirect = true
		}
	} else {
		fd := x.m.funcs[target]
		switch {
		case fd == nil:
			return x.errf("%s: unknown function %q", x.opc, target)
		case fd.builtin != 0:
			site.builtin = fd.builtin
			x.k.UsesHeap = x.k.UsesHeap || fd.builtin == builtinMalloc || fd.builtin == builtinFree
		case fd.body == nil:
			return x.errf("%s: external function %s not supported", x.opc, target)
		default:
			site.direct = x.need(fd)
			if x.fn >= 0 {
				x.k.funcs[x.fn].callees = append(x.k.funcs[x.fn].callees, site.direct)
			}
		}
		if err := checkCallShape(fd, site); err != nil {
			return x.errf("%s: to %s: %v", x.opc, target, err)
		}
	}
	if len(x.k.calls) >= maxInstrs {
		return x.errf("too many calls")
	}
	in.op = opCall
	in.off = int64(len(x.k.calls))
	x.k.calls = append(x.k.calls, site)
	return nil
}

// checkCallShape checks a call's argument and result variables against
// fd's parameters.
func checkCallShape(fd *funcDecl, site callSite) error {
	if len(site.args) != len(fd.params) {
		return abi.Errorf(abi.ErrInvalidPTX, "%d arguments for %d parameters", len(site.args), len(fd.params))
	}
	for i, a := range site.args {
		if a.size != fd.params[i].size {
			return abi.Errorf(abi.ErrInvalidPTX, "argument %d has %d bytes, the parameter %d", i, a.size, fd.params[i].size)
		}
	}
	if site.ret.size != 0 && (fd.ret == nil || fd.ret.size != site.ret.size) {
		return abi.Errorf(abi.ErrInvalidPTX, "result does not match the function's")
	}
	return nil
}
