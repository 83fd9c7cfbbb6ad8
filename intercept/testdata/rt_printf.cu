/* Device printf through the CUDA runtime: each kernel's lines reach the
 * program's stdout at the synchronising call after it, in order, among the
 * host's own lines. */
#include "rt_common.h"

__global__ void hello(int launch) {
	printf("launch %d thread %d of %d\n", launch, (int)threadIdx.x, (int)blockDim.x);
}

int main(void) {
	printf("host: start\n");
	hello<<<1, 2>>>(0);
	CHECK(cudaGetLastError());
	CHECK(cudaDeviceSynchronize());
	printf("host: between\n");
	cudaStream_t s;
	CHECK(cudaStreamCreate(&s));
	hello<<<1, 3, 0, s>>>(1);
	CHECK(cudaStreamSynchronize(s));
	CHECK(cudaStreamDestroy(s));
	int *d;
	CHECK(cudaMalloc(&d, sizeof(int)));
	hello<<<1, 1>>>(2);
	int h;
	CHECK(cudaMemcpy(&h, d, sizeof(int), cudaMemcpyDeviceToHost));
	CHECK(cudaFree(d));
	printf("host: end\n");
	return 0;
}
