/* Module images as nvcc builds them: a fatbin container (PTX entries, one
 * LZ4-compressed, and a cubin) and the wrapper that points at it, through
 * every module-load entry point; then malformed images, which get
 * CUDA_ERROR_INVALID_IMAGE and leave the session working.
 * argv[1]: a container holding vadd for sm_80; argv[2]: a container whose
 * entry header is corrupt. */
#include <stdint.h>

#include "common.h"

#define N 300
#define WRAPPER_MAGIC 0x466243b1u

/* The wrapper nvcc emits around a container. */
struct wrapper {
	uint32_t magic, version;
	const void *container;
	const void *prelinked;
};

/* run_vadd runs vadd over N elements and checks the sums. */
static void run_vadd(CUfunction fn, const char *how) {
	float a[N], b[N], c[N];
	fill(a, N, 0.5f, 1);
	fill(b, N, -2.0f, N);
	CUdeviceptr da, db, dc;
	CHECK(cuMemAlloc(&da, sizeof a));
	CHECK(cuMemAlloc(&db, sizeof b));
	CHECK(cuMemAlloc(&dc, sizeof c));
	CHECK(cuMemcpyHtoD(da, a, sizeof a));
	CHECK(cuMemcpyHtoD(db, b, sizeof b));
	int n = N;
	void *params[] = {&da, &db, &dc, &n};
	CHECK(cuLaunchKernel(fn, (N + 127) / 128, 1, 1, 128, 1, 1, 0, NULL, params, NULL));
	CHECK(cuMemcpyDtoH(c, dc, sizeof c));
	for (int i = 0; i < N; i++)
		if (c[i] != a[i] + b[i])
			FAIL("%s: c[%d] = %f, want %f", how, i, c[i], a[i] + b[i]);
	CHECK(cuMemFree(da));
	CHECK(cuMemFree(db));
	CHECK(cuMemFree(dc));
}

static void module_vadd(CUmodule mod, const char *how) {
	CUfunction fn;
	CHECK(cuModuleGetFunction(&fn, mod, "vadd"));
	run_vadd(fn, how);
	CHECK(cuModuleUnload(mod));
}

int main(int argc, char **argv) {
	if (argc < 3)
		FAIL("usage: fatbin good.fatbin bad.fatbin");
	const char *good = read_ptx(argv[1]), *bad = read_ptx(argv[2]);
	setup(0);

	struct wrapper w = {WRAPPER_MAGIC, 1, good, NULL};
	CUmodule mod;
	CHECK(cuModuleLoadData(&mod, good));
	module_vadd(mod, "cuModuleLoadData");
	CHECK(cuModuleLoadData(&mod, &w));
	module_vadd(mod, "cuModuleLoadData of a wrapper");
	CHECK(cuModuleLoadDataEx(&mod, good, 0, NULL, NULL));
	module_vadd(mod, "cuModuleLoadDataEx");
	CHECK(cuModuleLoadFatBinary(&mod, &w));
	module_vadd(mod, "cuModuleLoadFatBinary");
	CUlibrary lib;
	CUkernel k;
	CUfunction kf;
	CHECK(cuLibraryLoadData(&lib, &w, NULL, NULL, 0, NULL, NULL, 0));
	CHECK(cuLibraryGetKernel(&k, lib, "vadd"));
	CHECK(cuKernelGetFunction(&kf, k));
	run_vadd(kf, "cuLibraryLoadData");
	CHECK(cuLibraryUnload(lib));

	/* Malformed: a corrupt entry (the server refuses it), a header
	 * claiming a terabyte, wrappers naming nothing or of an unknown
	 * version (the shim refuses them). */
	uint64_t body;
	memcpy(&body, good + 8, 8);
	char *huge = malloc(16 + body);
	memcpy(huge, good, 16 + body);
	uint64_t terabyte = 1ull << 40;
	memcpy(huge + 8, &terabyte, 8);
	struct wrapper nowhere = {WRAPPER_MAGIC, 1, NULL, NULL}, v3 = {WRAPPER_MAGIC, 3, good, NULL};
	struct wrapper to_bad = {WRAPPER_MAGIC, 1, bad, NULL};
	const void *malformed[] = {bad, huge, &nowhere, &v3, &to_bad};
	for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
		EXPECT(cuModuleLoadData(&mod, malformed[i]), CUDA_ERROR_INVALID_IMAGE);
		EXPECT(cuModuleLoadDataEx(&mod, malformed[i], 0, NULL, NULL), CUDA_ERROR_INVALID_IMAGE);
		EXPECT(cuModuleLoadFatBinary(&mod, malformed[i]), CUDA_ERROR_INVALID_IMAGE);
		EXPECT(cuLibraryLoadData(&lib, malformed[i], NULL, NULL, 0, NULL, NULL, 0), CUDA_ERROR_INVALID_IMAGE);
	}
	free(huge);

	/* The session survived all of it. */
	CHECK(cuModuleLoadData(&mod, good));
	module_vadd(mod, "after malformed images");
	printf("fatbin: five load paths, %zu malformed images refused\n", sizeof malformed / sizeof malformed[0]);
	return 0;
}
