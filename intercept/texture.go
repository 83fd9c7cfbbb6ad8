package main

import (
	"math/bits"
	"sync"

	"github.com/kerf-edge/kerf/abi"
)

// CUDA arrays, texture objects and surface objects. An array is a pitched
// image in the session's device memory: the shim allocates it with
// cuMemAlloc, copies into and out of it with the linear copies, row by
// row (copy2d.go), and keeps its descriptor. Texture and surface objects
// are kerfd's (CallTexObjectCreate), described by an abi.TexObject that
// kerfd checks lies in the session's own memory; the shim keeps the
// descriptors the program gave, for cuTexObjectGetResourceDesc and the
// like.

// The CUDA_ARRAY3D_* flags.
const (
	arrayLayered       = 0x01
	arraySurfaceLdst   = 0x02
	arrayCubemap       = 0x04
	arrayTextureGather = 0x08
)

// arrayInfo is a CUDA array: its descriptor, as the program gave it
// (Height and Depth 0 for the dimensions it does not have), and where
// its texels lie.
type arrayInfo struct {
	width, height, depth uint64
	format, channels     uint32
	flags                uint32
	ptr                  uint64
	pitch, slicePitch    uint64
}

// rows and slices are the array's rows per slice and its slices (depth
// slices or layers).
func (a *arrayInfo) rows() uint64   { return max(a.height, 1) }
func (a *arrayInfo) slices() uint64 { return max(a.depth, 1) }

// arrayLayout checks a descriptor and lays the array out: rows of
// width texels back to back, every product in uint64.
func arrayLayout(a *arrayInfo) (size uint64, res Result) {
	es := abi.ArrayFormatSize(a.format)
	if es == 0 || a.channels != 1 && a.channels != 2 && a.channels != 4 || a.width == 0 {
		return 0, abi.ErrInvalidValue
	}
	if a.flags&arrayCubemap != 0 && (a.width != a.height || a.depth == 0 || a.depth%6 != 0 ||
		a.flags&arrayLayered == 0 && a.depth != 6) {
		return 0, abi.ErrInvalidValue // a cube map is square, with six faces per cube
	}
	if a.flags&^(arrayLayered|arraySurfaceLdst|arrayTextureGather|arrayCubemap) != 0 ||
		a.height == 0 && a.depth != 0 && a.flags&(arrayLayered|arrayCubemap) == 0 || a.flags&arrayLayered != 0 && a.depth == 0 {
		return 0, abi.ErrInvalidValue
	}
	for _, n := range []uint64{a.width, a.height, a.depth} {
		if n > abi.MaxTexExtent {
			return 0, abi.ErrInvalidValue
		}
	}
	a.pitch = a.width * es * uint64(a.channels) // bounded: no overflow
	hi, sp := bits.Mul64(a.pitch, a.rows())
	hi2, size := bits.Mul64(sp, a.slices())
	if hi|hi2 != 0 {
		return 0, abi.ErrOutOfMemory
	}
	a.slicePitch = sp
	return size, abi.Success
}

// arrayCreate allocates an array on the current context's device.
func arrayCreate(a arrayInfo) (*object, Result) {
	dv, res := currentDevice()
	if res != abi.Success {
		return nil, res
	}
	size, res := arrayLayout(&a)
	if res != abi.Success {
		return nil, res
	}
	p, err := dv.cl.MemAlloc(size)
	if err != nil {
		return nil, abi.ResultOf(err)
	}
	a.ptr = p
	o, res := drv.newObject(kindArray, dv, 0)
	if res != abi.Success {
		dv.cl.MemFree(p)
		return nil, res
	}
	o.array = &a
	return o, abi.Success
}

