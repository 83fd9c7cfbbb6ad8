package ptx

import "math/bits"

// Warp-uniform registers. A loop counter, a kernel parameter or a block
// index holds the same value in all 32 lanes of a warp; a setp on two
// such registers can compare once and give every lane the same answer.
//
// Each warp keeps a flag per register, uni, that when set promises that
// all 32 lanes of the register hold the same value; a clear flag
// promises nothing. Immediates, symbol addresses and the special
// registers that do not vary within a warp are set when the warp is
// made and never written. Other registers are tracked only when every
// instruction that writes them is one of a few with a tracked form
// (opUni: mov, add, sub, shifts by an immediate, adds of an immediate;
// opLdUni: a load of a kernel parameter) and every source of those
// could itself be uniform. A tracked form sets the flag when it wrote
// all 32 lanes from uniform sources, and clears it otherwise. No other
// instruction writes a tracked register, so the flag stays true to the
// values; untracked registers keep their flag clear.

// uniformSpecials are the special registers whose value is the same in
// every lane of a warp.
var uniformSpecials = map[uint64]bool{
	srNtidX: true, srNtidY: true, srNtidZ: true,
	srCtaidX: true, srCtaidY: true, srCtaidZ: true,
	srNctaidX: true, srNctaidY: true, srNctaidZ: true,
	srWarpid: true, srNwarpid: true, srZero: true, srOne: true,
	srDynSmem: true, srTotalSmem: true, srEnvregHi: true, srEnvregLo: true,
}

// uniTracked reports whether op has a tracked form, and how many
// register sources (a, then b) it reads.
func uniTracked(op opcode) (int, bool) {
	switch op {
	case opMov, opAddImm, opAdd32Imm, opShl32Imm, opShl64Imm, opShrU32Imm, opShrS32Imm, opShrU64Imm, opShrS64Imm:
		return 1, true
	case opAdd32, opAdd64, opSub32, opSub64:
		return 2, true
	}
	return 0, false
}

// uniLoad reports whether in is a load of one kernel parameter value,
// which reads the same value for every lane.
func uniLoad(in *instr) bool {
	return in.op == opLd && in.space == spParam && in.vec == 1 && in.flags&(fUniform|fSync) == fUniform
}

// findUniform marks the registers whose uniformity can be tracked and
// rewrites their writers to the tracked forms. It lists in k.uniStatic
// the registers that are uniform from the start and never written.
// Kernels that call functions or use texture or matrix instructions,
// whose register lists live outside the instruction, are left as they
// are.
func (k *Kernel) findUniform() {
	if !k.plainWarps() {
		return
	}
	static := make([]bool, k.nregs)
	for _, c := range k.consts {
		static[c.reg] = true
	}
	for _, g := range k.globRefs {
		static[g.reg] = true
	}
	for _, s := range k.specials {
		if uniformSpecials[s.val] {
			static[s.reg] = true
		}
	}
	// cand: written only by instructions with a tracked form, and only
	// in their destination
	cand := make([]bool, k.nregs)
	written := make([]bool, k.nregs)
	bad := make([]bool, k.nregs)
	for i := range k.code {
		in := &k.code[i]
		dst, tracked := uint16(0), false
		if _, ok := uniTracked(in.op); ok {
			dst, tracked = in.d, true
		} else if uniLoad(in) {
			dst, tracked = in.regs[0], true
		}
		for j, r := range []uint16{in.d, in.e, in.regs[0], in.regs[1], in.regs[2], in.regs[3]} {
			if r == 0 {
				continue
			}
			written[r] = true
			isDst := tracked && r == dst && ((j == 0 && in.op != opLd) || (j == 2 && in.op == opLd))
			if !isDst {
				bad[r] = true
			}
		}
	}
	for r := range cand {
		cand[r] = written[r] && !bad[r]
		if written[r] {
			static[r] = false
		}
	}
	// a tracked writer with a source that is never uniform makes its
	// destination never uniform: repeat until none changes
	ok := func(r uint16) bool { return static[r] || cand[r] }
	for changed := true; changed; {
		changed = false
		for i := range k.code {
			in := &k.code[i]
			n, t := uniTracked(in.op)
			if !t || !cand[in.d] {
				continue
			}
			if !ok(in.a) || (n == 2 && !ok(in.b)) {
				cand[in.d] = false
				changed = true
			}
		}
	}
	for i := range k.code {
		in := &k.code[i]
		if _, t := uniTracked(in.op); t && cand[in.d] {
			in.op, in.mod = opUni, uint8(in.op)
		} else if uniLoad(in) && cand[in.regs[0]] {
			in.op = opLdUni
		}
	}
	for r, s := range static {
		if s {
			k.uniStatic = append(k.uniStatic, uint16(r))
		}
	}
}

// uniScalar is the value of the tracked operation op for one lane.
func uniScalar(op opcode, a, b uint64, off int64) uint64 {
	n := uint(off)
	switch op {
	case opMov:
		return a
	case opAddImm:
		return a + uint64(off)
	case opAdd32Imm:
		return uint64(uint32(a) + uint32(off))
	case opAdd32:
		return uint64(uint32(a) + uint32(b))
	case opAdd64:
		return a + b
	case opSub32:
		return uint64(uint32(a) - uint32(b))
	case opSub64:
		return a - b
	case opShl32Imm:
		return a << n & 0xffffffff
	case opShl64Imm:
		return a << n
	case opShrU32Imm:
		return uint64(uint32(a)) >> n
	case opShrS32Imm:
		return uint64(uint32(int32(a) >> n))
	case opShrU64Imm:
		return a >> n
	default: // opShrS64Imm
		return uint64(int64(a) >> n)
	}
}

// uniOp runs the tracked form of the operation in.mod when its sources
// are uniform: one value, for all 32 lanes or for those in mask. It
// reports false, having run nothing, when a source is not uniform; the
// caller then runs the operation itself and clears the flag.
func (w *worker) uniOp(wp *warp, in *instr, mask uint32) bool {
	r, u := wp.r, wp.uni
	op := opcode(in.mod)
	n, _ := uniTracked(op)
	if !u[in.a] || (n == 2 && !u[in.b]) {
		return false
	}
	v := uniScalar(op, r[in.a][0], r[in.b][0], in.off)
	d := &r[in.d]
	if mask == fullMask {
		for l := range d {
			d[l] = v
		}
		u[in.d] = true
		return true
	}
	for m := mask; m != 0; m &= m - 1 {
		d[bits.TrailingZeros32(m)] = v
	}
	u[in.d] = false
	return true
}

// setpUniInt is a setp's answer for every lane when a and b are
// uniform: all lanes or none.
func setpUniInt(a, b uint64, op uint8, t vtype) uint32 {
	// Widened to 64 bits, as its type extends it, a value keeps its order.
	var c bool
	if t.signed() {
		c = cmpAs(signExt(a, t.size()), signExt(b, t.size()), op)
	} else {
		sh := 64 - 8*uint(t.size())
		c = cmpAs(a<<sh>>sh, b<<sh>>sh, op)
	}
	if c {
		return fullMask
	}
	return 0
}

// cmpAs is one lane of setpAs.
func cmpAs[T int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64](a, b T, op uint8) bool {
	switch op {
	case cmpEq:
		return a == b
	case cmpNe:
		return a != b
	case cmpLt:
		return a < b
	case cmpLe:
		return a <= b
	case cmpGt:
		return a > b
	case cmpGe:
		return a >= b
	}
	return false
}
