/* The CUDA-runtime program of `kerf bench runtime`, built with nvcc at
 * benchmark time:
 *
 *   rt_bench launch N    N launches of an empty kernel (<<<1,1>>>), then
 *                        one sync: "launches N submit_s S total_s T"
 *   rt_bench copy BYTES  host-to-device cudaMemcpyAsync of BYTES from
 *                        cudaMallocHost memory, a warm-up copy then
 *                        COPIES timed ones, each "copy BYTES seconds S"
 *
 * The submit time is the launch loop alone, without the sync. `nvcc -ptx`
 * of this file gives rt_driver.c the same kernel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern "C" __global__ void empty_kernel(void) {}

#define CHECK(call)                                                              \
	do {                                                                         \
		cudaError_t e_ = (call);                                                 \
		if (e_ != cudaSuccess) {                                                 \
			fprintf(stderr, "%s:%d: %s = %s\n", __FILE__, __LINE__, #call,       \
				cudaGetErrorName(e_));                                           \
			exit(1);                                                             \
		}                                                                        \
	} while (0)

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void launches(long n) {
	/* One launch and sync first: the runtime loads the module lazily. */
	empty_kernel<<<1, 1>>>();
	CHECK(cudaGetLastError());
	CHECK(cudaDeviceSynchronize());
	double t0 = now();
	for (long i = 0; i < n; i++)
		empty_kernel<<<1, 1>>>();
	double t1 = now();
	CHECK(cudaGetLastError());
	CHECK(cudaDeviceSynchronize());
	double t2 = now();
	printf("launches %ld submit_s %.6f total_s %.6f\n", n, t1 - t0, t2 - t0);
}

/* COPIES timed copies follow the warm-up, each printed. */
#define COPIES 3

static void copy(size_t n) {
	char *host;
	void *dev;
	cudaStream_t s;
	CHECK(cudaMallocHost((void **)&host, n));
	CHECK(cudaMalloc(&dev, n));
	CHECK(cudaStreamCreate(&s));
	memset(host, 1, n);
	CHECK(cudaMemcpyAsync(dev, host, n, cudaMemcpyHostToDevice, s));
	CHECK(cudaStreamSynchronize(s));
	for (int i = 0; i < COPIES; i++) {
		double t0 = now();
		CHECK(cudaMemcpyAsync(dev, host, n, cudaMemcpyHostToDevice, s));
		CHECK(cudaStreamSynchronize(s));
		printf("copy %zu seconds %.6f\n", n, now() - t0);
	}
	CHECK(cudaStreamDestroy(s));
	CHECK(cudaFree(dev));
	CHECK(cudaFreeHost(host));
}

int main(int argc, char **argv) {
	if (argc == 3 && strcmp(argv[1], "launch") == 0)
		launches(atol(argv[2]));
	else if (argc == 3 && strcmp(argv[1], "copy") == 0)
		copy((size_t)atoll(argv[2]));
	else {
		fprintf(stderr, "usage: rt_bench launch N | rt_bench copy BYTES\n");
		return 2;
	}
	return 0;
}
