package ptx

// Comparison and selection.

// setp decodes setp: one comparison operator, a predicate destination.
func (x *instrDecoder) setp() error {
	o, in, ops := &x.o, &x.in, x.ops
	t, ok := o.oneType()
	if !ok || len(ops) != 3 || (ops[0].s2 != "" && !t.isPair()) || t == tPred {
		return x.bad()
	}
	found := false
	for m := range o.mods {
		if c, ok := cmpNames[m]; ok {
			if found {
				return x.bad()
			}
			found = true
			in.mod = c
			delete(o.mods, m)
		}
	}
	if !found {
		return x.bad()
	}
	switch {
	case t.isHalf():
		in.op = opSetpHalf
		o.take("ftz")
		if t.isPair() {
			if ops[0].s2 == "" {
				return x.bad()
			}
			in.typ = t
			var err error
			if in.e, err = x.dst(ops[0].s2); err != nil {
				return err
			}
			x.ops[0].s2 = ""
		}
	case t == tF32:
		in.op = opSetpF32
		o.take("ftz")
	case t == tF64:
		in.op = opSetpF64
	case in.mod >= cmpEqu:
		return x.bad()
	case t.signed():
		in.op = opSetpS
	default:
		in.op = opSetpU
	}
	in.typ = t
	return x.dstSrcs(t, 2)
}

// selp decodes selp.
func (x *instrDecoder) selp() error {
	o, in, ops := &x.o, &x.in, x.ops
	t, ok := o.oneType()
	if !ok || t == tPred {
		return x.bad()
	}
	in.op = opSelp
	if len(ops) != 4 {
		return x.bad()
	}
	if err := x.dstSrcs(t, 3); err != nil {
		return err
	}
	var err error
	in.c, err = x.src(ops[3], tPred)
	return err
}
