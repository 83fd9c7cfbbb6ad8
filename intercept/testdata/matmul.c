/* Tiled matrix multiply against a CPU reference. argv[1]: matmul.ptx. */
#include <math.h>
#include "common.h"

#define M 45
#define NN 38
#define K 50

int main(int argc, char **argv) {
	if (argc < 2)
		FAIL("usage: matmul matmul.ptx");
	char *ptx = read_ptx(argv[1]);
	CUcontext ctx = setup(0);
	CUmodule mod;
	CUfunction fn;
	CHECK(cuModuleLoadData(&mod, ptx));
	CHECK(cuModuleGetFunction(&fn, mod, "matmul"));
	static float A[M * K], B[K * NN], C[M * NN];
	for (int i = 0; i < M * K; i++)
		A[i] = (float)((i * 7) % 13) - 6.0f;
	for (int i = 0; i < K * NN; i++)
		B[i] = (float)((i * 5) % 11) * 0.25f;
	CUdeviceptr dA, dB, dC;
	CHECK(cuMemAlloc(&dA, sizeof A));
	CHECK(cuMemAlloc(&dB, sizeof B));
	CHECK(cuMemAlloc(&dC, sizeof C));
	CHECK(cuMemcpyHtoD(dA, A, sizeof A));
	CHECK(cuMemcpyHtoD(dB, B, sizeof B));
	int m = M, n = NN, k = K;
	void *params[] = {&dA, &dB, &dC, &m, &n, &k};
	CHECK(cuLaunchKernel(fn, (NN + 15) / 16, (M + 15) / 16, 1, 16, 16, 1, 0, NULL, params, NULL));
	CHECK(cuCtxSynchronize());
	CHECK(cuMemcpyDtoH(C, dC, sizeof C));
	for (int i = 0; i < M; i++)
		for (int j = 0; j < NN; j++) {
			float want = 0;
			for (int t = 0; t < K; t++)
				want = fmaf(A[i * K + t], B[t * NN + j], want);
			if (fabsf(C[i * NN + j] - want) > 1e-3f * (1 + fabsf(want)))
				FAIL("C[%d][%d] = %f, want %f", i, j, C[i * NN + j], want);
		}
	CHECK(cuMemFree(dA));
	CHECK(cuMemFree(dB));
	CHECK(cuMemFree(dC));
	CHECK(cuModuleUnload(mod));
	CHECK(cuCtxDestroy(ctx));
	printf("matmul ok\n");
	return 0;
}
