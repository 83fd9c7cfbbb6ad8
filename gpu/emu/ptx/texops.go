package ptx

import (
	"math"
	"math/bits"

	"github.com/kerf-edge/kerf/abi"
)

// Texture and surface instructions: tex, tld4, suld.b, sust.b, txq and
// suq, through texture and surface objects (a 64-bit handle in a
// register) that Launch.Textures resolves.

// texOperands are a texture or surface instruction's register lists.
type texOperands struct {
	coords  [4]uint16
	vals    [4]uint16 // results (tex, tld4, suld) or sources (sust)
	ncoords uint8
	nvals   uint8
	lodMode uint8        // lodNone, lodLevel or lodGrad
	lod     uint16       // tex.level's level of detail
	grad    [2][4]uint16 // tex.grad's dPdx and dPdy, one register per dimension
}

// how tex picks a mipmap level, in texOperands.lodMode
const (
	lodNone  uint8 = iota // level 0
	lodLevel              // tex.level: the level of detail is an operand
	lodGrad               // tex.grad: it follows from the gradients
)

// surface out-of-range modes, in instr.space
const (
	surfTrap uint8 = iota
	surfClamp
	surfZero
)

// txq and suq queries, in instr.mod
const (
	qWidth uint8 = iota
	qHeight
	qDepth
	qArraySize
	qNormalized
	qFilter
)

var queryNames = map[string]uint8{"width": qWidth, "height": qHeight, "depth": qDepth,
	"array_size": qArraySize, "normalized_coords": qNormalized, "filter_mode": qFilter}

// takeGeom removes the geometry modifier.
func (o *opcodeParts) takeGeom() (uint8, bool) {
	for n, g := range geomNames {
		if o.take(n) {
			return g, true
		}
	}
	return 0, false
}

// texAccess decodes [handle, {coordinates}] into in.a and to.coords.
func (x *instrDecoder) texAccess(op rawOp, geom uint8, ct vtype, to *texOperands) error {
	if op.kind != roAddr || op.off != 0 || len(op.list) != geomCoords[geom] {
		return x.errf("%s: expected [handle, coordinates] with %d coordinates", x.opc, geomCoords[geom])
	}
	h, ok := x.lookupReg(op.s)
	if !ok {
		return x.errf("%s: the texture or surface must be an object handle in a register", x.opc)
	}
	x.in.a = h
	for i, n := range op.list {
		t := ct
		if i == 0 && layered(geom) {
			t = tU32
		}
		r, err := x.src(rawOp{s: n}, t)
		if err != nil {
			return err
		}
		to.coords[i] = r
	}
	to.ncoords = uint8(len(op.list))
	return nil
}

func (x *instrDecoder) addTexOps(to texOperands) {
	x.in.off = int64(len(x.k.texOps))
	x.k.texOps = append(x.k.texOps, to)
}

// texDecode decodes tex.geom.v4.dtype.ctype d, [h, c] and
// tld4.comp.2d.v4.dtype.f32 d, [h, c].
func (x *instrDecoder) texDecode() error {
	o, in, ops := &x.o, &x.in, x.ops
	in.op = opTex
	if o.base == "tld4" {
		in.op = opTld4
		comp := -1
		for i, c := range []string{"r", "g", "b", "a"} {
			if o.take(c) {
				comp = i
			}
		}
		if comp < 0 {
			return x.bad()
		}
		in.e = uint16(comp)
	}
	o.take("base")
	var to texOperands
	nops := 2
	switch {
	case o.take("level"):
		to.lodMode, nops = lodLevel, 3
	case o.take("grad"):
		to.lodMode, nops = lodGrad, 4
	}
	geom, ok := o.takeGeom()
	if !ok || !o.take("v4") || len(o.types) != 2 || len(ops) != nops {
		return x.bad()
	}
	dt, ct := o.types[0], o.types[1]
	if dt != tF32 && dt != tS32 && dt != tU32 || ct != tF32 && ct != tS32 {
		return x.bad()
	}
	if in.op == opTld4 && (geom != geom2D || ct != tF32 || to.lodMode != lodNone) {
		return x.bad()
	}
	if (geom == geomCube || geom == geomACube || to.lodMode != lodNone) && ct != tF32 {
		return x.bad()
	}
	if err := x.texLod(geom, &to); err != nil {
		return err
	}
	in.mod, in.typ, in.styp = geom, dt, ct
	if ops[0].kind != roVec || len(ops[0].list) != 4 {
		return x.errf("%s: expected a 4-element destination", x.opc)
	}
	for i, n := range ops[0].list {
		r, err := x.dst(n)
		if err != nil {
			return err
		}
		to.vals[i] = r
	}
	to.nvals = 4
	if err := x.texAccess(ops[1], geom, ct, &to); err != nil {
		return err
	}
	x.addTexOps(to)
	return nil
}

