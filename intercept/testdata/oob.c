/* A kernel that writes far outside its buffer: the launch is accepted and
 * the illegal address comes back at the next synchronization, as in CUDA.
 * argv[1]: oob.ptx. */
#include "common.h"

int main(int argc, char **argv) {
	if (argc < 2)
		FAIL("usage: oob oob.ptx");
	char *ptx = read_ptx(argv[1]);
	CUcontext ctx = setup(0);
	CUmodule mod;
	CUfunction fn;
	CHECK(cuModuleLoadData(&mod, ptx));
	CHECK(cuModuleGetFunction(&fn, mod, "oob_write"));
	CUdeviceptr p;
	CHECK(cuMemAlloc(&p, 4096));
	int n = 1024;
	void *params[] = {&p, &n};
	CHECK(cuLaunchKernel(fn, 4, 1, 1, 256, 1, 1, 0, NULL, params, NULL));
	EXPECT(cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
	/* the context stays broken, as a CUDA context does */
	CUresult r = cuMemAlloc(&p, 16);
	if (r == CUDA_SUCCESS)
		fprintf(stderr, "note: allocation after an illegal address succeeded\n");
	(void)ctx;
	printf("oob ok\n");
	return 0;
}
