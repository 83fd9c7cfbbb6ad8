/* A CUDA-runtime program that configures its device and kernels as
 * frameworks do: device flags, limits, the cache preference, bank sizes, stream
 * priorities, function attributes, a raised dynamic shared memory limit
 * and a launch that uses it, and the occupancy calculator, each answer
 * checked against the others. argv[1] (the slice's memory) is not used. */
#include "rt_common.h"

// Fills its dynamic shared memory (n floats) with the block's index plus
// each element's index mod 8, then thread 0 writes the sum of all of it
// (exact in float: it stays below 2^24).
__global__ void dyn_sum(float *out, int n) {
	extern __shared__ float buf[];
	for (int i = threadIdx.x; i < n; i += blockDim.x)
		buf[i] = (float)(blockIdx.x + (i & 7));
	__syncthreads();
	if (threadIdx.x == 0) {
		float s = 0;
		for (int i = 0; i < n; i++)
			s += buf[i];
		out[blockIdx.x] = s;
	}
}

__global__ void axpy(float a, const float *x, float *y, int n) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		y[i] += a * x[i];
}

int main(void) {
	// Device flags before the context exists, as frameworks set them.
	CHECK(cudaSetDeviceFlags(cudaDeviceScheduleBlockingSync));
	unsigned int flags = 0;
	CHECK(cudaGetDeviceFlags(&flags));
	EXPECT((flags & cudaDeviceScheduleMask) == cudaDeviceScheduleBlockingSync);

	cudaDeviceProp prop;
	CHECK(cudaGetDeviceProperties(&prop, 0));

	// Limits: defaults, set and read back, an unsupported one refused.
	size_t v = 0;
	CHECK(cudaDeviceGetLimit(&v, cudaLimitStackSize));
	EXPECT(v > 0);
	CHECK(cudaDeviceSetLimit(cudaLimitStackSize, 4096));
	CHECK(cudaDeviceGetLimit(&v, cudaLimitStackSize));
	EXPECT(v == 4096);
	CHECK(cudaDeviceGetLimit(&v, cudaLimitPrintfFifoSize));
	EXPECT(v > 0);
	CHECK(cudaDeviceSetLimit(cudaLimitMallocHeapSize, 2 << 20));
	CHECK(cudaDeviceGetLimit(&v, cudaLimitMallocHeapSize));
	EXPECT(v == 2 << 20);
	EXPECT(cudaDeviceSetLimit(cudaLimitDevRuntimeSyncDepth, 4) != cudaSuccess);
	cudaGetLastError();

	// The cache preference of the device and of a kernel.
	CHECK(cudaDeviceSetCacheConfig(cudaFuncCachePreferShared));
	enum cudaFuncCache cache;
	CHECK(cudaDeviceGetCacheConfig(&cache));
	EXPECT(cache == cudaFuncCachePreferShared);
	CHECK(cudaFuncSetCacheConfig(axpy, cudaFuncCachePreferL1));

	// Bank sizes are fixed at four bytes: a setting is accepted, no more.
	CHECK(cudaDeviceSetSharedMemConfig(cudaSharedMemBankSizeEightByte));
	enum cudaSharedMemConfig bank;
	CHECK(cudaDeviceGetSharedMemConfig(&bank));
	EXPECT(bank == cudaSharedMemBankSizeFourByte);

	// Stream priorities: lower numbers are higher priorities.
	int least = 1, greatest = 1;
	CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
	EXPECT(greatest <= least);
	cudaStream_t urgent;
	CHECK(cudaStreamCreateWithPriority(&urgent, cudaStreamNonBlocking, greatest));

	// Function attributes, and the dynamic shared memory limit raised to
	// 64 KiB, above the 48 KiB every block may have.
	const int dyn = 64 << 10, n = dyn / sizeof(float);
	EXPECT((size_t)dyn > prop.sharedMemPerBlock && (size_t)dyn <= prop.sharedMemPerBlockOptin);
	cudaFuncAttributes fa;
	CHECK(cudaFuncGetAttributes(&fa, dyn_sum));
	EXPECT(fa.maxThreadsPerBlock > 0 && fa.maxThreadsPerBlock <= prop.maxThreadsPerBlock);
	EXPECT(fa.numRegs >= 0 && fa.sharedSizeBytes == 0);
	EXPECT(fa.maxDynamicSharedSizeBytes <= (int)prop.sharedMemPerBlock);
	EXPECT(cudaFuncSetAttribute(dyn_sum, cudaFuncAttributeMaxDynamicSharedMemorySize,
		(int)prop.sharedMemPerBlockOptin + 1) != cudaSuccess);
	cudaGetLastError();
	CHECK(cudaFuncSetAttribute(dyn_sum, cudaFuncAttributeMaxDynamicSharedMemorySize, dyn));
	CHECK(cudaFuncSetAttribute(dyn_sum, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
	CHECK(cudaFuncGetAttributes(&fa, dyn_sum));
	EXPECT(fa.maxDynamicSharedSizeBytes == dyn);
	EXPECT(fa.preferredShmemCarveout == 100);

	// Occupancy: what fits on a multiprocessor fits its threads and its
	// shared memory, and one 64 KiB block fits.
	int blocks = 0;
	CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, dyn_sum, 256, dyn));
	EXPECT(blocks >= 1);
	EXPECT(blocks * 256 <= prop.maxThreadsPerMultiProcessor);
	EXPECT((size_t)blocks * dyn <= prop.sharedMemPerMultiprocessor);
	int small = 0;
	CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&small, dyn_sum, 256, 0));
	EXPECT(small >= blocks && small * 256 <= prop.maxThreadsPerMultiProcessor);
	EXPECT(small <= prop.maxBlocksPerMultiProcessor);

	int minGrid = 0, blockSize = 0;
	CHECK(cudaOccupancyMaxPotentialBlockSize(&minGrid, &blockSize, axpy, 0, 0));
	EXPECT(blockSize > 0 && blockSize <= prop.maxThreadsPerBlock && blockSize % prop.warpSize == 0);
	int perSM = 0;
	CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSM, axpy, blockSize, 0));
	EXPECT(perSM * blockSize <= prop.maxThreadsPerMultiProcessor);
	EXPECT(minGrid == perSM * prop.multiProcessorCount);

	// A launch with the raised dynamic shared memory, on the urgent stream.
	const int grid = 2;
	float *out, host[grid];
	CHECK(cudaMalloc(&out, grid * sizeof(float)));
	dyn_sum<<<grid, 256, dyn, urgent>>>(out, n);
	CHECK(cudaGetLastError());
	CHECK(cudaStreamSynchronize(urgent));
	CHECK(cudaMemcpy(host, out, sizeof(host), cudaMemcpyDeviceToHost));
	for (int b = 0; b < grid; b++) {
		float want = (float)n * b + 28.0f * (n / 8);
		EXPECT(host[b] == want);
	}

	// A launch shaped by the calculator.
	const int len = 100000;
	float *x, *y;
	CHECK(cudaMalloc(&x, len * sizeof(float)));
	CHECK(cudaMalloc(&y, len * sizeof(float)));
	CHECK(cudaMemset(x, 0, len * sizeof(float)));
	CHECK(cudaMemset(y, 0, len * sizeof(float)));
	axpy<<<(len + blockSize - 1) / blockSize, blockSize>>>(2.0f, x, y, len);
	CHECK(cudaGetLastError());
	CHECK(cudaDeviceSynchronize());

	CHECK(cudaStreamDestroy(urgent));
	CHECK(cudaFree(out));
	CHECK(cudaFree(x));
	CHECK(cudaFree(y));
	printf("occupancy %d blocks of 256 with %d bytes, %d without; block size %d, grid %d; priorities %d..%d\n",
		blocks, dyn, small, blockSize, minGrid, least, greatest);
	return 0;
}
