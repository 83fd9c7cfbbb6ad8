package main

/*
#cgo CFLAGS: -I${SRCDIR}/../abi/include -O2 -Wall
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"unsafe"

	"github.com/kerf-edge/kerf/abi"
)

// cmem is C memory the shim hands to the program: a handle's backing
// allocation or a pinned host buffer. Go holds it, never dereferences it.
type cmem = unsafe.Pointer

func newHandleMem() (cmem, uintptr) {
	p := C.kerf_handle_new()
	return p, uintptr(p)
}

func freeHandleMem(p cmem) { C.kerf_handle_free(p) }

func hostMem(size uint64) (cmem, uintptr) {
	p := C.kerf_host_alloc(C.size_t(size))
	return p, uintptr(p)
}

func freeHostMem(p cmem) { C.kerf_host_free(p) }

// The calling thread's context stack lives in C thread-local storage: an
// export runs on the program's thread, which cgo keeps for the call.

func currentKey() uintptr          { return uintptr(C.kerf_ctx_top()) }
func pushContext(p cmem) bool      { return C.kerf_ctx_push(p) == 0 }
func popContext() cmem             { return C.kerf_ctx_pop() }
func setContext(p cmem)            { C.kerf_ctx_set(p) }
func forgetContext(p cmem)         { C.kerf_ctx_forget(p) }
func registerAtExit()              { C.kerf_register_atexit() }
func procFn(i int) cmem            { return C.kerf_proc_fn(C.int(i)) }
func key(p unsafe.Pointer) uintptr { return uintptr(p) }

// maxHostSpan bounds a host buffer the shim will view: larger sizes are
// no process's memory, and would not fit in a Go slice.
const maxHostSpan = 1 << 46

// hostBytes views n bytes of the program's memory at p, which the program
// owns. ok is false for a NULL p with n > 0 or an impossible size.
func hostBytes(p unsafe.Pointer, n C.size_t) ([]byte, bool) {
	if n == 0 {
		return []byte{}, true
	}
	if p == nil || uint64(n) > maxHostSpan {
		return nil, false
	}
	return unsafe.Slice((*byte)(p), int(n)), true
}

// goString copies a NUL-terminated name of at most max bytes; ok is false
// when there is no NUL within max+1 bytes.
func goString(p *C.char, max int) (string, bool) {
	if p == nil {
		return "", false
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(p)), max+1)
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), true
		}
	}
	return "", false
}

// kernelParams packs from a kernelParams array.
type kernelParams struct{ p *unsafe.Pointer }

func (k kernelParams) pack(layout []abi.ParamInfo, total int) ([]byte, Result) {
	if len(layout) == 0 {
		return nil, abi.Success
	}
	offs := make([]uint32, len(layout))
	sizes := make([]uint32, len(layout))
	for i, l := range layout {
		offs[i], sizes[i] = l.Offset, l.Size
	}
	buf := make([]byte, total)
	if C.kerf_pack_params(k.p, C.int(len(layout)), (*C.uint32_t)(&offs[0]), (*C.uint32_t)(&sizes[0]), (*C.uchar)(&buf[0])) != 0 {
		return nil, abi.ErrInvalidValue
	}
	return buf, abi.Success
}

// extraParams packs from an `extra` list (CU_LAUNCH_PARAM_*).
type extraParams struct{ p *unsafe.Pointer }

func (e extraParams) pack(layout []abi.ParamInfo, total int) ([]byte, Result) {
	var buf unsafe.Pointer
	var size C.size_t
	if C.kerf_parse_extra(e.p, &buf, &size) != 0 {
		return nil, abi.ErrInvalidValue
	}
	if res := packExtra(uint64(size), total); res != abi.Success {
		return nil, res
	}
	if size == 0 {
		return nil, abi.Success
	}
	if buf == nil {
		return nil, abi.ErrInvalidValue
	}
	return C.GoBytes(buf, C.int(size)), abi.Success
}

// paramsOf picks the parameter source of a launch.
func paramsOf(kp, extra *unsafe.Pointer) (paramSource, Result) {
	switch {
	case kp != nil && extra != nil:
		return nil, abi.ErrInvalidValue
	case kp != nil:
		return kernelParams{kp}, abi.Success
	case extra != nil:
		return extraParams{extra}, abi.Success
	}
	return nil, abi.Success
}

// launchAttrs copies cuLaunchKernelEx's attributes.
func launchAttrs(cfg *C.CUlaunchConfig) ([]launchAttr, Result) {
	if cfg.numAttrs == 0 {
		return nil, abi.Success
	}
	if cfg.attrs == nil || cfg.numAttrs > 64 {
		return nil, abi.ErrInvalidValue
	}
	out := make([]launchAttr, cfg.numAttrs)
	for i := range out {
		var id C.int
		var vals [3]C.uint
		C.kerf_launch_attr(cfg.attrs, C.uint(i), &id, &vals[0])
		out[i] = launchAttr{id: int32(id), vals: [3]uint32{uint32(vals[0]), uint32(vals[1]), uint32(vals[2])}}
	}
	return out, abi.Success
}

// errStrings keeps cuGetErrorName and cuGetErrorString's answers alive for
// the life of the process, as the driver's are static.
var errStrings = map[[2]uint32]*C.char{}

func errorString(code uint32, which uint32, s string) *C.char {
	drv.mu.Lock()
	defer drv.mu.Unlock()
	k := [2]uint32{code, which}
	if p, ok := errStrings[k]; ok {
		return p
	}
	p := C.CString(s)
	errStrings[k] = p
	return p
}

// hostAt is the address off bytes into the host memory at p.
func hostAt(p cmem, off uint64) cmem { return unsafe.Add(p, off) }
