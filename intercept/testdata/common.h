/* Helpers shared by the shim's C test programs. */
#ifndef KERF_TEST_COMMON_H
#define KERF_TEST_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kerf_cuda.h"

static inline const char *errname(CUresult r) {
	const char *s = NULL;
	if (cuGetErrorName(r, &s) != CUDA_SUCCESS || s == NULL)
		return "(unknown)";
	return s;
}

#define CHECK(call)                                                                  \
	do {                                                                             \
		CUresult r_ = (call);                                                        \
		if (r_ != CUDA_SUCCESS) {                                                    \
			fprintf(stderr, "%s:%d: %s = %d %s\n", __FILE__, __LINE__, #call, r_,    \
				errname(r_));                                                        \
			exit(1);                                                                 \
		}                                                                            \
	} while (0)

#define EXPECT(call, want)                                                           \
	do {                                                                             \
		CUresult r_ = (call);                                                        \
		if (r_ != (want)) {                                                          \
			fprintf(stderr, "%s:%d: %s = %d %s, want %s\n", __FILE__, __LINE__,      \
				#call, r_, errname(r_), #want);                                       \
			exit(1);                                                                 \
		}                                                                            \
	} while (0)

#define FAIL(...)                                                                    \
	do {                                                                             \
		fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                              \
		fprintf(stderr, __VA_ARGS__);                                                \
		fprintf(stderr, "\n");                                                       \
		exit(1);                                                                     \
	} while (0)

/* read_ptx returns the NUL-terminated contents of path. */
static inline char *read_ptx(const char *path) {
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		FAIL("open %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc(n + 1);
	if (fread(buf, 1, n, f) != (size_t)n)
		FAIL("read %s", path);
	buf[n] = 0;
	fclose(f);
	return buf;
}

/* setup initialises the driver and makes a context on device dev. */
static inline CUcontext setup(int dev) {
	CUdevice d;
	CUcontext ctx;
	CHECK(cuInit(0));
	CHECK(cuDeviceGet(&d, dev));
	CHECK(cuCtxCreate(&ctx, 0, d));
	return ctx;
}

static inline void fill(float *a, int n, float scale, float off) {
	for (int i = 0; i < n; i++)
		a[i] = scale * (float)i + off;
}

#endif
