/* A CUDA-runtime program with the stream-ordered allocator: blocks
 * allocated and freed in stream order around kernels that use them, the
 * default pool and a pool of the program's own, their attributes and
 * access, the slice's quota (a block past it is cudaErrorMemoryAllocation,
 * and blocks freed in stream order make room for later ones), and bad
 * pools and pointers answered with errors. argv[1]: the slice's memory in
 * bytes. */
#include "rt_common.h"

enum { N = 1 << 16 };

__global__ void fill(int *p, int n, int v) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		p[i] = v + i;
}

__global__ void addTo(int *dst, const int *src, int n) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		dst[i] += src[i];
}

static unsigned long long attr64(cudaMemPool_t pool, cudaMemPoolAttr a) {
	unsigned long long v = 0;
	CHECK(cudaMemPoolGetAttribute(pool, a, &v));
	return v;
}

/* Blocks used by kernels in stream order, freed in stream order. */
static void streamOrdered(cudaStream_t s) {
	int *a, *b;
	static int host[N];
	CHECK(cudaMallocAsync(&a, N * sizeof(int), s));
	CHECK(cudaMallocAsync(&b, N * sizeof(int), s));
	fill<<<N / 256, 256, 0, s>>>(a, N, 1);
	fill<<<N / 256, 256, 0, s>>>(b, N, 1000);
	addTo<<<N / 256, 256, 0, s>>>(a, b, N);
	CHECK(cudaGetLastError());
	CHECK(cudaFreeAsync(b, s));
	CHECK(cudaMemcpyAsync(host, a, sizeof(host), cudaMemcpyDeviceToHost, s));
	CHECK(cudaFreeAsync(a, s));
	CHECK(cudaStreamSynchronize(s));
	for (int i = 0; i < N; i++)
		if (host[i] != 1001 + 2 * i)
			FAIL("element %d = %d, want %d", i, host[i], 1001 + 2 * i);
}

static void defaultPool(cudaStream_t s) {
	int dev = 0;
	CHECK(cudaDeviceGetAttribute(&dev, cudaDevAttrMemoryPoolsSupported, 0));
	EXPECT(dev == 1);
	cudaMemPool_t def, cur;
	CHECK(cudaDeviceGetDefaultMemPool(&def, 0));
	CHECK(cudaDeviceGetMemPool(&cur, 0));
	EXPECT(def == cur);

	EXPECT(attr64(def, cudaMemPoolAttrUsedMemCurrent) == 0);
	void *p;
	CHECK(cudaMallocAsync(&p, 3 * 4096, s));
	EXPECT(attr64(def, cudaMemPoolAttrUsedMemCurrent) == 3 * 4096);
	EXPECT(attr64(def, cudaMemPoolAttrReservedMemCurrent) >= 3 * 4096);
	EXPECT(attr64(def, cudaMemPoolAttrUsedMemHigh) >= 3 * 4096);
	CHECK(cudaFreeAsync(p, s));
	EXPECT(attr64(def, cudaMemPoolAttrUsedMemCurrent) == 0);
	CHECK(cudaStreamSynchronize(s));
	/* Nothing is kept past a synchronisation with a threshold of 0. */
	EXPECT(attr64(def, cudaMemPoolAttrReservedMemCurrent) == 0);
	CHECK(cudaMemPoolTrimTo(def, 0));

	/* A high mark is reset with 0, and only with 0. */
	unsigned long long zero = 0, one = 1;
	CHECK(cudaMemPoolSetAttribute(def, cudaMemPoolAttrUsedMemHigh, &zero));
	EXPECT(attr64(def, cudaMemPoolAttrUsedMemHigh) == 0);
	if (cudaMemPoolSetAttribute(def, cudaMemPoolAttrUsedMemHigh, &one) != cudaErrorInvalidValue)
		FAIL("setting a high mark to 1 was not cudaErrorInvalidValue");

	unsigned long long thr = 1 << 20;
	CHECK(cudaMemPoolSetAttribute(def, cudaMemPoolAttrReleaseThreshold, &thr));
	EXPECT(attr64(def, cudaMemPoolAttrReleaseThreshold) == 1 << 20);
	int reuse = 0;
	CHECK(cudaMemPoolSetAttribute(def, cudaMemPoolReuseAllowOpportunistic, &reuse));
	reuse = 7;
	CHECK(cudaMemPoolGetAttribute(def, cudaMemPoolReuseAllowOpportunistic, &reuse));
	EXPECT(reuse == 0);
	CHECK(cudaMemPoolGetAttribute(def, cudaMemPoolReuseFollowEventDependencies, &reuse));
	EXPECT(reuse == 1);

	cudaMemLocation loc = {cudaMemLocationTypeDevice, 0};
	cudaMemAccessFlags f = cudaMemAccessFlagsProtNone;
	CHECK(cudaMemPoolGetAccess(&f, def, &loc));
	EXPECT(f == cudaMemAccessFlagsProtReadWrite);
	cudaMemAccessDesc d = {loc, cudaMemAccessFlagsProtReadWrite};
	CHECK(cudaMemPoolSetAccess(def, &d, 1));
}

