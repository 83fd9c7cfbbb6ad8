package ptx

// Predicate registers as lane masks. A predicate register that only
// setp writes and only guards, and, or, xor, not and selp read holds
// its 32 lanes as one bit each, in lane 0's slot: a guard then reads one
// word instead of 32, setp gathers its comparisons into a mask without
// storing 32 words, and and.pred, or.pred and not.pred are one bit
// operation for the whole warp. Lanes outside an instruction's mask keep
// their bits, as they keep their values in any other register. Every
// other predicate register keeps a 0 or 1 per lane.

// packPreds rewrites the kernel's code to hold in lane masks those of
// the registers declared .pred (preds) that qualify. Kernels that call
// functions or use texture or matrix instructions keep register lists
// outside the instruction (saved frames, operand tables) and are left
// as they are.
func (k *Kernel) packPreds(preds []uint16) {
	if len(preds) == 0 || !k.plainWarps() {
		return
	}
	packed := make([]bool, k.nregs)
	for _, p := range preds {
		packed[p] = true
	}
	// A register whose every use has a mask form stays packed; a use
	// without one unpacks the registers it names, which can take the
	// mask form away from other instructions: repeat until none changes.
	for changed := true; changed; {
		changed = false
		for i := range k.code {
			in := &k.code[i]
			if _, ok := maskForm(in, packed); ok {
				continue
			}
			for _, r := range regFields(in) {
				if packed[r] {
					packed[r] = false
					changed = true
				}
			}
		}
	}
	for i := range k.code {
		in := &k.code[i]
		if in.flags&fPred != 0 && packed[in.pred] {
			in.flags |= fPredBits
		}
		if op, ok := maskForm(in, packed); ok {
			in.op = op
		}
	}
	for i := range k.code[:max(len(k.code)-1, 0)] {
		in, next := &k.code[i], &k.code[i+1]
		if in.op >= opSetpSBits && in.op <= opNotBits && next.op == opBra && next.flags&fPredBits != 0 && next.pred == in.d {
			in.flags |= fBraNext
		}
	}
}

// regFields lists the register operands of in other than its guard.
// Fields an operation leaves unused hold register 0, which no
// declaration gets.
func regFields(in *instr) []uint16 {
	return []uint16{in.d, in.a, in.b, in.c, in.e, in.regs[0], in.regs[1], in.regs[2], in.regs[3]}
}

// maskForm returns the operation in becomes when the registers marked
// in packed hold lane masks, and whether in can run that way: it names
// no packed register, or names them only where its mask form reads or
// writes a mask.
func maskForm(in *instr, packed []bool) (opcode, bool) {
	p := func(rs ...uint16) bool {
		for _, r := range rs {
			if !packed[r] {
				return false
			}
		}
		return true
	}
	none := func(rs ...uint16) bool {
		for _, r := range rs {
			if packed[r] {
				return false
			}
		}
		return true
	}
	rest := none(in.e, in.regs[0], in.regs[1], in.regs[2], in.regs[3])
	switch in.op {
	case opSetpS, opSetpU, opSetpF32, opSetpF64:
		if p(in.d) && none(in.a, in.b, in.c) && rest {
			return map[opcode]opcode{opSetpS: opSetpSBits, opSetpU: opSetpUBits,
				opSetpF32: opSetpF32Bits, opSetpF64: opSetpF64Bits}[in.op], true
		}
	case opAnd, opOr, opXor:
		if p(in.d, in.a, in.b) && none(in.c) && rest {
			return map[opcode]opcode{opAnd: opAndBits, opOr: opOrBits, opXor: opXorBits}[in.op], true
		}
	case opNotPred:
		if p(in.d, in.a) && none(in.b, in.c) && rest {
			return opNotBits, true
		}
	case opSelp:
		if p(in.c) && none(in.d, in.a, in.b) && rest {
			return opSelpBits, true
		}
	}
	return in.op, none(regFields(in)...)
}

// setMask sets the lanes of mask in the packed predicate p to v's.
func setMask(p *[32]uint64, mask, v uint32) {
	p[0] = uint64(uint32(p[0])&^mask | v&mask)
}

// setpMaskInt is setpInt gathered into a lane mask.
func setpMaskInt(a, b *[32]uint64, op uint8, t vtype) uint32 {
	if t.signed() {
		switch t.size() {
		case 4:
			return setpMaskAs[int32](a, b, op)
		case 8:
			return setpMaskAs[int64](a, b, op)
		case 2:
			return setpMaskAs[int16](a, b, op)
		default:
			return setpMaskAs[int8](a, b, op)
		}
	}
	switch t.size() {
	case 4:
		return setpMaskAs[uint32](a, b, op)
	case 8:
		return setpMaskAs[uint64](a, b, op)
	case 2:
		return setpMaskAs[uint16](a, b, op)
	default:
		return setpMaskAs[uint8](a, b, op)
	}
}

// setpMaskAs is setpAs gathered into a lane mask. The loops run from
// lane 31 down, shifting the mask by one, which compiles to less than
// shifting each lane's bit into place.
func setpMaskAs[T int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64](a, b *[32]uint64, op uint8) uint32 {
	var m uint32
	switch op {
	case cmpEq:
		for l := 31; l >= 0; l-- {
			m = m<<1 | uint32(b2i(T(a[l]) == T(b[l])))
		}
	case cmpNe:
		for l := 31; l >= 0; l-- {
			m = m<<1 | uint32(b2i(T(a[l]) != T(b[l])))
		}
	case cmpLt:
		for l := 31; l >= 0; l-- {
			m = m<<1 | uint32(b2i(T(a[l]) < T(b[l])))
		}
	case cmpLe:
		for l := 31; l >= 0; l-- {
			m = m<<1 | uint32(b2i(T(a[l]) <= T(b[l])))
		}
	case cmpGt:
		for l := 31; l >= 0; l-- {
			m = m<<1 | uint32(b2i(T(a[l]) > T(b[l])))
		}
	case cmpGe:
		for l := 31; l >= 0; l-- {
			m = m<<1 | uint32(b2i(T(a[l]) >= T(b[l])))
		}
	}
	return m
}

// setpMaskF32 is setp.f32 gathered into a lane mask.
func setpMaskF32(a, b *[32]uint64, op uint8) uint32 {
	var m uint32
	for l := 31; l >= 0; l-- {
		m = m<<1 | uint32(b2i(cmpFloat(op, float64(f32(a[l])), float64(f32(b[l])))))
	}
	return m
}

// setpMaskF64 is setp.f64 gathered into a lane mask.
func setpMaskF64(a, b *[32]uint64, op uint8) uint32 {
	var m uint32
	for l := 31; l >= 0; l-- {
		m = m<<1 | uint32(b2i(cmpFloat(op, f64(a[l]), f64(b[l]))))
	}
	return m
}

// plainWarps reports whether k calls no function and uses no texture or
// matrix instruction: the kernels whose registers the load-time
// specialisations (packPreds, findUniform) may re-lay.
func (k *Kernel) plainWarps() bool {
	return len(k.funcs) == 0 && len(k.calls) == 0 && len(k.texOps) == 0 && len(k.mmaOps) == 0
}
