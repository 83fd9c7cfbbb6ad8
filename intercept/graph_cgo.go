package main

// The stream-capture and graph entry points: argument conversion only;
// graph.go holds the logic.

/*
#include <stdlib.h>
#include "shim.h"

// kerf_thread_tag's address differs in every thread: the capture rules
// tell the program's threads apart by it.
static __thread char kerf_thread_tag;
static inline uintptr_t kerf_thread_id(void) { return (uintptr_t)&kerf_thread_tag; }
*/
import "C"

import (
	"unsafe"

	"github.com/kerf-edge/kerf/abi"
)

func threadID() uintptr { return uintptr(C.kerf_thread_id()) }

// maxGraphList bounds an array of node handles the program passes.
const maxGraphList = 1 << 20

// nodeKeys reads n node handles at p.
func nodeKeys(p *C.CUgraphNode, n C.size_t) ([]uintptr, Result) {
	if n == 0 {
		return nil, abi.Success
	}
	if p == nil || n > maxGraphList {
		return nil, abi.ErrInvalidValue
	}
	out := make([]uintptr, n)
	for i, h := range unsafe.Slice(p, int(n)) {
		out[i] = key(unsafe.Pointer(h))
	}
	return out, abi.Success
}

// writeNodes writes keys as the program's node array of capacity *n
// (NULL: report the count only), the rest NULL, and the count to *n.
func writeNodes(out *C.CUgraphNode, n *C.size_t, keys []uintptr, res Result) C.CUresult {
	if res != abi.Success {
		return cr(res)
	}
	if n == nil {
		return errNull
	}
	if out != nil {
		if *n > maxGraphList {
			return errNull
		}
		dst := unsafe.Slice(out, int(*n))
		for i := range dst {
			dst[i] = nil
			if i < len(keys) {
				dst[i] = C.CUgraphNode(addressPointer(keys[i]))
			}
		}
	}
	*n = C.size_t(len(keys))
	return 0
}

func implStreamBeginCapture(s C.CUstream, mode C.CUstreamCaptureMode) C.CUresult {
	return cr(beginCapture(key(unsafe.Pointer(s)), uint32(mode)))
}

func implStreamBeginCaptureV1(s C.CUstream) C.CUresult {
	return cr(beginCapture(key(unsafe.Pointer(s)), captureGlobal))
}

func implStreamEndCapture(s C.CUstream, pg *C.CUgraph) C.CUresult {
	if pg == nil {
		return errNull
	}
	*pg = nil
	g, res := endCapture(key(unsafe.Pointer(s)))
	if res == abi.Success {
		*pg = C.CUgraph(g.mem)
	}
	return cr(res)
}

func implStreamIsCapturing(s C.CUstream, status *C.CUstreamCaptureStatus) C.CUresult {
	if status == nil {
		return errNull
	}
	st, _, res := captureStatus(key(unsafe.Pointer(s)))
	if res == abi.Success {
		*status = C.CUstreamCaptureStatus(st)
	}
	return cr(res)
}

func implStreamGetCaptureInfoV1(s C.CUstream, status *C.CUstreamCaptureStatus, id *C.cuuint64_t) C.CUresult {
	return implStreamGetCaptureInfo(s, status, id, nil, nil, nil)
}

func implStreamGetCaptureInfo(s C.CUstream, status *C.CUstreamCaptureStatus, id *C.cuuint64_t, pg *C.CUgraph, deps **C.CUgraphNode, ndeps *C.size_t) C.CUresult {
	if status == nil {
		return errNull
	}
	k := key(unsafe.Pointer(s))
	st, cid, g, nodes, res := captureInfo(k)
	if res != abi.Success {
		return cr(res)
	}
	*status = C.CUstreamCaptureStatus(st)
	if st != captureActive {
		return 0
	}
	if id != nil {
		*id = C.cuuint64_t(cid)
	}
	if pg != nil {
		*pg = C.CUgraph(addressPointer(g))
	}
	if ndeps != nil {
		*ndeps = C.size_t(len(nodes))
	}
	if deps != nil {
		*deps = nil
		if len(nodes) > 0 {
			mem, at := hostMem(uint64(len(nodes)) * uint64(unsafe.Sizeof(C.CUgraphNode(nil))))
			if at == 0 {
				return cr(abi.ErrOutOfMemory)
			}
			arr := unsafe.Slice((*C.CUgraphNode)(mem), len(nodes))
			for i, n := range nodes {
				arr[i] = C.CUgraphNode(addressPointer(n))
			}
			keepCaptureDeps(k, mem)
			*deps = &arr[0]
		}
	}
	return 0
}

