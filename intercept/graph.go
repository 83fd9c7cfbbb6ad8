package main

import (
	"sync"

	"github.com/kerf-edge/kerf/abi"
)

// CUDA graphs live in the shim. A node is the stream work it stands for,
// kept as a function that issues that work's catalogue calls into a
// given stream; a graph launch issues its nodes one after another into
// the launch's stream, in an order that keeps every dependency. kerfd
// and the backends see ordinary stream work. Stream capture records the
// work a capturing stream is given as nodes instead of issuing it.

// nodeType is a CUgraphNodeType.
type nodeType int32

const (
	nodeKernel nodeType = 0
	nodeMemcpy nodeType = 1
	nodeMemset nodeType = 2
	nodeHost   nodeType = 3
	nodeGraph  nodeType = 4
	nodeEmpty  nodeType = 5
)

// streamWork issues one node's work into stream s of dv.
type streamWork func(dv *device, s uint64) Result

type graphNode struct {
	key  uintptr
	mem  cmem
	typ  nodeType
	dev  *device // nil for an empty node
	deps []*graphNode
	run  streamWork // nil for an empty node
	// kernel is a kernel node's launch (cuGraphKernelNodeGetParams);
	// params is the C memory its kernelParams were last returned in.
	kernel *kernelSpec
	params cmem
}

type graph struct {
	key   uintptr
	mem   cmem
	nodes []*graphNode
}

// graphExec is an instantiated graph: its nodes' work in launch order,
// taken when it was instantiated, so that later changes to the graph do
// not reach it. steps is replaced, never changed in place, so that a
// launch may replay the steps it took under graphs.mu.
type graphExec struct {
	key   uintptr
	mem   cmem
	dev   *device
	steps []execStep
	// index is the step of each node of the graph it was made from,
	// stepOf the same by the node's index in that graph, and shape that
	// graph's topology, for cuGraphExecUpdate.
	index  map[*graphNode]int
	stepOf []int
	shape  []nodeShape
}

// execStep is one node's work in an executable graph.
type execStep struct {
	typ nodeType
	run streamWork // nil for an empty node
}

// Capture modes (CUstreamCaptureMode) and statuses.
const (
	captureGlobal      = 0
	captureThreadLocal = 1
	captureRelaxed     = 2

	captureNone        = 0
	captureActive      = 1
	captureInvalidated = 2
)

// capture is one capture sequence: begun on origin, joined by the streams
// that waited on an event recorded in it.
type capture struct {
	id      uint64
	g       *graph
	dev     *device
	mode    uint32
	thread  uintptr
	origin  uintptr
	invalid bool
	tails   map[uintptr][]*graphNode // each stream's last nodes
	depsMem cmem                     // the array cuStreamGetCaptureInfo_v2 last returned
}

// capturedEvent is an event recorded in a capturing stream: the nodes a
// stream that waits on it comes after.
type capturedEvent struct {
	c    *capture
	deps []*graphNode
}

// graphs holds every graph, node, executable graph and capture. Lock
// order: graphs.mu before driver.mu.
var graphs = struct {
	mu         sync.Mutex
	graphs     map[uintptr]*graph
	nodes      map[uintptr]*graphNode
	execs      map[uintptr]*graphExec
	byStream   map[uintptr]*capture
	events     map[uintptr]capturedEvent
	threadMode map[uintptr]uint32
	lastID     uint64
}{
	graphs: map[uintptr]*graph{}, nodes: map[uintptr]*graphNode{}, execs: map[uintptr]*graphExec{},
	byStream: map[uintptr]*capture{}, events: map[uintptr]capturedEvent{}, threadMode: map[uintptr]uint32{},
}

// isDefaultStream reports whether key names the default stream.
func isDefaultStream(key uintptr) bool {
	return key == 0 || key == streamLegacy || key == streamPerThread
}

// submit issues work into stream key (resolved to dv and s), or records
// it as a node when the stream is capturing.
func submit(key uintptr, dv *device, s uint64, typ nodeType, work streamWork) Result {
	return submitNode(key, dv, s, typ, work, nil)
}

// submitNode is submit, keeping a kernel node's launch k.
func submitNode(key uintptr, dv *device, s uint64, typ nodeType, work streamWork, k *kernelSpec) Result {
	if !isDefaultStream(key) {
		graphs.mu.Lock()
		c := graphs.byStream[key]
		if c != nil {
			defer graphs.mu.Unlock()
			return c.record(key, dv, typ, work, k)
		}
		graphs.mu.Unlock()
	}
	return work(dv, s)
}

