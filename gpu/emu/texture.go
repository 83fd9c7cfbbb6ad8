package emu

import (
	"math"
	"sync"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/gpu/emu/ptx"
)

var _ gpu.TextureObjects = (*Context)(nil)

// texTable holds a context's texture and surface objects. A kernel
// resolves an object's image from the context's memory when it first
// reads it, so an object whose memory was freed fails the kernel with
// CUDA_ERROR_ILLEGAL_ADDRESS rather than reading stale bytes.
type texTable struct {
	mu   sync.RWMutex
	last uint64
	objs map[uint64]*abi.TexObject
}

var ptxFormats = map[uint32]ptx.ChannelFormat{
	abi.ArrayFormatU8: ptx.FormatU8, abi.ArrayFormatU16: ptx.FormatU16, abi.ArrayFormatU32: ptx.FormatU32,
	abi.ArrayFormatS8: ptx.FormatS8, abi.ArrayFormatS16: ptx.FormatS16, abi.ArrayFormatS32: ptx.FormatS32,
	abi.ArrayFormatF16: ptx.FormatF16, abi.ArrayFormatF32: ptx.FormatF32,
}

// TexObjectCreate creates a texture or surface object over an image in
// the context's memory.
func (c *Context) TexObjectCreate(d abi.TexObject) (uint64, error) {
	if err := d.Validate(); err != nil {
		return 0, err
	}
	if !d.Surface && d.FilterMode == 1 && !readsFloat(&d) {
		return 0, abi.Errorf(abi.ErrInvalidValue, "linear filtering needs a texture that reads floats")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return 0, err
	}
	ext, _ := d.Extent()
	if _, err := c.mem.rangeOf(d.Ptr, ext, "texture image"); err != nil {
		return 0, err
	}
	t := &c.tex
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.objs == nil {
		t.objs = make(map[uint64]*abi.TexObject)
	}
	t.last++
	t.objs[t.last] = &d
	return t.last, nil
}

// readsFloat reports whether a texture over d returns floats.
func readsFloat(d *abi.TexObject) bool {
	switch d.Format {
	case abi.ArrayFormatF16, abi.ArrayFormatF32:
		return true
	case abi.ArrayFormatU32, abi.ArrayFormatS32:
		return false
	}
	return d.Flags&abi.TexReadAsInteger == 0
}

// TexObjectDestroy destroys an object of the context's.
func (c *Context) TexObjectDestroy(obj uint64, surface bool) error {
	t := &c.tex
	t.mu.Lock()
	defer t.mu.Unlock()
	d, ok := t.objs[obj]
	if !ok || d.Surface != surface {
		return abi.Errorf(abi.ErrInvalidValue, "no such texture or surface object")
	}
	delete(t.objs, obj)
	return nil
}

// image resolves object obj of kind surface to the ptx image it reads:
// its only level, or level 0 of a mipmapped texture.
func (c *Context) image(obj uint64, surface bool) (*abi.TexObject, ptx.Image, bool) {
	c.tex.mu.RLock()
	d, ok := c.tex.objs[obj]
	c.tex.mu.RUnlock()
	if !ok || d.Surface != surface {
		return nil, ptx.Image{}, false
	}
	im, ok := c.levelImage(d, 0)
	return d, im, ok
}

// levelImage resolves level i of d from the context's memory.
func (c *Context) levelImage(d *abi.TexObject, i uint32) (ptx.Image, bool) {
	l := *d
	if d.Levels > 1 {
		l = d.LevelImage(i)
	}
	ext, _ := l.Extent()
	data, err := c.mem.rangeOf(l.Ptr, ext, "texture image")
	if err != nil {
		return ptx.Image{}, false
	}
	return ptx.Image{Format: ptxFormats[l.Format], Channels: int(l.Channels), Dims: uint8(l.Dims),
		Width: uint32(l.Width), Height: uint32(l.Height), Depth: uint32(l.Depth), Layers: uint32(l.Layers),
		Cube: l.Cube, Pitch: l.Pitch, SlicePitch: l.SlicePitch, Data: data}, true
}

// kernelTextures is how a launch's kernel sees its context's objects.
type kernelTextures struct{ c *Context }

func (k kernelTextures) Texture(h uint64) (*ptx.Texture, bool) {
	d, im, ok := k.c.image(h, false)
	if !ok {
		return nil, false
	}
	t := &ptx.Texture{Image: im, Filter: ptx.FilterMode(d.FilterMode),
		NormalizedCoords: d.Flags&abi.TexNormalizedCoords != 0, ReadAsInteger: d.Flags&abi.TexReadAsInteger != 0}
	for i, m := range d.AddressMode {
		t.Address[i] = ptx.AddressMode(m)
	}
	for i, b := range d.BorderColor {
		t.Border[i] = math.Float32frombits(b)
	}
	for i := uint32(1); i < d.Levels; i++ {
		m, ok := k.c.levelImage(d, i)
		if !ok {
			return nil, false
		}
		t.Mipmaps = append(t.Mipmaps, m)
	}
	t.MipmapFilter = ptx.FilterMode(d.MipmapFilter)
	t.MipmapLevelBias = math.Float32frombits(d.LevelBias)
	t.MinMipmapLevelClamp = math.Float32frombits(d.MinLevelClamp)
	t.MaxMipmapLevelClamp = math.Float32frombits(d.MaxLevelClamp)
	return t, true
}

func (k kernelTextures) Surface(h uint64) (*ptx.Surface, bool) {
	_, im, ok := k.c.image(h, true)
	if !ok {
		return nil, false
	}
	return &ptx.Surface{Image: im}, true
}
