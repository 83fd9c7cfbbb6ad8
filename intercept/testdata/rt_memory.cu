/* A CUDA-runtime program without kernels: devices, properties, memory,
 * copies, memsets, streams and events, and the slice's memory limit.
 * argv[1]: the slice's memory in bytes, as `kerf run --memory` sets it. */
#include "rt_common.h"
#include <string.h>

static void check_bytes(const unsigned char *b, size_t n, unsigned char want, const char *what) {
	for (size_t i = 0; i < n; i++)
		if (b[i] != want)
			FAIL("%s: byte %zu = %#x, want %#x", what, i, b[i], want);
}

int main(int argc, char **argv) {
	if (argc < 2)
		FAIL("usage: rt_memory BYTES");
	size_t limit = strtoull(argv[1], NULL, 10);

	int n = 0;
	CHECK(cudaGetDeviceCount(&n));
	if (n != 1)
		FAIL("cudaGetDeviceCount = %d, want 1", n);
	CHECK(cudaSetDevice(0));
	cudaDeviceProp prop;
	CHECK(cudaGetDeviceProperties(&prop, 0));
	if (prop.totalGlobalMem != limit)
		FAIL("totalGlobalMem = %zu, want the slice's %zu", prop.totalGlobalMem, limit);
	if (prop.name[0] == 0 || prop.major < 1 || prop.maxThreadsPerBlock < 1)
		FAIL("implausible properties: name %s, cc %d.%d, %d threads", prop.name, prop.major, prop.minor,
			prop.maxThreadsPerBlock);
	size_t freeb = 0, total = 0;
	CHECK(cudaMemGetInfo(&freeb, &total));
	if (total != limit || freeb > total)
		FAIL("cudaMemGetInfo = %zu / %zu, want a total of %zu", freeb, total, limit);

	/* Synchronous copies both ways, and a memset. */
	const size_t size = 1 << 20;
	unsigned char *host = (unsigned char *)malloc(size), *back = (unsigned char *)malloc(size);
	for (size_t i = 0; i < size; i++)
		host[i] = (unsigned char)(i * 7 + 3);
	void *a = NULL, *b = NULL;
	CHECK(cudaMalloc(&a, size));
	CHECK(cudaMalloc(&b, size));
	CHECK(cudaMemcpy(a, host, size, cudaMemcpyHostToDevice));
	CHECK(cudaMemcpy(b, a, size, cudaMemcpyDeviceToDevice));
	CHECK(cudaMemcpy(back, b, size, cudaMemcpyDeviceToHost));
	if (memcmp(host, back, size) != 0)
		FAIL("host -> device -> device -> host changed the bytes");
	CHECK(cudaMemset(a, 0x5a, size / 2));
	CHECK(cudaDeviceSynchronize());
	CHECK(cudaMemcpy(back, a, size, cudaMemcpyDeviceToHost));
	check_bytes(back, size / 2, 0x5a, "memset half");
	if (memcmp(back + size / 2, host + size / 2, size / 2) != 0)
		FAIL("memset wrote past its length");

	/* A stream: async copies and a memset, timed by events. */
	cudaStream_t s;
	cudaEvent_t start, stop;
	CHECK(cudaStreamCreate(&s));
	CHECK(cudaEventCreate(&start));
	CHECK(cudaEventCreate(&stop));
	unsigned char *pinned = NULL;
	CHECK(cudaMallocHost((void **)&pinned, size));
	memset(pinned, 0, size);
	CHECK(cudaEventRecord(start, s));
	CHECK(cudaMemcpyAsync(b, host, size, cudaMemcpyHostToDevice, s));
	CHECK(cudaMemsetAsync(b, 0xc3, 4096, s));
	CHECK(cudaMemcpyAsync(pinned, b, size, cudaMemcpyDeviceToHost, s));
	CHECK(cudaEventRecord(stop, s));
	CHECK(cudaEventSynchronize(stop));
	CHECK(cudaStreamSynchronize(s));
	float ms = -1;
	CHECK(cudaEventElapsedTime(&ms, start, stop));
	if (ms < 0)
		FAIL("cudaEventElapsedTime = %f", ms);
	check_bytes(pinned, 4096, 0xc3, "async memset");
	if (memcmp(pinned + 4096, host + 4096, size - 4096) != 0)
		FAIL("async copies changed the bytes");
	CHECK(cudaEventDestroy(start));
	CHECK(cudaEventDestroy(stop));
	CHECK(cudaStreamDestroy(s));
	CHECK(cudaFreeHost(pinned));
	CHECK(cudaFree(a));
	CHECK(cudaFree(b));

	/* The slice's limit, as the runtime reports it. */
	void *big = NULL;
	cudaError_t e = cudaMalloc(&big, limit + 1);
	if (e != cudaErrorMemoryAllocation)
		FAIL("cudaMalloc past the slice = %s, want cudaErrorMemoryAllocation", cudaGetErrorName(e));
	if (cudaGetLastError() != cudaErrorMemoryAllocation || cudaGetLastError() != cudaSuccess)
		FAIL("cudaGetLastError does not report the failed allocation once");
	CHECK(cudaMalloc(&big, limit / 2));
	CHECK(cudaFree(big));

	free(host);
	free(back);
	printf("rt_memory ok: %s, %zu bytes, copies, memsets, a stream and events (%.3f ms)\n", prop.name,
		prop.totalGlobalMem, ms);
	return 0;
}
