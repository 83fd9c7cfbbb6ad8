package ptx

import (
	"encoding/binary"
	"math/bits"

	"github.com/kerf-edge/kerf/abi"
)

var spaceNames = [...]string{spGeneric: "generic", spGlobal: "global", spShared: "shared",
	spLocal: "local", spParam: "param", spConst: "const"}

// span is a cached allocation of global memory.
type span struct {
	base uint64
	data []byte
}

// global returns the n bytes at global address addr. The worker keeps
// the last few spans it used, most recent first.
func (w *worker) global(addr, n uint64) ([]byte, bool) {
	for i := range w.spans {
		s := &w.spans[i]
		if off := addr - s.base; off < uint64(len(s.data)) && uint64(len(s.data))-off >= n {
			if i > 0 {
				w.spans[0], w.spans[i] = w.spans[i], w.spans[0]
				s = &w.spans[0]
			}
			return s.data[off : off+n], true
		}
	}
	base, data, ok := w.l.Memory.Span(addr)
	if !ok || addr < base {
		return nil, false
	}
	off := addr - base
	if off >= uint64(len(data)) || uint64(len(data))-off < n {
		return nil, false
	}
	copy(w.spans[1:], w.spans[:len(w.spans)-1])
	w.spans[0] = span{base, data}
	return data[off : off+n], true
}

// ldst32 is the fast path of 32-bit scalar global loads and stores:
// each lane first tries the most recent span.
func (w *worker) ldst32(wp *warp, in *instr, mask uint32, store bool) error {
	r := wp.r
	base, reg := &r[in.a], &r[in.regs[0]]
	off := uint64(in.off)
	signed := in.typ == tS32
	for m := mask; m != 0; m &= m - 1 {
		l := bits.TrailingZeros32(m)
		addr := base[l] + off
		s := &w.spans[0]
		o := addr - s.base
		var b []byte
		if o < uint64(len(s.data)) && uint64(len(s.data))-o >= 4 && addr&3 == 0 {
			b = s.data[o : o+4]
		} else {
			var err error
			if b, err = w.access(in, in.space, addr, 4, 0); err != nil {
				return err
			}
		}
		if store {
			binary.LittleEndian.PutUint32(b, uint32(reg[l]))
		} else if v := binary.LittleEndian.Uint32(b); signed {
			reg[l] = uint64(int64(int32(v)))
		} else {
			reg[l] = uint64(v)
		}
	}
	return nil
}

// access resolves n bytes at addr in space for thread t of the block.
func (w *worker) access(in *instr, space uint8, addr, n uint64, t int) ([]byte, error) {
	if addr&(n-1) != 0 && n&(n-1) == 0 {
		return nil, w.fault(in, abi.ErrMisalignedAddress, "misaligned %s access of %d bytes at 0x%x", spaceNames[space], n, addr)
	}
	sp := space
	if sp == spGeneric {
		switch {
		case addr-sharedWindow < windowSize:
			sp, addr = spShared, addr-sharedWindow
		case addr-localWindow < windowSize:
			sp, addr = spLocal, addr-localWindow
		default:
			sp = spGlobal
		}
	}
	var mem []byte
	switch sp {
	case spGlobal, spConst:
		if b, ok := w.global(addr, n); ok {
			return b, nil
		}
		return nil, w.fault(in, abi.ErrIllegalAddress, "illegal %s access of %d bytes at 0x%x", spaceNames[space], n, addr)
	case spShared:
		mem = w.shared
	case spLocal:
		ls := int(w.k.LocalSize)
		mem = w.local[t*ls : (t+1)*ls]
	case spParam:
		mem = w.l.Params
	}
	if addr >= uint64(len(mem)) || uint64(len(mem))-addr < n {
		return nil, w.fault(in, abi.ErrIllegalAddress, "illegal %s access of %d bytes at 0x%x", spaceNames[space], n, addr)
	}
	return mem[addr : addr+n], nil
}

func getN(b []byte, size int) uint64 {
	switch size {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.LittleEndian.Uint16(b))
	case 4:
		return uint64(binary.LittleEndian.Uint32(b))
	}
	return binary.LittleEndian.Uint64(b)
}

