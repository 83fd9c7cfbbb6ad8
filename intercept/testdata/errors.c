/* Error paths: what CUDA reports at once must be reported at once, and no
 * bogus value may crash the shim. argv[1]: vadd.ptx. */
#include "common.h"

int main(int argc, char **argv) {
	if (argc < 2)
		FAIL("usage: errors vadd.ptx");
	char *ptx = read_ptx(argv[1]);
	CUdeviceptr d;
	CUcontext none = NULL, c2;
	CUdevice dev;
	int count;

	EXPECT(cuMemAlloc(&d, 16), CUDA_ERROR_NOT_INITIALIZED);
	EXPECT(cuInit(1), CUDA_ERROR_INVALID_VALUE);
	CHECK(cuInit(0));
	CHECK(cuInit(0));
	EXPECT(cuMemAlloc(&d, 16), CUDA_ERROR_INVALID_CONTEXT);
	EXPECT(cuCtxPopCurrent(&none), CUDA_ERROR_INVALID_CONTEXT);
	EXPECT(cuDeviceGet(&dev, 1), CUDA_ERROR_INVALID_DEVICE);
	EXPECT(cuDeviceGet(&dev, -1), CUDA_ERROR_INVALID_DEVICE);
	EXPECT(cuDeviceGetCount(NULL), CUDA_ERROR_INVALID_VALUE);
	CHECK(cuDeviceGetCount(&count));
	EXPECT(cuCtxCreate(&c2, 0, 7), CUDA_ERROR_INVALID_DEVICE);
	EXPECT(cuCtxSetCurrent((CUcontext)0x1234), CUDA_ERROR_INVALID_CONTEXT);
	EXPECT(cuCtxPushCurrent((CUcontext)&count), CUDA_ERROR_INVALID_CONTEXT);
	EXPECT(cuCtxDestroy((CUcontext)0x10), CUDA_ERROR_INVALID_CONTEXT);

	const char *s;
	CHECK(cuGetErrorName(CUDA_ERROR_ILLEGAL_ADDRESS, &s));
	if (strcmp(s, "CUDA_ERROR_ILLEGAL_ADDRESS") != 0)
		FAIL("error name %s", s);
	CHECK(cuGetErrorString(CUDA_ERROR_OUT_OF_MEMORY, &s));
	if (strcmp(s, "out of memory") != 0)
		FAIL("error string %s", s);
	EXPECT(cuGetErrorName((CUresult)12345, &s), CUDA_ERROR_INVALID_VALUE);
	const void *table = (void *)1;
	CUuuid id;
	memset(&id, 0, sizeof id);
	EXPECT(cuGetExportTable(&table, &id), CUDA_ERROR_NOT_SUPPORTED);

	CUcontext ctx = setup(0);
	CUmodule mod;
	CUfunction fn, missing;
	CHECK(cuModuleLoadData(&mod, ptx));
	CHECK(cuModuleGetFunction(&fn, mod, "vadd"));
	EXPECT(cuModuleGetFunction(&missing, mod, "no_such_kernel"), CUDA_ERROR_NOT_FOUND);
	EXPECT(cuModuleGetFunction(&missing, (CUmodule)0x4242, "vadd"), CUDA_ERROR_INVALID_HANDLE);
	EXPECT(cuModuleGetFunction(&missing, mod, NULL), CUDA_ERROR_INVALID_VALUE);
	CUdeviceptr g;
	size_t gs;
	EXPECT(cuModuleGetGlobal(&g, &gs, mod, "no_such_global"), CUDA_ERROR_NOT_FOUND);
	EXPECT(cuModuleUnload((CUmodule)fn), CUDA_ERROR_INVALID_HANDLE); /* a handle of the wrong kind */

	/* images */
	CUmodule bad;
	static const unsigned char fatbin[16] = {0x50, 0xed, 0x55, 0xba, 1, 0, 16, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0};
	EXPECT(cuModuleLoadFatBinary(&bad, fatbin), CUDA_ERROR_INVALID_IMAGE);
	EXPECT(cuModuleLoadData(&bad, NULL), CUDA_ERROR_INVALID_VALUE);
	EXPECT(cuModuleLoadData(&bad, ""), CUDA_ERROR_INVALID_IMAGE);
	CUresult r = cuModuleLoadData(&bad, "this is not PTX");
	if (r == CUDA_SUCCESS)
		FAIL("garbage PTX loaded");

	/* a PTX error reaches the JIT error log, naming its line, as the
	 * driver writes it: NUL-terminated, cut to the buffer, and the size
	 * option set to the bytes written; the info log is emptied */
	static const char badptx[] = ".version 7.0\n.target sm_80\n.address_size 64\n\n"
				     ".visible .entry broken()\n{\n\tfrobnicate.u32 %r1, 1;\n\tret;\n}\n";
	char errlog[512], infolog[64], cut[8];
	memset(errlog, 'x', sizeof errlog);
	memset(infolog, 'x', sizeof infolog);
	CUjit_option jo[] = {CU_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES, CU_JIT_ERROR_LOG_BUFFER,
			     CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
	void *jv[] = {infolog, (void *)sizeof infolog, errlog, (void *)sizeof errlog};
	EXPECT(cuModuleLoadDataEx(&bad, badptx, 4, jo, jv), CUDA_ERROR_INVALID_PTX);
	if (memchr(errlog, 0, sizeof errlog) == NULL || strstr(errlog, "line 7") == NULL || strstr(errlog, "frobnicate") == NULL)
		FAIL("JIT error log does not name the line: %.*s", (int)sizeof errlog, errlog);
	if ((size_t)jv[3] != strlen(errlog))
		FAIL("JIT error log size %zu, %zu bytes written", (size_t)jv[3], strlen(errlog));
	if (infolog[0] != 0 || jv[1] != NULL)
		FAIL("JIT info log not emptied");
	jv[2] = cut;
	jv[3] = (void *)sizeof cut;
	CUlibrary badlib;
	EXPECT(cuLibraryLoadData(&badlib, badptx, jo, jv, 4, NULL, NULL, 0), CUDA_ERROR_INVALID_PTX);
	if ((size_t)jv[3] != sizeof cut - 1 || strlen(cut) != sizeof cut - 1 || strncmp(cut, errlog, sizeof cut - 1) != 0)
		FAIL("cut JIT error log: %zu bytes, \"%s\"", (size_t)jv[3], cut);
	fprintf(stderr, "JIT error log: %s\n", errlog);

	CUdeviceptr a, b, c;
	CHECK(cuMemAlloc(&a, 4096));
	CHECK(cuMemAlloc(&b, 4096));
	CHECK(cuMemAlloc(&c, 4096));
	int n = 1024;
	void *params[] = {&a, &b, &c, &n};

	/* launch shapes and parameters, all reported by the launch itself */
	EXPECT(cuLaunchKernel(fn, 0, 1, 1, 128, 1, 1, 0, NULL, params, NULL), CUDA_ERROR_INVALID_VALUE);
	EXPECT(cuLaunchKernel(fn, 1, 1, 1, 0, 1, 1, 0, NULL, params, NULL), CUDA_ERROR_INVALID_VALUE);
	EXPECT(cuLaunchKernel(fn, 1, 1, 1, 2048, 1, 1, 0, NULL, params, NULL), CUDA_ERROR_INVALID_VALUE);
	EXPECT(cuLaunchKernel(fn, 1, 1, 1, 32, 32, 2, 0, NULL, params, NULL), CUDA_ERROR_INVALID_VALUE);
	EXPECT(cuLaunchKernel(fn, 1, 1, 1, 1, 1, 128, 0, NULL, params, NULL), CUDA_ERROR_INVALID_VALUE);
	EXPECT(cuLaunchKernel(fn, 1, 70000, 1, 1, 1, 1, 0, NULL, params, NULL), CUDA_ERROR_INVALID_VALUE);
	EXPECT(cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 1u << 30, NULL, params, NULL), CUDA_ERROR_INVALID_VALUE);
	EXPECT(cuLaunchKernel(NULL, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL), CUDA_ERROR_INVALID_HANDLE);
	EXPECT(cuLaunchKernel((CUfunction)0xdeadbeef, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL), CUDA_ERROR_INVALID_HANDLE);
	EXPECT(cuLaunchKernel((CUfunction)mod, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL), CUDA_ERROR_INVALID_HANDLE);
	EXPECT(cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, (CUstream)0xbadbad, params, NULL), CUDA_ERROR_INVALID_HANDLE);
	EXPECT(cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, NULL), CUDA_ERROR_INVALID_VALUE);
	void *nullparam[] = {&a, NULL, &c, &n};
	EXPECT(cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, NULL, nullparam, NULL), CUDA_ERROR_INVALID_VALUE);
	static unsigned char big[40000];
	size_t bigsize = sizeof big, small = 8;
	void *extra_big[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, big, CU_LAUNCH_PARAM_BUFFER_SIZE, &bigsize, CU_LAUNCH_PARAM_END};
	EXPECT(cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, extra_big), CUDA_ERROR_INVALID_VALUE);
	void *extra_small[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, big, CU_LAUNCH_PARAM_BUFFER_SIZE, &small, CU_LAUNCH_PARAM_END};
	EXPECT(cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, extra_small), CUDA_ERROR_INVALID_VALUE);
	void *extra_bad[] = {(void *)7, big, CU_LAUNCH_PARAM_END};
	EXPECT(cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, extra_bad), CUDA_ERROR_INVALID_VALUE);
	EXPECT(cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, NULL, params, extra_small), CUDA_ERROR_INVALID_VALUE);
	CUlaunchConfig cfg = {1, 1, 1, 0, 1, 1, 0, NULL, NULL, 0};
	EXPECT(cuLaunchKernelEx(&cfg, fn, params, NULL), CUDA_ERROR_INVALID_VALUE);
	EXPECT(cuLaunchKernelEx(NULL, fn, params, NULL), CUDA_ERROR_INVALID_VALUE);
	/* none of that reached the device: the context is clean */
	CHECK(cuCtxSynchronize());

	/* streams and events */
	CUstream st;
	CUevent ev;
	float ms;
	EXPECT(cuStreamSynchronize((CUstream)0xbadbad), CUDA_ERROR_INVALID_HANDLE);
	EXPECT(cuStreamQuery((CUstream)&n), CUDA_ERROR_INVALID_HANDLE);
	EXPECT(cuStreamDestroy((CUstream)0x77), CUDA_ERROR_INVALID_HANDLE);
	EXPECT(cuMemcpyHtoDAsync(a, params, 8, (CUstream)0x99999), CUDA_ERROR_INVALID_HANDLE);
	EXPECT(cuStreamCreate(&st, 0x80), CUDA_ERROR_INVALID_VALUE);
	EXPECT(cuEventRecord((CUevent)0x5, NULL), CUDA_ERROR_INVALID_HANDLE);
	EXPECT(cuEventRecordWithFlags((CUevent)0x5, NULL, CU_EVENT_RECORD_DEFAULT), CUDA_ERROR_INVALID_HANDLE);
	EXPECT(cuEventElapsedTime(&ms, (CUevent)0x5, (CUevent)0x6), CUDA_ERROR_INVALID_HANDLE);
	CHECK(cuStreamCreate(&st, 0));
	CHECK(cuEventCreate(&ev, 0));
	EXPECT(cuStreamWaitEvent(st, (CUevent)st, 0), CUDA_ERROR_INVALID_HANDLE);
	EXPECT(cuEventRecordWithFlags(ev, st, 0x2), CUDA_ERROR_INVALID_VALUE);
	CHECK(cuEventDestroy(ev));
	EXPECT(cuEventDestroy(ev), CUDA_ERROR_INVALID_HANDLE);
	CHECK(cuStreamDestroy(st));
	EXPECT(cuStreamDestroy(st), CUDA_ERROR_INVALID_HANDLE);

	/* memory */
	EXPECT(cuMemcpyHtoD(a, NULL, 16), CUDA_ERROR_INVALID_VALUE);
	EXPECT(cuMemcpyDtoH(big, a, (size_t)-1), CUDA_ERROR_INVALID_VALUE);
	EXPECT(cuMemAlloc(NULL, 16), CUDA_ERROR_INVALID_VALUE);
	r = cuMemFree(0x1234);
	if (r == CUDA_SUCCESS)
		FAIL("freeing a bogus pointer succeeded");
	CHECK(cuMemFree(a));
	r = cuMemFree(a);
	if (r == CUDA_SUCCESS)
		FAIL("double free succeeded");
	r = cuMemcpyHtoD(b, big, 8192); /* past the end of b */
	if (r == CUDA_SUCCESS)
		FAIL("copy past an allocation succeeded");
	EXPECT(cuMemFreeHost(&n), CUDA_ERROR_INVALID_VALUE);
	CHECK(cuCtxSynchronize());

	/* a destroyed context is no longer current, and no longer valid */
	CHECK(cuCtxDestroy(ctx));
	CUcontext cur = (CUcontext)1;
	CHECK(cuCtxGetCurrent(&cur));
	if (cur != NULL)
		FAIL("destroyed context still current");
	EXPECT(cuCtxSetCurrent(ctx), CUDA_ERROR_INVALID_CONTEXT);
	EXPECT(cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL), CUDA_ERROR_INVALID_CONTEXT);
	printf("errors ok\n");
	return 0;
}
