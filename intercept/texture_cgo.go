package main

// The entry points of CUDA arrays and texture and surface objects: they
// convert the program's descriptors and call texture.go.

/*
#include "shim.h"

static inline CUarray kerf_res_array(const CUDA_RESOURCE_DESC *d) { return d->res.array.hArray; }
static inline CUmipmappedArray kerf_res_mipmap(const CUDA_RESOURCE_DESC *d) { return d->res.mipmap.hMipmappedArray; }
static inline CUdeviceptr kerf_res_ptr(const CUDA_RESOURCE_DESC *d) {
	return d->resType == CU_RESOURCE_TYPE_LINEAR ? d->res.linear.devPtr : d->res.pitch2D.devPtr;
}
static inline CUarray_format kerf_res_format(const CUDA_RESOURCE_DESC *d) {
	return d->resType == CU_RESOURCE_TYPE_LINEAR ? d->res.linear.format : d->res.pitch2D.format;
}
static inline unsigned int kerf_res_channels(const CUDA_RESOURCE_DESC *d) {
	return d->resType == CU_RESOURCE_TYPE_LINEAR ? d->res.linear.numChannels : d->res.pitch2D.numChannels;
}
static inline size_t kerf_res_linear_size(const CUDA_RESOURCE_DESC *d) { return d->res.linear.sizeInBytes; }
static inline size_t kerf_res_width(const CUDA_RESOURCE_DESC *d) { return d->res.pitch2D.width; }
static inline size_t kerf_res_height(const CUDA_RESOURCE_DESC *d) { return d->res.pitch2D.height; }
static inline size_t kerf_res_pitch(const CUDA_RESOURCE_DESC *d) { return d->res.pitch2D.pitchInBytes; }
*/
import "C"

import (
	"math"
	"unsafe"

	"github.com/kerf-edge/kerf/abi"
)

func implArrayCreate(ph *C.CUarray, d *C.CUDA_ARRAY_DESCRIPTOR) C.CUresult {
	if ph == nil || d == nil {
		return errNull
	}
	return newArrayHandle(ph, arrayInfo{width: uint64(d.Width), height: uint64(d.Height),
		format: uint32(d.Format), channels: uint32(d.NumChannels)})
}

func implArray3DCreate(ph *C.CUarray, d *C.CUDA_ARRAY3D_DESCRIPTOR) C.CUresult {
	if ph == nil || d == nil {
		return errNull
	}
	return newArrayHandle(ph, arrayInfo{width: uint64(d.Width), height: uint64(d.Height), depth: uint64(d.Depth),
		format: uint32(d.Format), channels: uint32(d.NumChannels), flags: uint32(d.Flags)})
}

func implMipmappedArrayCreate(ph *C.CUmipmappedArray, d *C.CUDA_ARRAY3D_DESCRIPTOR, levels C.uint) C.CUresult {
	if ph == nil || d == nil {
		return errNull
	}
	o, res := mipmapCreate(arrayInfo{width: uint64(d.Width), height: uint64(d.Height), depth: uint64(d.Depth),
		format: uint32(d.Format), channels: uint32(d.NumChannels), flags: uint32(d.Flags)}, uint32(levels))
	if res == abi.Success {
		*ph = C.CUmipmappedArray(o.mem)
	}
	return cr(res)
}

func implMipmappedArrayGetLevel(ph *C.CUarray, h C.CUmipmappedArray, level C.uint) C.CUresult {
	if ph == nil {
		return errNull
	}
	o, res := mipmapLevel(key(unsafe.Pointer(h)), uint32(level))
	if res == abi.Success {
		*ph = C.CUarray(o.mem)
	}
	return cr(res)
}

func implMipmappedArrayDestroy(h C.CUmipmappedArray) C.CUresult {
	return cr(mipmapDestroy(key(unsafe.Pointer(h))))
}

func newArrayHandle(ph *C.CUarray, a arrayInfo) C.CUresult {
	o, res := arrayCreate(a)
	if res == abi.Success {
		*ph = C.CUarray(o.mem)
	}
	return cr(res)
}