func putN(b []byte, size int, v uint64) {
	switch size {
	case 1:
		b[0] = byte(v)
	case 2:
		binary.LittleEndian.PutUint16(b, uint16(v))
	case 4:
		binary.LittleEndian.PutUint32(b, uint32(v))
	default:
		binary.LittleEndian.PutUint64(b, v)
	}
}

// ld executes a load for the lanes in mask.
func (w *worker) ld(wp *warp, in *instr, mask uint32) error {
	if in.flags&fSync != 0 {
		return w.ldstSync(wp, in, mask, false)
	}
	r := wp.r
	base := &r[in.a]
	size := in.typ.size()
	if in.vec == 1 && size == 4 && in.space == spShared {
		// fast path: 32-bit shared loads dominate tiled kernels
		sh := w.shared
		dst := &r[in.regs[0]]
		if mask == fullMask && len(sh) >= 4 {
			lim, off := uint64(len(sh))-4, uint64(in.off)
			for l := range dst {
				addr := base[l] + off
				if addr > lim || addr&3 != 0 {
					_, err := w.access(in, in.space, addr, 4, wp.idx*32+l)
					return err
				}
				dst[l] = uint64(binary.LittleEndian.Uint32(sh[addr : addr+4]))
			}
			return nil
		}
		for m := mask; m != 0; m &= m - 1 {
			l := bits.TrailingZeros32(m)
			addr := base[l] + uint64(in.off)
			if addr >= uint64(len(sh)) || uint64(len(sh))-addr < 4 || addr&3 != 0 {
				_, err := w.access(in, in.space, addr, 4, wp.idx*32+l)
				return err
			}
			dst[l] = uint64(binary.LittleEndian.Uint32(sh[addr:]))
		}
		return nil
	}
	if in.vec == 1 && size == 4 && in.space == spGlobal {
		return w.ldst32(wp, in, mask, false)
	}
	if in.flags&fUniform != 0 && in.space == spParam {
		// kernel parameters: one read for the whole warp
		l := bits.TrailingZeros32(mask)
		b, err := w.access(in, in.space, base[l]+uint64(in.off), uint64(size)*uint64(in.vec), wp.idx*32+l)
		if err != nil {
			return err
		}
		for i := 0; i < int(in.vec); i++ {
			v := in.typ.extend(getN(b[i*size:], size))
			dst := &r[in.regs[i]]
			for m := mask; m != 0; m &= m - 1 {
				dst[bits.TrailingZeros32(m)] = v
			}
		}
		return nil
	}
	n := uint64(size) * uint64(in.vec)
	for m := mask; m != 0; m &= m - 1 {
		l := bits.TrailingZeros32(m)
		b, err := w.access(in, in.space, base[l]+uint64(in.off), n, wp.idx*32+l)
		if err != nil {
			return err
		}
		for i := 0; i < int(in.vec); i++ {
			r[in.regs[i]][l] = in.typ.extend(getN(b[i*size:], size))
		}
	}
	return nil
}

// st executes a store for the lanes in mask, in lane order.
func (w *worker) st(wp *warp, in *instr, mask uint32) error {
	if in.flags&fSync != 0 {
		return w.ldstSync(wp, in, mask, true)
	}
	r := wp.r
	base := &r[in.a]
	size := in.typ.size()
	if in.vec == 1 && size == 4 && in.space == spGlobal {
		return w.ldst32(wp, in, mask, true)
	}
	if in.vec == 1 && size == 4 && in.space == spShared {
		// fast path: 32-bit shared stores fill tiles and reduction trees
		sh, src := w.shared, &r[in.regs[0]]
		for m := mask; m != 0; m &= m - 1 {
			l := bits.TrailingZeros32(m)
			addr := base[l] + uint64(in.off)
			if addr >= uint64(len(sh)) || uint64(len(sh))-addr < 4 || addr&3 != 0 {
				_, err := w.access(in, in.space, addr, 4, wp.idx*32+l)
				return err
			}
			binary.LittleEndian.PutUint32(sh[addr:], uint32(src[l]))
		}
		return nil
	}
	n := uint64(size) * uint64(in.vec)
	for m := mask; m != 0; m &= m - 1 {
		l := bits.TrailingZeros32(m)
		b, err := w.access(in, in.space, base[l]+uint64(in.off), n, wp.idx*32+l)
		if err != nil {
			return err
		}
		for i := 0; i < int(in.vec); i++ {
			putN(b[i*size:], size, r[in.regs[i]][l])
		}
	}
	return nil
}

