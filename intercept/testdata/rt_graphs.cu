/* A CUDA-runtime program with graphs: stream capture across two streams
 * (kernels, copies, a memset and a host function recorded, not run, then
 * launched twice), the calls capture refuses, and a graph built node by
 * node (kernel, memcpy, memset, host and empty nodes with dependencies).
 * argv[1]: the slice's memory in bytes. */
#include "rt_common.h"
#include <string.h>

enum { N = 2048 };

__global__ void addScalar(int *p, int v) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < N)
		p[i] += v;
}

__global__ void twice(const int *in, int *out) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < N)
		out[i] = 2 * in[i];
}

static int hostRuns = 0;
static void CUDART_CB countRun(void *arg) { hostRuns += (int)(size_t)arg; }

static void expectAll(const int *p, int want, const char *what) {
	for (int i = 0; i < N; i++)
		if (p[i] != want)
			FAIL("%s: element %d = %d, want %d", what, i, p[i], want);
}

static void captured(void) {
	int *a, *b, *host;
	CHECK(cudaMalloc(&a, N * sizeof(int)));
	CHECK(cudaMalloc(&b, N * sizeof(int)));
	CHECK(cudaMallocHost(&host, N * sizeof(int)));
	for (int i = 0; i < N; i++)
		host[i] = 1;
	cudaStream_t s, side;
	CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
	CHECK(cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking));
	cudaEvent_t fork, join;
	CHECK(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming));
	CHECK(cudaEventCreateWithFlags(&join, cudaEventDisableTiming));

	cudaStreamCaptureStatus st;
	CHECK(cudaStreamIsCapturing(s, &st));
	EXPECT(st == cudaStreamCaptureStatusNone);
	CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
	CHECK(cudaStreamIsCapturing(s, &st));
	EXPECT(st == cudaStreamCaptureStatusActive);
	unsigned long long id = 0;
	CHECK(cudaStreamGetCaptureInfo(s, &st, &id));
	EXPECT(st == cudaStreamCaptureStatusActive && id != 0);

	/* a = host (1); a += 10; fork: b = 0 on the side stream; join; b = 2a; a += 5; host function */
	CHECK(cudaMemcpyAsync(a, host, N * sizeof(int), cudaMemcpyHostToDevice, s));
	addScalar<<<N / 256, 256, 0, s>>>(a, 10);
	CHECK(cudaGetLastError());
	CHECK(cudaEventRecord(fork, s));
	CHECK(cudaStreamWaitEvent(side, fork, 0));
	CHECK(cudaStreamIsCapturing(side, &st));
	EXPECT(st == cudaStreamCaptureStatusActive);
	CHECK(cudaMemsetAsync(b, 0, N * sizeof(int), side));
	CHECK(cudaEventRecord(join, side));
	CHECK(cudaStreamWaitEvent(s, join, 0));
	twice<<<N / 256, 256, 0, s>>>(a, b);
	addScalar<<<N / 256, 256, 0, s>>>(a, 5);
	CHECK(cudaLaunchHostFunc(s, countRun, (void *)1));

	/* Nothing ran: the memory is as it was. Synchronising a capturing
	 * stream is refused and spoils the capture. */
	if (hostRuns != 0)
		FAIL("the host function ran during capture");
	cudaGraph_t g;
	CHECK(cudaStreamEndCapture(s, &g));
	CHECK(cudaStreamIsCapturing(side, &st));
	EXPECT(st == cudaStreamCaptureStatusNone);
	size_t nodes = 0;
	CHECK(cudaGraphGetNodes(g, NULL, &nodes));
	if (nodes != 6)
		FAIL("captured graph has %zu nodes, want 6", nodes);
	int *back = (int *)malloc(N * sizeof(int));
	CHECK(cudaMemcpy(back, a, N * sizeof(int), cudaMemcpyDeviceToHost));
	for (int i = 0; i < N; i++)
		if (back[i] == 11 || back[i] == 16)
			FAIL("element %d = %d: captured work ran during capture", i, back[i]);

	cudaGraphExec_t exec;
	CHECK(cudaGraphInstantiate(&exec, g, NULL, NULL, 0));
	CHECK(cudaGraphLaunch(exec, s));
	CHECK(cudaStreamSynchronize(s));
	CHECK(cudaMemcpy(back, a, N * sizeof(int), cudaMemcpyDeviceToHost));
	expectAll(back, 16, "a after the first launch");
	CHECK(cudaMemcpy(back, b, N * sizeof(int), cudaMemcpyDeviceToHost));
	expectAll(back, 22, "b after the first launch");
	if (hostRuns != 1)
		FAIL("host function ran %d times after one launch", hostRuns);

	/* A second launch reads the host buffer as it is now. */
	for (int i = 0; i < N; i++)
		host[i] = 100;
	CHECK(cudaGraphLaunch(exec, s));
	CHECK(cudaGraphLaunch(exec, s));
	CHECK(cudaStreamSynchronize(s));
	CHECK(cudaMemcpy(back, b, N * sizeof(int), cudaMemcpyDeviceToHost));
	expectAll(back, 220, "b after the third launch");
	if (hostRuns != 3)
		FAIL("host function ran %d times after three launches", hostRuns);

	/* Calls capture refuses. */
	cudaGraph_t none;
	if (cudaStreamEndCapture(s, &none) != cudaErrorIllegalState)
		FAIL("ending a capture that never began did not give cudaErrorIllegalState");
	(void)cudaGetLastError();
	if (cudaStreamBeginCapture(0, cudaStreamCaptureModeGlobal) != cudaErrorStreamCaptureUnsupported)
		FAIL("capturing the legacy default stream was not refused");
	(void)cudaGetLastError();
	CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
	if (cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) != cudaErrorIllegalState)
		FAIL("a second capture of one stream was not refused");
	(void)cudaGetLastError();
	addScalar<<<N / 256, 256, 0, s>>>(a, 1);
	if (cudaStreamSynchronize(s) != cudaErrorStreamCaptureUnsupported)
		FAIL("synchronising a capturing stream was not refused");
	(void)cudaGetLastError();
	cudaGraph_t spoiled = NULL;
	if (cudaStreamEndCapture(s, &spoiled) != cudaErrorStreamCaptureInvalidated || spoiled != NULL)
		FAIL("a spoiled capture ended without cudaErrorStreamCaptureInvalidated");
	(void)cudaGetLastError();

	CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
	void *tmp = NULL;
	if (cudaMalloc(&tmp, 256) != cudaErrorStreamCaptureUnsupported)
		FAIL("cudaMalloc during a global capture was not refused");
	(void)cudaGetLastError();
	if (cudaStreamEndCapture(s, &spoiled) != cudaErrorStreamCaptureInvalidated)
		FAIL("cudaMalloc did not spoil the global capture");
	(void)cudaGetLastError();

	CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed));
	CHECK(cudaMalloc(&tmp, 256));
	CHECK(cudaStreamEndCapture(s, &spoiled));
	CHECK(cudaGraphDestroy(spoiled));
	CHECK(cudaFree(tmp));

	CHECK(cudaGraphExecDestroy(exec));
	CHECK(cudaGraphDestroy(g));
	CHECK(cudaEventDestroy(fork));
	CHECK(cudaEventDestroy(join));
	CHECK(cudaStreamDestroy(s));
	CHECK(cudaStreamDestroy(side));
	CHECK(cudaFree(a));
	CHECK(cudaFree(b));
	CHECK(cudaFreeHost(host));
	free(back);
}

