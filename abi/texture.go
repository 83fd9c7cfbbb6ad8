package abi

import (
	"encoding/binary"
	"math/bits"
)

// TexObject describes a texture or surface object over device memory, as
// CallTexObjectCreate carries it: an image of Width×Height×Depth texels
// (Layers layers of Width×Height when layered) at Ptr, rows Pitch bytes
// apart and slices SlicePitch bytes apart, and for a texture how it is
// sampled. The shim builds it from cuTexObjectCreate's and
// cuSurfObjectCreate's resource (a CUDA array, which lives in the
// session's device memory, linear memory or pitched 2D memory) and
// texture descriptors.
type TexObject struct {
	Surface bool
	// Linear marks a texture over linear memory (CU_RESOURCE_TYPE_LINEAR),
	// which kernels read with integer coordinates (tex1Dfetch): a 1D
	// image that is not a CUDA array. A backend over a real driver must
	// tell the two apart.
	Linear     bool
	Ptr        uint64
	Format     uint32 // CUarray_format
	Channels   uint32 // 1, 2 or 4
	Dims       uint32 // 1, 2 or 3
	Width      uint64
	Height     uint64 // 1 for 1D
	Depth      uint64 // 1 for 1D and 2D
	Layers     uint64 // 0 when not layered
	Pitch      uint64
	SlicePitch uint64
	// Sampling, for textures.
	AddressMode [3]uint32 // CUaddress_mode
	FilterMode  uint32    // CUfilter_mode
	Flags       uint32    // CU_TRSF_*
	BorderColor [4]uint32 // float32 bits
	// Cube marks a cube map: a square 2D image whose Layers (six, or six
	// per cube of a cube map array) are its faces.
	Cube bool
	// Levels is the number of mipmap levels of a mipmapped texture (0 or
	// 1: not mipmapped). Level i is max(size>>i, 1) along each dimension
	// of level 0, with as many layers, its rows and slices packed tight,
	// and follows level i-1 directly in memory (LevelImage).
	Levels uint32
	// How a mipmapped texture picks and mixes its levels: the filter
	// between levels, and the bias and clamps of the level of detail
	// (float32 bits).
	MipmapFilter  uint32
	LevelBias     uint32
	MinLevelClamp uint32
	MaxLevelClamp uint32
}

// The CUarray_format values the emulator reads.
const (
	ArrayFormatU8  = 0x01
	ArrayFormatU16 = 0x02
	ArrayFormatU32 = 0x03
	ArrayFormatS8  = 0x08
	ArrayFormatS16 = 0x09
	ArrayFormatS32 = 0x0a
	ArrayFormatF16 = 0x10
	ArrayFormatF32 = 0x20
)

// ArrayFormatSize returns the bytes of one channel of format f, or 0 for
// a format Kerf does not serve.
func ArrayFormatSize(f uint32) uint64 {
	switch f {
	case ArrayFormatU8, ArrayFormatS8:
		return 1
	case ArrayFormatU16, ArrayFormatS16, ArrayFormatF16:
		return 2
	case ArrayFormatU32, ArrayFormatS32, ArrayFormatF32:
		return 4
	}
	return 0
}

// Texture descriptor flags (CU_TRSF_*).
const (
	TexReadAsInteger    = 0x01
	TexNormalizedCoords = 0x02
	texSRGB             = 0x10
	// disabling trilinear optimisation and seamless cube maps change
	// nothing without mipmaps and cube maps
	texFlagsKnown     = TexReadAsInteger | TexNormalizedCoords | 0x20 | 0x40
	maxTexAddressMode = 3 // border
	maxTexFilterMode  = 1 // linear
)

// The first byte of an encoded TexObject: what kind of object it is.
const (
	texKindTexture = 0
	texKindSurface = 1
	texKindLinear  = 2
)

// TexObjectSize is the encoded size of a TexObject.
const TexObjectSize = 1 + 8 + 3*4 + 6*8 + 3*4 + 4 + 4 + 4*4 + 6*4

// texShapeCube is the bit of the encoded shape flags that marks a cube map.
const texShapeCube = 1

