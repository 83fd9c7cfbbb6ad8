package transport

import (
	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/transport/internal/wire"
)

// maxTexObjects bounds the texture and surface objects of one session.
const maxTexObjects = 1 << 16

// texObjectCreate creates a texture or surface object over an image that
// lies wholly in one of the session's allocations.
func (ss *session) texObjectCreate(a wire.TexObjectCreateArgs) abi.Result {
	d, err := abi.UnmarshalTexObject(a.Desc)
	if err != nil {
		ss.errText = err.Error()
		return abi.ResultOf(err)
	}
	ext, _ := d.Extent() // Validate checked it does not overflow
	if code := ss.checkRange(d.Ptr, ext); code != abi.Success {
		return code
	}
	tm, ok := ss.ctx.(gpu.TextureObjects)
	if !ok {
		ss.errText = "this device does not serve texture and surface objects"
		return abi.ErrNotSupported
	}
	if len(ss.texObjects) >= maxTexObjects {
		return abi.ErrOutOfMemory
	}
	obj, err := tm.TexObjectCreate(d)
	if err != nil {
		return abi.ResultOf(err)
	}
	if ss.texObjects == nil {
		ss.texObjects = make(map[uint64]bool)
	}
	ss.texObjects[obj] = d.Surface
	ss.res.Word(obj)
	return abi.Success
}

// texObjectDestroy destroys an object of the session's, of the kind named.
func (ss *session) texObjectDestroy(a wire.TexObjectDestroyArgs) abi.Result {
	surface, ok := ss.texObjects[a.Object]
	if !ok || surface != (a.Surface != 0) || a.Surface > 1 {
		return abi.ErrInvalidValue
	}
	delete(ss.texObjects, a.Object)
	return abi.ResultOf(ss.ctx.(gpu.TextureObjects).TexObjectDestroy(a.Object, surface))
}
