package cuda

// Kernel parameter layouts read from a module image, for drivers older
// than CUDA 12.4, which lack cuFuncGetParamInfo. A PTX image declares
// each kernel's parameters in its .entry list; a cubin (ELF) records them
// in the .nv.info.<kernel> section's EIATTR_KPARAM_INFO attributes; a
// fatbin holds both, and the entry read is the one the driver loads.
//
// Images are tenant input: every size and offset is checked, layouts stay
// within abi.MaxKernelParams, and parsing never panics.

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/abi/fatbin"
)

// kernelLayouts maps a kernel's name to its parameters, in order.
type kernelLayouts map[string][]abi.ParamInfo

func layoutError(format string, args ...any) error {
	return abi.Errorf(abi.ErrInvalidImage, "kernel parameter layout: "+format, args...)
}

// imageLayouts reads the parameter layout of every kernel in image, as a
// device of compute capability major.minor loads it.
func imageLayouts(image []byte, major, minor int) (kernelLayouts, error) {
	switch fatbin.FormatOf(image) {
	case fatbin.FormatPTX:
		return ptxLayouts(image)
	case fatbin.FormatELF:
		return cubinLayouts(image)
	case fatbin.FormatContainer:
		c, err := fatbin.Parse(image)
		if err != nil {
			return nil, err
		}
		e, err := loadedEntry(c, major, minor)
		if err != nil {
			return nil, err
		}
		b, err := e.Contents()
		if err != nil {
			return nil, err
		}
		if e.Kind == fatbin.KindPTX {
			return ptxLayouts(b)
		}
		return cubinLayouts(b)
	}
	return nil, layoutError("unsupported image format %s", fatbin.FormatOf(image))
}

// loadedEntry picks the container entry the driver loads on a device of
// compute capability major.minor: the cubin of the newest architecture
// the device runs (same major, minor not above the device's), else the
// PTX of the newest architecture not above the device's, which the
// driver compiles.
func loadedEntry(c *fatbin.Container, major, minor int) (fatbin.Entry, error) {
	dev := uint32(major*10 + minor)
	best, bestPTX := -1, -1
	for i, e := range c.Entries {
		switch {
		case e.Kind == fatbin.KindELF && e.Arch/10 == dev/10 && e.Arch <= dev:
			if best < 0 || e.Arch > c.Entries[best].Arch {
				best = i
			}
		case e.Kind == fatbin.KindPTX && e.Arch <= dev:
			if b := bestPTX; b < 0 || e.Arch > c.Entries[b].Arch || e.Arch == c.Entries[b].Arch && c.Entries[b].Version.Less(e.Version) {
				bestPTX = i
			}
		}
	}
	if best < 0 {
		best = bestPTX
	}
	if best < 0 {
		return fatbin.Entry{}, abi.Errorf(abi.ErrNoBinaryForGPU, "fatbin: no entry for sm_%d among %d entries", dev, len(c.Entries))
	}
	return c.Entries[best], nil
}

// addParam appends a parameter of size bytes aligned to align to ps.
func addParam(ps []abi.ParamInfo, size, align uint64) ([]abi.ParamInfo, error) {
	if align == 0 || align&(align-1) != 0 || align > abi.MaxKernelParams {
		return nil, layoutError("alignment %d", align)
	}
	var end uint64
	if n := len(ps); n > 0 {
		end = uint64(ps[n-1].Offset) + uint64(ps[n-1].Size)
	}
	off := (end + align - 1) &^ (align - 1)
	if size == 0 || size > abi.MaxKernelParams || off+size > abi.MaxKernelParams {
		return nil, layoutError("parameters exceed %d bytes", abi.MaxKernelParams)
	}
	return append(ps, abi.ParamInfo{Offset: uint32(off), Size: uint32(size)}), nil
}

// ptxTypeSizes are the sizes of the PTX types a kernel parameter may have.
var ptxTypeSizes = map[string]uint64{
	".b8": 1, ".u8": 1, ".s8": 1,
	".b16": 2, ".u16": 2, ".s16": 2, ".f16": 2, ".bf16": 2,
	".b32": 4, ".u32": 4, ".s32": 4, ".f32": 4, ".f16x2": 4, ".bf16x2": 4,
	".b64": 8, ".u64": 8, ".s64": 8, ".f64": 8,
	".texref": 8, ".samplerref": 8, ".surfref": 8,
}

