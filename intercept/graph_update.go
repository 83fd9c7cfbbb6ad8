package main

import "github.com/kerf-edge/kerf/abi"

// Graph node parameters and updates of executable graphs. A graph's
// kernel node keeps its launch (a kernelSpec), which
// cuGraphKernelNodeGetParams returns and cuGraphKernelNodeSetParams
// replaces; an executable graph's step is replaced by
// cuGraphExec*NodeSetParams, named by the node of the graph it was
// instantiated from, and all of them by cuGraphExecUpdate from a graph
// of the same topology. Either way the graph and the executable graph
// stay independent of each other.

// The CUgraphExecUpdateResult values cuGraphExecUpdate reports.
const (
	updateSuccess         = 0
	updateError           = 1
	updateTopologyChanged = 2
	updateNodeTypeChanged = 3
)

// nodeShape is one node of a graph's topology: its type and its
// dependencies, by index in the graph's nodes.
type nodeShape struct {
	typ  nodeType
	deps []int
}

// shapeOf returns g's topology. graphs.mu is held.
func shapeOf(g *graph) []nodeShape {
	at := make(map[*graphNode]int, len(g.nodes))
	for i, n := range g.nodes {
		at[n] = i
	}
	out := make([]nodeShape, len(g.nodes))
	for i, n := range g.nodes {
		out[i].typ = n.typ
		for _, d := range n.deps {
			out[i].deps = append(out[i].deps, at[d])
		}
	}
	return out
}

// kernelNode returns kernel node nkey's launch.
func kernelNode(nkey uintptr) (*graphNode, *kernelSpec, Result) {
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	n := graphs.nodes[nkey]
	if n == nil || n.typ != nodeKernel || n.kernel == nil {
		return nil, nil, abi.ErrInvalidValue
	}
	return n, n.kernel, abi.Success
}

// setKernelNode gives kernel node nkey the launch k.
func setKernelNode(nkey uintptr, k *kernelSpec) Result {
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	n := graphs.nodes[nkey]
	if n == nil || n.typ != nodeKernel {
		return abi.ErrInvalidValue
	}
	if n.dev != nil && n.dev != k.f.dev {
		return abi.ErrInvalidValue // a node stays on its device
	}
	n.kernel, n.run = k, k.work()
	return abi.Success
}

// execSetStep gives the step of node nkey in executable graph xkey the
// work of a node of type typ on dv.
func execSetStep(xkey, nkey uintptr, typ nodeType, dv *device, work streamWork) Result {
	if _, res := drv.ready(); res != abi.Success {
		return res
	}
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	x := graphs.execs[xkey]
	n := graphs.nodes[nkey]
	if x == nil || n == nil {
		return abi.ErrInvalidValue
	}
	i, ok := x.index[n]
	if !ok || x.steps[i].typ != typ || x.dev != nil && dv != x.dev {
		return abi.ErrInvalidValue
	}
	steps := append([]execStep(nil), x.steps...)
	steps[i].run = work
	x.steps = steps
	return abi.Success
}

// execUpdate gives executable graph xkey the work of graph gkey's nodes,
// as cuGraphExecUpdate does: gkey must have the topology of the graph x
// was made from (nodes of the same types, in the same order, with the
// same dependencies) and its nodes' device. It returns the
// CUgraphExecUpdateResult and the node of gkey that could not be
// updated (0: none).
func execUpdate(xkey, gkey uintptr) (uint32, uintptr, Result) {
	if _, res := drv.ready(); res != abi.Success {
		return updateError, 0, res
	}
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	x := graphs.execs[xkey]
	g := graphs.graphs[gkey]
	if x == nil || g == nil {
		return updateError, 0, abi.ErrInvalidValue
	}
	failed := func(why uint32, n *graphNode) (uint32, uintptr, Result) {
		var k uintptr
		if n != nil {
			k = n.key
		}
		return why, k, abi.ErrGraphExecUpdateFailure
	}
	shape := shapeOf(g)
	if len(shape) != len(x.shape) {
		return failed(updateTopologyChanged, nil)
	}
	for i, s := range shape {
		if s.typ != x.shape[i].typ {
			return failed(updateNodeTypeChanged, g.nodes[i])
		}
		if !sameInts(s.deps, x.shape[i].deps) {
			return failed(updateTopologyChanged, g.nodes[i])
		}
		if n := g.nodes[i]; n.dev != nil && x.dev != nil && n.dev != x.dev {
			return failed(updateError, n)
		}
	}
	// Node i of gkey takes the place of node i of the old graph.
	steps := append([]execStep(nil), x.steps...)
	for i, n := range g.nodes {
		steps[x.stepOf[i]].run = n.run
	}
	x.steps = steps
	return updateSuccess, 0, abi.Success
}

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// nodeMem returns the handle memory of node k, nil for none.
func nodeMem(k uintptr) cmem {
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	if n := graphs.nodes[k]; n != nil {
		return n.mem
	}
	return nil
}