func implArrayDestroy(h C.CUarray) C.CUresult { return cr(arrayDestroy(key(unsafe.Pointer(h)))) }

func implArrayGetDescriptor(d *C.CUDA_ARRAY_DESCRIPTOR, h C.CUarray) C.CUresult {
	o, res := arrayOf(key(unsafe.Pointer(h)))
	if res != abi.Success {
		return cr(res)
	}
	if d == nil {
		return errNull
	}
	a := o.array
	if a.depth != 0 || a.flags&arrayLayered != 0 {
		return cr(abi.ErrInvalidValue) // a 3D or layered array has no 2D descriptor
	}
	d.Width, d.Height, d.Format, d.NumChannels = C.size_t(a.width), C.size_t(a.height), C.CUarray_format(a.format), C.uint(a.channels)
	return cr(abi.Success)
}

func implArray3DGetDescriptor(d *C.CUDA_ARRAY3D_DESCRIPTOR, h C.CUarray) C.CUresult {
	o, res := arrayOf(key(unsafe.Pointer(h)))
	if res != abi.Success {
		return cr(res)
	}
	if d == nil {
		return errNull
	}
	a := o.array
	d.Width, d.Height, d.Depth = C.size_t(a.width), C.size_t(a.height), C.size_t(a.depth)
	d.Format, d.NumChannels, d.Flags = C.CUarray_format(a.format), C.uint(a.channels), C.uint(a.flags)
	return cr(abi.Success)
}

// resourceImage describes the image a resource descriptor names.
func resourceImage(r *C.CUDA_RESOURCE_DESC) (abi.TexObject, Result) {
	switch r.resType {
	case C.CU_RESOURCE_TYPE_ARRAY:
		o, res := arrayOf(key(unsafe.Pointer(C.kerf_res_array(r))))
		if res != abi.Success {
			return abi.TexObject{}, res
		}
		if dv, res := currentDevice(); res != abi.Success || dv != o.dev {
			return abi.TexObject{}, abi.ErrInvalidHandle
		}
		return o.array.image(), abi.Success
	case C.CU_RESOURCE_TYPE_LINEAR:
		t := abi.TexObject{Linear: true, Ptr: uint64(C.kerf_res_ptr(r)), Format: uint32(C.kerf_res_format(r)),
			Channels: uint32(C.kerf_res_channels(r)), Dims: 1, Height: 1, Depth: 1}
		ts := t.TexelSize()
		if ts == 0 {
			return t, abi.ErrInvalidValue
		}
		t.Width = uint64(C.kerf_res_linear_size(r)) / ts
		t.Pitch = t.Width * ts
		return t, abi.Success
	case C.CU_RESOURCE_TYPE_PITCH2D:
		return abi.TexObject{Ptr: uint64(C.kerf_res_ptr(r)), Format: uint32(C.kerf_res_format(r)),
			Channels: uint32(C.kerf_res_channels(r)), Dims: 2, Width: uint64(C.kerf_res_width(r)),
			Height: uint64(C.kerf_res_height(r)), Depth: 1, Pitch: uint64(C.kerf_res_pitch(r))}, abi.Success
	case C.CU_RESOURCE_TYPE_MIPMAPPED_ARRAY:
		o, res := mipmapOf(key(unsafe.Pointer(C.kerf_res_mipmap(r))))
		if res != abi.Success {
			return abi.TexObject{}, res
		}
		return mipmapImage(o), abi.Success
	}
	return abi.TexObject{}, abi.ErrInvalidValue
}

func cBytes(p unsafe.Pointer, n uintptr) []byte {
	if p == nil {
		return nil
	}
	return append([]byte(nil), unsafe.Slice((*byte)(p), n)...)
}