// ptxLayouts reads the .entry parameter lists of a PTX module.
func ptxLayouts(text []byte) (kernelLayouts, error) {
	src := stripPTXComments(string(bytes.TrimRight(text, "\x00")))
	out := kernelLayouts{}
	for {
		i := indexDirective(src, ".entry")
		if i < 0 {
			return out, nil
		}
		src = src[i+len(".entry"):]
		rest := strings.TrimLeft(src, " \t\r\n")
		n := strings.IndexFunc(rest, func(r rune) bool { return !isPTXIdent(r) })
		if n <= 0 {
			return nil, layoutError(".entry without a name")
		}
		name := rest[:n]
		rest = strings.TrimLeft(rest[n:], " \t\r\n")
		var ps []abi.ParamInfo
		if strings.HasPrefix(rest, "(") {
			end := strings.IndexByte(rest, ')')
			if end < 0 {
				return nil, layoutError(".entry %s: unterminated parameter list", name)
			}
			var err error
			if ps, err = ptxParams(rest[1:end]); err != nil {
				return nil, fmt.Errorf(".entry %s: %w", name, err)
			}
			rest = rest[end+1:]
		}
		if _, dup := out[name]; dup {
			return nil, layoutError(".entry %s declared twice", name)
		}
		out[name] = ps
		src = rest
	}
}

// ptxParams lays out a comma-separated list of .param declarations:
//
//	.param .u64 a                       size and alignment of the type
//	.param .u64 .ptr .global .align 8 a .align after .ptr is the pointee's
//	.param .align 16 .b8 a[32]          an aggregate: count × type size
func ptxParams(list string) ([]abi.ParamInfo, error) {
	var ps []abi.ParamInfo
	if strings.TrimSpace(list) == "" {
		return ps, nil
	}
	for _, decl := range strings.Split(list, ",") {
		decl = strings.ReplaceAll(strings.ReplaceAll(decl, "[", " [ "), "]", " ] ")
		f := strings.Fields(decl)
		if len(f) < 3 || f[0] != ".param" {
			return nil, layoutError("parameter %q", strings.TrimSpace(decl))
		}
		var size, align, count uint64 = 0, 0, 1
		ptr := false
		for i := 1; i < len(f); i++ {
			switch tok := f[i]; {
			case tok == ".align":
				if i+1 >= len(f) {
					return nil, layoutError("parameter %q: .align without a value", decl)
				}
				a, err := strconv.ParseUint(f[i+1], 0, 32)
				if err != nil {
					return nil, layoutError("parameter %q: .align %q", decl, f[i+1])
				}
				if !ptr {
					align = a
				}
				i++
			case tok == ".ptr":
				ptr = true
			case tok == "[":
				if i+2 >= len(f) || f[i+2] != "]" {
					return nil, layoutError("parameter %q: array bound", decl)
				}
				c, err := strconv.ParseUint(f[i+1], 0, 32)
				if err != nil || c == 0 {
					return nil, layoutError("parameter %q: array bound %q", decl, f[i+1])
				}
				count = c
				i += 2
			case ptxTypeSizes[tok] != 0:
				if size != 0 {
					return nil, layoutError("parameter %q: two types", decl)
				}
				size = ptxTypeSizes[tok]
			case tok == ".global" || tok == ".shared" || tok == ".const" || tok == ".local":
				// the pointee's state space, after .ptr
			case strings.HasPrefix(tok, "."):
				return nil, layoutError("parameter %q: %s", decl, tok)
			}
		}
		if size == 0 {
			return nil, layoutError("parameter %q has no type", decl)
		}
		if align == 0 {
			align = size
		}
		var err error
		if ps, err = addParam(ps, size*count, align); err != nil {
			return nil, err
		}
	}
	return ps, nil
}

func isPTXIdent(r rune) bool {
	return r == '_' || r == '$' || r == '%' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}

// indexDirective finds dir as a whole token in src.
func indexDirective(src, dir string) int {
	for off := 0; ; {
		i := strings.Index(src[off:], dir)
		if i < 0 {
			return -1
		}
		i += off
		end := i + len(dir)
		if (i == 0 || !isPTXIdent(rune(src[i-1]))) && (end == len(src) || !isPTXIdent(rune(src[end]))) {
			return i
		}
		off = end
	}
}

// stripPTXComments blanks // and /* */ comments and string literals'
// contents, so that neither can hold a directive.
func stripPTXComments(s string) string {
	b := []byte(s)
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '/' && i+1 < len(b) && b[i+1] == '/':
			for ; i < len(b) && b[i] != '\n'; i++ {
				b[i] = ' '
			}
		case b[i] == '/' && i+1 < len(b) && b[i+1] == '*':
			for ; i < len(b) && !(b[i] == '*' && i+1 < len(b) && b[i+1] == '/'); i++ {
				b[i] = ' '
			}
			if i+1 < len(b) {
				b[i], b[i+1] = ' ', ' '
				i++
			}
		case b[i] == '"':
			for i++; i < len(b) && b[i] != '"' && b[i] != '\n'; i++ {
				b[i] = ' '
			}
		}
	}
	return string(b)
}