// record appends a node to c's graph after stream key's last nodes.
// graphs.mu is held.
func (c *capture) record(key uintptr, dv *device, typ nodeType, work streamWork, k *kernelSpec) Result {
	if c.invalid {
		return abi.ErrStreamCaptureInvalidated
	}
	if dv != c.dev {
		c.invalid = true
		return abi.ErrStreamCaptureIsolation
	}
	n, res := newNodeLocked(c.g, typ, dv, c.tails[key], work)
	if res != abi.Success {
		c.invalid = true
		return res
	}
	n.kernel = k
	c.tails[key] = []*graphNode{n}
	return abi.Success
}

// newNodeLocked adds a node to g. graphs.mu is held.
func newNodeLocked(g *graph, typ nodeType, dv *device, deps []*graphNode, work streamWork) (*graphNode, Result) {
	mem, key := newHandleMem()
	if key == 0 {
		return nil, abi.ErrOutOfMemory
	}
	n := &graphNode{key: key, mem: mem, typ: typ, dev: dv, deps: append([]*graphNode(nil), deps...), run: work}
	g.nodes = append(g.nodes, n)
	graphs.nodes[key] = n
	return n, abi.Success
}

// captureOf returns the capture stream key takes part in, or nil.
func captureOf(key uintptr) *capture {
	if isDefaultStream(key) {
		return nil
	}
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	return graphs.byStream[key]
}

// refuseInCapture answers a call that a capturing stream cannot take
// (synchronising or querying it): the capture is spoiled.
func refuseInCapture(key uintptr) Result {
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	if c := graphs.byStream[key]; c != nil {
		c.invalid = true
		return abi.ErrStreamCaptureUnsupported
	}
	return abi.Success
}

// legacyStreamUse checks work on dv's legacy default stream: it would
// wait for every blocking stream, so a blocking stream that is capturing
// refuses it and its capture is spoiled.
func legacyStreamUse(dv *device) Result {
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	if len(graphs.byStream) == 0 {
		return abi.Success
	}
	res := abi.Success
	for key, c := range graphs.byStream {
		if c.dev == dv && !nonBlockingStream(key) {
			c.invalid = true
			res = abi.ErrStreamCaptureImplicit
		}
	}
	return res
}

// unsafeInCapture checks a call CUDA calls potentially unsafe during
// capture (allocating, freeing, synchronising the context), by the
// calling thread's capture mode: refused, and the capture spoiled, while
// this thread captures in a mode other than relaxed, or (in global mode)
// while another thread captures in global mode.
func unsafeInCapture() Result {
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	if len(graphs.byStream) == 0 {
		return abi.Success
	}
	me := threadID()
	mode := graphs.threadMode[me]
	if mode == captureRelaxed {
		return abi.Success
	}
	res := abi.Success
	for _, c := range graphs.byStream {
		if c.invalid {
			continue
		}
		if c.thread == me && c.mode != captureRelaxed || mode == captureGlobal && c.thread != me && c.mode == captureGlobal {
			c.invalid = true
			res = abi.ErrStreamCaptureUnsupported
		}
	}
	return res
}

func beginCapture(key uintptr, mode uint32) Result {
	if mode > captureRelaxed {
		return abi.ErrInvalidValue
	}
	if isDefaultStream(key) {
		return abi.ErrStreamCaptureUnsupported
	}
	dv, _, res := resolveStream(key)
	if res != abi.Success {
		return res
	}
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	if graphs.byStream[key] != nil {
		return abi.ErrIllegalState
	}
	g, res := newGraphLocked()
	if res != abi.Success {
		return res
	}
	graphs.lastID++
	graphs.byStream[key] = &capture{id: graphs.lastID, g: g, dev: dv, mode: mode, thread: threadID(), origin: key,
		tails: map[uintptr][]*graphNode{key: nil}}
	return abi.Success
}

// endCapture ends the capture begun on key and returns its graph, or
// nil with the error that spoiled it.
func endCapture(key uintptr) (*graph, Result) {
	if _, _, res := resolveStream(key); res != abi.Success {
		return nil, res
	}
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	c := graphs.byStream[key]
	switch {
	case c == nil:
		return nil, abi.ErrIllegalState
	case c.origin != key:
		c.invalid = true
		return nil, abi.ErrStreamCaptureUnmatched
	case c.mode != captureRelaxed && c.thread != threadID():
		return nil, abi.ErrStreamCaptureWrongThread
	}
	unjoined := c.unjoined()
	for k, other := range graphs.byStream {
		if other == c {
			delete(graphs.byStream, k)
		}
	}
	for k, e := range graphs.events {
		if e.c == c {
			delete(graphs.events, k)
		}
	}
	if c.depsMem != nil {
		freeHostMem(c.depsMem)
	}
	res := abi.Success
	switch {
	case c.invalid:
		res = abi.ErrStreamCaptureInvalidated
	case unjoined:
		res = abi.ErrStreamCaptureUnjoined
	}
	if res != abi.Success {
		destroyGraphLocked(c.g)
		return nil, res
	}
	return c.g, abi.Success
}

