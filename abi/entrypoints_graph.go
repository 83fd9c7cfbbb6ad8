package abi

// shimLocalGraphs lists the stream-capture and graph entry points. The
// shim records a graph itself, from captured stream work or node by node,
// and launches it as the catalogue calls its nodes stand for, in an order
// that keeps every dependency; kerfd never sees a graph.
var shimLocalGraphs = []EntryPoint{
	{Name: "cuStreamBeginCapture", Since: 10000, Versions: []Version{{"_v2", 10010}}, PerThread: "_ptsz",
		Params: "CUstream hStream, CUstreamCaptureMode mode", PlainParams: "CUstream hStream"},
	{Name: "cuStreamEndCapture", Since: 10000, PerThread: "_ptsz", Params: "CUstream hStream, CUgraph *phGraph"},
	{Name: "cuStreamIsCapturing", Since: 10000, PerThread: "_ptsz", Params: "CUstream hStream, CUstreamCaptureStatus *captureStatus"},
	{Name: "cuStreamGetCaptureInfo", Since: 10010, Versions: []Version{{"_v2", 11030}}, PerThread: "_ptsz",
		Params:      "CUstream hStream, CUstreamCaptureStatus *captureStatus, cuuint64_t *id, CUgraph *graph, const CUgraphNode **dependencies, size_t *numDependencies",
		PlainParams: "CUstream hStream, CUstreamCaptureStatus *captureStatus, cuuint64_t *id"},
	{Name: "cuThreadExchangeStreamCaptureMode", Since: 10010, Params: "CUstreamCaptureMode *mode"},

	{Name: "cuGraphCreate", Since: 10000, Params: "CUgraph *phGraph, unsigned int flags"},
	{Name: "cuGraphDestroy", Since: 10000, Params: "CUgraph hGraph"},
	{Name: "cuGraphAddKernelNode", Since: 10000,
		Params: "CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies, size_t numDependencies, const CUDA_KERNEL_NODE_PARAMS *nodeParams"},
	{Name: "cuGraphAddMemcpyNode", Since: 10000,
		Params: "CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies, size_t numDependencies, const CUDA_MEMCPY3D *copyParams, CUcontext ctx"},
	{Name: "cuGraphAddMemsetNode", Since: 10000,
		Params: "CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies, size_t numDependencies, const CUDA_MEMSET_NODE_PARAMS *memsetParams, CUcontext ctx"},
	{Name: "cuGraphAddHostNode", Since: 10000,
		Params: "CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies, size_t numDependencies, const CUDA_HOST_NODE_PARAMS *nodeParams"},
	{Name: "cuGraphAddEmptyNode", Since: 10000,
		Params: "CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies, size_t numDependencies"},
	{Name: "cuGraphAddChildGraphNode", Since: 10000,
		Params: "CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies, size_t numDependencies, CUgraph childGraph"},
	{Name: "cuGraphAddDependencies", Since: 10000,
		Params: "CUgraph hGraph, const CUgraphNode *from, const CUgraphNode *to, size_t numDependencies"},
	{Name: "cuGraphGetNodes", Since: 10000, Params: "CUgraph hGraph, CUgraphNode *nodes, size_t *numNodes"},
	{Name: "cuGraphGetRootNodes", Since: 10000, Params: "CUgraph hGraph, CUgraphNode *rootNodes, size_t *numRootNodes"},
	{Name: "cuGraphNodeGetType", Since: 10000, Params: "CUgraphNode hNode, CUgraphNodeType *type"},
	{Name: "cuGraphNodeGetDependencies", Since: 10000, Params: "CUgraphNode hNode, CUgraphNode *dependencies, size_t *numDependencies"},
	{Name: "cuGraphInstantiate", Since: 10000, Versions: []Version{{"_v2", 11000}},
		Params: "CUgraphExec *phGraphExec, CUgraph hGraph, CUgraphNode *phErrorNode, char *logBuffer, size_t bufferSize"},
	{Name: "cuGraphInstantiateWithFlags", Since: 11040, Params: "CUgraphExec *phGraphExec, CUgraph hGraph, cuuint64_t flags"},
	{Name: "cuGraphLaunch", Since: 10000, PerThread: "_ptsz", Params: "CUgraphExec hGraphExec, CUstream hStream"},
	{Name: "cuGraphUpload", Since: 11010, PerThread: "_ptsz", Params: "CUgraphExec hGraphExec, CUstream hStream"},
	{Name: "cuGraphExecDestroy", Since: 10000, Params: "CUgraphExec hGraphExec"},
}
