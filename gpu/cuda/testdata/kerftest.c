/* kerftest: the GPU validation suite's driver-API program (see
 * scripts/gpu-test.sh). It runs one case and prints one result line, so
 * that runs natively and through Kerf can be compared line for line.
 *
 *   kerftest vadd   IMAGE N                 vector add, checked on the CPU
 *   kerftest matmul IMAGE M N K ITERS       ITERS launches, checked; ms= is the loop's time
 *   kerftest oob    IMAGE                   expects CUDA_ERROR_ILLEGAL_ADDRESS
 *   kerftest quota  CHUNK_MIB               allocates until CUDA_ERROR_OUT_OF_MEMORY
 *
 * IMAGE is a cubin, fatbin or PTX file of kernels.cu. Exit status 0 means
 * the case passed. Builds against kerf_cuda.h (our declarations) and
 * links with -lcuda. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kerf_cuda.h"

static const char *errname(CUresult r) {
	switch ((int)r) { /* CUresult names only some codes */
	case CUDA_SUCCESS: return "CUDA_SUCCESS";
	case CUDA_ERROR_INVALID_VALUE: return "CUDA_ERROR_INVALID_VALUE";
	case CUDA_ERROR_OUT_OF_MEMORY: return "CUDA_ERROR_OUT_OF_MEMORY";
	case CUDA_ERROR_NOT_INITIALIZED: return "CUDA_ERROR_NOT_INITIALIZED";
	case CUDA_ERROR_NO_DEVICE: return "CUDA_ERROR_NO_DEVICE";
	case CUDA_ERROR_INVALID_IMAGE: return "CUDA_ERROR_INVALID_IMAGE";
	case CUDA_ERROR_INVALID_CONTEXT: return "CUDA_ERROR_INVALID_CONTEXT";
	case CUDA_ERROR_NO_BINARY_FOR_GPU: return "CUDA_ERROR_NO_BINARY_FOR_GPU";
	case CUDA_ERROR_INVALID_HANDLE: return "CUDA_ERROR_INVALID_HANDLE";
	case CUDA_ERROR_NOT_FOUND: return "CUDA_ERROR_NOT_FOUND";
	case CUDA_ERROR_ILLEGAL_ADDRESS: return "CUDA_ERROR_ILLEGAL_ADDRESS";
	case CUDA_ERROR_LAUNCH_FAILED: return "CUDA_ERROR_LAUNCH_FAILED";
	case CUDA_ERROR_NOT_SUPPORTED: return "CUDA_ERROR_NOT_SUPPORTED";
	}
	return "CUDA_ERROR_OTHER";
}

#define CK(call) do { \
	CUresult r_ = (call); \
	if (r_ != CUDA_SUCCESS) { \
		fprintf(stderr, "kerftest: %s: %d %s\n", #call, r_, errname(r_)); \
		exit(2); \
	} \
} while (0)

static CUcontext ctx;

static void setup(void) {
	CUdevice dev;
	CK(cuInit(0));
	CK(cuDeviceGet(&dev, 0));
	CK(cuCtxCreate(&ctx, 0, dev));
}

static CUmodule load(const char *path) {
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		exit(2);
	}
	size_t cap = 1 << 20, n = 0;
	char *buf = malloc(cap);
	for (size_t k; buf && (k = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
		n += k;
		if (cap - n < 2 && !(buf = realloc(buf, cap *= 2)))
			break;
	}
	fclose(f);
	if (!buf) {
		fprintf(stderr, "kerftest: out of host memory\n");
		exit(2);
	}
	buf[n] = 0; /* PTX is read as a C string */
	CUmodule m;
	CK(cuModuleLoadData(&m, buf));
	free(buf);
	return m;
}

/* fnv1a is the identity of a result: equal bytes, equal hash. */
static unsigned long long fnv1a(const void *p, size_t n) {
	const unsigned char *b = p;
	unsigned long long h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

/* fill gives every run the same inputs. */
static void fill(float *v, size_t n, unsigned seed) {
	unsigned x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x = x * 1664525u + 1013904223u;
		v[i] = (float)(x >> 8) / (float)(1u << 24) - 0.5f;
	}
}

static CUdeviceptr upload(const float *v, size_t n) {
	CUdeviceptr p;
	CK(cuMemAlloc(&p, n * sizeof *v));
	CK(cuMemcpyHtoD(p, v, n * sizeof *v));
	return p;
}