func implThreadExchangeStreamCaptureMode(mode *C.CUstreamCaptureMode) C.CUresult {
	if mode == nil {
		return errNull
	}
	old, res := exchangeCaptureMode(uint32(*mode))
	if res == abi.Success {
		*mode = C.CUstreamCaptureMode(old)
	}
	return cr(res)
}

func implGraphCreate(pg *C.CUgraph, flags C.uint) C.CUresult {
	if pg == nil {
		return errNull
	}
	g, res := graphCreate(uint32(flags))
	if res == abi.Success {
		*pg = C.CUgraph(g.mem)
	}
	return cr(res)
}

func implGraphDestroy(g C.CUgraph) C.CUresult { return cr(graphDestroy(key(unsafe.Pointer(g)))) }

// addNodeOut adds a node and writes its handle.
func addNodeOut(pn *C.CUgraphNode, g C.CUgraph, deps *C.CUgraphNode, n C.size_t, typ nodeType, dv *device, work streamWork) C.CUresult {
	return addNodeOutK(pn, g, deps, n, typ, dv, work, nil)
}

// addNodeOutK is addNodeOut keeping a kernel node's launch k.
func addNodeOutK(pn *C.CUgraphNode, g C.CUgraph, deps *C.CUgraphNode, n C.size_t, typ nodeType, dv *device, work streamWork, k *kernelSpec) C.CUresult {
	if pn == nil {
		return errNull
	}
	keys, res := nodeKeys(deps, n)
	if res != abi.Success {
		return cr(res)
	}
	node, res := addNode(key(unsafe.Pointer(g)), keys, typ, dv, work, k)
	if res == abi.Success {
		*pn = C.CUgraphNode(node.mem)
	}
	return cr(res)
}

func implGraphAddKernelNode(pn *C.CUgraphNode, g C.CUgraph, deps *C.CUgraphNode, n C.size_t, p *C.CUDA_KERNEL_NODE_PARAMS) C.CUresult {
	k, res := kernelNodeSpec(p)
	if res != abi.Success {
		return cr(res)
	}
	return addNodeOutK(pn, g, deps, n, nodeKernel, k.f.dev, k.work(), k)
}

// kernelNodeSpec checks a kernel node's parameters and packs them.
func kernelNodeSpec(p *C.CUDA_KERNEL_NODE_PARAMS) (*kernelSpec, Result) {
	if p == nil {
		return nil, abi.ErrInvalidValue
	}
	if _, res := drv.ready(); res != abi.Success {
		return nil, res
	}
	f, ok := drv.lookup(key(unsafe.Pointer(p._func)), kindFunction)
	if !ok {
		return nil, abi.ErrInvalidHandle
	}
	src, res := paramsOf(p.kernelParams, p.extra)
	if res != abi.Success {
		return nil, res
	}
	return kernelSpecOf(f, abi.Dim3{X: uint32(p.gridDimX), Y: uint32(p.gridDimY), Z: uint32(p.gridDimZ)},
		abi.Dim3{X: uint32(p.blockDimX), Y: uint32(p.blockDimY), Z: uint32(p.blockDimZ)}, uint32(p.sharedMemBytes), src, false)
}

