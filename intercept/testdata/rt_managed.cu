/* A CUDA-runtime program with managed, mapped and registered host
 * memory: the host writes managed memory, a kernel updates it, and after
 * a synchronisation the host reads the kernel's result, over several
 * rounds; prefetches, advice and attribute queries; a mapped host
 * allocation and a mapped registration written by a kernel through their
 * device pointers. argv[1]: the slice's memory in bytes. */
#include "rt_common.h"
#include <string.h>

enum { N = 4096 };

__global__ void addOne(int *p, int n) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		p[i] += 1;
}

__global__ void square(int *p, int n) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		p[i] = i * i;
}

static void managed(void) {
	int *m;
	CHECK(cudaMallocManaged(&m, N * sizeof(int)));
	int attr = 0;
	CHECK(cudaDeviceGetAttribute(&attr, cudaDevAttrManagedMemory, 0));
	EXPECT(attr == 1);
	CHECK(cudaDeviceGetAttribute(&attr, cudaDevAttrConcurrentManagedAccess, 0));
	EXPECT(attr == 0);
	cudaPointerAttributes pa;
	CHECK(cudaPointerGetAttributes(&pa, m));
	if (pa.type != cudaMemoryTypeManaged)
		FAIL("managed memory reported as type %d", (int)pa.type);

	for (int round = 1; round <= 3; round++) {
		for (int i = 0; i < N; i++)
			m[i] = i + 1000 * round; /* the host's writes reach the launch */
		addOne<<<N / 256, 256>>>(m, N);
		CHECK(cudaGetLastError());
		CHECK(cudaDeviceSynchronize());
		for (int i = 0; i < N; i++)
			if (m[i] != i + 1000 * round + 1)
				FAIL("round %d: element %d = %d, want %d", round, i, m[i], i + 1000 * round + 1);
	}

	/* On a stream, with a prefetch and advice. */
	cudaStream_t s;
	CHECK(cudaStreamCreate(&s));
	CHECK(cudaMemAdvise(m, N * sizeof(int), cudaMemAdviseSetReadMostly, 0));
	int rm = 0;
	CHECK(cudaMemRangeGetAttribute(&rm, sizeof(rm), cudaMemRangeAttributeReadMostly, m, N * sizeof(int)));
	EXPECT(rm == 1);
	CHECK(cudaMemAdvise(m, N * sizeof(int), cudaMemAdviseSetPreferredLocation, 0));
	int loc = -5;
	CHECK(cudaMemRangeGetAttribute(&loc, sizeof(loc), cudaMemRangeAttributePreferredLocation, m, N * sizeof(int)));
	EXPECT(loc == 0);
	CHECK(cudaMemPrefetchAsync(m, N * sizeof(int), 0, s));
	CHECK(cudaMemRangeGetAttribute(&loc, sizeof(loc), cudaMemRangeAttributeLastPrefetchLocation, m, N * sizeof(int)));
	EXPECT(loc == 0);
	square<<<N / 256, 256, 0, s>>>(m, N);
	CHECK(cudaMemPrefetchAsync(m, N * sizeof(int), cudaCpuDeviceId, s));
	CHECK(cudaStreamSynchronize(s));
	for (int i = 0; i < N; i++)
		if (m[i] != i * i)
			FAIL("after the stream's kernel: element %d = %d, want %d", i, m[i], i * i);
	if (cudaMemAdvise((char *)m + 1, N * sizeof(int), cudaMemAdviseSetReadMostly, 0) != cudaErrorInvalidValue)
		FAIL("advice past the allocation's end was not refused");
	(void)cudaGetLastError();

	/* A copy from managed memory to device memory sees the host's writes. */
	for (int i = 0; i < N; i++)
		m[i] = 7;
	int *d, *back = (int *)malloc(N * sizeof(int));
	CHECK(cudaMalloc(&d, N * sizeof(int)));
	CHECK(cudaMemcpy(d, m, N * sizeof(int), cudaMemcpyDeviceToDevice));
	CHECK(cudaMemcpy(back, d, N * sizeof(int), cudaMemcpyDeviceToHost));
	for (int i = 0; i < N; i++)
		if (back[i] != 7)
			FAIL("device copy of managed memory: element %d = %d, want 7", i, back[i]);
	CHECK(cudaFree(d));
	free(back);
	CHECK(cudaStreamDestroy(s));
	CHECK(cudaFree(m));
}

static void mapped(void) {
	int *h, *hd;
	CHECK(cudaHostAlloc(&h, N * sizeof(int), cudaHostAllocMapped));
	unsigned int flags = 0;
	CHECK(cudaHostGetFlags(&flags, h));
	EXPECT(flags & cudaHostAllocMapped);
	CHECK(cudaHostGetDevicePointer(&hd, h, 0));
	square<<<N / 256, 256>>>(hd, N);
	CHECK(cudaDeviceSynchronize());
	for (int i = 0; i < N; i++)
		if (h[i] != i * i)
			FAIL("mapped host memory: element %d = %d, want %d", i, h[i], i * i);
	CHECK(cudaFreeHost(h));

	/* Registered memory: copies from it, and mapped, a kernel's writes. */
	int *buf = (int *)aligned_alloc(4096, N * sizeof(int)), *d, *dp;
	for (int i = 0; i < N; i++)
		buf[i] = i;
	CHECK(cudaHostRegister(buf, N * sizeof(int), cudaHostRegisterDefault));
	CHECK(cudaHostGetFlags(&flags, buf));
	EXPECT(flags == cudaHostRegisterDefault);
	if (cudaHostRegister(buf + 16, 64, cudaHostRegisterDefault) != cudaErrorHostMemoryAlreadyRegistered)
		FAIL("registering registered memory again was not refused");
	(void)cudaGetLastError();
	CHECK(cudaMalloc(&d, N * sizeof(int)));
	CHECK(cudaMemcpyAsync(d, buf, N * sizeof(int), cudaMemcpyHostToDevice, 0));
	addOne<<<N / 256, 256>>>(d, N);
	CHECK(cudaMemcpyAsync(buf, d, N * sizeof(int), cudaMemcpyDeviceToHost, 0));
	CHECK(cudaDeviceSynchronize());
	for (int i = 0; i < N; i++)
		if (buf[i] != i + 1)
			FAIL("registered memory: element %d = %d, want %d", i, buf[i], i + 1);
	CHECK(cudaHostUnregister(buf));
	if (cudaHostUnregister(buf) != cudaErrorHostMemoryNotRegistered)
		FAIL("unregistering twice was not refused");
	(void)cudaGetLastError();

	CHECK(cudaHostRegister(buf, N * sizeof(int), cudaHostRegisterMapped));
	CHECK(cudaHostGetDevicePointer(&dp, buf, 0));
	addOne<<<N / 256, 256>>>(dp, N);
	CHECK(cudaDeviceSynchronize());
	for (int i = 0; i < N; i++)
		if (buf[i] != i + 2)
			FAIL("mapped registration: element %d = %d, want %d", i, buf[i], i + 2);
	CHECK(cudaHostUnregister(buf));
	CHECK(cudaFree(d));
	free(buf);
}

int main(int argc, char **argv) {
	if (argc < 2)
		FAIL("usage: rt_managed BYTES");
	CHECK(cudaSetDevice(0));
	managed();
	mapped();
	printf("managed ok\n");
	return 0;
}