// arrayDestroy frees an array.
func arrayDestroy(key uintptr) Result {
	if _, res := drv.ready(); res != abi.Success {
		return res
	}
	if o, ok := drv.lookup(key, kindArray); ok && o.parent != nil {
		return abi.ErrInvalidHandle // a mipmapped array's level goes with it
	}
	o, ok := drv.take(key, kindArray)
	if !ok {
		return abi.ErrInvalidHandle
	}
	err := o.dev.cl.MemFree(o.array.ptr)
	freeHandleMem(o.mem)
	return abi.ResultOf(err)
}

// mipmapCreate allocates a mipmapped array of levels levels over level
// 0's descriptor a, on the current context's device: one allocation that
// holds the levels one after another, laid out as abi.TexObject's
// LevelImage says, each level a CUDA array of the mipmapped array's.
func mipmapCreate(a arrayInfo, levels uint32) (*object, Result) {
	dv, res := currentDevice()
	if res != abi.Success {
		return nil, res
	}
	if _, res := arrayLayout(&a); res != abi.Success {
		return nil, res
	}
	if a.flags&arraySurfaceLdst != 0 {
		say("surfaces over mipmapped arrays are not supported")
		return nil, abi.ErrNotSupported
	}
	ext := max(a.width, a.height)
	if a.flags&(arrayLayered|arrayCubemap) == 0 {
		ext = max(ext, a.depth)
	}
	if levels == 0 || levels > uint32(bits.Len64(ext)) {
		return nil, abi.ErrInvalidValue // more levels than the extent halves to
	}
	img := a.image()
	img.Levels = levels
	size, ok := img.Extent()
	if !ok {
		return nil, abi.ErrOutOfMemory
	}
	p, err := dv.cl.MemAlloc(size)
	if err != nil {
		return nil, abi.ResultOf(err)
	}
	img.Ptr, a.ptr = p, p
	o, res := drv.newObject(kindMipmap, dv, 0)
	if res != abi.Success {
		dv.cl.MemFree(p)
		return nil, res
	}
	base := a
	o.array = &base
	for i := range levels {
		l := img.LevelImage(i)
		la := a
		la.ptr, la.width, la.pitch, la.slicePitch = l.Ptr, l.Width, l.Pitch, l.SlicePitch
		if a.height > 0 {
			la.height = l.Height
		}
		if a.flags&(arrayLayered|arrayCubemap) == 0 && a.depth > 0 {
			la.depth = l.Depth
		}
		c, res := drv.newObject(kindArray, dv, 0)
		if res != abi.Success {
			drv.take(o.key, kindMipmap)
			mipmapFree(o)
			return nil, res
		}
		c.array, c.parent = &la, o
		o.children = append(o.children, c)
	}
	return o, abi.Success
}

// mipmapFree frees a mipmapped array that is no longer registered, and
// its levels.
func mipmapFree(o *object) error {
	drv.mu.Lock()
	for _, c := range o.children {
		drv.dropLocked(c)
	}
	drv.mu.Unlock()
	freeHandleMem(o.mem)
	return o.dev.cl.MemFree(o.array.ptr)
}

// mipmapDestroy frees a mipmapped array and its levels.
func mipmapDestroy(key uintptr) Result {
	if _, res := drv.ready(); res != abi.Success {
		return res
	}
	o, ok := drv.take(key, kindMipmap)
	if !ok {
		return abi.ErrInvalidHandle
	}
	return abi.ResultOf(mipmapFree(o))
}

// mipmapOf returns the mipmapped array the program's handle key names,
// which must be of the current context's device.
func mipmapOf(key uintptr) (*object, Result) {
	if _, res := drv.ready(); res != abi.Success {
		return nil, res
	}
	o, ok := drv.lookup(key, kindMipmap)
	if !ok {
		return nil, abi.ErrInvalidHandle
	}
	if dv, res := currentDevice(); res != abi.Success || dv != o.dev {
		return nil, abi.ErrInvalidHandle
	}
	return o, abi.Success
}

