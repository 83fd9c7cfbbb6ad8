// A fake libcuda.so.1 for plumbing tests of gpu/cuda: it exercises dlopen,
// dlsym, the version refusal, the C helpers and the quota book-keeping,
// not a GPU. Built by fake_test.go with gcc -shared; variants by -D:
//   FAKE_VERSION=n        what cuDriverGetVersion reports (default 12040)
//   FAKE_DEVICES=n        device count (default 1)
//   FAKE_NO_PARAMINFO     leave out cuFuncGetParamInfo (a pre-12.4 driver)
//   FAKE_SHIM             export Kerf's shim marker (kerfd must refuse it)
// Device memory: 1 GiB; a context takes 64 MiB, a module 1 MiB. Destroying
// a context frees its allocations and modules, as the driver does.
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef FAKE_VERSION
#define FAKE_VERSION 12040
#endif
#ifndef FAKE_DEVICES
#define FAKE_DEVICES 1
#endif

#define GiB (1ull << 30)
#define MiB (1ull << 20)

static unsigned long long used, next_ptr = 0x700000000000ull;
static struct { unsigned long long p, n; void *ctx; } allocs[256];
static struct { void *h, *ctx; } modules[256];
static int handle_seq = 16;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; // Kerf calls from many threads
static __thread void *current;                        // cuCtxSetCurrent's context

static void charge(long long n) {
	pthread_mutex_lock(&mu);
	used += n;
	pthread_mutex_unlock(&mu);
}

static void *new_handle(void) {
	pthread_mutex_lock(&mu);
	void *h = (void *)(uintptr_t)(handle_seq++ * 64);
	pthread_mutex_unlock(&mu);
	return h;
}

#ifdef FAKE_SHIM
int kerf_intercept_version(void) { return 1; }
#endif

