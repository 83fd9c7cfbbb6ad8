//go:build cgo

package cuda

import (
	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
)

// Texture and surface objects. A tenant's CUDA arrays are pitched images
// in its device memory (the shim keeps them there, and copies into and
// out of them with the linear copies), but a driver samples textures and
// writes surfaces only through its own arrays, whose layout is opaque.
// So each image an object reads stands behind a driver array of the same
// shape, which every launch of the context refreshes from the image, in
// the launch's stream, before the kernel; after the kernel, the arrays
// of images with a surface object are copied back. Objects over one
// image share its array, so that a surface's writes reach the textures
// read by the next kernel. A texture over linear memory
// (CU_RESOURCE_TYPE_LINEAR, read with tex1Dfetch) needs no array: the
// driver reads the tenant's memory itself.
//
// Every image was checked to lie in the tenant's own memory when its
// object was made, and is checked again before each copy: an image whose
// memory was freed is neither refreshed nor written back.

var (
	_ gpu.TextureObjects      = (*Context)(nil)
	_ gpu.CooperativeLauncher = (*Context)(nil)
)

// The CUDA_ARRAY3D_* flags the stand-in arrays are made with.
const (
	arrayLayered     = 0x01
	arraySurfaceLdst = 0x02
)

// imageKey is an image's place and shape.
type imageKey struct {
	ptr, width, height, depth, layers, pitch, slicePitch uint64
	format, channels, dims                               uint32
}

// texImage is the driver array standing in for one image.
type texImage struct {
	key      imageKey
	arr      uintptr // CUarray
	charged  uint64
	refs     int // objects over it
	surfaces int // surface objects over it
}

// texObject is one object of the context's.
type texObject struct {
	surface bool
	img     *texImage // nil: a texture over linear memory
}

func keyOf(d *abi.TexObject) imageKey {
	return imageKey{ptr: d.Ptr, width: d.Width, height: d.Height, depth: d.Depth, layers: d.Layers,
		pitch: d.Pitch, slicePitch: d.SlicePitch, format: d.Format, channels: d.Channels, dims: d.Dims}
}

// shape is the array descriptor of an image: height 0 for 1D, depth the
// layers of a layered image and 0 for a 2D one.
func (k imageKey) shape() arrayShape {
	a := arrayShape{width: k.width, format: k.format, channels: k.channels, flags: arraySurfaceLdst}
	if k.dims >= 2 {
		a.height = k.height
	}
	switch {
	case k.layers > 0:
		a.depth, a.flags = k.layers, a.flags|arrayLayered
	case k.dims == 3:
		a.depth = k.depth
	}
	return a
}

// copyShape is how an image's rows lie in device memory.
func (k imageKey) copyShape() (pitch, rows, row, slices uint64) {
	row = k.width * abi.ArrayFormatSize(k.format) * uint64(k.channels)
	pitch, rows, slices = max(k.pitch, row), k.height, k.depth
	if k.layers > 0 {
		slices = k.layers
	}
	return
}

// TexObjectCreate creates a texture or surface object over an image in
// the tenant's memory, through the driver.
func (c *Context) TexObjectCreate(d abi.TexObject) (uint64, error) {
	if err := d.Validate(); err != nil {
		return 0, err
	}
	if d.Cube || d.Levels > 1 {
		// the stand-in arrays would be cube-map and mipmapped driver
		// arrays, refreshed level by level; not built yet
		return 0, abi.Errorf(abi.ErrNotSupported, "cube maps and mipmapped textures are served on the emulated GPU only")
	}
	ext, _ := d.Extent()
	c.op.Lock() // arrays are made and shared under op held for writing
	defer c.op.Unlock()
	if err := c.usable(); err != nil {
		return 0, err
	}
	if err := c.checkRange("texture image", d.Ptr, ext); err != nil {
		return 0, err
	}
	if d.Linear {
		obj, r := texCreate(c.h, 0, &d)
		if r != 0 {
			return 0, c.check("cuTexObjectCreate", r)
		}
		c.bk.Lock()
		c.texObjs[obj] = &texObject{}
		c.bk.Unlock()
		return obj, nil
	}
	img, err := c.imageFor(&d, ext)
	if err != nil {
		return 0, err
	}
	var obj uint64
	var r int
	if d.Surface {
		obj, r = surfCreate(c.h, img.arr)
	} else {
		obj, r = texCreate(c.h, img.arr, &d)
	}
	if r != 0 {
		c.unref(img)
		if d.Surface {
			return 0, c.check("cuSurfObjectCreate", r)
		}
		return 0, c.check("cuTexObjectCreate", r)
	}
	c.bk.Lock()
	defer c.bk.Unlock()
	if d.Surface {
		img.surfaces++
	}
	c.texObjs[obj] = &texObject{surface: d.Surface, img: img}
	return obj, nil
}

