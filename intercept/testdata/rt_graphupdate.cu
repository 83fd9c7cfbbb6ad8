/* A CUDA-runtime program that changes graphs after it made them: a
 * captured graph's kernel node read back and given new arguments in the
 * executable graph (cudaGraphExecKernelNodeSetParams) and in the graph
 * (cudaGraphKernelNodeSetParams, which reaches only graphs instantiated
 * after it), its memset and memcpy nodes given new values and ends in
 * the executable graph, the whole executable graph updated from a second
 * capture of the same work with new arguments (cudaGraphExecUpdate), and
 * an update from a graph of another shape refused. Every launch's result
 * is checked. argv[1]: the slice's memory in bytes. */
#include "rt_common.h"
#include <string.h>

enum { N = 1024 };

__global__ void addScalar(int *p, int v) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < N)
		p[i] += v;
}

static int host[N];

/* run launches x in s and checks that p then holds want everywhere. */
static void run(cudaGraphExec_t x, cudaStream_t s, const int *p, int want, const char *what) {
	CHECK(cudaGraphLaunch(x, s));
	CHECK(cudaStreamSynchronize(s));
	CHECK(cudaMemcpy(host, p, sizeof host, cudaMemcpyDeviceToHost));
	for (int i = 0; i < N; i++)
		if (host[i] != want)
			FAIL("%s: element %d = %d, want %d", what, i, host[i], want);
}

/* record captures: p set to fill, v added, then p copied to q. */
static cudaGraph_t record(cudaStream_t s, int *p, int *q, int fill, int v) {
	cudaGraph_t g;
	CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
	CHECK(cudaMemsetAsync(p, fill, N * sizeof(int), s));
	addScalar<<<N / 256, 256, 0, s>>>(p, v);
	CHECK(cudaMemcpyAsync(q, p, N * sizeof(int), cudaMemcpyDeviceToDevice, s));
	CHECK(cudaStreamEndCapture(s, &g));
	return g;
}

/* nodeOf returns g's only node of type t. */
static cudaGraphNode_t nodeOf(cudaGraph_t g, cudaGraphNodeType t) {
	cudaGraphNode_t nodes[8], found = NULL;
	size_t n = 8;
	CHECK(cudaGraphGetNodes(g, nodes, &n));
	for (size_t i = 0; i < n; i++) {
		cudaGraphNodeType nt;
		CHECK(cudaGraphNodeGetType(nodes[i], &nt));
		if (nt == t) {
			if (found)
				FAIL("two nodes of type %d", (int)t);
			found = nodes[i];
		}
	}
	if (!found)
		FAIL("no node of type %d", (int)t);
	return found;
}

int main(int argc, char **argv) {
	if (argc < 2)
		FAIL("usage: rt_graphupdate BYTES");
	CHECK(cudaSetDevice(0));
	int *p, *q, *r;
	CHECK(cudaMalloc(&p, N * sizeof(int)));
	CHECK(cudaMalloc(&q, N * sizeof(int)));
	CHECK(cudaMalloc(&r, N * sizeof(int)));
	cudaStream_t s;
	CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));

	cudaGraph_t g = record(s, p, q, 0, 5);
	cudaGraphExec_t x;
	CHECK(cudaGraphInstantiate(&x, g, NULL, NULL, 0));
	run(x, s, q, 5, "captured graph");

	/* The kernel node's parameters, read back and changed in the
	 * executable graph only. */
	cudaGraphNode_t kn = nodeOf(g, cudaGraphNodeTypeKernel);
	cudaKernelNodeParams kp;
	memset(&kp, 0, sizeof kp);
	CHECK(cudaGraphKernelNodeGetParams(kn, &kp));
	EXPECT(kp.func == (void *)addScalar);
	EXPECT(kp.gridDim.x == N / 256 && kp.blockDim.x == 256 && kp.sharedMemBytes == 0);
	EXPECT(*(int **)kp.kernelParams[0] == p && *(int *)kp.kernelParams[1] == 5);
	int v = 7;
	void *args[] = {&p, &v};
	kp.kernelParams = args;
	CHECK(cudaGraphExecKernelNodeSetParams(x, kn, &kp));
	v = 1000; /* the parameters were taken when set */
	run(x, s, q, 7, "executable graph's kernel node set");

	/* Changed in the graph: executable graphs made before keep theirs. */
	v = 9;
	CHECK(cudaGraphKernelNodeSetParams(kn, &kp));
	cudaGraphExec_t x2;
	CHECK(cudaGraphInstantiate(&x2, g, NULL, NULL, 0));
	run(x2, s, q, 9, "graph's kernel node set, new executable graph");
	run(x, s, q, 7, "graph's kernel node set, earlier executable graph");
	CHECK(cudaGraphKernelNodeGetParams(kn, &kp));
	EXPECT(*(int *)kp.kernelParams[1] == 9);

	/* The memset node sets 1-bytes, and the memcpy node copies to r. */
	cudaMemsetParams mp;
	memset(&mp, 0, sizeof mp);
	mp.dst = p;
	mp.value = 1;
	mp.elementSize = 1;
	mp.width = N * sizeof(int);
	mp.height = 1;
	CHECK(cudaGraphExecMemsetNodeSetParams(x, nodeOf(g, cudaGraphNodeTypeMemset), &mp));
	cudaMemcpy3DParms cp;
	memset(&cp, 0, sizeof cp);
	cp.srcPtr = make_cudaPitchedPtr(p, N * sizeof(int), N * sizeof(int), 1);
	cp.dstPtr = make_cudaPitchedPtr(r, N * sizeof(int), N * sizeof(int), 1);
	cp.extent = make_cudaExtent(N * sizeof(int), 1, 1);
	cp.kind = cudaMemcpyDeviceToDevice;
	CHECK(cudaGraphExecMemcpyNodeSetParams(x, nodeOf(g, cudaGraphNodeTypeMemcpy), &cp));
	run(x, s, r, 0x01010101 + 7, "memset and memcpy nodes set");

	/* A second capture of the same work updates the whole executable
	 * graph. */
	cudaGraph_t g2 = record(s, q, r, 0, 11);
	cudaGraphNode_t errNode = NULL;
	cudaGraphExecUpdateResult why = cudaGraphExecUpdateError;
	CHECK(cudaGraphExecUpdate(x, g2, &errNode, &why));
	EXPECT(why == cudaGraphExecUpdateSuccess && errNode == NULL);
	CHECK(cudaMemsetAsync(q, 0xff, N * sizeof(int), s)); /* in s: the graph runs after it */
	run(x, s, r, 11, "updated from a second capture");

	/* A graph of another shape cannot update it. */
	cudaGraph_t g3;
	CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
	addScalar<<<N / 256, 256, 0, s>>>(p, 1);
	CHECK(cudaStreamEndCapture(s, &g3));
	cudaError_t e = cudaGraphExecUpdate(x, g3, &errNode, &why);
	if (e != cudaErrorGraphExecUpdateFailure)
		FAIL("update from another shape: %s", cudaGetErrorName(e));
	EXPECT(why == cudaGraphExecUpdateErrorTopologyChanged);
	(void)cudaGetLastError();
	run(x, s, r, 11, "after a refused update");

	CHECK(cudaGraphExecDestroy(x));
	CHECK(cudaGraphExecDestroy(x2));
	CHECK(cudaGraphDestroy(g));
	CHECK(cudaGraphDestroy(g2));
	CHECK(cudaGraphDestroy(g3));
	CHECK(cudaFree(p));
	CHECK(cudaFree(q));
	CHECK(cudaFree(r));
	printf("rt_graphupdate: ok\n");
	return 0;
}
