package ptx

// Warp operations.

// shfl decodes shfl.sync.
func (x *instrDecoder) shfl() error {
	o, in, ops := &x.o, &x.in, x.ops
	var err error
	if !o.take("sync") || len(ops) != 5 {
		return x.bad()
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
		return x.bad()
	}
	if t, ok := o.oneType(); !ok || t != tB32 {
		return x.bad()
	}
	in.op = opShfl
	if err = x.dstAndPred(ops[0]); err != nil {
		return err
	}
	if in.a, err = x.src(ops[1], tB32); err != nil {
		return err
	}
	if in.b, err = x.src(ops[2], tB32); err != nil {
		return err
	}
	if in.c, err = x.src(ops[3], tB32); err != nil {
		return err
	}
	// membermask is not needed: lanes run together when they
	// reach the same instruction
	_, err = x.src(ops[4], tB32)
	return err
}

// vote decodes vote.sync.
func (x *instrDecoder) vote() error {
	o, in, ops := &x.o, &x.in, x.ops
	var err error
	if !o.take("sync") || len(ops) != 3 {
		return x.bad()
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
		return x.bad()
	}
	if !ok {
		return x.bad()
	}
	in.op = opVote
	if in.d, err = x.dst(ops[0].s); err != nil {
		return err
	}
	if in.a, err = x.src(ops[1], tPred); err != nil {
		return err
	}
	_, err = x.src(ops[2], tB32)
	return err
}

// activemask decodes activemask.
func (x *instrDecoder) activemask() error {
	o, in, ops := &x.o, &x.in, x.ops
	var err error
	if t, ok := o.oneType(); !ok || t != tB32 || len(ops) != 1 {
		return x.bad()
	}
	in.op = opActivemask
	in.d, err = x.dst(ops[0].s)
	return err
}

// reduxDecode decodes redux.sync.{add,min,max}.{u32,s32} and
// redux.sync.{and,or,xor}.b32.
func (x *instrDecoder) reduxDecode() error {
	o, in, ops := &x.o, &x.in, x.ops
	t, ok := o.oneType()
	if !o.take("sync") || !ok || len(ops) != 3 {
		return x.bad()
	}
	var nops int
	in.mod, nops = o.takeAtomOp()
	switch {
	case nops != 1:
		return x.bad()
	case in.mod == atAdd || in.mod == atMin || in.mod == atMax:
		if t != tU32 && t != tS32 {
			return x.bad()
		}
	case in.mod == atAnd || in.mod == atOr || in.mod == atXor:
		if t != tB32 {
			return x.bad()
		}
	default:
		return x.bad()
	}
	in.op, in.typ = opRedux, t
	if err := x.dstSrcs(t, 2); err != nil {
		return err
	}
	return nil
}

// matchDecode decodes match.any.sync.{b32,b64} and
// match.all.sync.{b32,b64}, whose destination may carry a predicate.
func (x *instrDecoder) matchDecode() error {
	o, in, ops := &x.o, &x.in, x.ops
	var err error
	t, ok := o.oneType()
	if !o.take("sync") || !ok || (t != tB32 && t != tB64) || len(ops) != 3 {
		return x.bad()
	}
	switch {
	case o.take("any"):
		in.mod = 0
		if ops[0].s2 != "" {
			return x.bad()
		}
	case o.take("all"):
		in.mod = 1
	default:
		return x.bad()
	}
	in.op, in.typ = opMatch, t
	if err = x.dstAndPred(ops[0]); err != nil {
		return err
	}
	if in.a, err = x.src(ops[1], t); err != nil {
		return err
	}
	in.b, err = x.src(ops[2], tB32)
	return err
}

// dstAndPred decodes a destination d, or d|p with a predicate that e
// receives.
func (x *instrDecoder) dstAndPred(op rawOp) error {
	var err error
	if x.in.d, err = x.dst(op.s); err != nil {
		return err
	}
	if op.s2 != "" {
		x.in.flags |= fPredOut
		x.in.e, err = x.dst(op.s2)
	}
	return err
}
