package ptx

// immShifts gives shl and shr by an immediate their own operations, the
// amount clamped once into off: the interpreter then shifts each lane
// by the same count instead of reading and clamping a register per
// lane. Integer add and sub of an immediate, such as a loop's step,
// become an add of off, without reading a register of 32 copies. An
// immediate lives in a register no instruction writes; one that some
// instruction names where it could write (d, e, a vector register) is
// left alone.
func (k *Kernel) immShifts() {
	imm := make(map[uint16]uint64, len(k.consts))
	for _, c := range k.consts {
		imm[c.reg] = c.val
	}
	for i := range k.code {
		in := &k.code[i]
		for _, r := range []uint16{in.d, in.e, in.regs[0], in.regs[1], in.regs[2], in.regs[3]} {
			delete(imm, r)
		}
	}
	for i := range k.code {
		in := &k.code[i]
		v, ok := imm[in.b]
		if !ok {
			continue
		}
		n := uint64(uint32(v)) // the amount is a u32
		switch in.op {
		case opShl32:
			in.op, in.off = opShl32Imm, int64(min(n, 32))
		case opShl64:
			in.op, in.off = opShl64Imm, int64(min(n, 64))
		case opShrU32:
			in.op, in.off = opShrU32Imm, int64(min(n, 32))
		case opShrS32:
			in.op, in.off = opShrS32Imm, int64(min(n, 31))
		case opShrU64:
			in.op, in.off = opShrU64Imm, int64(min(n, 64))
		case opShrS64:
			in.op, in.off = opShrS64Imm, int64(min(n, 63))
		case opAdd32:
			in.op, in.off = opAdd32Imm, int64(uint32(v))
		case opSub32:
			in.op, in.off = opAdd32Imm, int64(-uint32(v))
		case opAdd64:
			in.op, in.off = opAddImm, int64(v)
		case opSub64:
			in.op, in.off = opAddImm, -int64(v)
		}
	}
}