func implTexObjectCreate(po *C.CUtexObject, r *C.CUDA_RESOURCE_DESC, td *C.CUDA_TEXTURE_DESC, view *C.CUDA_RESOURCE_VIEW_DESC) C.CUresult {
	if po == nil || r == nil || td == nil {
		return errNull
	}
	if view != nil {
		say("resource views of texture objects are not supported")
		return cr(abi.ErrNotSupported)
	}
	t, res := resourceImage(r)
	if res != abi.Success {
		return cr(res)
	}
	if r.resType == C.CU_RESOURCE_TYPE_LINEAR {
		// tex1Dfetch reads zero outside linear memory
		t.AddressMode = [3]uint32{uint32(ptxAddressBorder), uint32(ptxAddressBorder), uint32(ptxAddressBorder)}
	} else {
		for i := range t.AddressMode {
			t.AddressMode[i] = uint32(td.addressMode[i])
		}
		for i := range t.BorderColor {
			t.BorderColor[i] = math.Float32bits(float32(td.borderColor[i]))
		}
	}
	t.FilterMode, t.Flags = uint32(td.filterMode), uint32(td.flags)
	t.MipmapFilter = uint32(td.mipmapFilterMode)
	t.LevelBias = math.Float32bits(float32(td.mipmapLevelBias))
	t.MinLevelClamp = math.Float32bits(float32(td.minMipmapLevelClamp))
	t.MaxLevelClamp = math.Float32bits(float32(td.maxMipmapLevelClamp))
	obj, res := texObjectCreate(t, texRecord{res: cBytes(unsafe.Pointer(r), C.sizeof_CUDA_RESOURCE_DESC),
		tex: cBytes(unsafe.Pointer(td), C.sizeof_CUDA_TEXTURE_DESC)})
	if res == abi.Success {
		*po = C.CUtexObject(obj)
	}
	return cr(res)
}

// ptxAddressBorder is CU_TR_ADDRESS_MODE_BORDER.
const ptxAddressBorder = 3

func implSurfObjectCreate(po *C.CUsurfObject, r *C.CUDA_RESOURCE_DESC) C.CUresult {
	if po == nil || r == nil {
		return errNull
	}
	if r.resType != C.CU_RESOURCE_TYPE_ARRAY {
		return cr(abi.ErrInvalidValue) // surfaces are over arrays only
	}
	t, res := resourceImage(r)
	if res != abi.Success {
		return cr(res)
	}
	if t.Cube {
		say("surfaces over cube maps are not supported")
		return cr(abi.ErrNotSupported)
	}
	obj, res := texObjectCreate(t, texRecord{surface: true, res: cBytes(unsafe.Pointer(r), C.sizeof_CUDA_RESOURCE_DESC)})
	if res == abi.Success {
		*po = C.CUsurfObject(obj)
	}
	return cr(res)
}

func implTexObjectDestroy(o C.CUtexObject) C.CUresult {
	return cr(texObjectDestroy(uint64(o), false))
}

func implSurfObjectDestroy(o C.CUsurfObject) C.CUresult {
	return cr(texObjectDestroy(uint64(o), true))
}

// copyRecord copies a kept descriptor into the program's struct.
func copyRecord(dst unsafe.Pointer, src []byte) {
	copy(unsafe.Slice((*byte)(dst), len(src)), src)
}

func implTexObjectGetResourceDesc(r *C.CUDA_RESOURCE_DESC, o C.CUtexObject) C.CUresult {
	return getRecord(unsafe.Pointer(r), uint64(o), false, func(t texRecord) []byte { return t.res })
}

func implTexObjectGetTextureDesc(td *C.CUDA_TEXTURE_DESC, o C.CUtexObject) C.CUresult {
	return getRecord(unsafe.Pointer(td), uint64(o), false, func(t texRecord) []byte { return t.tex })
}

func implSurfObjectGetResourceDesc(r *C.CUDA_RESOURCE_DESC, o C.CUsurfObject) C.CUresult {
	return getRecord(unsafe.Pointer(r), uint64(o), true, func(t texRecord) []byte { return t.res })
}

func getRecord(dst unsafe.Pointer, obj uint64, surface bool, part func(texRecord) []byte) C.CUresult {
	if dst == nil {
		return errNull
	}
	rec, res := texObjectRecord(obj, surface)
	if res == abi.Success {
		copyRecord(dst, part(rec))
	}
	return cr(res)
}
