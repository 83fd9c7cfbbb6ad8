package abi

import (
	"bytes"
	"math"
	"testing"
)

func validTexObject() TexObject {
	return TexObject{Ptr: 0x7000_0000_0000, Format: ArrayFormatF32, Channels: 4, Dims: 2, Width: 16, Height: 8, Depth: 1,
		Pitch: 256, AddressMode: [3]uint32{0, 1, 3}, FilterMode: 1, Flags: TexNormalizedCoords,
		BorderColor: [4]uint32{math.Float32bits(0.5), 0, 0, math.Float32bits(1)}}
}

func TestTexObjectRoundTrip(t *testing.T) {
	want := validTexObject()
	b := want.Marshal()
	if len(b) != TexObjectSize {
		t.Fatalf("encoded %d bytes, want %d", len(b), TexObjectSize)
	}
	got, err := UnmarshalTexObject(b)
	if err != nil || got != want {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
	for n := range b {
		if _, err := UnmarshalTexObject(b[:n]); ResultOf(err) != ErrInvalidValue {
			t.Fatalf("prefix of %d bytes: %v", n, err)
		}
	}
	if _, err := UnmarshalTexObject(append(b, 0)); ResultOf(err) != ErrInvalidValue {
		t.Fatalf("trailing byte: %v", err)
	}
	for _, kind := range []func(*TexObject){
		func(o *TexObject) { o.Surface = true },
		func(o *TexObject) { o.Linear, o.Dims, o.Height, o.Pitch = true, 1, 1, 256 },
		func(o *TexObject) { *o = mipmappedCube() },
	} {
		want := validTexObject()
		kind(&want)
		if got, err := UnmarshalTexObject(want.Marshal()); err != nil || got != want {
			t.Errorf("got %+v, %v; want %+v", got, err, want)
		}
	}
	b[0] = 3
	if _, err := UnmarshalTexObject(b); ResultOf(err) != ErrInvalidValue {
		t.Errorf("kind 3: %v", err)
	}
}

// mipmappedCube is a cube map array of two cubes, 8×8 faces, with all
// four levels (8, 4, 2, 1) packed tight.
func mipmappedCube() TexObject {
	return TexObject{Ptr: 0x7000_0000_0000, Format: ArrayFormatF32, Channels: 1, Dims: 2, Width: 8, Height: 8, Depth: 1,
		Layers: 12, Pitch: 32, SlicePitch: 256, FilterMode: 1, Flags: TexNormalizedCoords, Cube: true, Levels: 4,
		MipmapFilter: 1, LevelBias: math.Float32bits(0.25), MaxLevelClamp: math.Float32bits(3)}
}

// Mipmap levels follow each other, each half the one before and packed
// tight; the extent covers them all.
func TestTexObjectLevels(t *testing.T) {
	o := mipmappedCube()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	want := uint64(0)
	for i, side := range []uint64{8, 4, 2, 1} {
		l := o.LevelImage(uint32(i))
		if l.Ptr != o.Ptr+want || l.Width != side || l.Height != side || l.Layers != 12 || l.Pitch != side*4 ||
			l.SlicePitch != side*side*4 || l.Levels != 0 {
			t.Errorf("level %d: %+v", i, l)
		}
		want += 12 * side * side * 4
	}
	if ext, ok := o.Extent(); !ok || ext != want {
		t.Errorf("extent %d, %v; want %d", ext, ok, want)
	}
}

// Shapes that do not describe an image, or whose extent overflows, are
// refused.
func TestTexObjectValidate(t *testing.T) {
	for name, mod := range map[string]func(*TexObject){
		"format":        func(o *TexObject) { o.Format = 0x30 },
		"channels":      func(o *TexObject) { o.Channels = 3 },
		"dims":          func(o *TexObject) { o.Dims = 4 },
		"zero width":    func(o *TexObject) { o.Width = 0 },
		"1D height":     func(o *TexObject) { o.Dims = 1 },
		"pitch":         func(o *TexObject) { o.Pitch = 63 },
		"address mode":  func(o *TexObject) { o.AddressMode[2] = 4 },
		"filter":        func(o *TexObject) { o.FilterMode = 2 },
		"flags":         func(o *TexObject) { o.Flags |= 0x100 },
		"sRGB":          func(o *TexObject) { o.Flags |= 0x10 },
		"null":          func(o *TexObject) { o.Ptr = 0 },
		"huge":          func(o *TexObject) { o.Width = MaxTexExtent + 1 },
		"slice pitch":   func(o *TexObject) { o.Dims, o.Depth, o.SlicePitch = 3, 2, 256 },
		"3D layered":    func(o *TexObject) { o.Dims, o.Depth, o.Layers, o.SlicePitch = 3, 2, 2, 4096 },
		"extent wraps":  func(o *TexObject) { o.Dims, o.Depth, o.SlicePitch = 3, MaxTexExtent, 1<<50 },
		"pitch too big": func(o *TexObject) { o.Pitch = 1<<40 + 1 },
		"linear 2D":     func(o *TexObject) { o.Linear = true },
		"cube not square": func(o *TexObject) {
			*o = mipmappedCube()
			o.Width, o.Pitch, o.Levels = 16, 64, 1
		},
		"cube of 5":         func(o *TexObject) { *o = mipmappedCube(); o.Layers = 5 },
		"cube not layered":  func(o *TexObject) { *o = mipmappedCube(); o.Layers = 0 },
		"too many levels":   func(o *TexObject) { *o = mipmappedCube(); o.Levels = 5 },
		"levels not tight":  func(o *TexObject) { *o = mipmappedCube(); o.Pitch, o.SlicePitch = 64, 512 },
		"mipmapped surface": func(o *TexObject) { *o = mipmappedCube(); o.Surface = true },
		"mipmap filter":     func(o *TexObject) { *o = mipmappedCube(); o.MipmapFilter = 2 },
		"linear surface": func(o *TexObject) {
			o.Linear, o.Surface, o.Dims, o.Height, o.Pitch = true, true, 1, 1, 256
		},
	} {
		o := validTexObject()
		mod(&o)
		if err := o.Validate(); err == nil {
			t.Errorf("%s: accepted %+v", name, o)
		}
	}
	o := validTexObject()
	if ext, ok := o.Extent(); !ok || ext != 7*256+16*16 {
		t.Errorf("extent %d, %v", ext, ok)
	}
}

// The decoder never panics, and what it accepts encodes back to itself
// with an extent that does not overflow.
func FuzzUnmarshalTexObject(f *testing.F) {
	o := validTexObject()
	f.Add(o.Marshal())
	f.Add(make([]byte, TexObjectSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := UnmarshalTexObject(b)
		if err != nil {
			return
		}
		if !bytes.Equal(o.Marshal(), b) {
			t.Fatalf("re-encoding differs")
		}
		if _, ok := o.Extent(); !ok {
			t.Fatalf("accepted an overflowing extent: %+v", o)
		}
	})
}
