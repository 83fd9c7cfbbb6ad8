/* A CUDA-runtime program with context limits and errors: the printf
 * FIFO's size set through cudaDeviceSetLimit reaches the device, which
 * keeps only the lines that fit; an illegal address is sticky until
 * cudaDeviceReset, after which the device works again with default
 * limits. Prints what the device printed, then "limits ok". */
#include "rt_common.h"

__global__ void lines(int n) {
	for (int i = 0; i < n; i++)
		printf("line %02d\n", i);
}

__global__ void poke(int *p) { p[threadIdx.x] = 1; }

int main(void) {
	size_t v = 0;
	CHECK(cudaDeviceSetLimit(cudaLimitPrintfFifoSize, 64));
	CHECK(cudaDeviceGetLimit(&v, cudaLimitPrintfFifoSize));
	if (v != 64)
		FAIL("printf FIFO size %zu, want 64", v);
	lines<<<1, 1>>>(20); /* "line NN\n" is 8 bytes: 8 of them fit */
	CHECK(cudaDeviceSynchronize());
	printf("host: after the small FIFO\n");
	fflush(stdout);

	poke<<<1, 32>>>((int *)0x10);
	if (cudaDeviceSynchronize() != cudaErrorIllegalAddress)
		FAIL("an illegal address did not give cudaErrorIllegalAddress");
	if (cudaGetLastError() != cudaErrorIllegalAddress)
		FAIL("cudaGetLastError after an illegal address");
	int *d = NULL;
	if (cudaMalloc(&d, 128) != cudaErrorIllegalAddress)
		FAIL("the illegal address was not sticky");
	(void)cudaGetLastError(); /* the failed cudaMalloc's */

	CHECK(cudaDeviceReset());
	CHECK(cudaDeviceGetLimit(&v, cudaLimitPrintfFifoSize));
	if (v != 1 << 20)
		FAIL("printf FIFO size %zu after cudaDeviceReset, want the default", v);
	CHECK(cudaMalloc(&d, 32 * sizeof(int)));
	CHECK(cudaMemset(d, 0, 32 * sizeof(int)));
	poke<<<1, 32>>>(d);
	CHECK(cudaGetLastError());
	int h[32];
	CHECK(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost));
	for (int i = 0; i < 32; i++)
		if (h[i] != 1)
			FAIL("after cudaDeviceReset: element %d = %d", i, h[i]);
	lines<<<1, 1>>>(12);
	CHECK(cudaDeviceSynchronize());
	CHECK(cudaFree(d));
	printf("limits ok\n");
	return 0;
}
