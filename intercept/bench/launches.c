/* Launch-rate benchmark for `kerf bench intercept`: launches N small
 * kernels asynchronously through the driver API, then synchronizes, and
 * prints the rate. The kernel is vadd with n = 0, so the device does the
 * least work a launch can cost. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common.h"

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
	if (argc < 3)
		FAIL("usage: launches vadd.ptx N");
	char *ptx = read_ptx(argv[1]);
	long n = atol(argv[2]);
	setup(0);
	CUmodule mod;
	CUfunction fn;
	CHECK(cuModuleLoadData(&mod, ptx));
	CHECK(cuModuleGetFunction(&fn, mod, "vadd"));
	CUdeviceptr buf;
	CHECK(cuMemAlloc(&buf, 256));
	int zero = 0;
	void *params[] = {&buf, &buf, &buf, &zero};
	/* One launch and sync first: the parameter layout is fetched once. */
	CHECK(cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, 0, params, NULL));
	CHECK(cuCtxSynchronize());
	double t0 = now();
	for (long i = 0; i < n; i++)
		CHECK(cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, 0, params, NULL));
	double t1 = now();
	CHECK(cuCtxSynchronize());
	double t2 = now();
	printf("launches %ld submit_s %.6f total_s %.6f\n", n, t1 - t0, t2 - t0);
	return 0;
}