// imageFor returns the array of d's image, made and charged to the quota
// if no object has it yet, with one more reference. op is held for
// writing.
func (c *Context) imageFor(d *abi.TexObject, ext uint64) (*texImage, error) {
	k := keyOf(d)
	c.bk.Lock()
	img, ok := c.images[k]
	if ok {
		img.refs++
	}
	c.bk.Unlock()
	if ok {
		return img, nil
	}
	if err := c.q.Reserve(ext, "a texture's array"); err != nil {
		return nil, err
	}
	arr, r := arrayCreate(c.h, k.shape())
	if r != 0 {
		c.q.Release(ext)
		return nil, c.check("cuArray3DCreate", r)
	}
	img = &texImage{key: k, arr: arr, charged: ext, refs: 1}
	c.bk.Lock()
	c.images[k] = img
	c.bk.Unlock()
	return img, nil
}

// unref drops a reference to img, destroying its array with the last.
// op is held for writing.
func (c *Context) unref(img *texImage) {
	c.bk.Lock()
	img.refs--
	last := img.refs == 0
	if last {
		delete(c.images, img.key)
	}
	c.bk.Unlock()
	if last {
		arrayDestroy(c.h, img.arr)
		c.q.Release(img.charged)
	}
}

// TexObjectDestroy destroys a texture (surface false) or surface object
// of the context's.
func (c *Context) TexObjectDestroy(obj uint64, surface bool) error {
	c.op.Lock()
	defer c.op.Unlock()
	if c.closed {
		return abi.Errorf(abi.ErrInvalidContext, "context was closed")
	}
	c.bk.Lock()
	o, ok := c.texObjs[obj]
	if ok && o.surface == surface {
		delete(c.texObjs, obj)
		if o.img != nil && surface {
			o.img.surfaces--
		}
	}
	c.bk.Unlock()
	if !ok || o.surface != surface {
		return abi.Errorf(abi.ErrInvalidValue, "no such texture or surface object")
	}
	r := texDestroy(c.h, obj, surface)
	if o.img != nil {
		c.unref(o.img)
	}
	if surface {
		return c.check("cuSurfObjectDestroy", r)
	}
	return c.check("cuTexObjectDestroy", r)
}

// imagesIn refreshes every image's array from the tenant's memory, in
// stream sh, before a launch. op is held for reading.
func (c *Context) imagesIn(sh uintptr) error {
	return c.copyImages(sh, true)
}

// imagesOut copies the arrays that surfaces may have written back to
// their images, in stream sh, after a launch. op is held for reading.
func (c *Context) imagesOut(sh uintptr) error {
	return c.copyImages(sh, false)
}

func (c *Context) copyImages(sh uintptr, in bool) error {
	c.bk.Lock()
	if len(c.images) == 0 {
		c.bk.Unlock()
		return nil
	}
	imgs := make([]*texImage, 0, len(c.images))
	for _, img := range c.images {
		if in || img.surfaces > 0 {
			imgs = append(imgs, img)
		}
	}
	c.bk.Unlock()
	for _, img := range imgs {
		if c.checkRange("texture image", img.key.ptr, img.charged) != nil {
			continue // freed since: the array keeps what it last held
		}
		pitch, rows, row, slices := img.key.copyShape()
		if r := arrayCopy(c.h, img.arr, img.key.ptr, pitch, rows, row, slices, in, sh); r != 0 {
			return c.check("cuMemcpy3DAsync", r)
		}
	}
	return nil
}

// releaseTextures destroys the context's objects and arrays; op is held
// for writing. The quota is returned by Close.
func (c *Context) releaseTextures() {
	c.bk.Lock()
	defer c.bk.Unlock()
	for obj, o := range c.texObjs {
		texDestroy(c.h, obj, o.surface)
	}
	for _, img := range c.images {
		arrayDestroy(c.h, img.arr)
	}
	c.texObjs, c.images = map[uint64]*texObject{}, map[imageKey]*texImage{}
}
