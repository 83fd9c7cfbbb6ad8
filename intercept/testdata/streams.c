/* Several streams with events, cross-stream waits, pinned memory, and the
 * ordering of async copies, memsets and launches. argv[1]: vadd.ptx. */
#include "common.h"

#define NS 4
#define N 4096

int main(int argc, char **argv) {
	if (argc < 2)
		FAIL("usage: streams vadd.ptx");
	char *ptx = read_ptx(argv[1]);
	CUcontext ctx = setup(0);
	CUmodule mod;
	CUfunction vadd, saxpy;
	CHECK(cuModuleLoadData(&mod, ptx));
	CHECK(cuModuleGetFunction(&vadd, mod, "vadd"));
	CHECK(cuModuleGetFunction(&saxpy, mod, "saxpy"));

	CUstream s[NS];
	CUevent start[NS], stop[NS];
	CUdeviceptr da[NS], db[NS], dc[NS];
	float *ha[NS], *hb[NS], *hc[NS];
	int n = N;
	for (int i = 0; i < NS; i++) {
		if (i % 2)
			CHECK(cuStreamCreate(&s[i], CU_STREAM_NON_BLOCKING));
		else
			CHECK(cuStreamCreateWithPriority(&s[i], CU_STREAM_DEFAULT, -1));
		CHECK(cuEventCreate(&start[i], CU_EVENT_DEFAULT));
		CHECK(cuEventCreate(&stop[i], CU_EVENT_BLOCKING_SYNC));
		CHECK(cuMemAlloc(&da[i], N * 4));
		CHECK(cuMemAlloc(&db[i], N * 4));
		CHECK(cuMemAlloc(&dc[i], N * 4));
		CHECK(cuMemAllocHost((void **)&ha[i], N * 4));
		CHECK(cuMemHostAlloc((void **)&hb[i], N * 4, CU_MEMHOSTALLOC_PORTABLE));
		CHECK(cuMemAllocHost((void **)&hc[i], N * 4));
		if (((uintptr_t)ha[i] & 4095) != 0)
			FAIL("pinned memory not page aligned");
		fill(ha[i], N, 1.0f, (float)i);
		fill(hb[i], N, 2.0f, 0);
	}
	for (int i = 0; i < NS; i++) {
		void *p[] = {&da[i], &db[i], &dc[i], &n};
		CHECK(cuEventRecord(start[i], s[i]));
		CHECK(cuMemcpyHtoDAsync(da[i], ha[i], N * 4, s[i]));
		CHECK(cuMemcpyHtoDAsync(db[i], hb[i], N * 4, s[i]));
		CHECK(cuLaunchKernel(vadd, N / 256, 1, 1, 256, 1, 1, 0, s[i], p, NULL));
		CHECK(cuMemcpyDtoHAsync(hc[i], dc[i], N * 4, s[i]));
		CHECK(cuEventRecordWithFlags(stop[i], s[i], i ? CU_EVENT_RECORD_EXTERNAL : CU_EVENT_RECORD_DEFAULT));
	}
	/* stream 1 continues from stream 0's result once stream 0 is done:
	 * dc[1] = 3 * dc[0] + dc[1] */
	CHECK(cuStreamWaitEvent(s[1], stop[0], 0));
	float three = 3.0f;
	void *sp[] = {&n, &three, &dc[0], &dc[1]};
	CHECK(cuLaunchKernel(saxpy, N / 256, 1, 1, 256, 1, 1, 0, s[1], sp, NULL));
	float *chain = malloc(N * 4);
	CHECK(cuMemcpyDtoHAsync(chain, dc[1], N * 4, s[1]));

	for (int i = 0; i < NS; i++) {
		CHECK(cuEventSynchronize(stop[i]));
		CHECK(cuEventQuery(stop[i]));
		float ms = -1;
		CHECK(cuEventElapsedTime(&ms, start[i], stop[i]));
		if (!(ms >= 0))
			FAIL("elapsed time %f", ms);
		float ms2 = -1;
		CHECK(cuEventElapsedTime_v2(&ms2, start[i], stop[i]));
		if (ms2 != ms)
			FAIL("elapsed time v2 %f, v1 %f", ms2, ms);
		for (int j = 0; j < N; j++)
			if (hc[i][j] != ha[i][j] + hb[i][j])
				FAIL("stream %d: c[%d] = %f, want %f", i, j, hc[i][j], ha[i][j] + hb[i][j]);
	}
	CHECK(cuStreamSynchronize(s[1]));
	CHECK(cuStreamQuery(s[1]));
	for (int j = 0; j < N; j++) {
		float want = 3.0f * (ha[0][j] + hb[0][j]) + ha[1][j] + hb[1][j];
		if (chain[j] != want)
			FAIL("chained c[%d] = %f, want %f", j, chain[j], want);
	}

	/* Ordering within one stream: copy in, memset part, launch, copy out,
	 * then overwrite the input; the earlier copy-out must see the old data. */
	CUstream q = s[2];
	float *in = ha[2], *out = hc[2];
	fill(in, N, 1.0f, 0);
	CHECK(cuMemcpyHtoDAsync(da[2], in, N * 4, q));
	CHECK(cuMemsetD32Async(db[2], 0x3f800000u, N, q)); /* 1.0f */
	CHECK(cuMemsetD8Async(db[2], 0, 16, q));          /* first four floats: 0 */
	CHECK(cuMemsetD16Async(db[2] + 16, 0, 2, q));     /* fifth float: 0 */
	void *p2[] = {&da[2], &db[2], &dc[2], &n};
	CHECK(cuLaunchKernel(vadd, N / 256, 1, 1, 256, 1, 1, 0, q, p2, NULL));
	CHECK(cuMemcpyDtoHAsync(out, dc[2], N * 4, q));
	for (int j = 0; j < N; j++)
		in[j] = -100.0f; /* after the async copy returned: must not matter */
	CHECK(cuMemcpyHtoDAsync(da[2], in, N * 4, q));
	CHECK(cuMemcpyDtoDAsync(dc[3], da[2], N * 4, q));
	CHECK(cuStreamSynchronize(q));
	for (int j = 0; j < N; j++) {
		float want = (float)j + (j < 5 ? 0.0f : 1.0f);
		if (out[j] != want)
			FAIL("ordered c[%d] = %f, want %f", j, out[j], want);
	}
	CHECK(cuMemcpyDtoH(out, dc[3], N * 4));
	if (out[7] != -100.0f)
		FAIL("DtoD async: %f", out[7]);

	/* The legacy default stream orders with blocking streams. */
	CHECK(cuMemsetD32Async(dc[0], 0, N, CU_STREAM_LEGACY));
	CHECK(cuStreamSynchronize(CU_STREAM_PER_THREAD));
	CHECK(cuStreamQuery(NULL));

	for (int i = 0; i < NS; i++) {
		CHECK(cuEventDestroy(start[i]));
		CHECK(cuEventDestroy(stop[i]));
		CHECK(cuStreamDestroy(s[i]));
		CHECK(cuMemFreeHost(ha[i]));
		CHECK(cuMemFreeHost(hb[i]));
		CHECK(cuMemFreeHost(hc[i]));
		CHECK(cuMemFree(da[i]));
		CHECK(cuMemFree(db[i]));
		CHECK(cuMemFree(dc[i]));
	}
	EXPECT(cuStreamSynchronize(s[0]), CUDA_ERROR_INVALID_HANDLE);
	EXPECT(cuEventQuery(start[0]), CUDA_ERROR_INVALID_HANDLE);
	EXPECT(cuMemFreeHost(chain), CUDA_ERROR_INVALID_VALUE);
	free(chain);
	CHECK(cuCtxDestroy(ctx));
	printf("streams ok\n");
	return 0;
}
