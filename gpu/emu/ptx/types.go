package ptx

// vtype is a PTX fundamental type: a kind and a size in bytes.
type vtype uint8

const (
	kindB    = 0 << 4
	kindU    = 1 << 4
	kindS    = 2 << 4
	kindF    = 3 << 4
	kindPred = 4 << 4
	kindH    = 5 << 4 // f16, f16x2: never isFloat, decoded apart
	kindBH   = 6 << 4 // bf16, bf16x2
	kindMask = 0xf0
)

const (
	tNone   vtype = 0
	tB8           = vtype(kindB | 1)
	tB16          = vtype(kindB | 2)
	tB32          = vtype(kindB | 4)
	tB64          = vtype(kindB | 8)
	tU8           = vtype(kindU | 1)
	tU16          = vtype(kindU | 2)
	tU32          = vtype(kindU | 4)
	tU64          = vtype(kindU | 8)
	tS8           = vtype(kindS | 1)
	tS16          = vtype(kindS | 2)
	tS32          = vtype(kindS | 4)
	tS64          = vtype(kindS | 8)
	tF32          = vtype(kindF | 4)
	tF64          = vtype(kindF | 8)
	tPred         = vtype(kindPred | 1)
	tF16          = vtype(kindH | 2)
	tF16x2        = vtype(kindH | 4)
	tBF16         = vtype(kindBH | 2)
	tBF16x2       = vtype(kindBH | 4)
)

var typeNames = map[string]vtype{
	"b8": tB8, "b16": tB16, "b32": tB32, "b64": tB64,
	"u8": tU8, "u16": tU16, "u32": tU32, "u64": tU64,
	"s8": tS8, "s16": tS16, "s32": tS32, "s64": tS64,
	"f32": tF32, "f64": tF64, "pred": tPred,
	"f16": tF16, "f16x2": tF16x2, "bf16": tBF16, "bf16x2": tBF16x2,
}

// unsupportedTypes are real PTX types this interpreter does not handle.
var unsupportedTypes = map[string]bool{
	"tf32": true,
	"e4m3": true, "e5m2": true, "s4": true, "u4": true, "b128": true,
}

func (t vtype) size() int     { return int(t & 0x0f) }
func (t vtype) kind() int     { return int(t & kindMask) }
func (t vtype) isFloat() bool { return t.kind() == kindF }
func (t vtype) signed() bool  { return t.kind() == kindS }

// extend interprets the low size bytes of v as a value of type t and
// widens it to 64 bits (sign-extending signed types).
func (t vtype) extend(v uint64) uint64 {
	switch t {
	case tS8:
		return uint64(int64(int8(v)))
	case tS16:
		return uint64(int64(int16(v)))
	case tS32:
		return uint64(int64(int32(v)))
	}
	switch t.size() {
	case 1:
		return v & 0xff
	case 2:
		return v & 0xffff
	case 4:
		return v & 0xffffffff
	}
	return v
}
