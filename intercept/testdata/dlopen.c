/* Loads the driver the way runtimes do: dlopen("libcuda.so.1") and dlsym.
 * argv[1]: "run" (vadd.ptx in argv[2]) or "noinit" (cuInit must fail
 * with CUDA_ERROR_NOT_INITIALIZED). Not linked against libcuda. */
#include <dlfcn.h>
#define KERF_CUDA_NO_PROTOTYPES
#include "kerf_cuda.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(...) do { fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); exit(1); } while (0)

typedef CUresult (*init_t)(unsigned int);
typedef CUresult (*count_t)(int *);
typedef CUresult (*gpa_t)(const char *, void **, int, cuuint64_t, CUdriverProcAddressQueryResult *);
typedef CUresult (*ctxcreate_t)(CUcontext *, unsigned int, CUdevice);
typedef CUresult (*ctxcreate3_t)(CUcontext *, CUexecAffinityParam *, int, unsigned int, CUdevice);
typedef CUresult (*ctxcreate4_t)(CUcontext *, CUctxCreateParams *, unsigned int, CUdevice);
typedef CUresult (*alloc_t)(CUdeviceptr *, size_t);
typedef CUresult (*memset_t)(CUdeviceptr, unsigned int, size_t);
typedef CUresult (*dtoh_t)(void *, CUdeviceptr, size_t);

static void *sym(void *h, const char *name) {
	void *p = dlsym(h, name);
	if (p == NULL)
		FAIL("dlsym %s: %s", name, dlerror());
	return p;
}

int main(int argc, char **argv) {
	if (argc < 2)
		FAIL("usage: dlopen run|noinit");
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (h == NULL)
		FAIL("dlopen: %s", dlerror());
	init_t init = sym(h, "cuInit");
	CUresult r = init(0);
	if (strcmp(argv[1], "noinit") == 0) {
		if (r != CUDA_ERROR_NOT_INITIALIZED)
			FAIL("cuInit = %d, want CUDA_ERROR_NOT_INITIALIZED", r);
		count_t count = sym(h, "cuDeviceGetCount");
		int n = 5;
		if (count(&n) != CUDA_ERROR_NOT_INITIALIZED)
			FAIL("cuDeviceGetCount after a failed cuInit");
		printf("noinit ok\n");
		return 0;
	}
	if (r != CUDA_SUCCESS)
		FAIL("cuInit = %d", r);
	int n = 0;
	if (((count_t)sym(h, "cuDeviceGetCount"))(&n) != CUDA_SUCCESS || n < 1)
		FAIL("cuDeviceGetCount: %d", n);
	gpa_t gpa = sym(h, "cuGetProcAddress_v2");
	ctxcreate_t ctxcreate = NULL;
	CUdriverProcAddressQueryResult q;
	if (gpa("cuCtxCreate", (void **)&ctxcreate, 11000, 0, &q) != CUDA_SUCCESS)
		FAIL("cuGetProcAddress cuCtxCreate");
	if ((void *)ctxcreate != sym(h, "cuCtxCreate_v2"))
		FAIL("cuCtxCreate for CUDA 11.0 from cuGetProcAddress is not dlsym's cuCtxCreate_v2");
	CUcontext ctx;
	if (ctxcreate(&ctx, 0, 0) != CUDA_SUCCESS)
		FAIL("cuCtxCreate");
	/* From CUDA 11.4 on the name means cuCtxCreate_v3, with execution
	 * affinity, which a slice does not take; from 12.5, cuCtxCreate_v4. */
	ctxcreate3_t ctxcreate3 = NULL;
	if (gpa("cuCtxCreate", (void **)&ctxcreate3, 12040, 0, &q) != CUDA_SUCCESS || (void *)ctxcreate3 != sym(h, "cuCtxCreate_v3"))
		FAIL("cuCtxCreate for CUDA 12.4 from cuGetProcAddress is not cuCtxCreate_v3");
	CUexecAffinityParam aff;
	memset(&aff, 0, sizeof aff);
	aff.param.smCount.val = 1;
	CUcontext ctx3, ctx4;
	if (ctxcreate3(&ctx3, &aff, 1, 0, 0) != CUDA_ERROR_UNSUPPORTED_EXEC_AFFINITY)
		FAIL("cuCtxCreate_v3 with an affinity did not give CUDA_ERROR_UNSUPPORTED_EXEC_AFFINITY");
	if (ctxcreate3(&ctx3, NULL, 0, 0, 0) != CUDA_SUCCESS)
		FAIL("cuCtxCreate_v3");
	ctxcreate4_t ctxcreate4 = NULL;
	if (gpa("cuCtxCreate", (void **)&ctxcreate4, 12050, 0, &q) != CUDA_SUCCESS || (void *)ctxcreate4 != sym(h, "cuCtxCreate_v4"))
		FAIL("cuCtxCreate for CUDA 12.5 from cuGetProcAddress is not cuCtxCreate_v4");
	CUctxCreateParams cp;
	memset(&cp, 0, sizeof cp);
	if (ctxcreate4(&ctx4, &cp, 0, 0) != CUDA_SUCCESS)
		FAIL("cuCtxCreate_v4");
	if (ctx3 == ctx || ctx4 == ctx3)
		FAIL("cuCtxCreate_v3 and _v4 did not make new contexts");
	if (((CUresult(*)(CUcontext))sym(h, "cuCtxSetCurrent"))(ctx) != CUDA_SUCCESS)
		FAIL("cuCtxSetCurrent");
	CUdeviceptr p;
	if (((alloc_t)sym(h, "cuMemAlloc_v2"))(&p, 4096) != CUDA_SUCCESS)
		FAIL("cuMemAlloc_v2");
	if (((memset_t)sym(h, "cuMemsetD32_v2"))(p, 0xabcdef01u, 1024) != CUDA_SUCCESS)
		FAIL("cuMemsetD32_v2");
	unsigned int out[1024];
	if (((dtoh_t)sym(h, "cuMemcpyDtoH_v2"))(out, p, sizeof out) != CUDA_SUCCESS)
		FAIL("cuMemcpyDtoH_v2");
	for (int i = 0; i < 1024; i++)
		if (out[i] != 0xabcdef01u)
			FAIL("out[%d] = %x", i, out[i]);
	printf("dlopen ok\n");
	return 0;
}