// unjoined reports whether a stream that joined c has work the origin's
// last nodes do not come after. graphs.mu is held.
func (c *capture) unjoined() bool {
	seen := map[*graphNode]bool{}
	var walk func(n *graphNode)
	walk = func(n *graphNode) {
		if seen[n] {
			return
		}
		seen[n] = true
		for _, d := range n.deps {
			walk(d)
		}
	}
	for _, n := range c.tails[c.origin] {
		walk(n)
	}
	for k, tail := range c.tails {
		for _, n := range tail {
			if k != c.origin && !seen[n] {
				return true
			}
		}
	}
	return false
}

// captureStatus returns key's capture status and sequence id; for the
// legacy stream, ErrStreamCaptureImplicit while a blocking stream of its
// device captures.
func captureStatus(key uintptr) (status uint32, c *capture, res Result) {
	dv, _, res := resolveStream(key)
	if res != abi.Success {
		return 0, nil, res
	}
	if isDefaultStream(key) {
		graphs.mu.Lock()
		defer graphs.mu.Unlock()
		for k, c := range graphs.byStream {
			if c.dev == dv && !nonBlockingStream(k) {
				return 0, nil, abi.ErrStreamCaptureImplicit
			}
		}
		return captureNone, nil, abi.Success
	}
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	c = graphs.byStream[key]
	switch {
	case c == nil:
		return captureNone, nil, abi.Success
	case c.invalid:
		return captureInvalidated, c, abi.Success
	}
	return captureActive, c, abi.Success
}

func exchangeCaptureMode(mode uint32) (uint32, Result) {
	if mode > captureRelaxed {
		return 0, abi.ErrInvalidValue
	}
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	me := threadID()
	old := graphs.threadMode[me]
	if mode == captureGlobal {
		delete(graphs.threadMode, me)
	} else {
		graphs.threadMode[me] = mode
	}
	return old, abi.Success
}

// captureEventRecord records event ekey in capturing stream skey: no
// work, only the point a stream that waits on it joins the capture at.
// It returns false when skey is not capturing.
func captureEventRecord(ekey, skey uintptr) (bool, Result) {
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	c := graphs.byStream[skey]
	if c == nil {
		delete(graphs.events, ekey)
		return false, abi.Success
	}
	if c.invalid {
		return true, abi.ErrStreamCaptureInvalidated
	}
	graphs.events[ekey] = capturedEvent{c: c, deps: append([]*graphNode(nil), c.tails[skey]...)}
	return true, abi.Success
}

// captureStreamWait makes stream skey wait for event ekey when either
// takes part in a capture; it returns false when neither does.
func captureStreamWait(skey, ekey uintptr) (bool, Result) {
	if isDefaultStream(skey) {
		return false, abi.Success
	}
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	e, recorded := graphs.events[ekey]
	c := graphs.byStream[skey]
	switch {
	case !recorded && c == nil:
		return false, abi.Success
	case !recorded:
		// An event recorded outside capture: its work came before the
		// capture began, so the graph needs no dependency on it.
		return true, abi.Success
	case c == nil:
		graphs.byStream[skey] = e.c
		e.c.tails[skey] = append([]*graphNode(nil), e.deps...)
		return true, abi.Success
	case c != e.c:
		c.invalid, e.c.invalid = true, true
		return true, abi.ErrStreamCaptureMerge
	}
	c.tails[skey] = appendNew(c.tails[skey], e.deps)
	return true, abi.Success
}

// capturedEventUse refuses waiting for or querying an event recorded in a
// capture that is still going.
func capturedEventUse(ekey uintptr) Result {
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	if _, ok := graphs.events[ekey]; ok {
		return abi.ErrCapturedEvent
	}
	return abi.Success
}

func appendNew(to, from []*graphNode) []*graphNode {
	for _, n := range from {
		dup := false
		for _, m := range to {
			dup = dup || m == n
		}
		if !dup {
			to = append(to, n)
		}
	}
	return to
}

// Graphs built node by node.

func newGraphLocked() (*graph, Result) {
	mem, key := newHandleMem()
	if key == 0 {
		return nil, abi.ErrOutOfMemory
	}
	g := &graph{key: key, mem: mem}
	graphs.graphs[key] = g
	return g, abi.Success
}

