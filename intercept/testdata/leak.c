/* Exits with memory allocated, a module loaded and work queued, without
 * freeing or synchronizing anything. argv[1]: vadd.ptx. */
#include "common.h"

int main(int argc, char **argv) {
	if (argc < 2)
		FAIL("usage: leak vadd.ptx");
	char *ptx = read_ptx(argv[1]);
	setup(0);
	CUmodule mod;
	CUfunction fn;
	CHECK(cuModuleLoadData(&mod, ptx));
	CHECK(cuModuleGetFunction(&fn, mod, "vadd"));
	CUdeviceptr p[8];
	for (int i = 0; i < 8; i++)
		CHECK(cuMemAlloc(&p[i], 1 << 20));
	int n = (1 << 20) / 4;
	void *params[] = {&p[0], &p[1], &p[2], &n};
	CHECK(cuLaunchKernel(fn, n / 256, 1, 1, 256, 1, 1, 0, NULL, params, NULL));
	CHECK(cuMemsetD8Async(p[3], 1, 1 << 20, NULL));
	printf("leak ok\n");
	return 0;
}
