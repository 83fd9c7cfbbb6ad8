package ptx

// Control flow, barriers and fences.

// bra decodes a branch to a label.
func (x *instrDecoder) bra() error {
	o, in, ops := &x.o, &x.in, x.ops
	o.take("uni")
	if len(ops) != 1 || ops[0].kind != roValue || x.isRegName(ops[0].s) {
		return x.bad()
	}
	tgt, ok := x.labels[ops[0].s]
	if !ok {
		return x.errf("unknown label %q", ops[0].s)
	}
	in.op = opBra
	in.target = tgt
	return nil
}

// exit decodes ret and exit: ret in a kernel, and exit anywhere, end
// the thread; ret in a function returns to its caller.
func (x *instrDecoder) exit() error {
	o, in, ops := &x.o, &x.in, x.ops
	if len(ops) != 0 {
		return x.bad()
	}
	o.take("uni")
	in.op = opExit
	if o.base == "ret" && x.fn >= 0 {
		in.op, in.off = opRet, int64(x.fn)
	}
	return nil
}

// bar decodes bar.sync, barrier.sync and bar.warp.sync.
func (x *instrDecoder) bar() error {
	o, in, ops := &x.o, &x.in, x.ops
	o.take("aligned")
	if o.base == "bar" && o.take("warp") {
		if !o.take("sync") || len(ops) != 1 {
			return x.bad()
		}
		in.op = opNop
		return nil
	}
	if !o.take("sync") || len(ops) < 1 || len(ops) > 2 {
		return x.bad()
	}
	for i := range ops {
		if _, err := x.src(ops[i], tU32); err != nil {
			return err
		}
	}
	in.op = opBar
	return nil
}

// fence decodes membar and fence, which need no work: the interpreter
// does not reorder memory operations.
func (x *instrDecoder) fence() error {
	o, in := &x.o, &x.in
	o.take("cta", "gl", "gpu", "sys", "sc", "acq_rel")
	in.op = opNop
	return nil
}
