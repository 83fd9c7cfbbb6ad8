package ptx

import (
	"bytes"
	"fmt"
	"math"
	"math/bits"
	"strings"

	"github.com/kerf-edge/kerf/abi"
)

// builtinFunc is an external function the interpreter implements.
type builtinFunc uint8

const (
	builtinNone builtinFunc = iota
	builtinVprintf
	builtinAssertfail
	builtinMalloc
	builtinFree
)

var builtins = map[string]builtinFunc{"vprintf": builtinVprintf, "__assertfail": builtinAssertfail,
	"malloc": builtinMalloc, "free": builtinFree}

// frame returns thread t's local memory.
func (w *worker) frameMem(t int) []byte {
	ls := int(w.k.LocalSize)
	return w.local[t*ls : (t+1)*ls]
}

// localBytes returns n bytes at off of local memory mem, or a fault.
func (w *worker) localBytes(in *instr, mem []byte, off, n uint64) ([]byte, error) {
	if off > uint64(len(mem)) || uint64(len(mem))-off < n {
		return nil, w.fault(in, abi.ErrIllegalAddress, "stack overflow: frame at 0x%x of %d bytes past %d bytes of local memory", off, n, len(mem))
	}
	return mem[off : off+n], nil
}

// call starts the lanes in mask in their callee. It reports the lanes
// that left for a function; a builtin's lanes go on at pc+1.
func (w *worker) call(wp *warp, in *instr, pc int32, mask uint32) (uint32, error) {
	k := w.k
	site := &k.calls[in.off]
	r := wp.r
	if site.builtin != builtinNone {
		return 0, w.builtin(wp, in, site, mask)
	}
	for m := mask; m != 0; m &= m - 1 {
		l := bits.TrailingZeros32(m)
		fi := site.direct
		if fi < 0 {
			addr := r[in.a][l]
			idx := (addr - funcWindow) / funcAddrStep
			if addr < funcWindow || (addr-funcWindow)%funcAddrStep != 0 || idx >= uint64(len(k.funcByAddr)) || k.funcByAddr[idx] < 0 {
				return 0, w.fault(in, abi.ErrIllegalAddress, "indirect call to 0x%x, which is no function of this kernel", addr)
			}
			fi = int(k.funcByAddr[idx])
			if err := checkCallShape(k.funcs[fi].fd, *site); err != nil {
				return 0, w.fault(in, abi.ErrIllegalInstruction, "indirect call to %s: %v", k.funcs[fi].fd.name, err)
			}
		}
		f := &k.funcs[fi]
		mem := w.frameMem(wp.idx*32 + l)
		callerFB := r[site.fbReg][l]
		fb := callerFB + site.frame
		frame, err := w.localBytes(in, mem, fb, f.frameSize)
		if err != nil {
			return 0, err
		}
		putN(frame, 8, uint64(pc))
		for i, a := range site.args {
			src, err := w.localBytes(in, mem, callerFB+a.off, a.size)
			if err != nil {
				return 0, err
			}
			copy(frame[f.params[i].off:], src)
		}
		if f.save {
			save := frame[f.static:]
			for i := f.regLo; i < f.regHi; i++ {
				putN(save[8*uint64(i-f.regLo):], 8, r[i][l])
			}
		}
		r[f.fbReg][l] = fb
		for _, s := range f.symRegs {
			r[s.reg][l] = fb + s.val
		}
		wp.lanePC[l] = f.entry
	}
	return mask, nil
}

// ret returns the lanes in mask from function in.off to their callers.
func (w *worker) ret(wp *warp, in *instr, mask uint32) error {
	k := w.k
	f := &k.funcs[in.off]
	r := wp.r
	for m := mask; m != 0; m &= m - 1 {
		l := bits.TrailingZeros32(m)
		mem := w.frameMem(wp.idx*32 + l)
		fb := r[f.fbReg][l]
		frame, err := w.localBytes(in, mem, fb, f.frameSize)
		if err != nil {
			return err
		}
		pc := getN(frame, 8)
		if pc >= uint64(len(k.code)) || k.code[pc].op != opCall {
			return w.fault(in, abi.ErrIllegalAddress, "return address overwritten")
		}
		site := &k.calls[k.code[pc].off]
		if f.save {
			save := frame[f.static:]
			for i := f.regLo; i < f.regHi; i++ {
				r[i][l] = getN(save[8*uint64(i-f.regLo):], 8)
			}
		}
		if site.ret.size != 0 && f.ret.size == site.ret.size {
			dst, err := w.localBytes(in, mem, r[site.fbReg][l]+site.ret.off, site.ret.size)
			if err != nil {
				return err
			}
			copy(dst, frame[f.ret.off:f.ret.off+f.ret.size])
		}
		wp.lanePC[l] = int32(pc) + 1
	}
	return nil
}