int cuDriverGetVersion(int *v) { *v = FAKE_VERSION; return 0; }
int cuInit(unsigned flags) { return flags ? 1 : 0; }
int cuDeviceGetCount(int *n) { *n = FAKE_DEVICES; return 0; }
int cuDeviceGet(int *d, int ord) { if (ord < 0 || ord >= FAKE_DEVICES) return 101; *d = ord; return 0; }
int cuDeviceGetName(char *buf, int n, int dev) { (void)dev; strncpy(buf, "Kerf Fake GPU", (size_t)n); return 0; }
int cuDeviceGetUuid_v2(unsigned char *u, int dev) { for (int i = 0; i < 16; i++) u[i] = (unsigned char)(i + dev); return 0; }
int cuDeviceTotalMem_v2(size_t *n, int dev) { (void)dev; *n = GiB; return 0; }
int cuDeviceGetAttribute(int *v, int attr, int dev) {
	(void)dev;
	switch (attr) {
	case 16: *v = 132; return 0; // multiprocessors
	case 75: *v = 9; return 0;   // compute capability
	case 76: *v = 0; return 0;
	}
	*v = 0;
	return 0;
}
int cuCtxCreate_v2(void **c, unsigned flags, int dev) { (void)flags; (void)dev; charge(64 * MiB); *c = current = new_handle(); return 0; }
int cuCtxDestroy_v2(void *c) {
	pthread_mutex_lock(&mu);
	used -= 64 * MiB;
	for (int i = 0; i < 256; i++) {
		if (allocs[i].p && allocs[i].ctx == c) used -= allocs[i].n, allocs[i].p = 0;
		if (modules[i].h && modules[i].ctx == c) used -= MiB, modules[i].h = 0;
	}
	pthread_mutex_unlock(&mu);
	return 0;
}
int cuCtxSetCurrent(void *c) { current = c; return c ? 0 : 201; }
int cuCtxSynchronize(void) { return 0; }
int cuMemGetInfo_v2(size_t *f, size_t *t) {
	pthread_mutex_lock(&mu);
	*t = GiB;
	*f = GiB - used;
	pthread_mutex_unlock(&mu);
	return 0;
}
int cuMemAlloc_v2(unsigned long long *p, size_t n) {
	int r = 2;
	pthread_mutex_lock(&mu);
	for (int i = 0; i < 256 && n <= GiB - used; i++)
		if (!allocs[i].p) {
			allocs[i].p = next_ptr, allocs[i].n = n, allocs[i].ctx = current;
			*p = next_ptr;
			next_ptr += (n + 511) & ~511ull;
			used += n;
			r = 0;
			break;
		}
	pthread_mutex_unlock(&mu);
	return r;
}
int cuMemFree_v2(unsigned long long p) {
	int r = 1;
	pthread_mutex_lock(&mu);
	for (int i = 0; i < 256; i++)
		if (allocs[i].p == p) { used -= allocs[i].n; allocs[i].p = 0; r = 0; break; }
	pthread_mutex_unlock(&mu);
	return r;
}
int cuModuleLoadData(void **m, const void *img) {
	if (strncmp(img, "bad", 3) == 0) return 218; // CUDA_ERROR_INVALID_PTX
	void *h = new_handle();
	int r = 2;
	pthread_mutex_lock(&mu);
	for (int i = 0; i < 256 && MiB <= GiB - used; i++)
		if (!modules[i].h) {
			modules[i].h = *m = h, modules[i].ctx = current;
			used += MiB;
			r = 0;
			break;
		}
	pthread_mutex_unlock(&mu);
	return r;
}
int cuModuleUnload(void *m) {
	int r = 400; // CUDA_ERROR_INVALID_HANDLE
	pthread_mutex_lock(&mu);
	for (int i = 0; i < 256; i++)
		if (modules[i].h == m) { used -= MiB; modules[i].h = 0; r = 0; break; }
	pthread_mutex_unlock(&mu);
	return r;
}
int cuModuleGetFunction(void **f, void *m, const char *name) {
	(void)m;
	if (strcmp(name, "vadd")) return 500;
	*f = new_handle();
	return 0;
}
#ifndef FAKE_NO_PARAMINFO
// vadd(const float *a, const float *b, float *c, int n)
int cuFuncGetParamInfo(void *f, size_t i, size_t *off, size_t *size) {
	(void)f;
	if (i >= 4) return 1;
	*off = i * 8;
	*size = i == 3 ? 4 : 8;
	return 0;
}
#endif
// A launch whose n parameter is -1 faults, to test sticky errors.
int cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
		unsigned bz, unsigned shared, void *s, void **params, void **extra) {
	(void)f, (void)gx, (void)gy, (void)gz, (void)bx, (void)by, (void)bz, (void)shared, (void)s, (void)extra;
	if (!params) return 1;
	return *(int *)params[3] == -1 ? 700 : 0;
}
int cuEventCreate(void **e, unsigned flags) { (void)flags; *e = new_handle(); return 0; }
int cuEventElapsedTime(float *ms, void *a, void *b) { (void)a, (void)b; *ms = 1.5f; return 0; }
int cuStreamCreateWithPriority(void **s, unsigned flags, int prio) { (void)flags, (void)prio; *s = new_handle(); return 0; }

// The rest succeed and do nothing.
#define STUB(name) int name(void) { return 0; }
STUB(cuFuncGetAttribute)
STUB(cuFuncSetAttribute)
STUB(cuModuleGetGlobal_v2)
STUB(cuMemcpyHtoDAsync_v2)
STUB(cuMemcpyDtoHAsync_v2)
STUB(cuMemcpyDtoDAsync_v2)
STUB(cuMemsetD8Async)
STUB(cuMemsetD16Async)
STUB(cuMemsetD32Async)
STUB(cuStreamDestroy_v2)
STUB(cuStreamSynchronize)
STUB(cuStreamQuery)
STUB(cuStreamWaitEvent)
STUB(cuEventRecord)
STUB(cuEventQuery)
STUB(cuEventSynchronize)
STUB(cuEventDestroy_v2)