func graphCreate(flags uint32) (*graph, Result) {
	if _, res := drv.ready(); res != abi.Success {
		return nil, res
	}
	if flags != 0 {
		return nil, abi.ErrInvalidValue
	}
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	return newGraphLocked()
}

// destroyGraphLocked frees g and its nodes' handles. graphs.mu is held.
func destroyGraphLocked(g *graph) {
	for _, n := range g.nodes {
		delete(graphs.nodes, n.key)
		freeHandleMem(n.mem)
		freeParamsMem(n.params)
	}
	delete(graphs.graphs, g.key)
	freeHandleMem(g.mem)
}

func graphDestroy(key uintptr) Result {
	if _, res := drv.ready(); res != abi.Success {
		return res
	}
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	g := graphs.graphs[key]
	if g == nil {
		return abi.ErrInvalidValue
	}
	for _, c := range graphs.byStream {
		if c.g == g {
			return abi.ErrIllegalState // still being captured into
		}
	}
	destroyGraphLocked(g)
	return abi.Success
}

// addNode adds a node to graph gkey after the nodes depKeys.
func addNode(gkey uintptr, depKeys []uintptr, typ nodeType, dv *device, work streamWork, k *kernelSpec) (*graphNode, Result) {
	if _, res := drv.ready(); res != abi.Success {
		return nil, res
	}
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	g := graphs.graphs[gkey]
	if g == nil {
		return nil, abi.ErrInvalidValue
	}
	deps, res := nodesOfLocked(g, depKeys)
	if res != abi.Success {
		return nil, res
	}
	n, res := newNodeLocked(g, typ, dv, deps, work)
	if res == abi.Success {
		n.kernel = k
	}
	return n, res
}

// nodesOfLocked resolves node handles of g; a repeated or foreign one is
// refused. graphs.mu is held.
func nodesOfLocked(g *graph, keys []uintptr) ([]*graphNode, Result) {
	out := make([]*graphNode, 0, len(keys))
	for _, k := range keys {
		n := graphs.nodes[k]
		if n == nil || !g.holds(n) {
			return nil, abi.ErrInvalidValue
		}
		for _, m := range out {
			if m == n {
				return nil, abi.ErrInvalidValue
			}
		}
		out = append(out, n)
	}
	return out, abi.Success
}

func (g *graph) holds(n *graphNode) bool {
	for _, m := range g.nodes {
		if m == n {
			return true
		}
	}
	return false
}

// addDependencies makes each to[i] come after from[i].
func addDependencies(gkey uintptr, from, to []uintptr) Result {
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	g := graphs.graphs[gkey]
	if g == nil || len(from) != len(to) {
		return abi.ErrInvalidValue
	}
	for i := range from {
		f, res := nodesOfLocked(g, from[i:i+1])
		if res != abi.Success {
			return res
		}
		t, res := nodesOfLocked(g, to[i:i+1])
		if res != abi.Success || f[0] == t[0] {
			return abi.ErrInvalidValue
		}
		t[0].deps = appendNew(t[0].deps, f)
	}
	return abi.Success
}

// childGraphWork returns the work of a copy of graph gkey, for a child
// graph node: later changes to the child do not reach the node.
func childGraphWork(gkey uintptr) (*device, streamWork, Result) {
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	g := graphs.graphs[gkey]
	if g == nil {
		return nil, nil, abi.ErrInvalidValue
	}
	x, res := orderLocked(g)
	if res != abi.Success {
		return nil, nil, res
	}
	steps := x.steps
	return x.dev, func(dv *device, s uint64) Result { return replay(steps, dv, s) }, abi.Success
}

// graphNodes returns g's nodes, or its root nodes.
func graphNodes(gkey uintptr, rootsOnly bool) ([]uintptr, Result) {
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	g := graphs.graphs[gkey]
	if g == nil {
		return nil, abi.ErrInvalidValue
	}
	var out []uintptr
	for _, n := range g.nodes {
		if !rootsOnly || len(n.deps) == 0 {
			out = append(out, n.key)
		}
	}
	return out, abi.Success
}

func nodeInfo(key uintptr) (nodeType, []uintptr, Result) {
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	n := graphs.nodes[key]
	if n == nil {
		return 0, nil, abi.ErrInvalidValue
	}
	deps := make([]uintptr, len(n.deps))
	for i, d := range n.deps {
		deps[i] = d.key
	}
	return n.typ, deps, abi.Success
}

// Instantiating and launching.

