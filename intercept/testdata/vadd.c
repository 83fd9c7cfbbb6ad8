/* Vector add through every way of launching: kernelParams, extra,
 * cuLaunchKernelEx and the library API; plus memsets, copies and
 * device queries. argv[1]: vadd.ptx. */
#include "common.h"

#define N 1037

static void check_sum(const float *a, const float *b, const float *c, int n, const char *how) {
	for (int i = 0; i < n; i++)
		if (c[i] != a[i] + b[i])
			FAIL("%s: c[%d] = %f, want %f", how, i, c[i], a[i] + b[i]);
}

int main(int argc, char **argv) {
	if (argc < 2)
		FAIL("usage: vadd vadd.ptx");
	char *ptx = read_ptx(argv[1]);
	int ver = 0, count = 0;
	CHECK(cuDriverGetVersion(&ver));
	if (ver < 12000)
		FAIL("driver version %d", ver);
	EXPECT(cuDeviceGetCount(&count), CUDA_ERROR_NOT_INITIALIZED);
	CUcontext ctx = setup(0);
	CHECK(cuDeviceGetCount(&count));
	if (count != 1)
		FAIL("%d devices, want 1", count);

	char name[256];
	size_t total = 0;
	int major = 0, minor = 0, warp = 0, sms = 0;
	CUuuid uuid;
	CHECK(cuDeviceGetName(name, sizeof name, 0));
	CHECK(cuDeviceTotalMem(&total, 0));
	CHECK(cuDeviceComputeCapability(&major, &minor, 0));
	CHECK(cuDeviceGetAttribute(&warp, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 0));
	CHECK(cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0));
	CHECK(cuDeviceGetUuid(&uuid, 0));
	CHECK(cuDeviceGetUuid_v2(&uuid, 0));
	if (name[0] == 0 || total == 0 || major < 3 || warp != 32 || sms <= 0)
		FAIL("device: name %s total %zu cc %d.%d warp %d sms %d", name, total, major, minor, warp, sms);
	char tiny[4];
	CHECK(cuDeviceGetName(tiny, sizeof tiny, 0));
	if (strlen(tiny) != 3)
		FAIL("truncated name %s", tiny);
	CUdevice cur = -1;
	CHECK(cuCtxGetDevice(&cur));
	if (cur != 0)
		FAIL("context device %d", cur);

	CUmodule mod;
	CUfunction fn, saxpy;
	CHECK(cuModuleLoadData(&mod, ptx));
	CHECK(cuModuleGetFunction(&fn, mod, "vadd"));
	CHECK(cuModuleGetFunction(&saxpy, mod, "saxpy"));
	size_t off[4], sz[4];
	for (int i = 0; i < 4; i++)
		CHECK(cuFuncGetParamInfo(fn, i, &off[i], &sz[i]));
	EXPECT(cuFuncGetParamInfo(fn, 4, &off[0], &sz[0]), CUDA_ERROR_INVALID_VALUE);
	if (sz[0] != 8 || sz[3] != 4)
		FAIL("param sizes %zu %zu", sz[0], sz[3]);
	int maxThreads = 0;
	CHECK(cuFuncGetAttribute(&maxThreads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, fn));
	if (maxThreads <= 0)
		FAIL("max threads %d", maxThreads);

	float a[N], b[N], c[N];
	fill(a, N, 0.5f, 0);
	fill(b, N, -1.0f, N);
	CUdeviceptr da, db, dc;
	CHECK(cuMemAlloc(&da, sizeof a));
	CHECK(cuMemAlloc(&db, sizeof b));
	CHECK(cuMemAlloc(&dc, sizeof c));
	CHECK(cuMemcpyHtoD(da, a, sizeof a));
	CHECK(cuMemcpyHtoD(db, b, sizeof b));
	int n = N;
	unsigned grid = (N + 127) / 128;

	/* kernelParams */
	void *params[] = {&da, &db, &dc, &n};
	CHECK(cuLaunchKernel(fn, grid, 1, 1, 128, 1, 1, 0, NULL, params, NULL));
	memset(c, 0, sizeof c);
	CHECK(cuMemcpyDtoH(c, dc, sizeof c));
	check_sum(a, b, c, N, "kernelParams");

	/* extra */
	CHECK(cuMemsetD8(dc, 0, sizeof c));
	unsigned char buf[64];
	memset(buf, 0, sizeof buf);
	memcpy(buf + off[0], &da, 8);
	memcpy(buf + off[1], &db, 8);
	memcpy(buf + off[2], &dc, 8);
	memcpy(buf + off[3], &n, 4);
	size_t bufsize = off[3] + sz[3];
	void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, buf, CU_LAUNCH_PARAM_BUFFER_SIZE, &bufsize, CU_LAUNCH_PARAM_END};
	CHECK(cuLaunchKernel(fn, grid, 1, 1, 128, 1, 1, 0, NULL, NULL, extra));
	memset(c, 0, sizeof c);
	CHECK(cuMemcpyDtoH(c, dc, sizeof c));
	check_sum(a, b, c, N, "extra");

	/* cuLaunchKernelEx, with a hint it may ignore */
	CHECK(cuMemsetD32(dc, 0, N));
	CUlaunchAttribute attr;
	memset(&attr, 0, sizeof attr);
	attr.id = CU_LAUNCH_ATTRIBUTE_PRIORITY;
	attr.value.priority = 0;
	CUlaunchConfig cfg = {grid, 1, 1, 128, 1, 1, 0, NULL, &attr, 1};
	CHECK(cuLaunchKernelEx(&cfg, fn, params, NULL));
	memset(c, 0, sizeof c);
	CHECK(cuMemcpyDtoH(c, dc, sizeof c));
	check_sum(a, b, c, N, "cuLaunchKernelEx");
	/* the same launch, cooperative: every block at once, on a device
	 * that runs cooperative launches (the emulated one does; a CUDA
	 * backend under Kerf refuses them as not supported) */
	CHECK(cuMemsetD32(dc, 0, N));
	attr.id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE;
	attr.value.cooperative = 1;
	CUresult coop = cuLaunchKernelEx(&cfg, fn, params, NULL);
	if (coop == CUDA_SUCCESS) {
		memset(c, 0, sizeof c);
		CHECK(cuMemcpyDtoH(c, dc, sizeof c));
		check_sum(a, b, c, N, "cooperative cuLaunchKernelEx");
	} else if (coop == CUDA_ERROR_NOT_SUPPORTED)
		CHECK(cuLaunchKernel(fn, grid, 1, 1, 128, 1, 1, 0, NULL, params, NULL)); /* c = a + b again */
	else
		FAIL("cooperative cuLaunchKernelEx = %d", coop);
	/* more blocks than the device holds at once */
	cfg.gridDimX = 1u << 20;
	EXPECT(cuLaunchKernelEx(&cfg, fn, params, NULL), CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE);
	cfg.gridDimX = grid;

	/* saxpy: y = 2x + y, in place on dc */
	float alpha = 2.0f;
	void *sp[] = {&n, &alpha, &da, &dc};
	CHECK(cuLaunchKernel(saxpy, grid, 1, 1, 128, 1, 1, 0, NULL, sp, NULL));
	CHECK(cuMemcpyDtoH(c, dc, sizeof c));
	for (int i = 0; i < N; i++)
		if (c[i] != 2.0f * a[i] + a[i] + b[i])
			FAIL("saxpy c[%d] = %f", i, c[i]);

	/* memsets and device-to-device copies */
	CHECK(cuMemsetD16(db, 0x3c00, N * 2));
	CHECK(cuMemcpyDtoD(dc, db, sizeof c));
	unsigned short h[2 * N];
	CHECK(cuMemcpyDtoH(h, dc, sizeof h));
	for (int i = 0; i < 2 * N; i++)
		if (h[i] != 0x3c00)
			FAIL("memsetD16 h[%d] = %x", i, h[i]);
	CHECK(cuMemsetD32(dc, 0x40000000u, N)); /* 2.0f */
	CHECK(cuMemcpyDtoH(c, dc, sizeof c));
	for (int i = 0; i < N; i++)
		if (c[i] != 2.0f)
			FAIL("memsetD32 c[%d] = %f", i, c[i]);

	/* the library API */
	CUlibrary lib;
	CUkernel k;
	CUfunction kf;
	CHECK(cuLibraryLoadData(&lib, ptx, NULL, NULL, 0, NULL, NULL, 0));
	CHECK(cuLibraryGetKernel(&k, lib, "vadd"));
	CHECK(cuKernelGetFunction(&kf, k));
	CHECK(cuMemcpyHtoD(db, b, sizeof b));
	CHECK(cuLaunchKernel(kf, grid, 1, 1, 128, 1, 1, 0, NULL, params, NULL));
	CHECK(cuMemcpyDtoH(c, dc, sizeof c));
	check_sum(a, b, c, N, "library");
	int kmax = 0;
	CHECK(cuKernelGetAttribute(&kmax, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, k, 0));
	if (kmax != maxThreads)
		FAIL("kernel max threads %d, function's %d", kmax, maxThreads);
	EXPECT(cuKernelGetAttribute(&kmax, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, k, 7), CUDA_ERROR_INVALID_DEVICE);
	EXPECT(cuKernelGetAttribute(NULL, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, k, 0), CUDA_ERROR_INVALID_VALUE);
	CHECK(cuLibraryUnload(lib));
	EXPECT(cuLaunchKernel(kf, grid, 1, 1, 128, 1, 1, 0, NULL, params, NULL), CUDA_ERROR_INVALID_HANDLE);

	/* JIT options are accepted and ignored */
	CUmodule mod2;
	CUjit_option opt = 0;
	void *optval = NULL;
	CHECK(cuModuleLoadDataEx(&mod2, ptx, 1, &opt, &optval));
	CHECK(cuModuleUnload(mod2));

	size_t freeb = 0, totalb = 0;
	CHECK(cuMemGetInfo(&freeb, &totalb));
	if (totalb != total || freeb > totalb)
		FAIL("mem info %zu / %zu, device %zu", freeb, totalb, total);

	CHECK(cuMemFree(da));
	CHECK(cuMemFree(db));
	CHECK(cuMemFree(dc));
	CHECK(cuModuleUnload(mod));
	EXPECT(cuModuleGetFunction(&fn, mod, "vadd"), CUDA_ERROR_INVALID_HANDLE);

	/* the primary context */
	CUcontext prim, got;
	unsigned flags = 0;
	int active = 0;
	CHECK(cuDevicePrimaryCtxRetain(&prim, 0));
	CHECK(cuDevicePrimaryCtxGetState(0, &flags, &active));
	if (!active)
		FAIL("primary context not active after retain");
	CHECK(cuCtxSetCurrent(prim));
	CHECK(cuCtxGetCurrent(&got));
	if (got != prim)
		FAIL("current context %p, want %p", (void *)got, (void *)prim);
	CHECK(cuMemAlloc(&da, 64));
	CHECK(cuMemFree(da));
	CHECK(cuDevicePrimaryCtxRelease(0));
	CHECK(cuDevicePrimaryCtxGetState(0, &flags, &active));
	if (active)
		FAIL("primary context active after release");

	/* module globals: argv[2] is stencil.ptx */
	if (argc > 2) {
		CUmodule sm;
		CUdeviceptr g;
		size_t gsize = 0;
		CHECK(cuModuleLoadData(&sm, read_ptx(argv[2])));
		CHECK(cuModuleGetGlobal(&g, &gsize, sm, "kerf_stencil_w"));
		float w[5];
		if (gsize != sizeof w)
			FAIL("constant of %zu bytes, want %zu", gsize, sizeof w);
		CHECK(cuMemcpyDtoH(w, g, sizeof w));
		if (w[0] != 0.5f || w[4] != 0.125f)
			FAIL("constant weights %f %f", w[0], w[4]);
		CHECK(cuModuleGetGlobal(&g, NULL, sm, "kerf_stencil_calls"));
		unsigned calls = 41, back = 0;
		CHECK(cuMemcpyHtoD(g, &calls, 4));
		CHECK(cuMemcpyDtoH(&back, g, 4));
		if (back != 41)
			FAIL("global reads back %u", back);
		CHECK(cuModuleUnload(sm));

		/* the same global through the library API */
		CUlibrary sl;
		CHECK(cuLibraryLoadData(&sl, read_ptx(argv[2]), NULL, NULL, 0, NULL, NULL, 0));
		gsize = 0;
		CHECK(cuLibraryGetGlobal(&g, &gsize, sl, "kerf_stencil_w"));
		if (gsize != sizeof w)
			FAIL("library constant of %zu bytes, want %zu", gsize, sizeof w);
		memset(w, 0, sizeof w);
		CHECK(cuMemcpyDtoH(w, g, sizeof w));
		if (w[0] != 0.5f || w[4] != 0.125f)
			FAIL("library constant weights %f %f", w[0], w[4]);
		EXPECT(cuLibraryGetGlobal(&g, &gsize, sl, "no_such_global"), CUDA_ERROR_NOT_FOUND);
		EXPECT(cuLibraryGetGlobal(&g, &gsize, (CUlibrary)ctx, "kerf_stencil_w"), CUDA_ERROR_INVALID_HANDLE);
		CHECK(cuLibraryUnload(sl));
	}

	CHECK(cuCtxSetCurrent(ctx));
	CHECK(cuCtxSynchronize());
	CHECK(cuCtxDestroy(ctx));
	printf("vadd ok\n");
	return 0;
}