// halfAdd is a + b in half format f, rounded once to nearest even,
// subnormals kept (atom.add.noftz).
func halfAdd(f halfFormat, a, b uint16) uint16 {
	return f.encode(f.decode(a)+f.decode(b), rndRn)
}

// atomNew computes the value an atomic operation stores.
func atomNew(op uint8, t vtype, old, v, c uint64) uint64 {
	size := t.size()
	switch op {
	case atAdd:
		switch t {
		case tF32:
			return b32(f32(old) + f32(v))
		case tF64:
			return b64(f64(old) + f64(v))
		case tF16, tBF16:
			return uint64(halfAdd(t.halfFormat(), uint16(old), uint16(v)))
		case tF16x2, tBF16x2:
			f := t.halfFormat()
			return uint64(halfAdd(f, uint16(old), uint16(v))) | uint64(halfAdd(f, uint16(old>>16), uint16(v>>16)))<<16
		}
		return old + v
	case atMin, atMax:
		var less bool
		if t.signed() {
			less = signExt(v, size) < signExt(old, size)
		} else {
			less = truncate(v, size) < truncate(old, size)
		}
		if less == (op == atMin) && truncate(v, size) != truncate(old, size) {
			return v
		}
		return old
	case atAnd:
		return old & v
	case atOr:
		return old | v
	case atXor:
		return old ^ v
	case atExch:
		return v
	case atCas:
		if truncate(old, size) == truncate(v, size) {
			return c
		}
		return old
	case atInc:
		if uint32(old) >= uint32(v) {
			return 0
		}
		return old + 1
	case atDec:
		if uint32(old) == 0 || uint32(old) > uint32(v) {
			return v
		}
		return old - 1
	}
	return old
}

// atom executes atom or red for the lanes in mask, one lane at a time.
// Global memory is updated with compare-and-swap so that concurrently
// running blocks are correct; shared memory belongs to one goroutine.
func (w *worker) atom(wp *warp, in *instr, mask uint32) error {
	r := wp.r
	base, b, c := &r[in.a], &r[in.b], &r[in.c]
	size := in.typ.size()
	for m := mask; m != 0; m &= m - 1 {
		l := bits.TrailingZeros32(m)
		addr := base[l] + uint64(in.off)
		mem, err := w.access(in, in.space, addr, uint64(size), wp.idx*32+l)
		if err != nil {
			return err
		}
		var old uint64
		shared := in.space == spShared || (in.space == spGeneric && addr-sharedWindow < windowSize)
		if shared {
			old = getN(mem, size)
			putN(mem, size, atomNew(in.mod, in.typ, old, b[l], c[l]))
		} else {
			old = atomicUpdate(mem, in.mod, in.typ, b[l], c[l])
		}
		if in.d != 0 {
			r[in.d][l] = in.typ.extend(old)
		}
	}
	return nil
}

// ldstSync runs a volatile, relaxed, acquire or release load or store of
// 4 or 8 bytes as one atomic access per lane, so that blocks running at
// once (a cooperative launch, a spin on a flag) see each other's writes.
func (w *worker) ldstSync(wp *warp, in *instr, mask uint32, store bool) error {
	r := wp.r
	n := uint64(in.typ.size())
	reg := &r[in.regs[0]]
	for m := mask; m != 0; m &= m - 1 {
		l := bits.TrailingZeros32(m)
		b, err := w.access(in, in.space, r[in.a][l]+uint64(in.off), n, wp.idx*32+l)
		if err != nil {
			return err
		}
		if store {
			atomicStore(b, reg[l])
		} else {
			reg[l] = in.typ.extend(atomicLoad(b))
		}
	}
	return nil
}