// orderLocked puts g's nodes in an order that keeps every dependency,
// earliest-added first among the ready ones; a cycle is refused.
func orderLocked(g *graph) (*graphExec, Result) {
	x := &graphExec{index: make(map[*graphNode]int, len(g.nodes)), shape: shapeOf(g)}
	done := make(map[*graphNode]bool, len(g.nodes))
	for len(x.steps) < len(g.nodes) {
		progress := false
		for _, n := range g.nodes {
			if done[n] || !allDone(n.deps, done) {
				continue
			}
			if n.dev != nil {
				if x.dev != nil && x.dev != n.dev {
					return nil, abi.ErrInvalidValue // one graph, one device
				}
				x.dev = n.dev
			}
			done[n] = true
			x.index[n] = len(x.steps)
			x.steps = append(x.steps, execStep{typ: n.typ, run: n.run})
			progress = true
		}
		if !progress {
			return nil, abi.ErrInvalidValue
		}
	}
	x.stepOf = make([]int, len(g.nodes))
	for i, n := range g.nodes {
		x.stepOf[i] = x.index[n]
	}
	return x, abi.Success
}

func allDone(deps []*graphNode, done map[*graphNode]bool) bool {
	for _, d := range deps {
		if !done[d] {
			return false
		}
	}
	return true
}

func graphInstantiate(gkey uintptr) (*graphExec, Result) {
	if _, res := drv.ready(); res != abi.Success {
		return nil, res
	}
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	g := graphs.graphs[gkey]
	if g == nil {
		return nil, abi.ErrInvalidValue
	}
	x, res := orderLocked(g)
	if res != abi.Success {
		return nil, res
	}
	mem, key := newHandleMem()
	if key == 0 {
		return nil, abi.ErrOutOfMemory
	}
	x.key, x.mem = key, mem
	graphs.execs[key] = x
	return x, abi.Success
}

func graphExecDestroy(key uintptr) Result {
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	x := graphs.execs[key]
	if x == nil {
		return abi.ErrInvalidValue
	}
	delete(graphs.execs, key)
	freeHandleMem(x.mem)
	return abi.Success
}

// replay issues an executable graph's steps into stream s of dv. Work
// after a host node waits for it, as any stream work does.
func replay(steps []execStep, dv *device, s uint64) Result {
	for _, n := range steps {
		if n.run == nil {
			continue
		}
		if n.typ != nodeHost {
			waitHostCalls(dv, s)
		}
		if res := n.run(dv, s); res != abi.Success {
			return res
		}
	}
	return abi.Success
}

// graphLaunch launches x into stream key; upload only checks it could.
func graphLaunch(xkey, skey uintptr, upload bool) Result {
	if _, res := drv.ready(); res != abi.Success {
		return res
	}
	graphs.mu.Lock()
	x := graphs.execs[xkey]
	var steps []execStep
	if x != nil {
		steps = x.steps
	}
	graphs.mu.Unlock()
	if x == nil {
		return abi.ErrInvalidValue
	}
	dv, s, res := streamOf(skey)
	if res != abi.Success {
		return res
	}
	if isDefaultStream(skey) {
		if res := legacyStreamUse(dv); res != abi.Success {
			return res
		}
	}
	if x.dev != nil && x.dev != dv {
		return abi.ErrInvalidValue
	}
	if upload {
		return abi.Success
	}
	return submit(skey, dv, s, nodeGraph, func(dv *device, s uint64) Result { return replay(steps, dv, s) })
}

// nonBlockingStream reports whether stream key was created with
// CU_STREAM_NON_BLOCKING: such a stream does not wait for the legacy
// default stream, nor it for them.
func nonBlockingStream(key uintptr) bool {
	o, ok := drv.lookup(key, kindStream)
	return ok && o.streamFlags&abi.StreamNonBlocking != 0
}

// captureInfo returns what cuStreamGetCaptureInfo reports of stream key:
// its status and, while it captures, the sequence id, the graph and the
// nodes its next work will follow.
func captureInfo(key uintptr) (status uint32, id uint64, g uintptr, deps []uintptr, res Result) {
	status, c, res := captureStatus(key)
	if res != abi.Success || c == nil {
		return status, 0, 0, nil, res
	}
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	for _, n := range c.tails[key] {
		deps = append(deps, n.key)
	}
	return status, c.id, c.g.key, deps, abi.Success
}

// keepCaptureDeps keeps the C array of dependencies last handed out for
// stream key's capture until the next one, or the capture's end.
func keepCaptureDeps(key uintptr, mem cmem) {
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	c := graphs.byStream[key]
	if c == nil {
		freeHostMem(mem)
		return
	}
	if c.depsMem != nil {
		freeHostMem(c.depsMem)
	}
	c.depsMem = mem
}
