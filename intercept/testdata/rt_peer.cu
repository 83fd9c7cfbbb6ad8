/* A CUDA-runtime program on two devices: peer access is not offered, and
 * cudaMemcpyPeer and cudaMemcpyPeerAsync copy between them; the legacy
 * cuDeviceGetProperties and cuDeviceGetLuid through
 * cudaGetDriverEntryPoint. */
#include "rt_common.h"
#include <cuda.h>
#include <string.h>

typedef CUresult (*propertiesFn)(CUdevprop *, CUdevice);
typedef CUresult (*luidFn)(char *, unsigned int *, CUdevice);

int main(void) {
	int n = 0;
	CHECK(cudaGetDeviceCount(&n));
	if (n != 2)
		FAIL("cudaGetDeviceCount = %d, want 2", n);
	int can = -1;
	CHECK(cudaDeviceCanAccessPeer(&can, 0, 1));
	if (can != 0)
		FAIL("cudaDeviceCanAccessPeer(0, 1) = %d, want 0: no device reads another's memory", can);
	CHECK(cudaSetDevice(0));
	if (cudaDeviceEnablePeerAccess(1, 0) != cudaErrorPeerAccessUnsupported)
		FAIL("cudaDeviceEnablePeerAccess did not say peer access is unsupported");
	cudaGetLastError();

	const size_t size = 3 << 20;
	unsigned char *host = (unsigned char *)malloc(size), *back = (unsigned char *)malloc(size);
	for (size_t i = 0; i < size; i++)
		host[i] = (unsigned char)(i * 13 + 5);
	void *a = NULL, *b = NULL;
	CHECK(cudaMalloc(&a, size));
	CHECK(cudaMemcpy(a, host, size, cudaMemcpyHostToDevice));
	CHECK(cudaSetDevice(1));
	CHECK(cudaMalloc(&b, size));
	CHECK(cudaMemcpyPeer(b, 1, a, 0, size));
	CHECK(cudaMemcpy(back, b, size, cudaMemcpyDeviceToHost));
	if (memcmp(host, back, size) != 0)
		FAIL("cudaMemcpyPeer changed the bytes");
	CHECK(cudaMemset(b, 0x11, size));
	cudaStream_t s;
	CHECK(cudaStreamCreate(&s));
	CHECK(cudaMemcpyPeerAsync(a, 0, b, 1, size / 2, s));
	CHECK(cudaStreamSynchronize(s));
	CHECK(cudaSetDevice(0));
	CHECK(cudaMemcpy(back, a, size, cudaMemcpyDeviceToHost));
	for (size_t i = 0; i < size; i++)
		if (back[i] != (i < size / 2 ? 0x11 : host[i]))
			FAIL("after cudaMemcpyPeerAsync byte %zu = %#x", i, back[i]);

	propertiesFn properties = NULL;
	luidFn luid = NULL;
	CHECK(cudaGetDriverEntryPoint("cuDeviceGetProperties", (void **)&properties, cudaEnableDefault));
	CHECK(cudaGetDriverEntryPoint("cuDeviceGetLuid", (void **)&luid, cudaEnableDefault));
	CUdevprop p;
	memset(&p, 0, sizeof p);
	if (properties(&p, 0) != CUDA_SUCCESS)
		FAIL("cuDeviceGetProperties failed");
	cudaDeviceProp rp;
	CHECK(cudaGetDeviceProperties(&rp, 0));
	if (p.maxThreadsPerBlock != rp.maxThreadsPerBlock || p.maxGridSize[0] != rp.maxGridSize[0] ||
		p.SIMDWidth != rp.warpSize || p.sharedMemPerBlock != (int)rp.sharedMemPerBlock || p.maxThreadsDim[2] != rp.maxThreadsDim[2])
		FAIL("cuDeviceGetProperties: %d threads, grid %d, warp %d, shared %d; the runtime says %d, %d, %d, %zu",
			p.maxThreadsPerBlock, p.maxGridSize[0], p.SIMDWidth, p.sharedMemPerBlock, rp.maxThreadsPerBlock,
			rp.maxGridSize[0], rp.warpSize, rp.sharedMemPerBlock);
	char id[8];
	unsigned int mask = 0;
	if (luid(id, &mask, 0) != CUDA_ERROR_NOT_SUPPORTED)
		FAIL("cuDeviceGetLuid did not answer CUDA_ERROR_NOT_SUPPORTED, as on Linux");

	CHECK(cudaFree(a));
	CHECK(cudaSetDevice(1));
	CHECK(cudaStreamDestroy(s));
	CHECK(cudaFree(b));
	printf("peer ok\n");
	return 0;
}