static double now_ms(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int run_vadd(const char *image, int n) {
	CUfunction f;
	CK(cuModuleGetFunction(&f, load(image), "vadd"));
	float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
	fill(a, n, 1);
	fill(b, n, 2);
	CUdeviceptr da = upload(a, n), db = upload(b, n), dc;
	CK(cuMemAlloc(&dc, n * sizeof *c));
	CK(cuMemsetD32(dc, 0xffffffffu, n));
	void *args[] = {&da, &db, &dc, &n};
	CK(cuLaunchKernel(f, (n + 255) / 256, 1, 1, 256, 1, 1, 0, 0, args, 0));
	CK(cuMemcpyDtoH(c, dc, n * sizeof *c));
	int bad = 0;
	for (int i = 0; i < n; i++)
		if (c[i] != a[i] + b[i])
			bad++;
	printf("vadd n=%d fnv=%016llx bad=%d\n", n, fnv1a(c, n * sizeof *c), bad);
	return bad != 0;
}

static int run_matmul(const char *image, int M, int N, int K, int iters) {
	CUfunction f;
	CK(cuModuleGetFunction(&f, load(image), "matmul"));
	float *A = malloc((size_t)M * K * sizeof *A), *B = malloc((size_t)K * N * sizeof *B);
	float *C = malloc((size_t)M * N * sizeof *C);
	fill(A, (size_t)M * K, 3);
	fill(B, (size_t)K * N, 4);
	CUdeviceptr dA = upload(A, (size_t)M * K), dB = upload(B, (size_t)K * N), dC;
	CK(cuMemAlloc(&dC, (size_t)M * N * sizeof *C));
	void *args[] = {&dA, &dB, &dC, &M, &N, &K};
	double t0 = now_ms();
	for (int i = 0; i < iters; i++)
		CK(cuLaunchKernel(f, (N + 15) / 16, (M + 15) / 16, 1, 16, 16, 1, 0, 0, args, 0));
	CK(cuCtxSynchronize());
	double ms = now_ms() - t0;
	CK(cuMemcpyDtoH(C, dC, (size_t)M * N * sizeof *C));
	int bad = 0;
	for (int i = 0; i < M; i += 7)
		for (int j = 0; j < N; j += 5) {
			double want = 0;
			for (int k = 0; k < K; k++)
				want += (double)A[(size_t)i * K + k] * B[(size_t)k * N + j];
			if (fabs(C[(size_t)i * N + j] - want) > 1e-3 * (1 + fabs(want)))
				bad++;
		}
	printf("matmul %dx%dx%d iters=%d fnv=%016llx bad=%d ms=%.3f\n", M, N, K, iters,
		fnv1a(C, (size_t)M * N * sizeof *C), bad, ms);
	return bad != 0;
}

static int run_oob(const char *image) {
	CUfunction f;
	CK(cuModuleGetFunction(&f, load(image), "oob_write"));
	CUdeviceptr p;
	int n = 1024;
	CK(cuMemAlloc(&p, n * sizeof(float)));
	void *args[] = {&p, &n};
	CUresult r = cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, 0, args, 0);
	if (r == CUDA_SUCCESS)
		r = cuCtxSynchronize();
	CUresult again = cuMemAlloc(&p, 16);
	printf("oob result=%d %s sticky=%d\n", r, errname(r), again == r);
	return !(r == CUDA_ERROR_ILLEGAL_ADDRESS && again == r);
}

static int run_quota(size_t chunk_mib) {
	size_t free_b, total_b, chunk = chunk_mib << 20;
	CK(cuMemGetInfo(&free_b, &total_b));
	unsigned long long got = 0;
	CUresult r;
	for (;;) {
		CUdeviceptr p;
		if ((r = cuMemAlloc(&p, chunk)) != CUDA_SUCCESS)
			break;
		got += chunk;
		if (got > total_b) /* the limit was not enforced */
			break;
	}
	printf("quota total=%zu free=%zu allocated=%llu result=%d %s\n", total_b, free_b, got, r, errname(r));
	return !(r == CUDA_ERROR_OUT_OF_MEMORY && got <= total_b);
}

int main(int argc, char **argv) {
	if (argc < 2)
		goto usage;
	setup();
	int rc;
	if (!strcmp(argv[1], "vadd") && argc == 4)
		rc = run_vadd(argv[2], atoi(argv[3]));
	else if (!strcmp(argv[1], "matmul") && argc == 7)
		rc = run_matmul(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]));
	else if (!strcmp(argv[1], "oob") && argc == 3)
		rc = run_oob(argv[2]);
	else if (!strcmp(argv[1], "quota") && argc == 3)
		rc = run_quota((size_t)atoi(argv[2]));
	else
		goto usage;
	cuCtxDestroy(ctx);
	return rc;
usage:
	fprintf(stderr, "usage: kerftest vadd IMAGE N | matmul IMAGE M N K ITERS | oob IMAGE | quota CHUNK_MIB\n");
	return 2;
}