// mipmapLevel returns level i of a mipmapped array.
func mipmapLevel(key uintptr, i uint32) (*object, Result) {
	o, res := mipmapOf(key)
	if res != abi.Success {
		return nil, res
	}
	if uint64(i) >= uint64(len(o.children)) {
		return nil, abi.ErrInvalidValue
	}
	return o.children[i], abi.Success
}

// mipmapImage describes a mipmapped array as a texture reads it.
func mipmapImage(o *object) abi.TexObject {
	t := o.array.image()
	t.Levels = uint32(len(o.children))
	return t
}

// arrayOf returns the array the program's handle key names.
func arrayOf(key uintptr) (*object, Result) {
	if _, res := drv.ready(); res != abi.Success {
		return nil, res
	}
	o, ok := drv.lookup(key, kindArray)
	if !ok {
		return nil, abi.ErrInvalidHandle
	}
	return o, abi.Success
}

// image describes a whole array as a texture or surface reads it.
func (a *arrayInfo) image() abi.TexObject {
	t := abi.TexObject{Ptr: a.ptr, Format: a.format, Channels: a.channels, Width: a.width, Height: a.rows(), Depth: 1,
		Pitch: a.pitch, SlicePitch: a.slicePitch, Dims: 1}
	switch {
	case a.flags&arrayCubemap != 0:
		t.Dims, t.Layers, t.Cube = 2, a.depth, true
	case a.flags&arrayLayered != 0:
		t.Layers = a.depth
		if a.height > 0 {
			t.Dims = 2
		}
	case a.depth > 0:
		t.Dims, t.Depth = 3, a.depth
	case a.height > 0:
		t.Dims = 2
	}
	return t
}

// texRecord is what the shim keeps of a texture or surface object: the
// descriptors the program passed, as bytes of their C structs.
type texRecord struct {
	surface bool
	res     []byte
	tex     []byte
}

// texObjects are the objects created through the shim, by device and
// object value.
var texObjects = struct {
	sync.Mutex
	m map[texKey]texRecord
}{m: map[texKey]texRecord{}}

type texKey struct {
	dv  *device
	obj uint64
}

// texObjectCreate creates an object over t on the current device.
func texObjectCreate(t abi.TexObject, rec texRecord) (uint64, Result) {
	dv, res := currentDevice()
	if res != abi.Success {
		return 0, res
	}
	t.Surface = rec.surface
	if err := t.Validate(); err != nil {
		return 0, abi.ResultOf(err)
	}
	var out abi.Values
	if err := dv.cl.Call(abi.CallTexObjectCreate, new(abi.Values).Blob(t.Marshal()), &out); err != nil {
		return 0, abi.ResultOf(err)
	}
	obj := out.Words[0]
	texObjects.Lock()
	texObjects.m[texKey{dv, obj}] = rec
	texObjects.Unlock()
	return obj, abi.Success
}

// texObjectDestroy destroys an object of the current device's.
func texObjectDestroy(obj uint64, surface bool) Result {
	dv, res := currentDevice()
	if res != abi.Success {
		return res
	}
	texObjects.Lock()
	rec, ok := texObjects.m[texKey{dv, obj}]
	if ok && rec.surface == surface {
		delete(texObjects.m, texKey{dv, obj})
	}
	texObjects.Unlock()
	if !ok || rec.surface != surface {
		return abi.ErrInvalidValue
	}
	flag := uint64(0)
	if surface {
		flag = 1
	}
	return abi.ResultOf(dv.cl.Call(abi.CallTexObjectDestroy, new(abi.Values).Word(obj).Word(flag), nil))
}

// texObjectRecord returns what the shim kept of an object.
func texObjectRecord(obj uint64, surface bool) (texRecord, Result) {
	dv, res := currentDevice()
	if res != abi.Success {
		return texRecord{}, res
	}
	texObjects.Lock()
	rec, ok := texObjects.m[texKey{dv, obj}]
	texObjects.Unlock()
	if !ok || rec.surface != surface {
		return texRecord{}, abi.ErrInvalidValue
	}
	return rec, abi.Success
}