static void built(void) {
	int *a, *b, *host = (int *)malloc(N * sizeof(int)), *back = (int *)malloc(N * sizeof(int));
	CHECK(cudaMalloc(&a, N * sizeof(int)));
	CHECK(cudaMalloc(&b, N * sizeof(int)));
	for (int i = 0; i < N; i++)
		host[i] = i;

	cudaGraph_t g;
	CHECK(cudaGraphCreate(&g, 0));
	cudaGraphNode_t set, copyIn, add, dbl, copyOut, host_, empty;

	cudaMemsetParams ms = {0};
	ms.dst = b;
	ms.value = 0;
	ms.elementSize = 4;
	ms.width = N;
	ms.height = 1;
	CHECK(cudaGraphAddMemsetNode(&set, g, NULL, 0, &ms));

	cudaMemcpy3DParms cp = {0};
	cp.srcPtr = make_cudaPitchedPtr(host, N * sizeof(int), N, 1);
	cp.dstPtr = make_cudaPitchedPtr(a, N * sizeof(int), N, 1);
	cp.extent = make_cudaExtent(N * sizeof(int), 1, 1);
	cp.kind = cudaMemcpyHostToDevice;
	CHECK(cudaGraphAddMemcpyNode(&copyIn, g, NULL, 0, &cp));

	int v = 3;
	void *addArgs[] = {&a, &v};
	cudaKernelNodeParams kp = {0};
	kp.func = (void *)addScalar;
	kp.gridDim = dim3(N / 256);
	kp.blockDim = dim3(256);
	kp.kernelParams = addArgs;
	CHECK(cudaGraphAddKernelNode(&add, g, &copyIn, 1, &kp));

	void *dblArgs[] = {&a, &b};
	kp.func = (void *)twice;
	kp.kernelParams = dblArgs;
	cudaGraphNode_t dblDeps[] = {add, set};
	CHECK(cudaGraphAddKernelNode(&dbl, g, dblDeps, 2, &kp));

	CHECK(cudaGraphAddMemcpyNode1D(&copyOut, g, &dbl, 1, back, b, N * sizeof(int), cudaMemcpyDeviceToHost));
	cudaHostNodeParams hp = {countRun, (void *)10};
	CHECK(cudaGraphAddHostNode(&host_, g, &copyOut, 1, &hp));
	CHECK(cudaGraphAddEmptyNode(&empty, g, &host_, 1));

	cudaGraphNodeType t;
	CHECK(cudaGraphNodeGetType(dbl, &t));
	EXPECT(t == cudaGraphNodeTypeKernel);
	CHECK(cudaGraphNodeGetType(host_, &t));
	EXPECT(t == cudaGraphNodeTypeHost);
	size_t roots = 0;
	CHECK(cudaGraphGetRootNodes(g, NULL, &roots));
	if (roots != 2)
		FAIL("built graph has %zu roots, want 2", roots);

	cudaGraphExec_t exec;
	CHECK(cudaGraphInstantiateWithFlags(&exec, g, 0));
	/* The kernel's arguments were copied when the node was added. */
	v = 1000;
	int before = hostRuns;
	CHECK(cudaGraphLaunch(exec, 0));
	CHECK(cudaDeviceSynchronize());
	for (int i = 0; i < N; i++)
		if (back[i] != 2 * (i + 3))
			FAIL("built graph: element %d = %d, want %d", i, back[i], 2 * (i + 3));
	if (hostRuns != before + 10)
		FAIL("built graph's host node did not run once");

	CHECK(cudaGraphExecDestroy(exec));
	CHECK(cudaGraphDestroy(g));
	CHECK(cudaFree(a));
	CHECK(cudaFree(b));
	free(host);
	free(back);
}

int main(int argc, char **argv) {
	if (argc < 2)
		FAIL("usage: rt_graphs BYTES");
	CHECK(cudaSetDevice(0));
	captured();
	built();
	printf("graphs ok\n");
	return 0;
}