// texLod decodes tex.level's level of detail or tex.grad's gradients,
// a vector of one f32 per dimension each (four for 3D).
func (x *instrDecoder) texLod(geom uint8, to *texOperands) error {
	switch to.lodMode {
	case lodLevel:
		r, err := x.src(x.ops[2], tF32)
		to.lod = r
		return err
	case lodGrad:
		if geom == geomCube || geom == geomACube {
			return x.errf("%s: gradients on cube maps are not supported", x.opc)
		}
		n := geomDims[geom]
		if geom == geom3D {
			n = 4
		}
		for i, op := range x.ops[2:4] {
			list := op.list
			if op.kind == roValue {
				list = []string{op.s}
			} else if op.kind != roVec {
				list = nil
			}
			if len(list) != n {
				return x.errf("%s: expected %d-element gradients", x.opc, n)
			}
			for d, name := range list {
				r, err := x.src(rawOp{s: name}, tF32)
				if err != nil {
					return err
				}
				to.grad[i][d] = r
			}
		}
	}
	return nil
}

// surfDecode decodes suld.b.geom{.v2,.v4}.btype{.mode} d, [h, c] and
// sust.b likewise with the operands swapped.
func (x *instrDecoder) surfDecode() error {
	o, in, ops := &x.o, &x.in, x.ops
	if !o.take("b") || len(ops) != 2 {
		return x.bad()
	}
	o.take("ca", "cg", "cs", "cv", "wb", "wt")
	geom, ok := o.takeGeom()
	if !ok || geom == geomCube || geom == geomACube {
		return x.bad()
	}
	in.vec = 1
	if o.take("v2") {
		in.vec = 2
	} else if o.take("v4") {
		in.vec = 4
	}
	switch {
	case o.take("clamp"):
		in.space = surfClamp
	case o.take("zero"):
		in.space = surfZero
	default:
		o.take("trap")
		in.space = surfTrap
	}
	t, ok := o.oneType()
	if !ok || t.kind() != kindB {
		return x.bad()
	}
	in.op, in.mod, in.typ = opSuld, geom, t
	valOp, addrOp := ops[0], ops[1]
	if o.base == "sust" {
		in.op = opSust
		valOp, addrOp = ops[1], ops[0]
	}
	names := valOp.list
	if valOp.kind == roValue && in.vec == 1 {
		names = []string{valOp.s}
	} else if valOp.kind != roVec || len(names) != int(in.vec) {
		return x.errf("%s: expected %d values", x.opc, in.vec)
	}
	var to texOperands
	for i, n := range names {
		var r uint16
		var err error
		if in.op == opSuld {
			r, err = x.dst(n)
		} else {
			r, err = x.src(rawOp{s: n}, t)
		}
		if err != nil {
			return err
		}
		to.vals[i] = r
	}
	to.nvals = in.vec
	if err := x.texAccess(addrOp, geom, tS32, &to); err != nil {
		return err
	}
	x.addTexOps(to)
	return nil
}

// queryDecode decodes txq.query.b32 d, [h] and suq.query.b32 d, [h].
func (x *instrDecoder) queryDecode() error {
	o, in, ops := &x.o, &x.in, x.ops
	in.op = opTxq
	if o.base == "suq" {
		in.space = 1
	}
	found := false
	for n, q := range queryNames {
		if o.take(n) {
			in.mod, found = q, true
		}
	}
	if t, ok := o.oneType(); !found || !ok || t != tB32 || len(ops) != 2 {
		return x.bad()
	}
	if in.space == 1 && in.mod > qArraySize {
		return x.bad()
	}
	var err error
	if in.d, err = x.dst(ops[0].s); err != nil {
		return err
	}
	h, ok := x.lookupReg(ops[1].s)
	if ops[1].kind != roAddr || ops[1].off != 0 || len(ops[1].list) != 0 || !ok {
		return x.errf("%s: expected [handle]", x.opc)
	}
	in.a = h
	return nil
}

