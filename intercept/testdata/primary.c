/* The primary context's lifetime: it lives while retained; the last
 * release destroys it, freeing its memory and returning it to the
 * slice's quota, and the next retain gets a fresh one. */
#include "common.h"

int main(void) {
	CUdevice d;
	CUcontext a, b, c;
	CHECK(cuInit(0));
	CHECK(cuDeviceGet(&d, 0));
	EXPECT(cuDevicePrimaryCtxRelease(d), CUDA_ERROR_INVALID_CONTEXT);
	EXPECT(cuDevicePrimaryCtxRelease(99), CUDA_ERROR_INVALID_DEVICE);
	CHECK(cuDevicePrimaryCtxRetain(&a, d));
	CHECK(cuDevicePrimaryCtxRetain(&b, d));
	if (a != b)
		FAIL("two retains gave %p and %p", (void *)a, (void *)b);
	CHECK(cuCtxSetCurrent(a));
	size_t free0, free1, total;
	CHECK(cuMemGetInfo(&free0, &total));
	CUdeviceptr p, base;
	size_t n = 64 << 20, size = 0;
	CHECK(cuMemAlloc(&p, n));
	CHECK(cuMemsetD8(p, 7, n));
	CHECK(cuMemGetInfo(&free1, &total));
	if (free0 - free1 < n)
		FAIL("%zu bytes free after allocating %zu of %zu", free1, n, free0);

	/* One reference left: the context and its memory stay. */
	CHECK(cuDevicePrimaryCtxRelease(d));
	unsigned flags;
	int active;
	CHECK(cuDevicePrimaryCtxGetState(d, &flags, &active));
	if (!active)
		FAIL("primary context inactive with a reference left");
	CHECK(cuMemGetAddressRange(&base, &size, p));
	if (base != p || size != n)
		FAIL("allocation at %#llx of %zu bytes after one release", (unsigned long long)base, size);

	/* The last reference: the context goes, with its memory. */
	CHECK(cuDevicePrimaryCtxRelease(d));
	CHECK(cuDevicePrimaryCtxGetState(d, &flags, &active));
	if (active)
		FAIL("primary context active after the last release");
	CHECK(cuDevicePrimaryCtxRetain(&c, d));
	CHECK(cuCtxSetCurrent(c));
	size_t free2;
	CHECK(cuMemGetInfo(&free2, &total));
	if (free2 != free0)
		FAIL("%zu bytes free in the fresh primary context, %zu before the allocation", free2, free0);
	EXPECT(cuMemGetAddressRange(&base, &size, p), CUDA_ERROR_NOT_FOUND);
	EXPECT(cuMemFree(p), CUDA_ERROR_INVALID_VALUE);

	/* The fresh context works. */
	unsigned v = 0;
	CHECK(cuMemAlloc(&p, 4));
	CHECK(cuMemsetD32(p, 0x5eed, 1));
	CHECK(cuMemcpyDtoH(&v, p, 4));
	if (v != 0x5eed)
		FAIL("fresh context read %#x", v);
	CHECK(cuMemFree(p));
	CHECK(cuDevicePrimaryCtxRelease(d));
	printf("primary ok\n");
	return 0;
}
