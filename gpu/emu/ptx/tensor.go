package ptx

import (
	"math"
	"strings"

	"github.com/kerf-edge/kerf/abi"
)

// Warp matrix instructions: wmma.load, wmma.store and wmma.mma on the
// m16n16k16 shape (m16n16k8 for tf32), mma.sync on m16n8k16 and
// m16n8k8, and ldmatrix. The
// warp's 32 lanes run each one together, as with shfl: the instruction
// gathers every lane's fragment registers into whole matrices, works on
// those, and scatters the result back.
//
// mma.sync and ldmatrix follow the fragment layouts the PTX ISA
// documents. The ISA leaves the layout of wmma fragments unspecified;
// here a wmma fragment holds the mma.m16n8k16 fragments of its two
// 16x8 halves, and the same fragment layout serves every memory
// layout, so element-wise code on fragments (scaling an accumulator,
// say) works. a and b fragments of f16 hold each element twice, as the
// ISA's eight registers for 256 elements imply.
//
// Products of f16, bf16 or tf32 inputs are exact; each result element is the
// float64 sum of its products and its accumulator, rounded once to the
// destination type (round to nearest even).

// tTF32 is tf32 in mmaOperands: an f32 whose low 13 mantissa bits the
// products ignore. It is no register type: PTX holds tf32 in .b32.
const tTF32 = vtype(7<<4 | 4)

// roundTF32 is cvt.rna.tf32.f32: f32 bits rounded to 10 mantissa bits,
// to nearest with ties away from zero; infinities kept, NaN made the
// canonical NaN.
func roundTF32(v uint32) uint32 {
	if v&0x7f800000 == 0x7f800000 {
		if v&0x7fffff != 0 {
			return 0x7fffffff
		}
		return v
	}
	// a carry out of the mantissa raises the exponent, and past the
	// largest finite value gives infinity, as rounding should
	return (v + 0x1000) &^ 0x1fff
}

// cvtTF32 decodes cvt.rna.tf32.f32 d, a.
func (x *instrDecoder) cvtTF32() error {
	o, in := &x.o, &x.in
	o.take("tf32")
	if t, ok := o.oneType(); !ok || t != tF32 || !o.take("rna") {
		return x.bad()
	}
	in.op = opCvtTF32
	return x.dstSrcs(tB32, 1)
}

// mmaOperands are a matrix instruction's register lists and shape.
type mmaOperands struct {
	d, a, b, c [8]uint16
	nd         uint8 // registers in d (and in a, b, c as their fragments need)
	na, nb, nc uint8
	k          uint8 // 16 or 8 (mma.sync); 16 (wmma)
	n          uint8 // 8 (mma.sync) or 16 (wmma)
	dt, at, ct vtype // element types of d, a and b, and c
	col        bool  // wmma.load and store: the matrix is column-major
	trans      bool  // ldmatrix .trans
}

// matrix instruction kinds, in instr.mod
const (
	mmLoadA uint8 = iota
	mmLoadB
	mmLoadC
	mmStoreD
	mmMma // wmma.mma or mma.sync
	mmLdmatrix
)

func (x *instrDecoder) addMmaOps(mo mmaOperands) {
	x.in.target = int32(len(x.k.mmaOps))
	x.k.mmaOps = append(x.k.mmaOps, mo)
}