// The .nv.info attributes a cubin's kernel section holds: each is a
// format byte, an attribute byte, then by format nothing (NVAL), a u16
// value (BVAL, HVAL) or a u16 length and that many bytes (SVAL).
const (
	eifmtNVAL = 1
	eifmtBVAL = 2
	eifmtHVAL = 3
	eifmtSVAL = 4

	eiattrParamCBank     = 0x0a // SVAL: symbol u32, offset u16, size u16
	eiattrKParamInfo     = 0x17 // SVAL: index u32, ordinal u16, offset u16, flags u32 (size in bits 18..31)
	eiattrCBankParamSize = 0x19 // HVAL: bytes of parameters

	elfVersionOff = 20 // e_version in the ELF header

	kparamInfoLen  = 12
	kparamSizeBits = 18
)

// cubinLayouts reads each kernel's EIATTR_KPARAM_INFO records from the
// cubin's .nv.info.<kernel> sections.
func cubinLayouts(img []byte) (out kernelLayouts, err error) {
	// A cubin's e_version holds the CUDA ABI version, which debug/elf
	// refuses: read a copy that says EV_CURRENT.
	if len(img) < elfVersionOff+4 {
		return nil, layoutError("cubin of %d bytes", len(img))
	}
	fixed := bytes.Clone(img)
	binary.LittleEndian.PutUint32(fixed[elfVersionOff:], uint32(elf.EV_CURRENT))
	f, err := elf.NewFile(bytes.NewReader(fixed))
	if err != nil {
		return nil, layoutError("cubin: %v", err)
	}
	out = kernelLayouts{}
	for _, s := range f.Sections {
		name, ok := strings.CutPrefix(s.Name, ".nv.info.")
		if !ok || name == "" {
			continue
		}
		if s.Size > abi.MaxModuleImage || s.Offset > uint64(len(img)) || s.Size > uint64(len(img))-s.Offset {
			return nil, layoutError("cubin: section %s outside the image", s.Name)
		}
		ps, err := nvInfoParams(img[s.Offset : s.Offset+s.Size])
		if err != nil {
			return nil, fmt.Errorf("cubin kernel %s: %w", name, err)
		}
		out[name] = ps
	}
	return out, nil
}

// nvInfoParams lays out one kernel's parameters from its .nv.info
// attributes: KPARAM_INFO gives each ordinal's offset and size, and
// CBANK_PARAM_SIZE (or PARAM_CBANK) the total, which must cover them.
func nvInfoParams(b []byte) ([]abi.ParamInfo, error) {
	byOrdinal := map[uint16]abi.ParamInfo{}
	total, haveTotal := uint64(0), false
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, layoutError(".nv.info: %d trailing bytes", len(b))
		}
		format, attr, val := b[0], b[1], binary.LittleEndian.Uint16(b[2:4])
		b = b[4:]
		var data []byte
		switch format {
		case eifmtNVAL, eifmtBVAL, eifmtHVAL:
		case eifmtSVAL:
			if int(val) > len(b) {
				return nil, layoutError(".nv.info: attribute %#x of %d bytes, %d left", attr, val, len(b))
			}
			data, b = b[:val], b[val:]
		default:
			return nil, layoutError(".nv.info: format %d", format)
		}
		switch {
		case attr == eiattrKParamInfo && format == eifmtSVAL:
			if len(data) < kparamInfoLen {
				return nil, layoutError(".nv.info: KPARAM_INFO of %d bytes", len(data))
			}
			ord := binary.LittleEndian.Uint16(data[4:])
			off := binary.LittleEndian.Uint16(data[6:])
			size := binary.LittleEndian.Uint32(data[8:]) >> kparamSizeBits
			if _, dup := byOrdinal[ord]; dup {
				return nil, layoutError(".nv.info: parameter %d twice", ord)
			}
			byOrdinal[ord] = abi.ParamInfo{Offset: uint32(off), Size: size}
		case attr == eiattrCBankParamSize && format == eifmtHVAL:
			total, haveTotal = uint64(val), true
		case attr == eiattrParamCBank && format == eifmtSVAL && len(data) >= 8 && !haveTotal:
			total, haveTotal = uint64(binary.LittleEndian.Uint16(data[6:])), true
		}
	}
	ps := make([]abi.ParamInfo, 0, len(byOrdinal))
	var end uint64
	for i := range len(byOrdinal) {
		p, ok := byOrdinal[uint16(i)]
		if !ok {
			return nil, layoutError(".nv.info: parameter %d missing of %d", i, len(byOrdinal))
		}
		if p.Size == 0 || uint64(p.Offset) < end {
			return nil, layoutError(".nv.info: parameter %d at %d+%d overlaps the one before", i, p.Offset, p.Size)
		}
		end = uint64(p.Offset) + uint64(p.Size)
		ps = append(ps, p)
	}
	if end > abi.MaxKernelParams || haveTotal && end > total {
		return nil, layoutError(".nv.info: parameters end at %d, beyond %d", end, max(total, abi.MaxKernelParams))
	}
	return ps, nil
}