// MaxMipmapLevels bounds the levels of a mipmapped texture: a dimension
// of MaxTexExtent halves to 1 in that many levels.
const MaxMipmapLevels = 29

// MaxTexExtent bounds each dimension of a texture or surface, as CUDA's
// largest 1D texture over linear memory does.
const MaxTexExtent = 1 << 28

// Marshal encodes t in TexObjectSize bytes.
func (t *TexObject) Marshal() []byte {
	b := make([]byte, 0, TexObjectSize)
	kind := byte(texKindTexture)
	switch {
	case t.Surface:
		kind = texKindSurface
	case t.Linear:
		kind = texKindLinear
	}
	b = append(b, kind)
	b = binary.LittleEndian.AppendUint64(b, t.Ptr)
	for _, v := range []uint32{t.Format, t.Channels, t.Dims} {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	for _, v := range []uint64{t.Width, t.Height, t.Depth, t.Layers, t.Pitch, t.SlicePitch} {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	for _, v := range t.AddressMode {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	b = binary.LittleEndian.AppendUint32(b, t.FilterMode)
	b = binary.LittleEndian.AppendUint32(b, t.Flags)
	for _, v := range t.BorderColor {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	shape := uint32(0)
	if t.Cube {
		shape = texShapeCube
	}
	for _, v := range []uint32{shape, t.Levels, t.MipmapFilter, t.LevelBias, t.MinLevelClamp, t.MaxLevelClamp} {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}

// UnmarshalTexObject decodes and validates an encoded TexObject.
func UnmarshalTexObject(b []byte) (TexObject, error) {
	var t TexObject
	if len(b) != TexObjectSize || b[0] > texKindLinear {
		return t, Errorf(ErrInvalidValue, "texture object description of %d bytes", len(b))
	}
	t.Surface, t.Linear = b[0] == texKindSurface, b[0] == texKindLinear
	b = b[1:]
	u64 := func() uint64 { v := binary.LittleEndian.Uint64(b); b = b[8:]; return v }
	u32 := func() uint32 { v := binary.LittleEndian.Uint32(b); b = b[4:]; return v }
	t.Ptr = u64()
	t.Format, t.Channels, t.Dims = u32(), u32(), u32()
	t.Width, t.Height, t.Depth, t.Layers, t.Pitch, t.SlicePitch = u64(), u64(), u64(), u64(), u64(), u64()
	for i := range t.AddressMode {
		t.AddressMode[i] = u32()
	}
	t.FilterMode, t.Flags = u32(), u32()
	for i := range t.BorderColor {
		t.BorderColor[i] = u32()
	}
	shape := u32()
	if shape&^texShapeCube != 0 {
		return t, Errorf(ErrInvalidValue, "texture object: unknown shape flags %#x", shape)
	}
	t.Cube = shape&texShapeCube != 0
	t.Levels, t.MipmapFilter, t.LevelBias, t.MinLevelClamp, t.MaxLevelClamp = u32(), u32(), u32(), u32(), u32()
	return t, t.Validate()
}

// TexelSize is the bytes of one texel.
func (t *TexObject) TexelSize() uint64 { return ArrayFormatSize(t.Format) * uint64(t.Channels) }

// Validate checks the shape and sampling of t, every product in uint64.
func (t *TexObject) Validate() error {
	bad := func(what string) error { return Errorf(ErrInvalidValue, "texture object: %s", what) }
	if ArrayFormatSize(t.Format) == 0 {
		return bad("unsupported format")
	}
	if t.Channels != 1 && t.Channels != 2 && t.Channels != 4 {
		return bad("channels must be 1, 2 or 4")
	}
	if t.Dims < 1 || t.Dims > 3 || t.Dims == 3 && t.Layers != 0 {
		return bad("bad dimensions")
	}
	if t.Linear && (t.Surface || t.Dims != 1 || t.Layers != 0) {
		return bad("linear memory is a 1D texture")
	}
	if t.Width == 0 || t.Height == 0 || t.Depth == 0 || t.Width > MaxTexExtent || t.Height > MaxTexExtent ||
		t.Depth > MaxTexExtent || t.Layers > MaxTexExtent || t.Dims < 2 && t.Height != 1 || t.Dims < 3 && t.Depth != 1 {
		return bad("bad extent")
	}
	if t.Ptr == 0 {
		return bad("no memory")
	}
	if t.Cube && (t.Linear || t.Dims != 2 || t.Width != t.Height || t.Layers == 0 || t.Layers%6 != 0) {
		return bad("a cube map is square, with six layers per cube")
	}
	if t.Levels > 1 {
		row := t.Width * t.TexelSize() // both bounded: no overflow
		switch {
		case t.Surface || t.Linear:
			return bad("only textures over mipmapped arrays have mipmap levels")
		case t.Levels > MaxMipmapLevels || t.Levels-1 > uint32(bits.Len64(max(t.Width, t.Height, t.Depth))-1):
			return bad("more mipmap levels than the extent halves to")
		case t.Pitch != row || t.slices() > 1 && t.SlicePitch != row*t.Height:
			return bad("mipmap levels are packed tight")
		case t.MipmapFilter > maxTexFilterMode:
			return bad("unknown mipmap filter mode")
		}
	}
	for _, m := range t.AddressMode {
		if m > maxTexAddressMode {
			return bad("unknown address mode")
		}
	}
	if t.Flags&texSRGB != 0 {
		return Errorf(ErrNotSupported, "texture object: sRGB conversion is not supported")
	}
	if t.FilterMode > maxTexFilterMode || t.Flags&^texFlagsKnown != 0 {
		return bad("unknown filter mode or flags")
	}
	row := t.Width * t.TexelSize() // both bounded: no overflow
	if t.Height > 1 && t.Pitch < row || t.Pitch > 1<<40 || t.SlicePitch > 1<<50 {
		return bad("bad pitch")
	}
	if _, ok := t.Extent(); !ok {
		return bad("extent overflows")
	}
	if t.slices() > 1 {
		if hi, lo := bits.Mul64(t.Height, t.Pitch); hi != 0 || t.SlicePitch < lo {
			return bad("bad slice pitch")
		}
	}
	return nil
}

func (t *TexObject) slices() uint64 {
	if t.Layers > 0 {
		return t.Layers
	}
	return t.Depth
}

// Extent returns the bytes from Ptr to the end of the image's last row,
// the last mipmap level's for a mipmapped texture.
func (t *TexObject) Extent() (uint64, bool) {
	if t.Levels <= 1 {
		return t.levelExtent()
	}
	var total uint64
	l := *t
	for i := range t.Levels {
		size, ok := l.levelExtent()
		s, c := bits.Add64(total, size, 0)
		if !ok || c != 0 {
			return 0, false
		}
		total = s
		if i+1 < t.Levels {
			l = l.nextLevel(size)
		}
	}
	return total, true
}

// LevelImage returns mipmap level i of a mipmapped texture as an image
// of its own (not mipmapped, its Ptr where the level starts), level 0
// being t's own image. It trusts i < t.Levels and sizes Validate
// bounded; Extent reports an overflow.
func (t *TexObject) LevelImage(i uint32) TexObject {
	l := *t
	l.Levels = 0
	for range i {
		size, _ := l.levelExtent()
		l = l.nextLevel(size)
	}
	return l
}

// nextLevel is the mipmap level after l, which takes size bytes.
func (l TexObject) nextLevel(size uint64) TexObject {
	l.Ptr += size
	l.Width, l.Height, l.Depth = max(l.Width/2, 1), max(l.Height/2, 1), max(l.Depth/2, 1)
	l.Pitch = l.Width * l.TexelSize()
	l.SlicePitch = l.Pitch * l.Height
	return l
}

// levelExtent is Extent of one level.
func (t *TexObject) levelExtent() (uint64, bool) {
	hi1, a := bits.Mul64(t.slices()-1, t.SlicePitch)
	hi2, b := bits.Mul64(t.Height-1, t.Pitch)
	hi3, row := bits.Mul64(t.Width, t.TexelSize())
	s, c1 := bits.Add64(a, b, 0)
	s, c2 := bits.Add64(s, row, 0)
	return s, hi1|hi2|hi3|c1|c2 == 0
}
