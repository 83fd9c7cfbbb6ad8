/* A CUDA-runtime program with the driver's virtual memory calls, as an
 * allocator that grows a segment in place uses them (PyTorch's expandable
 * segments): a reserved range, physical memory made and mapped into it
 * piece by piece, access set, kernels writing across the pieces, a second
 * mapping of one piece that sees the same bytes, memory released while
 * mapped, the slice's quota, and bad handles and ranges answered with
 * errors. The driver calls come through cudaGetDriverEntryPoint.
 * argv[1]: the slice's memory in bytes. */
#include "rt_common.h"
#include <cuda.h>

#define CU(call)                                                                       \
	do {                                                                               \
		CUresult r_ = (call);                                                          \
		if (r_ != CUDA_SUCCESS)                                                        \
			FAIL("%s = %d", #call, (int)r_);                                           \
	} while (0)

static CUresult (*getGranularity)(size_t *, const CUmemAllocationProp *, CUmemAllocationGranularity_flags);
static CUresult (*addressReserve)(CUdeviceptr *, size_t, size_t, CUdeviceptr, unsigned long long);
static CUresult (*addressFree)(CUdeviceptr, size_t);
static CUresult (*memCreate)(CUmemGenericAllocationHandle *, size_t, const CUmemAllocationProp *, unsigned long long);
static CUresult (*memRelease)(CUmemGenericAllocationHandle);
static CUresult (*memMap)(CUdeviceptr, size_t, size_t, CUmemGenericAllocationHandle, unsigned long long);
static CUresult (*memUnmap)(CUdeviceptr, size_t);
static CUresult (*setAccess)(CUdeviceptr, size_t, const CUmemAccessDesc *, size_t);
static CUresult (*getAccess)(unsigned long long *, const CUmemLocation *, CUdeviceptr);
static CUresult (*deviceAttribute)(int *, CUdevice_attribute, CUdevice);

static void resolve(const char *name, void **fn) {
	CHECK(cudaGetDriverEntryPoint(name, fn, cudaEnableDefault));
	if (!*fn)
		FAIL("no entry point for %s", name);
}

__global__ void fill(unsigned *p, size_t n, unsigned v) {
	for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
		p[i] = v ^ (unsigned)i;
}

__global__ void copy(unsigned *dst, const unsigned *src, size_t n) {
	for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
		dst[i] = src[i];
}

static void setRW(CUdeviceptr p, size_t n) {
	CUmemAccessDesc d = {};
	d.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	d.location.id = 0;
	d.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
	CU(setAccess(p, n, &d, 1));
}

/* check reads n words at p, one copy per piece of g bytes. */
static void check(CUdeviceptr p, size_t n, size_t g, unsigned v, const char *what) {
	unsigned *host = (unsigned *)malloc(n * sizeof(unsigned));
	for (size_t off = 0; off < n * sizeof(unsigned); off += g)
		CHECK(cudaMemcpy((char *)host + off, (void *)(p + off), g, cudaMemcpyDeviceToHost));
	for (size_t i = 0; i < n; i++)
		if (host[i] != (v ^ (unsigned)i))
			FAIL("%s: word %zu = %#x, want %#x", what, i, host[i], v ^ (unsigned)i);
	free(host);
}

int main(int argc, char **argv) {
	size_t slice = argc > 1 ? strtoull(argv[1], NULL, 0) : 0;
	if (slice == 0)
		FAIL("usage: rt_vmm SLICE_BYTES");
	CHECK(cudaFree(0));
	resolve("cuMemGetAllocationGranularity", (void **)&getGranularity);
	resolve("cuMemAddressReserve", (void **)&addressReserve);
	resolve("cuMemAddressFree", (void **)&addressFree);
	resolve("cuMemCreate", (void **)&memCreate);
	resolve("cuMemRelease", (void **)&memRelease);
	resolve("cuMemMap", (void **)&memMap);
	resolve("cuMemUnmap", (void **)&memUnmap);
	resolve("cuMemSetAccess", (void **)&setAccess);
	resolve("cuMemGetAccess", (void **)&getAccess);
	resolve("cuDeviceGetAttribute", (void **)&deviceAttribute);

	int vmm = 0;
	CU(deviceAttribute(&vmm, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, 0));
	EXPECT(vmm == 1);

	CUmemAllocationProp prop = {};
	prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
	prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	prop.location.id = 0;
	size_t g = 0;
	CU(getGranularity(&g, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
	EXPECT(g > 0 && (g & (g - 1)) == 0);
	if (slice < 4 * g)
		FAIL("a slice of %zu bytes holds fewer than 4 pieces of %zu", slice, g);

	size_t free0, total;
	CHECK(cudaMemGetInfo(&free0, &total));
	CUdeviceptr r;
	CU(addressReserve(&r, 4 * g, 0, 0, 0));
	EXPECT(r % g == 0);

	/* Grow the segment a piece at a time. */
	CUmemGenericAllocationHandle h1, h2;
	CU(memCreate(&h1, g, &prop, 0));
	CU(memMap(r, g, 0, h1, 0));
	setRW(r, g);
	CU(memCreate(&h2, g, &prop, 0));
	CU(memMap(r + g, g, 0, h2, 0));
	setRW(r + g, g);
	size_t free1;
	CHECK(cudaMemGetInfo(&free1, &total));
	if (free0 - free1 < 2 * g)
		FAIL("free memory fell by %zu for two pieces of %zu", free0 - free1, g);

	CUmemLocation loc = {CU_MEM_LOCATION_TYPE_DEVICE, 0};
	unsigned long long flags = 0;
	CU(getAccess(&flags, &loc, r + g + 8));
	EXPECT(flags == CU_MEM_ACCESS_FLAGS_PROT_READWRITE);

	/* A kernel writes across both pieces. */
	size_t n = 2 * g / sizeof(unsigned);
	fill<<<64, 256>>>((unsigned *)r, n, 0xabc);
	CHECK(cudaGetLastError());
	CHECK(cudaDeviceSynchronize());
	check(r, n, g, 0xabc, "two pieces");

	/* h1 mapped a second time shows the same bytes; released, it lives on
	 * while mapped. */
	CU(memMap(r + 3 * g, g, 0, h1, 0));
	setRW(r + 3 * g, g);
	CU(memRelease(h1));
	unsigned *plain;
	CHECK(cudaMalloc(&plain, g));
	copy<<<64, 256>>>(plain, (const unsigned *)(r + 3 * g), g / sizeof(unsigned));
	CHECK(cudaDeviceSynchronize());
	check((CUdeviceptr)plain, g / sizeof(unsigned), g, 0xabc, "second mapping");

	/* The slice's quota holds. */
	CUmemGenericAllocationHandle big;
	size_t tooBig = (slice / g + 1) * g;
	if (memCreate(&big, tooBig, &prop, 0) != CUDA_ERROR_OUT_OF_MEMORY)
		FAIL("cuMemCreate past the slice was not CUDA_ERROR_OUT_OF_MEMORY");

	/* Bad handles and ranges get errors; the device goes on working. */
	if (memMap(r + 2 * g, g, 0, h1, 0) == CUDA_SUCCESS)
		FAIL("a released handle was mapped");
	if (memMap(r + 2 * g, g, 0, (CUmemGenericAllocationHandle)0x1234, 0) == CUDA_SUCCESS)
		FAIL("a made-up handle was mapped");
	if (memMap(r, g, 0, h2, 0) == CUDA_SUCCESS)
		FAIL("a mapping over a mapping succeeded");
	if (memMap(r + 4 * g, g, 0, h2, 0) == CUDA_SUCCESS)
		FAIL("a mapping outside the reservation succeeded");
	CUmemAccessDesc d = {};
	d.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	d.location.id = 0;
	d.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
	if (setAccess(r + 2 * g, g, &d, 1) == CUDA_SUCCESS)
		FAIL("access to an unmapped range was set");
	if (memRelease((CUmemGenericAllocationHandle)0x1234) == CUDA_SUCCESS)
		FAIL("a made-up handle was released");
	prop.location.id = 7;
	if (memCreate(&big, g, &prop, 0) == CUDA_SUCCESS)
		FAIL("cuMemCreate on device 7 succeeded");
	prop.location.id = 0;
	if (addressFree(r, 4 * g) == CUDA_SUCCESS)
		FAIL("a range with mappings was freed");
	fill<<<1, 32>>>(plain, 32, 1);
	CHECK(cudaDeviceSynchronize());

	/* Take it all down; the slice's memory is back. */
	CU(memUnmap(r, 2 * g));
	CU(memUnmap(r + 3 * g, g));
	CU(memRelease(h2));
	CU(addressFree(r, 4 * g));
	CHECK(cudaFree(plain));
	size_t free2;
	CHECK(cudaMemGetInfo(&free2, &total));
	if (free2 != free0)
		FAIL("free memory %zu at the end, %zu at the start", free2, free0);
	printf("vmm ok\n");
	return 0;
}