// builtin runs vprintf, __assertfail, malloc or free for the lanes in
// mask.
func (w *worker) builtin(wp *warp, in *instr, site *callSite, mask uint32) error {
	r := wp.r
	for m := mask; m != 0; m &= m - 1 {
		l := bits.TrailingZeros32(m)
		t := wp.idx*32 + l
		mem := w.frameMem(t)
		fb := r[site.fbReg][l]
		arg := func(i int) (uint64, error) {
			if i >= len(site.args) || site.args[i].size != 8 {
				return 0, w.fault(in, abi.ErrIllegalInstruction, "builtin called with the wrong arguments")
			}
			b, err := w.localBytes(in, mem, fb+site.args[i].off, 8)
			if err != nil {
				return 0, err
			}
			return getN(b, 8), nil
		}
		switch site.builtin {
		case builtinVprintf:
			f, err := arg(0)
			if err != nil {
				return err
			}
			a, err := arg(1)
			if err != nil {
				return err
			}
			out, err := w.printf(in, t, f, a)
			if err != nil {
				return err
			}
			if w.l.Output != nil {
				w.g.write(out)
			}
			if site.ret.size == 4 {
				b, err := w.localBytes(in, mem, fb+site.ret.off, 4)
				if err != nil {
					return err
				}
				putN(b, 4, uint64(len(out)))
			}
		case builtinMalloc, builtinFree:
			if err := w.heapCall(in, site, mem, fb, arg); err != nil {
				return err
			}
		case builtinAssertfail:
			msg, _ := arg(0)
			file, _ := arg(1)
			s, _ := w.cString(in, t, msg)
			fl, _ := w.cString(in, t, file)
			return w.fault(in, abi.ErrIllegalInstruction, "device assertion failed: %s (%s)", s, fl)
		}
	}
	return nil
}

// heapCall runs malloc or free for one thread: malloc returns 0 when
// the launch has no heap or the heap is full, as on a GPU; free of NULL
// does nothing, and free of anything but a live block fails the launch.
func (w *worker) heapCall(in *instr, site *callSite, mem []byte, fb uint64, arg func(int) (uint64, error)) error {
	v, err := arg(0)
	if err != nil {
		return err
	}
	if site.builtin == builtinFree {
		if v != 0 && (w.l.Heap == nil || !w.l.Heap.Free(v)) {
			return w.fault(in, abi.ErrIllegalAddress, "free of 0x%x, which is no block of the device heap", v)
		}
		return nil
	}
	var p uint64
	if w.l.Heap != nil {
		p = w.l.Heap.Malloc(v)
	}
	if site.ret.size != 8 {
		return w.fault(in, abi.ErrIllegalInstruction, "malloc called with the wrong result")
	}
	b, err := w.localBytes(in, mem, fb+site.ret.off, 8)
	if err != nil {
		return err
	}
	putN(b, 8, p)
	return nil
}

// maxPrintf bounds what one printf call reads and writes.
const maxPrintf = 4096

// cString reads a NUL-terminated string at generic address addr.
func (w *worker) cString(in *instr, t int, addr uint64) (string, error) {
	var sb strings.Builder
	for sb.Len() < maxPrintf {
		b, err := w.access(in, spGeneric, addr, 1, t)
		if err != nil {
			return "", err
		}
		if b[0] == 0 {
			break
		}
		sb.WriteByte(b[0])
		addr++
	}
	return sb.String(), nil
}

// printf formats as CUDA's device printf does: the format at generic
// address fmtAddr, the arguments packed at args, each aligned to its
// size.
func (w *worker) printf(in *instr, t int, fmtAddr, args uint64) ([]byte, error) {
	format, err := w.cString(in, t, fmtAddr)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	next := func(size uint64) (uint64, error) {
		args = alignUp(args, size)
		b, err := w.access(in, spGeneric, args, size, t)
		if err != nil {
			return 0, err
		}
		args += size
		return getN(b, int(size)), nil
	}
	for i := 0; i < len(format) && out.Len() < maxPrintf; i++ {
		c := format[i]
		if c != '%' {
			out.WriteByte(c)
			continue
		}
		j := i + 1
		for j < len(format) && strings.IndexByte("-+ #0123456789.*", format[j]) >= 0 {
			j++
		}
		spec := format[i+1 : j]
		long := false
		for j < len(format) && strings.IndexByte("hlLqjzt", format[j]) >= 0 {
			long = long || format[j] == 'l' || format[j] == 'L' || format[j] == 'q' || format[j] == 'j' || format[j] == 'z' || format[j] == 't'
			j++
		}
		if j >= len(format) || strings.Contains(spec, "*") {
			out.WriteString(format[i:])
			break
		}
		verb := format[j]
		i = j
		size := uint64(4)
		if long {
			size = 8
		}
		switch verb {
		case '%':
			out.WriteByte('%')
		case 'd', 'i':
			v, err := next(size)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(&out, "%"+spec+"d", signExt(v, int(size)))
		case 'u', 'x', 'X', 'o':
			v, err := next(size)
			if err != nil {
				return nil, err
			}
			if size == 4 {
				v = uint64(uint32(v))
			}
			vb := string(verb)
			if verb == 'u' {
				vb = "d"
			}
			fmt.Fprintf(&out, "%"+spec+vb, v)
		case 'c':
			v, err := next(4)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(&out, "%"+spec+"c", rune(byte(v)))
		case 'f', 'F', 'e', 'E', 'g', 'G', 'a', 'A':
			v, err := next(8)
			if err != nil {
				return nil, err
			}
			vb := string(verb)
			switch verb {
			case 'F':
				vb = "f"
			case 'a':
				vb = "x"
			case 'A':
				vb = "X"
			}
			f := math.Float64frombits(v)
			fmt.Fprintf(&out, "%"+spec+vb, f)
		case 's':
			v, err := next(8)
			if err != nil {
				return nil, err
			}
			s, err := w.cString(in, t, v)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(&out, "%"+spec+"s", s)
		case 'p':
			v, err := next(8)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(&out, "0x%x", v)
		default:
			out.WriteString(format[i-len(spec)-1 : j+1])
		}
	}
	b := out.Bytes()
	if len(b) > maxPrintf {
		b = b[:maxPrintf]
	}
	return b, nil
}
