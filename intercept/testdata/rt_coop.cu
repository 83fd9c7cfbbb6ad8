/* A CUDA-runtime program with a cooperative launch: a grid as large as
 * the device holds at once (from the occupancy API) sums an array with
 * grid.sync() between the phases; one block more is refused with
 * cudaErrorCooperativeLaunchTooLarge. argv[1]: the slice's memory in
 * bytes. */
#include "rt_common.h"
#include <cooperative_groups.h>

namespace cg = cooperative_groups;

__global__ void grid_sum(const int *in, int n, int *partial, int *out) {
	cg::grid_group g = cg::this_grid();
	int sum = 0;
	for (int i = g.thread_rank(); i < n; i += g.size())
		sum += in[i];
	atomicAdd(&partial[blockIdx.x], sum);
	g.sync();
	if (g.thread_rank() == 0) {
		int t = 0;
		for (int b = 0; b < gridDim.x; b++)
			t += partial[b];
		*out = t;
	}
	g.sync();
	/* after the second sync every block reads the total */
	partial[blockIdx.x] = *out;
}

int main(int argc, char **argv) {
	if (argc < 2)
		FAIL("usage: rt_coop BYTES");
	CHECK(cudaSetDevice(0));
	int coop = 0, sms = 0, perSM = 0;
	CHECK(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, 0));
	EXPECT(coop == 1);
	CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
	const int threads = 128;
	CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSM, grid_sum, threads, 0));
	int blocks = sms * perSM;
	EXPECT(blocks > 0);
	const int n = 100000;
	int *in, *partial, *out;
	CHECK(cudaMalloc(&in, n * sizeof(int)));
	CHECK(cudaMalloc(&partial, (blocks + 1) * sizeof(int)));
	CHECK(cudaMalloc(&out, sizeof(int)));
	int *host = (int *)malloc(n * sizeof(int));
	long long want = 0;
	for (int i = 0; i < n; i++) {
		host[i] = i % 13 - 6;
		want += host[i];
	}
	CHECK(cudaMemcpy(in, host, n * sizeof(int), cudaMemcpyHostToDevice));
	CHECK(cudaMemset(partial, 0, (blocks + 1) * sizeof(int)));
	int nn = n;
	void *args[] = {&in, &nn, &partial, &out};
	CHECK(cudaLaunchCooperativeKernel((void *)grid_sum, blocks, threads, args, 0, 0));
	int *parts = (int *)malloc(blocks * sizeof(int));
	CHECK(cudaMemcpy(parts, partial, blocks * sizeof(int), cudaMemcpyDeviceToHost));
	for (int b = 0; b < blocks; b++)
		if (parts[b] != (int)want)
			FAIL("block %d saw total %d, want %lld", b, parts[b], want);
	cudaError_t e = cudaLaunchCooperativeKernel((void *)grid_sum, blocks + 1, threads, args, 0, 0);
	if (e != cudaErrorCooperativeLaunchTooLarge)
		FAIL("a grid of %d blocks (%d SMs, %d blocks each): %s, want cudaErrorCooperativeLaunchTooLarge", blocks + 1, sms, perSM,
			cudaGetErrorName(e));
	CHECK(cudaDeviceSynchronize());
	printf("rt_coop: %d blocks, ok\n", blocks);
	return 0;
}