// nodeDevice is the device of a node's context: ctx, or the current one.
func nodeDevice(ctx C.CUcontext) (*device, Result) {
	if ctx == nil {
		return currentDevice()
	}
	if _, res := drv.ready(); res != abi.Success {
		return nil, res
	}
	o, ok := drv.lookup(key(unsafe.Pointer(ctx)), kindContext)
	if !ok {
		return nil, abi.ErrInvalidContext
	}
	return o.dev, abi.Success
}

func implGraphAddMemcpyNode(pn *C.CUgraphNode, g C.CUgraph, deps *C.CUgraphNode, n C.size_t, p *C.CUDA_MEMCPY3D, ctx C.CUcontext) C.CUresult {
	if p == nil {
		return errNull
	}
	dv, work, res := memcpyNodeWork(p, ctx)
	if res != abi.Success {
		return cr(res)
	}
	return addNodeOut(pn, g, deps, n, nodeMemcpy, dv, work)
}

// memcpyNodeWork checks a memcpy node's copy and returns its work.
func memcpyNodeWork(p *C.CUDA_MEMCPY3D, ctx C.CUcontext) (*device, streamWork, Result) {
	if p == nil {
		return nil, nil, abi.ErrInvalidValue
	}
	dv, res := nodeDevice(ctx)
	if res != abi.Success {
		return nil, nil, res
	}
	c, src, dst := copy3DOf(p)
	unifiedEnds(&c, src, dst)
	if res := c.check(dv, src, dst); res != abi.Success {
		return nil, nil, res
	}
	return dv, func(dv *device, s uint64) Result { return c.run(dv, s, true) }, abi.Success
}

func implGraphAddMemsetNode(pn *C.CUgraphNode, g C.CUgraph, deps *C.CUgraphNode, n C.size_t, p *C.CUDA_MEMSET_NODE_PARAMS, ctx C.CUcontext) C.CUresult {
	if p == nil {
		return errNull
	}
	dv, work, res := memsetNodeWork(p, ctx)
	if res != abi.Success {
		return cr(res)
	}
	return addNodeOut(pn, g, deps, n, nodeMemset, dv, work)
}

// memsetNodeWork checks a memset node's parameters and returns its work.
func memsetNodeWork(p *C.CUDA_MEMSET_NODE_PARAMS, ctx C.CUcontext) (*device, streamWork, Result) {
	if p == nil {
		return nil, nil, abi.ErrInvalidValue
	}
	dv, res := nodeDevice(ctx)
	if res != abi.Success {
		return nil, nil, res
	}
	if p.elementSize != 1 && p.elementSize != 2 && p.elementSize != 4 {
		return nil, nil, abi.ErrInvalidValue
	}
	work, res := memsetWork(uint64(p.dst), uint64(p.pitch), uint32(p.value), uint32(p.elementSize), uint64(p.width), uint64(p.height), true)
	return dv, work, res
}

func implGraphAddHostNode(pn *C.CUgraphNode, g C.CUgraph, deps *C.CUgraphNode, n C.size_t, p *C.CUDA_HOST_NODE_PARAMS) C.CUresult {
	if p == nil || p.fn == nil {
		return errNull
	}
	c := hostCall{fn: uintptr(unsafe.Pointer(p.fn)), data: uintptr(p.userData)}
	return addNodeOut(pn, g, deps, n, nodeHost, nil, func(dv *device, s uint64) Result { return queueHostCall(dv, s, c) })
}

func implGraphAddEmptyNode(pn *C.CUgraphNode, g C.CUgraph, deps *C.CUgraphNode, n C.size_t) C.CUresult {
	return addNodeOut(pn, g, deps, n, nodeEmpty, nil, nil)
}

func implGraphAddChildGraphNode(pn *C.CUgraphNode, g C.CUgraph, deps *C.CUgraphNode, n C.size_t, child C.CUgraph) C.CUresult {
	dv, work, res := childGraphWork(key(unsafe.Pointer(child)))
	if res != abi.Success {
		return cr(res)
	}
	return addNodeOut(pn, g, deps, n, nodeGraph, dv, work)
}