// regList decodes a braced register list of n registers of type t into
// regs, as destinations or sources.
func (x *instrDecoder) regList(op rawOp, n int, t vtype, dst bool, regs *[8]uint16) error {
	if op.kind != roVec || len(op.list) != n {
		return x.errf("%s: expected a %d-register vector", x.opc, n)
	}
	for i, s := range op.list {
		var err error
		if dst {
			regs[i], err = x.dst(s)
		} else {
			regs[i], err = x.src(rawOp{s: s}, t)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// fragRegs is the number of registers of a fragment of elems elements
// of type t: 16-bit elements come two to a register.
func fragRegs(t vtype, elems int) int {
	if t.size() == 2 {
		return elems / 2
	}
	return elems
}

// regType is the register type of a fragment of element type t.
func regType(t vtype) vtype {
	if t == tF32 {
		return tF32
	}
	return tB32
}

// wmmaDecode decodes wmma.load.{a,b,c}, wmma.store.d and wmma.mma on
// the m16n16k16 shape.
func (x *instrDecoder) wmmaDecode() error {
	o, in, ops := &x.o, &x.in, x.ops
	mo := mmaOperands{k: 16, n: 16}
	// m16n16k8 is the shape of tf32 inputs (and of the c and d
	// that go with them)
	tf32 := o.take("tf32")
	if o.take("m16n16k8") {
		mo.k = 8
	} else if !o.take("m16n16k16") {
		return x.bad()
	}
	if !o.take("sync") || !o.take("aligned") || tf32 && mo.k != 8 {
		return x.bad()
	}
	in.op = opMma
	switch {
	case o.mods["load"] || o.mods["store"]:
		store := o.take("store")
		o.take("load")
		switch {
		case o.take("a"):
			in.mod = mmLoadA
		case o.take("b"):
			in.mod = mmLoadB
		case o.take("c"):
			in.mod = mmLoadC
		case o.take("d"):
			in.mod = mmStoreD
		default:
			return x.bad()
		}
		if store != (in.mod == mmStoreD) {
			return x.bad()
		}
		switch {
		case o.take("col"):
			mo.col = true
		case !o.take("row"):
			return x.bad()
		}
		in.space = o.takeSpace(spGlobal, spShared)
		t, ok := o.oneType()
		if tf32 && len(o.types) == 0 {
			t, ok = tTF32, true
		}
		if !ok || len(ops) != 3 {
			return x.bad()
		}
		elems := 8
		switch {
		case (in.mod == mmLoadA || in.mod == mmLoadB) && t == tTF32:
			elems = 4
		case (in.mod == mmLoadA || in.mod == mmLoadB) && t == tF16:
			elems = 16
		case (in.mod == mmLoadA || in.mod == mmLoadB) && t == tBF16:
		case (in.mod == mmLoadC || in.mod == mmStoreD) && (t == tF16 || t == tF32):
		default:
			return x.bad()
		}
		if (t == tTF32) != (mo.k == 8) && in.mod != mmLoadC && in.mod != mmStoreD {
			return x.bad()
		}
		mo.dt, mo.at = t, t
		mo.nd = uint8(fragRegs(t, elems))
		addrOp, regOp := ops[1], ops[0]
		if store {
			addrOp, regOp = ops[0], ops[1]
		}
		var err error
		if in.a, in.off, err = x.addr(addrOp); err != nil {
			return err
		}
		if err = x.regList(regOp, int(mo.nd), regType(t), !store, &mo.d); err != nil {
			return err
		}
		if in.b, err = x.src(ops[2], tU32); err != nil {
			return err
		}
	case o.take("mma"):
		// the layouts of a and b must be those they were loaded
		// with; fragments here do not depend on them
		if !wmmaLayouts(x.opc) {
			return x.bad()
		}
		o.take("row", "col")
		switch {
		case len(o.types) == 2 && tf32:
			mo.dt, mo.at, mo.ct = o.types[0], tTF32, o.types[1]
		case len(o.types) == 2:
			mo.dt, mo.at, mo.ct = o.types[0], tF16, o.types[1]
		case len(o.types) == 4 && o.types[1] == o.types[2]:
			mo.dt, mo.at, mo.ct = o.types[0], o.types[1], o.types[3]
		default:
			return x.bad()
		}
		if !mmaTypesOK(mo.dt, mo.at, mo.ct) || (mo.at == tTF32) != (mo.k == 8) {
			return x.bad()
		}
		abElems := 16
		switch mo.at {
		case tBF16:
			abElems = 8
		case tTF32:
			abElems = 4
		}
		mo.nd, mo.na, mo.nb, mo.nc = uint8(fragRegs(mo.dt, 8)), uint8(fragRegs(mo.at, abElems)), uint8(fragRegs(mo.at, abElems)), uint8(fragRegs(mo.ct, 8))
		in.mod = mmMma
		if err := x.mmaRegs(&mo); err != nil {
			return err
		}
	default:
		return x.bad()
	}
	x.addMmaOps(mo)
	return nil
}

// wmmaLayouts reports whether wmma.mma's opcode names two layouts, a's
// then b's (row.row names one modifier twice).
func wmmaLayouts(opc string) bool {
	n := 0
	for _, p := range strings.Split(opc, ".") {
		if p == "row" || p == "col" {
			n++
		}
	}
	return n == 2
}

// mmaRegs decodes the d, a, b and c lists of wmma.mma and mma.sync.
func (x *instrDecoder) mmaRegs(mo *mmaOperands) error {
	ops := x.ops
	if len(ops) != 4 {
		return x.errf("%s: expected d, a, b and c", x.opc)
	}
	if err := x.regList(ops[0], int(mo.nd), regType(mo.dt), true, &mo.d); err != nil {
		return err
	}
	if err := x.regList(ops[1], int(mo.na), tB32, false, &mo.a); err != nil {
		return err
	}
	if err := x.regList(ops[2], int(mo.nb), tB32, false, &mo.b); err != nil {
		return err
	}
	return x.regList(ops[3], int(mo.nc), regType(mo.ct), false, &mo.c)
}

// mmaTypesOK reports whether d, a and b, and c may have types dt, at
// and ct: f16 inputs with f16 or f32 accumulators, bf16 and tf32 with
// f32.
func mmaTypesOK(dt, at, ct vtype) bool {
	switch at {
	case tF16:
		return (dt == tF16 || dt == tF32) && (ct == tF16 || ct == tF32)
	case tBF16, tTF32:
		return dt == tF32 && ct == tF32
	}
	return false
}

// mmaSyncDecode decodes mma.sync.aligned.{m16n8k16,m16n8k8}.row.col
// with f16 or bf16 inputs.
func (x *instrDecoder) mmaSyncDecode() error {
	o, in := &x.o, &x.in
	if !o.take("sync") || !o.take("aligned") || !o.take("row") || !o.take("col") {
		return x.bad()
	}
	mo := mmaOperands{n: 8}
	switch {
	case o.take("m16n8k16"):
		mo.k = 16
	case o.take("m16n8k8"):
		mo.k = 8
	default:
		return x.bad()
	}
	switch {
	case len(o.types) == 2 && o.take("tf32") && mo.k == 8:
		mo.dt, mo.at, mo.ct = o.types[0], tTF32, o.types[1]
	case len(o.types) == 4 && o.types[1] == o.types[2]:
		mo.dt, mo.at, mo.ct = o.types[0], o.types[1], o.types[3]
	default:
		return x.bad()
	}
	if !mmaTypesOK(mo.dt, mo.at, mo.ct) {
		return x.bad()
	}
	mo.nd, mo.nc = uint8(fragRegs(mo.dt, 4)), uint8(fragRegs(mo.ct, 4))
	mo.na, mo.nb = uint8(mo.k/4), uint8(mo.k/8)
	if mo.at == tTF32 {
		mo.na, mo.nb = 4, 2
	}
	in.op, in.mod = opMma, mmMma
	if err := x.mmaRegs(&mo); err != nil {
		return err
	}
	x.addMmaOps(mo)
	return nil
}

// ldmatrixDecode decodes ldmatrix.sync.aligned.m8n8.{x1,x2,x4}{.trans}.shared.b16.
func (x *instrDecoder) ldmatrixDecode() error {
	o, in, ops := &x.o, &x.in, x.ops
	if !o.take("sync") || !o.take("aligned") || !o.take("m8n8") || len(ops) != 2 {
		return x.bad()
	}
	mo := mmaOperands{trans: o.take("trans")}
	switch {
	case o.take("x1"):
		mo.nd = 1
	case o.take("x2"):
		mo.nd = 2
	case o.take("x4"):
		mo.nd = 4
	default:
		return x.bad()
	}
	in.space = o.takeSpace(spShared)
	if t, ok := o.oneType(); !ok || t != tB16 {
		return x.bad()
	}
	in.op, in.mod = opMma, mmLdmatrix
	var err error
	if in.a, in.off, err = x.addr(ops[1]); err != nil {
		return err
	}
	if err = x.regList(ops[0], int(mo.nd), tB32, true, &mo.d); err != nil {
		return err
	}
	x.addMmaOps(mo)
	return nil
}

// The fragment layouts. g is the lane's group (lane/4), t its index in
// the group (lane%4).

// fragA is the (row, column) of element i of an a fragment (16 rows;
// i below 8, k 16, or below 4, k 8).
func fragA(lane, i int) (int, int) {
	g, t := lane>>2, lane&3
	return g + 8*((i>>1)&1), 2*t + (i & 1) + 8*(i>>2)
}

// fragB is the (row, column) of element i of a b fragment of 8 columns
// (i below 4, k 16, or below 2, k 8).
func fragB(lane, i int) (int, int) {
	g, t := lane>>2, lane&3
	return 2*t + (i & 1) + 8*(i>>1), g
}

// fragC is the (row, column) of element i (below 4) of a c or d
// fragment of 8 columns.
func fragC(lane, i int) (int, int) {
	g, t := lane>>2, lane&3
	return g + 8*(i>>1), 2*t + (i & 1)
}

// elem is the (row, column) of element i of fragment kind (mmLoadA,
// mmLoadB, or mmLoadC for c and d). A wmma fragment holds those of
// its two 16x8 halves, the second half's after the first's (b, c); a
// has one half, which an f16 fragment holds twice. tf32 fragments
// have one element per register: a's at (g, t), (g+8, t), (g, t+4)
// and (g+8, t+4), b's at (t, g) and (t+4, g).
func (mo *mmaOperands) elem(kind uint8, lane, i int) (int, int) {
	wmma := mo.n == 16
	if mo.at == tTF32 && kind != mmLoadC {
		g, t := lane>>2, lane&3
		if kind == mmLoadA {
			return g + 8*(i&1), t + 4*((i>>1)&1)
		}
		return t + 4*(i&1), g + 8*((i>>1)&1)
	}
	switch {
	case kind == mmLoadA:
		return fragA(lane, i&7)
	case kind == mmLoadB && wmma:
		r, c := fragB(lane, i&3)
		return r, c + 8*((i>>2)&1)
	case kind == mmLoadB:
		return fragB(lane, i)
	default:
		r, c := fragC(lane, i&3)
		return r, c + 8*(i>>2)
	}
}

// fragElems is the number of elements in n registers of type t.
func fragElems(t vtype, n uint8) int {
	if t.size() == 2 {
		return 2 * int(n)
	}
	return int(n)
}

// fragGet reads element i of a fragment of type t held in regs.
func fragGet(r [][32]uint64, regs *[8]uint16, t vtype, lane, i int) float64 {
	switch t {
	case tF32:
		return float64(f32(r[regs[i]][lane]))
	case tTF32:
		return float64(f32(r[regs[i]][lane] &^ 0x1fff))
	case tBF16:
		return fmtBF16.decode(uint16(r[regs[i>>1]][lane] >> (16 * (i & 1))))
	default:
		return fmtF16.decode(uint16(r[regs[i>>1]][lane] >> (16 * (i & 1))))
	}
}

// fragBits is element i of a fragment as stored, and its size.
func fragBits(r [][32]uint64, regs *[8]uint16, t vtype, lane, i int) uint64 {
	if t.size() == 2 {
		return uint64(uint16(r[regs[i>>1]][lane] >> (16 * (i & 1))))
	}
	return uint64(uint32(r[regs[i]][lane]))
}

// fragSet writes the raw bits v into element i of a fragment of type t.
func fragSet(r [][32]uint64, regs *[8]uint16, t vtype, lane, i int, v uint64) {
	if t.size() == 2 {
		p := &r[regs[i>>1]][lane]
		sh := 16 * (i & 1)
		*p = uint64(uint32(*p)&^(0xffff<<sh) | uint32(v&0xffff)<<sh)
		return
	}
	r[regs[i]][lane] = uint64(uint32(v))
}

// roundTo rounds v to type t and returns its bits.
func roundTo(v float64, t vtype) uint64 {
	switch t {
	case tF32:
		return uint64(math.Float32bits(float32(v)))
	case tBF16:
		return uint64(fmtBF16.encode(v, rndRn))
	default:
		return uint64(fmtF16.encode(v, rndRn))
	}
}

// mma runs a warp matrix instruction. Every lane of the warp must take
// part: the fragments are spread over all 32.
func (w *worker) mma(wp *warp, in *instr, mask uint32) error {
	if mask != ^uint32(0) {
		return w.fault(in, abi.ErrIllegalInstruction, "warp matrix instruction run by lanes %#x, not the whole warp", mask)
	}
	mo := &w.k.mmaOps[in.target]
	switch in.mod {
	case mmLdmatrix:
		return w.ldmatrix(wp, in, mo)
	case mmMma:
		w.mmaCompute(wp, mo)
		return nil
	}
	return w.wmmaMem(wp, in, mo)
}

// wmmaMem runs wmma.load and wmma.store: element (row, col) of the
// matrix lies at row*stride+col (row-major) or col*stride+row elements
// from each lane's address.
func (w *worker) wmmaMem(wp *warp, in *instr, mo *mmaOperands) error {
	r := wp.r
	size := uint64(mo.dt.size())
	elems := fragElems(mo.dt, mo.nd)
	for lane := range 32 {
		base := r[in.a][lane] + uint64(in.off)
		stride := uint64(uint32(r[in.b][lane]))
		for i := range elems {
			row, col := mo.elem(in.mod, lane, i)
			idx := uint64(row)*stride + uint64(col)
			if mo.col {
				idx = uint64(col)*stride + uint64(row)
			}
			b, err := w.access(in, in.space, base+idx*size, size, wp.idx*32+lane)
			if err != nil {
				return err
			}
			if in.mod == mmStoreD {
				putN(b, int(size), fragBits(r, &mo.d, mo.dt, lane, i))
			} else {
				fragSet(r, &mo.d, mo.dt, lane, i, getN(b, int(size)))
			}
		}
	}
	return nil
}

// mmaCompute runs wmma.mma and mma.sync: d = a*b + c.
func (w *worker) mmaCompute(wp *warp, mo *mmaOperands) {
	r := wp.r
	var a, b, c [16][16]float64
	for lane := range 32 {
		for i := range fragElems(mo.at, mo.na) {
			row, col := mo.elem(mmLoadA, lane, i)
			a[row][col] = fragGet(r, &mo.a, mo.at, lane, i)
		}
		for i := range fragElems(mo.at, mo.nb) {
			row, col := mo.elem(mmLoadB, lane, i)
			b[row][col] = fragGet(r, &mo.b, mo.at, lane, i)
		}
		for i := range fragElems(mo.ct, mo.nc) {
			row, col := mo.elem(mmLoadC, lane, i)
			c[row][col] = fragGet(r, &mo.c, mo.ct, lane, i)
		}
	}
	var d [16][16]uint64
	for row := range 16 {
		for col := range int(mo.n) {
			s := c[row][col]
			for k := range int(mo.k) {
				s += a[row][k] * b[k][col]
			}
			d[row][col] = roundTo(s, mo.dt)
		}
	}
	for lane := range 32 {
		for i := range fragElems(mo.dt, mo.nd) {
			row, col := mo.elem(mmLoadC, lane, i)
			fragSet(r, &mo.d, mo.dt, lane, i, d[row][col])
		}
	}
}

// ldmatrix loads one, two or four 8x8 matrices of 16-bit elements:
// lanes 8j to 8j+7 give the addresses of matrix j's rows, and lane l
// receives in register j the elements (l/4, 2(l%4)) and (l/4,
// 2(l%4)+1) of matrix j, or of its transpose.
func (w *worker) ldmatrix(wp *warp, in *instr, mo *mmaOperands) error {
	r := wp.r
	var m [4][8][8]uint16
	for j := range int(mo.nd) {
		for row := range 8 {
			lane := 8*j + row
			b, err := w.access(in, in.space, r[in.a][lane]+uint64(in.off), 16, wp.idx*32+lane)
			if err != nil {
				return err
			}
			for col := range 8 {
				m[j][row][col] = uint16(getN(b[2*col:], 2))
			}
		}
	}
	for j := range int(mo.nd) {
		for lane := range 32 {
			g, t := lane>>2, lane&3
			lo, hi := m[j][g][2*t], m[j][g][2*t+1]
			if mo.trans {
				lo, hi = m[j][2*t][g], m[j][2*t+1][g]
			}
			r[mo.d[j]][lane] = uint64(lo) | uint64(hi)<<16
		}
	}
	return nil
}
