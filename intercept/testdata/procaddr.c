/* Runs vector add entirely through function pointers from
 * cuGetProcAddress, as the CUDA runtime does. argv[1]: vadd.ptx. */
#include "common.h"

/* The plain name is the pre-4.0 entry point, which the shim exports too. */
#undef cuCtxDestroy
CUresult cuCtxDestroy(CUcontext ctx);
CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
	unsigned shared, CUstream s, void **params, void **extra);

typedef CUresult (*init_t)(unsigned int);
typedef CUresult (*ctxcreate_t)(CUcontext *, unsigned int, CUdevice);
typedef CUresult (*alloc_t)(CUdeviceptr *, size_t);
typedef CUresult (*htod_t)(CUdeviceptr, const void *, size_t);
typedef CUresult (*dtoh_t)(void *, CUdeviceptr, size_t);
typedef CUresult (*load_t)(CUmodule *, const void *);
typedef CUresult (*getfn_t)(CUfunction *, CUmodule, const char *);
typedef CUresult (*launch_t)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream, void **, void **);
typedef CUresult (*sync_t)(CUstream);

static void *get(const char *name, int version, cuuint64_t flags) {
	void *fn = NULL;
	CUdriverProcAddressQueryResult q = 99;
	CUresult r = cuGetProcAddress(name, &fn, version, flags, &q);
	if (r != CUDA_SUCCESS || fn == NULL || q != CU_GET_PROC_ADDRESS_SUCCESS)
		FAIL("cuGetProcAddress(%s, %d) = %d, status %d", name, version, r, q);
	return fn;
}

#define N 999

int main(int argc, char **argv) {
	if (argc < 2)
		FAIL("usage: procaddr vadd.ptx");
	char *ptx = read_ptx(argv[1]);
	init_t init = get("cuInit", 12040, 0);
	if (init != cuInit)
		FAIL("cuInit pointer differs from the symbol");
	CHECK(init(0));
	/* From CUDA 11.4 on, "cuCtxCreate" is cuCtxCreate_v3 (with execution affinity). */
	ctxcreate_t ctxcreate = get("cuCtxCreate", 11000, 0);
	alloc_t alloc = get("cuMemAlloc", 12040, CU_GET_PROC_ADDRESS_DEFAULT);
	if (alloc != cuMemAlloc_v2)
		FAIL("cuMemAlloc at 12.4 is not cuMemAlloc_v2");
	htod_t htod = get("cuMemcpyHtoD", 12040, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
	dtoh_t dtoh = get("cuMemcpyDtoH_v2_ptds", 12040, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
	load_t load = get("cuModuleLoadData", 12040, 0);
	getfn_t getfn = get("cuModuleGetFunction", 12040, 0);
	launch_t launch = get("cuLaunchKernel_ptsz", 12040, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
	sync_t ssync = get("cuStreamSynchronize", 12040, CU_GET_PROC_ADDRESS_LEGACY_STREAM);
	if ((void *)launch != (void *)cuLaunchKernel_ptsz || get("cuLaunchKernel", 12040, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != (void *)cuLaunchKernel_ptsz)
		FAIL("per-thread cuLaunchKernel is not cuLaunchKernel_ptsz");
	if (get("cuLaunchKernel", 12040, 0) != (void *)cuLaunchKernel)
		FAIL("cuLaunchKernel pointer differs from the symbol");

	/* versions: the plain name before _v2 existed, _v2 after */
	void *v1 = get("cuCtxDestroy", 3020, 0), *v2 = get("cuCtxDestroy", 4000, 0);
	if (v1 != (void *)cuCtxDestroy || v1 == v2)
		FAIL("cuCtxDestroy versions: %p %p", v1, v2);
	if (get("cuGetProcAddress", 12000, 0) != (void *)cuGetProcAddress_v2)
		FAIL("cuGetProcAddress at 12.0 is not _v2");
	void *fn = (void *)1;
	CUdriverProcAddressQueryResult q;
	EXPECT(cuGetProcAddress("cuMemAlloc", &fn, 3000, 0, &q), CUDA_ERROR_NOT_FOUND);
	if (q != CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT || fn != NULL)
		FAIL("cuMemAlloc at 3.0: status %d", q);
	EXPECT(cuGetProcAddress("cuLaunchKernelEx", &fn, 11000, 0, &q), CUDA_ERROR_NOT_FOUND);
	if (q != CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT)
		FAIL("cuLaunchKernelEx at 11.0: status %d", q);
	EXPECT(cuGetProcAddress("cuNoSuchFunction", &fn, 12040, 0, &q), CUDA_ERROR_NOT_FOUND);
	if (q != CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND)
		FAIL("unknown symbol: status %d", q);
	EXPECT(cuGetProcAddress(NULL, &fn, 12040, 0, &q), CUDA_ERROR_INVALID_VALUE);
	EXPECT(cuGetProcAddress("cuInit", NULL, 12040, 0, &q), CUDA_ERROR_INVALID_VALUE);

	CUcontext ctx;
	CHECK(ctxcreate(&ctx, 0, 0));
	CUmodule mod;
	CUfunction k;
	CHECK(load(&mod, ptx));
	CHECK(getfn(&k, mod, "vadd"));
	static float a[N], b[N], c[N];
	fill(a, N, 1.5f, 1);
	fill(b, N, -0.5f, 2);
	CUdeviceptr da, db, dc;
	CHECK(alloc(&da, sizeof a));
	CHECK(alloc(&db, sizeof b));
	CHECK(alloc(&dc, sizeof c));
	CHECK(htod(da, a, sizeof a));
	CHECK(htod(db, b, sizeof b));
	int n = N;
	void *p[] = {&da, &db, &dc, &n};
	CHECK(launch(k, (N + 63) / 64, 1, 1, 64, 1, 1, 0, CU_STREAM_PER_THREAD, p, NULL));
	CHECK(ssync(CU_STREAM_PER_THREAD));
	CHECK(dtoh(c, dc, sizeof c));
	for (int i = 0; i < N; i++)
		if (c[i] != a[i] + b[i])
			FAIL("c[%d] = %f", i, c[i]);
	printf("procaddr ok\n");
	return 0;
}
