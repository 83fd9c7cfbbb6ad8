/* The driver-API baselines of `kerf bench runtime`, in the device's
 * primary context as the runtime uses:
 *
 *   rt_driver launch rt_bench.ptx N  rt_bench.cu's launch loop through
 *                                    cuLaunchKernel, on the same empty
 *                                    kernel (PTX from `nvcc -ptx`)
 *   rt_driver copy BYTES             its copy through cuMemcpyHtoDAsync
 *                                    from cuMemAllocHost memory
 *
 * printing what rt_bench prints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kerf_cuda.h"

#define CHECK(call)                                                              \
	do {                                                                         \
		CUresult r_ = (call);                                                    \
		if (r_ != CUDA_SUCCESS) {                                                \
			fprintf(stderr, "%s:%d: %s = %d\n", __FILE__, __LINE__, #call, r_);  \
			exit(1);                                                             \
		}                                                                        \
	} while (0)

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *read_file(const char *path) {
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		perror(path);
		exit(1);
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc(n + 1);
	if (fread(buf, 1, n, f) != (size_t)n) {
		perror(path);
		exit(1);
	}
	buf[n] = 0;
	fclose(f);
	return buf;
}

static void launches(const char *ptx_path, long n) {
	char *ptx = read_file(ptx_path);
	CUmodule mod;
	CUfunction fn;
	CHECK(cuModuleLoadData(&mod, ptx));
	CHECK(cuModuleGetFunction(&fn, mod, "empty_kernel"));
	CHECK(cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL));
	CHECK(cuCtxSynchronize());
	double t0 = now();
	for (long i = 0; i < n; i++)
		CHECK(cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL));
	double t1 = now();
	CHECK(cuCtxSynchronize());
	double t2 = now();
	printf("launches %ld submit_s %.6f total_s %.6f\n", n, t1 - t0, t2 - t0);
}

/* COPIES timed copies follow the warm-up, each printed. */
#define COPIES 3

static void copy(size_t n) {
	char *host;
	CUdeviceptr dev;
	CUstream s;
	CHECK(cuMemAllocHost((void **)&host, n));
	CHECK(cuMemAlloc(&dev, n));
	CHECK(cuStreamCreate(&s, 0));
	memset(host, 1, n);
	CHECK(cuMemcpyHtoDAsync(dev, host, n, s));
	CHECK(cuStreamSynchronize(s));
	for (int i = 0; i < COPIES; i++) {
		double t0 = now();
		CHECK(cuMemcpyHtoDAsync(dev, host, n, s));
		CHECK(cuStreamSynchronize(s));
		printf("copy %zu seconds %.6f\n", n, now() - t0);
	}
	CHECK(cuStreamDestroy(s));
	CHECK(cuMemFree(dev));
	CHECK(cuMemFreeHost(host));
}

int main(int argc, char **argv) {
	CUdevice dev;
	CUcontext ctx;
	CHECK(cuInit(0));
	CHECK(cuDeviceGet(&dev, 0));
	CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
	CHECK(cuCtxSetCurrent(ctx));
	if (argc == 4 && strcmp(argv[1], "launch") == 0)
		launches(argv[2], atol(argv[3]));
	else if (argc == 3 && strcmp(argv[1], "copy") == 0)
		copy((size_t)atoll(argv[2]));
	else {
		fprintf(stderr, "usage: rt_driver launch rt_bench.ptx N | rt_driver copy BYTES\n");
		return 2;
	}
	return 0;
}
