/* A CUDA-runtime program with host functions: cudaLaunchHostFunc and
 * cudaStreamAddCallback run in stream order, after the stream's earlier
 * work (a kernel and a copy back) and before its later work (a copy of
 * what the callback wrote). argv[1]: the slice's memory in bytes. */
#include "rt_common.h"
#include <string.h>

enum { N = 4096 };

__global__ void fill(int *p, int v) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < N)
		p[i] = v + i;
}

static int order[8], ran = 0;
static int *pinned, *staged;
static int seenFirst = -1;

/* first checks the kernel's result reached pinned memory, then writes the
 * bytes the stream copies to the device next. */
static void CUDART_CB first(void *arg) {
	seenFirst = pinned[N - 1];
	for (int i = 0; i < N; i++)
		staged[i] = 7 * i;
	order[ran++] = (int)(size_t)arg;
}

static void CUDART_CB second(cudaStream_t s, cudaError_t status, void *arg) {
	if (status != cudaSuccess)
		order[ran++] = -100;
	else
		order[ran++] = (int)(size_t)arg;
}

int main(int argc, char **argv) {
	if (argc < 2)
		FAIL("usage: rt_callbacks BYTES");
	CHECK(cudaSetDevice(0));
	int *dev = NULL;
	CHECK(cudaMalloc(&dev, N * sizeof(int)));
	CHECK(cudaMallocHost(&pinned, N * sizeof(int)));
	CHECK(cudaMallocHost(&staged, N * sizeof(int)));
	memset(staged, 0, N * sizeof(int));
	cudaStream_t s;
	CHECK(cudaStreamCreate(&s));

	fill<<<N / 256, 256, 0, s>>>(dev, 1000);
	CHECK(cudaGetLastError());
	CHECK(cudaMemcpyAsync(pinned, dev, N * sizeof(int), cudaMemcpyDeviceToHost, s));
	CHECK(cudaLaunchHostFunc(s, first, (void *)1));
	CHECK(cudaStreamAddCallback(s, second, (void *)2, 0));
	CHECK(cudaMemcpyAsync(dev, staged, N * sizeof(int), cudaMemcpyHostToDevice, s));
	CHECK(cudaLaunchHostFunc(s, first, (void *)3));
	CHECK(cudaStreamSynchronize(s));

	if (ran != 3 || order[0] != 1 || order[1] != 2 || order[2] != 3)
		FAIL("callbacks ran %d times, in order %d %d %d; want 1 2 3", ran, order[0], order[1], order[2]);
	if (seenFirst != 1000 + N - 1)
		FAIL("the first callback saw %d, before the stream's copy back finished", seenFirst);
	int *back = (int *)malloc(N * sizeof(int));
	CHECK(cudaMemcpy(back, dev, N * sizeof(int), cudaMemcpyDeviceToHost));
	for (int i = 0; i < N; i++)
		if (back[i] != 7 * i)
			FAIL("element %d = %d: the copy after the callback did not see what it wrote", i, back[i]);

	/* On the default stream, waited for by cudaDeviceSynchronize. */
	CHECK(cudaLaunchHostFunc(0, first, (void *)4));
	CHECK(cudaDeviceSynchronize());
	if (ran != 4 || order[3] != 4)
		FAIL("the default stream's host function did not run before cudaDeviceSynchronize returned");

	CHECK(cudaStreamDestroy(s));
	CHECK(cudaFree(dev));
	CHECK(cudaFreeHost(pinned));
	CHECK(cudaFreeHost(staged));
	printf("callbacks ok\n");
	return 0;
}