// texture resolves a texture handle, checking that the instruction's
// geometry can read it.
func (w *worker) texture(in *instr, h uint64) (*Texture, error) {
	if w.lastTex == nil || w.lastTexH != h {
		var t *Texture
		ok := w.l.Textures != nil
		if ok {
			t, ok = w.l.Textures.Texture(h)
		}
		if !ok || !t.valid() {
			return nil, w.fault(in, abi.ErrIllegalAddress, "0x%x is not a texture object of this context", h)
		}
		w.lastTex, w.lastTexH = t, h
	}
	if in.op != opTxq && !w.lastTex.shapeMatches(in.mod) {
		return nil, w.fault(in, abi.ErrIllegalInstruction, "texture object 0x%x has another shape", h)
	}
	return w.lastTex, nil
}

// surface resolves a surface handle as texture does.
func (w *worker) surface(in *instr, h uint64) (*Surface, error) {
	if w.lastSurf == nil || w.lastSurfH != h {
		var s *Surface
		ok := w.l.Textures != nil
		if ok {
			s, ok = w.l.Textures.Surface(h)
		}
		if !ok || !s.valid() {
			return nil, w.fault(in, abi.ErrIllegalAddress, "0x%x is not a surface object of this context", h)
		}
		w.lastSurf, w.lastSurfH = s, h
	}
	if in.op != opTxq && !w.lastSurf.shapeMatches(in.mod) {
		return nil, w.fault(in, abi.ErrIllegalInstruction, "surface object 0x%x has another shape", h)
	}
	return w.lastSurf, nil
}

// tex runs tex and tld4 for the lanes in mask.
func (w *worker) tex(wp *warp, in *instr, mask uint32) error {
	r, to := wp.r, &w.k.texOps[in.off]
	asFloat := in.typ == tF32
	for m := mask; m != 0; m &= m - 1 {
		l := bits.TrailingZeros32(m)
		t, err := w.texture(in, r[in.a][l])
		if err != nil {
			return err
		}
		if asFloat != t.readsFloat() {
			return w.fault(in, abi.ErrIllegalInstruction, "texture reads %s, the instruction asks for %s", readKind(t.readsFloat()), readKind(asFloat))
		}
		if !asFloat && t.Filter == FilterLinear && in.styp == tF32 {
			return w.fault(in, abi.ErrIllegalInstruction, "linear filtering of a texture read as integers")
		}
		c := to.coords[:to.ncoords]
		var layer uint32
		switch in.mod {
		case geomA1D, geomA2D:
			layer, c = t.layerIndex(uint32(r[c[0]][l])), c[1:]
		case geomACube:
			layer, c = min(uint32(r[c[0]][l]), t.Layers/6-1), c[1:]
		}
		n := geomDims[in.mod]
		var res [4]uint32
		switch {
		case in.styp == tS32:
			res = t.fetch(r, c[:n], l, layer, asFloat)
		case in.op == opTld4:
			res = t.gather([3]float32{f32(r[c[0]][l]), f32(r[c[1]][l])}, int(in.e), layer, asFloat)
		default:
			var xyz [3]float32
			for d := range min(len(c), 3) {
				xyz[d] = f32(r[c[d]][l])
			}
			st := t
			if in.mod == geomCube || in.mod == geomACube {
				var face uint32
				xyz, face = cubeFace(xyz)
				st, layer = t.faces(), 6*layer+face
			}
			lod := float32(0)
			switch to.lodMode {
			case lodLevel:
				lod = f32(r[to.lod][l])
			case lodGrad:
				var g [2][3]float32
				for i := range g {
					for d := range n {
						g[i][d] = f32(r[to.grad[i][d]][l])
					}
				}
				lod = t.gradLod(g, n)
			}
			res = st.sampleLod(xyz, n, layer, lod, asFloat)
		}
		for k := 0; k < 4; k++ {
			r[to.vals[k]][l] = uint64(res[k])
		}
	}
	return nil
}

func readKind(float bool) string {
	if float {
		return "floats"
	}
	return "integers"
}