func implGraphAddDependencies(g C.CUgraph, from, to *C.CUgraphNode, n C.size_t) C.CUresult {
	f, res := nodeKeys(from, n)
	if res != abi.Success {
		return cr(res)
	}
	t, res := nodeKeys(to, n)
	if res != abi.Success {
		return cr(res)
	}
	return cr(addDependencies(key(unsafe.Pointer(g)), f, t))
}

func implGraphGetNodes(g C.CUgraph, nodes *C.CUgraphNode, n *C.size_t) C.CUresult {
	keys, res := graphNodes(key(unsafe.Pointer(g)), false)
	return writeNodes(nodes, n, keys, res)
}

func implGraphGetRootNodes(g C.CUgraph, nodes *C.CUgraphNode, n *C.size_t) C.CUresult {
	keys, res := graphNodes(key(unsafe.Pointer(g)), true)
	return writeNodes(nodes, n, keys, res)
}

func implGraphNodeGetType(node C.CUgraphNode, t *C.CUgraphNodeType) C.CUresult {
	if t == nil {
		return errNull
	}
	typ, _, res := nodeInfo(key(unsafe.Pointer(node)))
	if res == abi.Success {
		*t = C.CUgraphNodeType(typ)
	}
	return cr(res)
}

func implGraphNodeGetDependencies(node C.CUgraphNode, deps *C.CUgraphNode, n *C.size_t) C.CUresult {
	_, keys, res := nodeInfo(key(unsafe.Pointer(node)))
	return writeNodes(deps, n, keys, res)
}

func implGraphInstantiate(px *C.CUgraphExec, g C.CUgraph, errNode *C.CUgraphNode, log *C.char, logSize C.size_t) C.CUresult {
	if errNode != nil {
		*errNode = nil
	}
	if log != nil && logSize > 0 {
		*log = 0
	}
	return implGraphInstantiateWithFlags(px, g, 0)
}

func implGraphInstantiateWithFlags(px *C.CUgraphExec, g C.CUgraph, flags C.cuuint64_t) C.CUresult {
	if px == nil {
		return errNull
	}
	// Auto-free-on-launch (1) concerns graph memory nodes, which no graph
	// here has; device launch (4) and priorities (8) are not offered.
	if flags&^1 != 0 {
		return cr(abi.ErrNotSupported)
	}
	x, res := graphInstantiate(key(unsafe.Pointer(g)))
	if res == abi.Success {
		*px = C.CUgraphExec(x.mem)
	}
	return cr(res)
}

func implGraphLaunch(x C.CUgraphExec, s C.CUstream) C.CUresult {
	return cr(graphLaunch(key(unsafe.Pointer(x)), key(unsafe.Pointer(s)), false))
}

func implGraphUpload(x C.CUgraphExec, s C.CUstream) C.CUresult {
	return cr(graphLaunch(key(unsafe.Pointer(x)), key(unsafe.Pointer(s)), true))
}

func implGraphExecDestroy(x C.CUgraphExec) C.CUresult {
	return cr(graphExecDestroy(key(unsafe.Pointer(x))))
}

func implGraphKernelNodeGetParams(node C.CUgraphNode, p *C.CUDA_KERNEL_NODE_PARAMS) C.CUresult {
	if p == nil {
		return errNull
	}
	if _, res := drv.ready(); res != abi.Success {
		return cr(res)
	}
	n, k, res := kernelNode(key(unsafe.Pointer(node)))
	if res != abi.Success {
		return cr(res)
	}
	layout, res := k.f.params()
	if res != abi.Success {
		return cr(res)
	}
	// kernelParams point into a copy of the packed parameters, which stays
	// until the next call for the node or the graph's destruction.
	ptrs := uintptr(len(layout)) * unsafe.Sizeof(uintptr(0))
	mem := C.malloc(C.size_t(ptrs + uintptr(len(k.params)) + 1))
	if mem == nil {
		return cr(abi.ErrOutOfMemory)
	}
	buf := unsafe.Slice((*byte)(unsafe.Add(mem, ptrs)), len(k.params))
	copy(buf, k.params)
	slots := unsafe.Slice((*unsafe.Pointer)(mem), len(layout))
	for i, pi := range layout {
		slots[i] = unsafe.Add(mem, ptrs+uintptr(pi.Offset))
	}
	graphs.mu.Lock()
	old := n.params
	n.params = mem
	graphs.mu.Unlock()
	freeParamsMem(old)
	*p = C.CUDA_KERNEL_NODE_PARAMS{_func: C.CUfunction(k.f.mem),
		gridDimX: C.uint(k.grid.X), gridDimY: C.uint(k.grid.Y), gridDimZ: C.uint(k.grid.Z),
		blockDimX: C.uint(k.block.X), blockDimY: C.uint(k.block.Y), blockDimZ: C.uint(k.block.Z),
		sharedMemBytes: C.uint(k.shared), kernelParams: (*unsafe.Pointer)(mem)}
	return cr(abi.Success)
}