/* A pool of the program's own, made the device's current pool. */
static void ownPool(cudaStream_t s) {
	cudaMemPoolProps props = {};
	props.allocType = cudaMemAllocationTypePinned;
	props.location.type = cudaMemLocationTypeDevice;
	props.location.id = 0;
	cudaMemPool_t pool, def, cur;
	CHECK(cudaMemPoolCreate(&pool, &props));
	CHECK(cudaDeviceGetDefaultMemPool(&def, 0));
	EXPECT(pool != def);

	int *a;
	static int host[N];
	CHECK(cudaMallocFromPoolAsync(&a, N * sizeof(int), pool, s));
	EXPECT(attr64(pool, cudaMemPoolAttrUsedMemCurrent) == N * sizeof(int));
	EXPECT(attr64(def, cudaMemPoolAttrUsedMemCurrent) == 0);
	fill<<<N / 256, 256, 0, s>>>(a, N, 7);
	CHECK(cudaMemcpyAsync(host, a, sizeof(host), cudaMemcpyDeviceToHost, s));
	CHECK(cudaFreeAsync(a, s));
	CHECK(cudaStreamSynchronize(s));
	for (int i = 0; i < N; i++)
		if (host[i] != 7 + i)
			FAIL("pool element %d = %d, want %d", i, host[i], 7 + i);
	EXPECT(attr64(pool, cudaMemPoolAttrUsedMemHigh) == N * sizeof(int));

	CHECK(cudaDeviceSetMemPool(0, pool));
	CHECK(cudaDeviceGetMemPool(&cur, 0));
	EXPECT(cur == pool);
	void *p;
	CHECK(cudaMallocAsync(&p, 512, s));
	EXPECT(attr64(pool, cudaMemPoolAttrUsedMemCurrent) == 512);
	CHECK(cudaFreeAsync(p, s));
	CHECK(cudaStreamSynchronize(s));
	CHECK(cudaMemPoolDestroy(pool));
	CHECK(cudaDeviceGetMemPool(&cur, 0));
	EXPECT(cur == def);
}

/* The slice's quota holds for pools; freed blocks make room. */
static void quota(cudaStream_t s, size_t slice) {
	void *p = NULL;
	cudaError_t e = cudaMallocAsync(&p, slice + 1, s);
	if (e != cudaErrorMemoryAllocation)
		FAIL("cudaMallocAsync past the slice = %s, want cudaErrorMemoryAllocation", cudaGetErrorName(e));
	(void)cudaGetLastError();
	for (int i = 0; i < 8; i++) {
		int *q;
		CHECK(cudaMallocAsync(&q, slice * 6 / 10, s));
		fill<<<N / 256, 256, 0, s>>>(q, N, i);
		CHECK(cudaFreeAsync(q, s));
	}
	CHECK(cudaStreamSynchronize(s));
}

/* Bad pools and pointers get errors, and the device goes on working. */
static void badInput(cudaStream_t s) {
	cudaMemPool_t bogus = (cudaMemPool_t)0x1234;
	unsigned long long v;
	if (cudaMemPoolGetAttribute(bogus, cudaMemPoolAttrUsedMemCurrent, &v) == cudaSuccess)
		FAIL("a bogus pool answered an attribute");
	(void)cudaGetLastError();
	void *p;
	if (cudaMallocFromPoolAsync(&p, 64, bogus, s) == cudaSuccess)
		FAIL("a bogus pool gave memory");
	(void)cudaGetLastError();
	int *plain;
	CHECK(cudaMalloc(&plain, 64));
	if (cudaFreeAsync(plain + 1, s) == cudaSuccess)
		FAIL("cudaFreeAsync of a pointer no pool gave succeeded");
	(void)cudaGetLastError();
	cudaMemPool_t def;
	CHECK(cudaDeviceGetDefaultMemPool(&def, 0));
	if (cudaMemPoolDestroy(def) == cudaSuccess)
		FAIL("the default pool was destroyed");
	(void)cudaGetLastError();
	CHECK(cudaFree(plain));
	CHECK(cudaMallocAsync(&p, 64, s));
	CHECK(cudaFreeAsync(p, s));
	CHECK(cudaStreamSynchronize(s));
}

int main(int argc, char **argv) {
	size_t slice = argc > 1 ? strtoull(argv[1], NULL, 0) : 0;
	if (slice == 0)
		FAIL("usage: rt_mempool SLICE_BYTES");
	cudaStream_t s;
	CHECK(cudaStreamCreate(&s));
	streamOrdered(s);
	defaultPool(s);
	ownPool(s);
	quota(s, slice);
	badInput(s);
	CHECK(cudaStreamDestroy(s));
	printf("mempool ok\n");
	return 0;
}