// fetch reads the texel at integer coordinates, unfiltered and
// unnormalised, as tex1Dfetch does.
func (t *Texture) fetch(r [][32]uint64, c []uint16, l int, layer uint32, asFloat bool) [4]uint32 {
	var fp footprint
	fp.n = len(c)
	for d, reg := range c {
		fp.idx[d][0], fp.border[d][0] = texIndex(int64(int32(r[reg][l])), t.size(d), t.Address[d], false)
	}
	off, b := t.corner(&fp, 0, layer)
	if !asFloat {
		return t.texelInts(off, b)
	}
	var res [4]uint32
	for k, v := range t.texelFloats(off, b) {
		res[k] = math.Float32bits(v)
	}
	return res
}

// surf runs suld and sust for the lanes in mask.
func (w *worker) surf(wp *warp, in *instr, mask uint32) error {
	r, to := wp.r, &w.k.texOps[in.off]
	esz := uint64(in.typ.size())
	n := esz * uint64(in.vec)
	for m := mask; m != 0; m &= m - 1 {
		l := bits.TrailingZeros32(m)
		s, err := w.surface(in, r[in.a][l])
		if err != nil {
			return err
		}
		off, ok, err := w.surfOffset(in, &s.Image, to, r, l, n)
		if err != nil {
			return err
		}
		for k := 0; k < int(in.vec); k++ {
			p := off + uint64(k)*esz
			if in.op == opSust {
				if ok {
					putLE(s.Data[p:p+esz], r[to.vals[k]][l])
				}
				continue
			}
			var v uint64
			if ok {
				v = getLE(s.Data[p : p+esz])
			}
			r[to.vals[k]][l] = v
		}
	}
	return nil
}

// surfOffset is where lane l's surface access of n bytes starts; ok is
// false when a .zero access falls outside.
func (w *worker) surfOffset(in *instr, im *Image, to *texOperands, r [][32]uint64, l int, n uint64) (uint64, bool, error) {
	c := to.coords[:to.ncoords]
	var z int64
	if in.mod == geomA1D || in.mod == geomA2D {
		z, c = int64(uint32(r[c[0]][l])), c[1:]
	}
	var xyz [3]int64
	for d := 0; d < geomDims[in.mod]; d++ {
		xyz[d] = int64(int32(r[c[d]][l]))
	}
	if in.mod == geom3D {
		z = xyz[2]
	}
	x, y := xyz[0], xyz[1]
	if x%int64(n) != 0 {
		return 0, false, w.fault(in, abi.ErrMisalignedAddress, "surface access of %d bytes at x=%d", n, x)
	}
	row := int64(im.Width) * int64(im.texelSize())
	lim := [3]int64{row - int64(n), int64(im.Height) - 1, int64(im.slices()) - 1}
	v := [3]*int64{&x, &y, &z}
	for d, p := range v {
		if *p >= 0 && *p <= lim[d] {
			continue
		}
		switch in.space {
		case surfZero:
			return 0, false, nil
		case surfClamp:
			*p = min(max(*p, 0), lim[d])
		default:
			return 0, false, w.fault(in, abi.ErrIllegalAddress, "surface access outside the surface at (%d, %d, %d)", xyz[0], xyz[1], z)
		}
	}
	if lim[0] < 0 {
		return 0, false, w.fault(in, abi.ErrIllegalAddress, "surface access of %d bytes wider than a row", n)
	}
	return uint64(z)*im.SlicePitch + uint64(y)*im.Pitch + uint64(x), true, nil
}

func putLE(b []byte, v uint64) {
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
}

func getLE(b []byte) uint64 {
	var v uint64
	for i := range b {
		v |= uint64(b[i]) << (8 * i)
	}
	return v
}

// txq answers txq and suq for the lanes in mask.
func (w *worker) txq(wp *warp, in *instr, mask uint32) error {
	r := wp.r
	for m := mask; m != 0; m &= m - 1 {
		l := bits.TrailingZeros32(m)
		var im *Image
		var tex *Texture
		if in.space == 1 {
			s, err := w.surface(in, r[in.a][l])
			if err != nil {
				return err
			}
			im = &s.Image
		} else {
			t, err := w.texture(in, r[in.a][l])
			if err != nil {
				return err
			}
			im, tex = &t.Image, t
		}
		var v uint32
		switch in.mod {
		case qWidth:
			v = im.Width
		case qHeight:
			v = im.Height
		case qDepth:
			v = im.Depth
		case qArraySize:
			v = im.Layers
		case qNormalized:
			v = uint32(b2i(tex.NormalizedCoords))
		case qFilter:
			v = uint32(tex.Filter)
		}
		r[in.d][l] = uint64(v)
	}
	return nil
}