// freeParamsMem frees what cuGraphKernelNodeGetParams returned.
func freeParamsMem(p cmem) {
	if p != nil {
		C.free(p)
	}
}

func implGraphKernelNodeSetParams(node C.CUgraphNode, p *C.CUDA_KERNEL_NODE_PARAMS) C.CUresult {
	k, res := kernelNodeSpec(p)
	if res != abi.Success {
		return cr(res)
	}
	return cr(setKernelNode(key(unsafe.Pointer(node)), k))
}

func implGraphExecKernelNodeSetParams(x C.CUgraphExec, node C.CUgraphNode, p *C.CUDA_KERNEL_NODE_PARAMS) C.CUresult {
	k, res := kernelNodeSpec(p)
	if res != abi.Success {
		return cr(res)
	}
	return cr(execSetStep(key(unsafe.Pointer(x)), key(unsafe.Pointer(node)), nodeKernel, k.f.dev, k.work()))
}

func implGraphExecMemcpyNodeSetParams(x C.CUgraphExec, node C.CUgraphNode, p *C.CUDA_MEMCPY3D, ctx C.CUcontext) C.CUresult {
	dv, work, res := memcpyNodeWork(p, ctx)
	if res != abi.Success {
		return cr(res)
	}
	return cr(execSetStep(key(unsafe.Pointer(x)), key(unsafe.Pointer(node)), nodeMemcpy, dv, work))
}

func implGraphExecMemsetNodeSetParams(x C.CUgraphExec, node C.CUgraphNode, p *C.CUDA_MEMSET_NODE_PARAMS, ctx C.CUcontext) C.CUresult {
	dv, work, res := memsetNodeWork(p, ctx)
	if res != abi.Success {
		return cr(res)
	}
	return cr(execSetStep(key(unsafe.Pointer(x)), key(unsafe.Pointer(node)), nodeMemset, dv, work))
}

// implGraphExecUpdateV1 is the CUDA 10.2 to 11.x form, which cudart 11
// asks for: the node that failed and why in two outputs.
func implGraphExecUpdateV1(x C.CUgraphExec, g C.CUgraph, errNode *C.CUgraphNode, result *C.CUgraphExecUpdateResult) C.CUresult {
	if errNode == nil || result == nil {
		return errNull
	}
	why, n, res := execUpdate(key(unsafe.Pointer(x)), key(unsafe.Pointer(g)))
	*result = C.CUgraphExecUpdateResult(why)
	*errNode = C.CUgraphNode(nodeMem(n))
	return cr(res)
}

func implGraphExecUpdate(x C.CUgraphExec, g C.CUgraph, info *C.CUgraphExecUpdateResultInfo) C.CUresult {
	if info == nil {
		return errNull
	}
	why, n, res := execUpdate(key(unsafe.Pointer(x)), key(unsafe.Pointer(g)))
	*info = C.CUgraphExecUpdateResultInfo{result: C.CUgraphExecUpdateResult(why), errorNode: C.CUgraphNode(nodeMem(n))}
	return cr(res)
}
