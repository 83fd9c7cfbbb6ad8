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
	if in.d, err = x.dst(ops[0].s); err != nil {
		return err
	}
	if ops[0].s2 != "" {
		in.flags |= fPredOut
		if in.e, err = x.dst(ops[0].s2); err != nil {
			return err
		}
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
