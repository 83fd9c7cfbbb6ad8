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
