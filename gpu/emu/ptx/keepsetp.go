package ptx

// Loop-invariant comparisons kept between iterations. A loop often
// compares registers that nothing in the loop writes (a row index
// against a bound, a thread index against a size) on every iteration.
// A setp held as a lane mask compares all 32 lanes, whichever are
// active, so its result depends on nothing but the 32 lanes of its two
// sources: while neither is written, the mask it computed last is still
// the answer, for lanes that were inactive then as for the others.
//
// keepSetps gives each such setp a slot (its target, one more than the
// slot; setps never branch). Each warp keeps a valid bit and the mask
// per slot. A kept setp with a valid bit reuses the mask; otherwise it
// compares and sets the bit. Every instruction anywhere in the kernel
// that may write a kept setp's source becomes opKill: it clears the
// valid bits of the slots reading what it writes, then runs as itself.
// A new block clears them all, as it rewrites the block index. The
// bits are thus never stale, whatever the control flow and divergence;
// the loops only choose which setps are worth a slot, those whose
// sources are written outside the innermost loop that holds them.

// maxKept is the number of setps one kernel may keep: a warp's valid
// bits are one word.
const maxKept = 64

// kill is an instruction that may write a kept setp's source.
type kill struct {
	slots uint64 // the slots whose valid bits it clears
	in    instr  // the instruction itself
}

// keepSetps picks the setps to keep and turns the writers of their
// sources into opKill. It runs after packPreds, which makes the mask
// forms, and after the passes that rewrite instructions in place.
// Kernels that call functions or use texture or matrix instructions,
// whose register lists live outside the instruction, are left as they
// are.
func (k *Kernel) keepSetps() {
	if !k.plainWarps() {
		return
	}
	// loops: a backward branch at j to t spans [t, j]
	type span struct{ lo, hi int }
	var loops []span
	for j := range k.code {
		if in := &k.code[j]; in.op == opBra && int(in.target) <= j {
			loops = append(loops, span{int(in.target), j})
		}
	}
	if len(loops) == 0 {
		return
	}
	writes := func(lo, hi int, a, b uint16) bool {
		for i := lo; i <= hi; i++ {
			for _, r := range regWrites(&k.code[i]) {
				if r != 0 && (r == a || r == b) {
					return true
				}
			}
		}
		return false
	}
	readers := make(map[uint16]uint64) // register: the slots reading it
	n := 0
	for p := range k.code {
		in := &k.code[p]
		if in.op < opSetpSBits || in.op > opSetpF64Bits || n == maxKept {
			continue
		}
		inner := span{-1, -1}
		for _, s := range loops {
			if s.lo <= p && p <= s.hi && (inner.lo < 0 || s.hi-s.lo < inner.hi-inner.lo) {
				inner = s
			}
		}
		if inner.lo < 0 || writes(inner.lo, inner.hi, in.a, in.b) {
			continue
		}
		in.target = int32(n + 1)
		readers[in.a] |= 1 << n
		readers[in.b] |= 1 << n
		n++
	}
	if n == 0 {
		return
	}
	k.nkept = n
	for i := range k.code {
		in := &k.code[i]
		var slots uint64
		for _, r := range regWrites(in) {
			if r != 0 {
				slots |= readers[r]
			}
		}
		if slots == 0 {
			continue
		}
		if k.kills == nil {
			k.kills = make([]kill, len(k.code))
		}
		k.kills[i] = kill{slots: slots, in: *in}
		in.op = opKill
	}
}

// regWrites lists the registers in may write, erring towards more: the
// destination of the operations known to write only it, the loaded
// registers of a load, nothing for a store, a branch or a barrier, and
// every register operand of any other instruction.
func regWrites(in *instr) []uint16 {
	switch {
	case in.op >= opMov && in.op <= opSelp, in.op == opCvt, in.op == opSatF32,
		in.op >= opSetpSBits && in.op <= opAdd32Imm, in.op == opUni:
		return []uint16{in.d}
	case in.op == opLd || in.op == opLdUni:
		return []uint16{in.d, in.e, in.regs[0], in.regs[1], in.regs[2], in.regs[3]}
	case in.op == opSt || in.op == opBra || in.op == opBar || in.op == opNop || in.op == opExit:
		return nil
	}
	return regFields(in)
}
