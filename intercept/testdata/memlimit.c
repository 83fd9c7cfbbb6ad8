/* The slice's memory limit. argv[1]: the limit in bytes (KERF_MEMORY). */
#include "common.h"

int main(int argc, char **argv) {
	if (argc < 2)
		FAIL("usage: memlimit BYTES");
	size_t limit = strtoull(argv[1], NULL, 10);
	CUcontext ctx = setup(0);
	size_t total = 0, freeb = 0, t2 = 0;
	CHECK(cuDeviceTotalMem(&total, 0));
	if (total != limit)
		FAIL("cuDeviceTotalMem = %zu, want %zu", total, limit);
	CHECK(cuMemGetInfo(&freeb, &t2));
	if (t2 != limit || freeb != limit)
		FAIL("cuMemGetInfo = %zu / %zu, want %zu / %zu", freeb, t2, limit, limit);
	CUdeviceptr p, q;
	EXPECT(cuMemAlloc(&p, limit + 1), CUDA_ERROR_OUT_OF_MEMORY);
	EXPECT(cuMemAlloc(&p, 0), CUDA_ERROR_INVALID_VALUE);
	CHECK(cuMemAlloc(&p, limit / 2));
	CHECK(cuMemGetInfo(&freeb, &t2));
	if (freeb > limit - limit / 2)
		FAIL("free %zu after allocating half of %zu", freeb, limit);
	EXPECT(cuMemAlloc(&q, limit / 2 + limit / 4), CUDA_ERROR_OUT_OF_MEMORY);
	CHECK(cuMemFree(p));
	CHECK(cuMemAlloc(&q, limit / 2 + limit / 4));
	CHECK(cuMemFree(q));
	CHECK(cuMemGetInfo(&freeb, &t2));
	if (freeb != limit)
		FAIL("free %zu after freeing all, want %zu", freeb, limit);
	CHECK(cuCtxDestroy(ctx));
	printf("memlimit ok\n");
	return 0;
}
