// A fake libcuda.so.1 for plumbing tests of gpu/cuda: it exercises dlopen,
// dlsym, the version refusal, the C helpers and the quota book-keeping,
// not a GPU. Built by fake_test.go with gcc -shared; variants by -D:
//   FAKE_VERSION=n        what cuDriverGetVersion reports (default 12040)
//   FAKE_DEVICES=n        device count (default 1)
//   FAKE_NO_PARAMINFO     leave out cuFuncGetParamInfo (a pre-12.4 driver)
//   FAKE_SHIM             export Kerf's shim marker (kerfd must refuse it)
//   FAKE_NO_GREEN         leave out the green-context calls (a pre-12.4 driver)
//   FAKE_CC_MAJOR=n       compute capability major (default 9, Hopper)
//   FAKE_KERNEL_US=n      kernels take n µs of device time, one at a time on
//                         the device; events complete when the work queued
//                         before them has, and measure the time between
//                         them (default: kernels take no time, and every
//                         event pair measures 1.5 ms)
// Device memory: 1 GiB; a context takes 64 MiB, a module 1 MiB. Destroying
// a context frees its allocations and modules, as the driver does.
// Green contexts: 132 SMs, split into groups of the minimum count rounded
// up to 8; a green context shares the primary context's memory and
// modules, and takes 64 MiB while any exists. With KERF_FAKE_LOG set, the
// green-context calls, context synchronisation, stream creation and
// destruction and every launch (with the SMs its stream's green context
// has, 0 outside one) are appended to that file, one line each.
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kerf_cuda.h" /* as in the driver, plain names are the newest symbols */

#ifndef FAKE_VERSION
#define FAKE_VERSION 12040
#endif
#ifndef FAKE_DEVICES
#define FAKE_DEVICES 1
#endif
#ifndef FAKE_CC_MAJOR
#define FAKE_CC_MAJOR 9
#endif

#define GiB (1ull << 30)
#define MiB (1ull << 20)

static unsigned long long used, next_ptr = 0x700000000000ull;
static struct { unsigned long long p, n; void *ctx; } allocs[256];
static struct { void *h, *ctx; uint64_t fnv, len; } modules[256];
static struct { void *h; int maxdyn, carveout; } funcs[256]; // function attributes, the newest 256
static int next_func;
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

// Green contexts: each has a CUcontext standing for it; both are handles.
#define FAKE_SMS 132
#define PRIMARY ((void *)(uintptr_t)8) // the primary context green contexts share
static struct { void *g, *ctx; unsigned first, sms; } greens[64];
static struct { void *s, *ctx; } streams[1024]; // the context each stream was made in
static int ngreens __attribute__((unused)); // green contexts alive

static void fake_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fake_log(const char *fmt, ...) {
	const char *path = getenv("KERF_FAKE_LOG");
	if (!path)
		return;
	FILE *f = fopen(path, "a");
	if (!f)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fclose(f);
}

// green_of returns the slot of the green context ctx stands for, or -1;
// mu is held.
static int green_of(void *ctx) {
	for (int i = 0; i < 64; i++)
		if (greens[i].g && greens[i].ctx == ctx) return i;
	return -1;
}
// owner is the context that owns memory made with ctx current: the
// primary context for a green context's; mu is held.
static void *owner(void *ctx) { return green_of(ctx) >= 0 ? PRIMARY : ctx; }

#ifdef FAKE_SHIM
int kerf_intercept_version(void) { return 1; }
#endif

#ifdef FAKE_KERNEL_US
static uint64_t device_until;     // when the device's queued work ends (ns)
static uint64_t ev_time[1 << 16]; // when each event completes, by handle

static uint64_t now_ns(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}
static uint64_t *ev_slot(CUevent e) { return &ev_time[((uintptr_t)e / 64) & 0xffff]; }
// drain waits until the device's queued work is done.
static void drain(void) {
	pthread_mutex_lock(&mu);
	uint64_t until = device_until;
	pthread_mutex_unlock(&mu);
	for (uint64_t n = now_ns(); n < until; n = now_ns()) {
		struct timespec d = {0, (long)(until - n)};
		nanosleep(&d, NULL);
	}
}
#endif

CUresult cuDriverGetVersion(int *v) { *v = FAKE_VERSION; return 0; }
CUresult cuInit(unsigned int flags) { return flags ? 1 : 0; }
CUresult cuDeviceGetCount(int *n) { *n = FAKE_DEVICES; return 0; }
CUresult cuDeviceGet(CUdevice *d, int ord) { if (ord < 0 || ord >= FAKE_DEVICES) return 101; *d = ord; return 0; }
CUresult cuDeviceGetName(char *buf, int n, CUdevice dev) { (void)dev; strncpy(buf, "Kerf Fake GPU", (size_t)n); return 0; }
CUresult cuDeviceGetUuid(CUuuid *u, CUdevice dev) { for (int i = 0; i < 16; i++) u->bytes[i] = (char)(i + dev); return 0; }
CUresult cuDeviceTotalMem(size_t *n, CUdevice dev) { (void)dev; *n = GiB; return 0; }
CUresult cuDeviceGetAttribute(int *v, CUdevice_attribute attr, CUdevice dev) {
	(void)dev;
	switch (attr) {
	case 8: *v = 48 << 10; return 0;   // shared memory per block
	case 97: *v = 227 << 10; return 0; // opt-in shared memory per block
	case 16: *v = 132; return 0; // multiprocessors
	case 75: *v = FAKE_CC_MAJOR; return 0; // compute capability
	case 76: *v = 0; return 0;
	}
	*v = 0;
	return 0;
}
CUresult cuCtxCreate(CUcontext *c, unsigned int flags, CUdevice dev) { (void)flags; (void)dev; charge(64 * MiB); *c = current = new_handle(); return 0; }
CUresult cuCtxDestroy(CUcontext c) {
	pthread_mutex_lock(&mu);
	used -= 64 * MiB;
	for (int i = 0; i < 256; i++) {
		if (allocs[i].p && allocs[i].ctx == c) used -= allocs[i].n, allocs[i].p = 0;
		if (modules[i].h && modules[i].ctx == c) used -= MiB, modules[i].h = 0;
	}
	pthread_mutex_unlock(&mu);
	return 0;
}
CUresult cuCtxSetCurrent(CUcontext c) { current = c; return c ? 0 : 201; }
#ifdef FAKE_KERNEL_US
CUresult cuCtxSynchronize(void) { drain(); fake_log("sync ctx=%p", current); return 0; }
#else
CUresult cuCtxSynchronize(void) { fake_log("sync ctx=%p", current); return 0; }
#endif
/* Limits: the fake driver has the stack, printf FIFO and heap limits. */
CUresult cuCtxSetLimit(CUlimit limit, size_t v) {
	(void)v;
	return limit <= 2 ? 0 : 215; /* CUDA_ERROR_UNSUPPORTED_LIMIT */
}
CUresult cuMemGetInfo(size_t *f, size_t *t) {
	pthread_mutex_lock(&mu);
	*t = GiB;
	*f = GiB - used;
	pthread_mutex_unlock(&mu);
	return 0;
}
CUresult cuMemAlloc(CUdeviceptr *p, size_t n) {
	int r = 2;
	pthread_mutex_lock(&mu);
	for (int i = 0; i < 256 && n <= GiB - used; i++)
		if (!allocs[i].p) {
			allocs[i].p = next_ptr, allocs[i].n = n, allocs[i].ctx = owner(current);
			*p = next_ptr;
			next_ptr += (n + 511) & ~511ull;
			used += n;
			r = 0;
			break;
		}
	pthread_mutex_unlock(&mu);
	return r;
}
CUresult cuMemFree(CUdeviceptr p) {
	int r = 1;
	pthread_mutex_lock(&mu);
	for (int i = 0; i < 256; i++)
		if (allocs[i].p == p) { used -= allocs[i].n; allocs[i].p = 0; r = 0; break; }
	pthread_mutex_unlock(&mu);
	return r;
}
/* Virtual memory: reservations from the same addresses as allocations,
 * physical memory counted in used; mapping and access are only checked
 * for a handle the fake made. */
enum { fake_granule = 2 << 20 };
static size_t phys[64]; // size by handle - 1; 0 when free
CUresult cuMemGetAllocationGranularity(size_t *g, const CUmemAllocationProp *prop, CUmemAllocationGranularity_flags o) {
	(void)prop, (void)o;
	*g = fake_granule;
	return 0;
}
CUresult cuMemAddressReserve(CUdeviceptr *p, size_t n, size_t align, CUdeviceptr addr, cuuint64_t flags) {
	(void)addr, (void)flags;
	if (!n || n % fake_granule || (align && align % fake_granule))
		return 1;
	pthread_mutex_lock(&mu);
	if (!align)
		align = fake_granule;
	next_ptr = (next_ptr + align - 1) & ~(unsigned long long)(align - 1);
	*p = next_ptr;
	next_ptr += n;
	pthread_mutex_unlock(&mu);
	return 0;
}
CUresult cuMemAddressFree(CUdeviceptr p, size_t n) { return p && n ? 0 : 1; }
CUresult cuMemCreate(CUmemGenericAllocationHandle *h, size_t n, const CUmemAllocationProp *prop, cuuint64_t flags) {
	int r = 2;
	if (!n || n % fake_granule || !prop || flags)
		return 1;
	pthread_mutex_lock(&mu);
	for (int i = 0; i < 64 && n <= GiB - used; i++)
		if (!phys[i]) {
			phys[i] = n, used += n, *h = i + 1, r = 0;
			break;
		}
	pthread_mutex_unlock(&mu);
	return r;
}
static int fake_handle(CUmemGenericAllocationHandle h) { return h >= 1 && h <= 64 && phys[h - 1]; }
CUresult cuMemRelease(CUmemGenericAllocationHandle h) {
	int r = 1;
	pthread_mutex_lock(&mu);
	if (fake_handle(h))
		used -= phys[h - 1], phys[h - 1] = 0, r = 0;
	pthread_mutex_unlock(&mu);
	return r;
}
CUresult cuMemMap(CUdeviceptr p, size_t n, size_t off, CUmemGenericAllocationHandle h, cuuint64_t flags) {
	pthread_mutex_lock(&mu);
	int ok = p && n && !flags && fake_handle(h) && off <= phys[h - 1] && n <= phys[h - 1] - off;
	pthread_mutex_unlock(&mu);
	return ok ? 0 : 1;
}
CUresult cuMemUnmap(CUdeviceptr p, size_t n) { return p && n ? 0 : 1; }
CUresult cuMemSetAccess(CUdeviceptr p, size_t n, const CUmemAccessDesc *d, size_t count) {
	return p && n && d && count ? 0 : 1;
}
CUresult cuMemGetAddressRange(CUdeviceptr *base, size_t *n, CUdeviceptr p) {
	int r = 500; // CUDA_ERROR_NOT_FOUND
	pthread_mutex_lock(&mu);
	for (int i = 0; i < 256; i++)
		if (allocs[i].p && allocs[i].ctx == owner(current) && p >= allocs[i].p && p - allocs[i].p < allocs[i].n) {
			*base = allocs[i].p, *n = allocs[i].n, r = 0;
			break;
		}
	pthread_mutex_unlock(&mu);
	return r;
}
/* image_digest hashes (FNV-1a) a fatbin container's bytes, as many as
 * its header gives, so a test can check the driver got the whole image
 * unchanged (cuModuleGetGlobal "kerf_fake_image"). Other images: 0. */
static void image_digest(const unsigned char *img, uint64_t *fnv, uint64_t *len) {
	uint32_t magic;
	uint16_t hsize;
	uint64_t body;
	*fnv = *len = 0;
	memcpy(&magic, img, 4);
	if (magic != 0xba55ed50u)
		return;
	memcpy(&hsize, img + 6, 2);
	memcpy(&body, img + 8, 8);
	*len = hsize + body;
	*fnv = 0xcbf29ce484222325ull;
	for (uint64_t i = 0; i < *len; i++)
		*fnv = (*fnv ^ img[i]) * 0x100000001b3ull;
}

CUresult cuModuleLoadData(CUmodule *m, const void *img) {
	if (strncmp(img, "bad", 3) == 0) return 218; // CUDA_ERROR_INVALID_PTX
	void *h = new_handle();
	int r = 2;
	pthread_mutex_lock(&mu);
	for (int i = 0; i < 256 && MiB <= GiB - used; i++)
		if (!modules[i].h) {
			modules[i].h = h, modules[i].ctx = owner(current);
			image_digest(img, &modules[i].fnv, &modules[i].len);
			*m = h;
			used += MiB;
			r = 0;
			break;
		}
	pthread_mutex_unlock(&mu);
	return r;
}
// The JIT error log of a "bad" image names its first line, as ptxas does.
CUresult cuModuleLoadDataEx(CUmodule *m, const void *img, unsigned int n, CUjit_option *opts, void **vals) {
	CUresult r = cuModuleLoadData(m, img);
	char *log = NULL;
	size_t size = 0;
	int size_at = -1;
	for (unsigned int i = 0; i < n; i++) {
		if (opts[i] == CU_JIT_ERROR_LOG_BUFFER)
			log = vals[i];
		if (opts[i] == CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES)
			size = (size_t)vals[i], size_at = (int)i;
	}
	if (log && size > 0) {
		int w = snprintf(log, size, "%s", r ? "ptxas application ptx input, line 1; error   : bad" : "");
		vals[size_at] = (void *)(size_t)(w < (int)size ? w : (int)size - 1);
	}
	return r;
}
CUresult cuModuleUnload(CUmodule m) {
	int r = 400; // CUDA_ERROR_INVALID_HANDLE
	pthread_mutex_lock(&mu);
	for (int i = 0; i < 256; i++)
		if (modules[i].h == m) { used -= MiB; modules[i].h = 0; r = 0; break; }
	pthread_mutex_unlock(&mu);
	return r;
}
CUresult cuModuleGetFunction(CUfunction *f, CUmodule m, const char *name) {
	(void)m;
	if (strcmp(name, "vadd")) return 500;
	*f = new_handle();
	pthread_mutex_lock(&mu);
	int i = next_func++ % 256;
	funcs[i].h = *f, funcs[i].maxdyn = 48 << 10, funcs[i].carveout = -1;
	pthread_mutex_unlock(&mu);
	return 0;
}
static int func_slot(CUfunction f) {
	for (int i = 0; i < 256; i++)
		if (funcs[i].h == f) return i;
	return -1;
}
// Function attributes: no static shared memory; the dynamic shared memory
// limit rises to the opt-in maximum; the carveout is a percentage or -1.
CUresult cuFuncGetAttribute(int *v, CUfunction_attribute attr, CUfunction f) {
	pthread_mutex_lock(&mu);
	int i = func_slot(f);
	*v = attr == 0 ? 1024 : attr == 8 && i >= 0 ? funcs[i].maxdyn : attr == 9 && i >= 0 ? funcs[i].carveout : 0;
	pthread_mutex_unlock(&mu);
	return i < 0 ? 400 : 0;
}
CUresult cuFuncSetAttribute(CUfunction f, CUfunction_attribute attr, int v) {
	CUresult r = 1;
	pthread_mutex_lock(&mu);
	int i = func_slot(f);
	if (i < 0) r = 400;
	else if (attr == 8 && v >= 0 && v <= 227 << 10) funcs[i].maxdyn = v, r = 0;
	else if (attr == 9 && v >= -1 && v <= 100) funcs[i].carveout = v, r = 0;
	pthread_mutex_unlock(&mu);
	return r;
}
#ifndef FAKE_NO_PARAMINFO
// vadd(const float *a, const float *b, float *c, int n)
CUresult cuFuncGetParamInfo(CUfunction f, size_t i, size_t *off, size_t *size) {
	(void)f;
	if (i >= 4) return 1;
	*off = i * 8;
	*size = i == 3 ? 4 : 8;
	return 0;
}
#endif
// A launch whose n parameter is -1 faults, to test sticky errors.
CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
		unsigned int by, unsigned int bz, unsigned int shared, CUstream s, void **params, void **extra) {
	(void)gx, (void)gy, (void)gz, (void)bx, (void)by, (void)bz, (void)s, (void)extra;
	if (!params) return 1;
	pthread_mutex_lock(&mu);
	int i = func_slot(f);
	int maxdyn = i >= 0 ? funcs[i].maxdyn : 0;
	pthread_mutex_unlock(&mu);
	if (shared > (unsigned)maxdyn) return 1;
	if (*(int *)params[3] == -1) return 700;
	pthread_mutex_lock(&mu);
	void *ctx = current;
	for (int j = 0; s && j < 1024; j++)
		if (streams[j].s == s) { ctx = streams[j].ctx; break; }
	int g = green_of(ctx);
	unsigned first = g >= 0 ? greens[g].first : 0, sms = g >= 0 ? greens[g].sms : 0;
	pthread_mutex_unlock(&mu);
	fake_log("launch stream=%p ctx=%p first=%u sms=%u", (void *)s, ctx, first, sms);
#ifdef FAKE_KERNEL_US
	pthread_mutex_lock(&mu);
	uint64_t n = now_ns();
	device_until = (device_until > n ? device_until : n) + FAKE_KERNEL_US * 1000ull;
	pthread_mutex_unlock(&mu);
#endif
	return 0;
}
CUresult cuEventCreate(CUevent *e, unsigned int flags) { (void)flags; *e = new_handle(); return 0; }
#ifdef FAKE_KERNEL_US
CUresult cuEventElapsedTime(float *ms, CUevent a, CUevent b) {
	pthread_mutex_lock(&mu);
	*ms = (float)((double)(*ev_slot(b) - *ev_slot(a)) / 1e6);
	pthread_mutex_unlock(&mu);
	return 0;
}
CUresult cuEventRecord(CUevent e, CUstream s) {
	(void)s;
	pthread_mutex_lock(&mu);
	uint64_t n = now_ns();
	*ev_slot(e) = device_until > n ? device_until : n;
	pthread_mutex_unlock(&mu);
	return 0;
}
CUresult cuEventQuery(CUevent e) {
	pthread_mutex_lock(&mu);
	uint64_t t = *ev_slot(e);
	pthread_mutex_unlock(&mu);
	return now_ns() >= t ? 0 : 600; // CUDA_ERROR_NOT_READY
}
CUresult cuEventSynchronize(CUevent e) { (void)e; drain(); return 0; }
CUresult cuStreamSynchronize(CUstream s) { (void)s; drain(); return 0; }
#else
CUresult cuEventElapsedTime(float *ms, CUevent a, CUevent b) { (void)a, (void)b; *ms = 1.5f; return 0; }
CUresult cuEventRecord(CUevent e, CUstream s) { (void)e, (void)s; return 0; }
CUresult cuEventQuery(CUevent e) { (void)e; return 0; }
CUresult cuEventSynchronize(CUevent e) { (void)e; return 0; }
CUresult cuStreamSynchronize(CUstream s) { (void)s; return 0; }
#endif
CUresult cuStreamCreateWithPriority(CUstream *s, unsigned int flags, int prio) {
	(void)flags, (void)prio;
	*s = new_handle();
	pthread_mutex_lock(&mu);
	for (int i = 0; i < 1024; i++)
		if (!streams[i].s) { streams[i].s = *s, streams[i].ctx = current; break; }
	pthread_mutex_unlock(&mu);
	fake_log("stream create %p ctx=%p", (void *)*s, current);
	return 0;
}
CUresult cuStreamDestroy(CUstream s) {
	pthread_mutex_lock(&mu);
	for (int i = 0; i < 1024; i++)
		if (streams[i].s == s) { streams[i].s = 0; break; }
	pthread_mutex_unlock(&mu);
	fake_log("stream destroy %p", (void *)s);
	return 0;
}

#ifndef FAKE_NO_GREEN
// The resource structure as the driver lays it out: the SM count at byte
// 96 of 144; the fake keeps a group's first SM at byte 4.
typedef struct { int type; unsigned first; unsigned char pad[88]; unsigned sms; unsigned char rest[44]; } fake_resource;
_Static_assert(sizeof(fake_resource) == 144, "CUdevResource is 144 bytes");
typedef struct { unsigned first, sms, n; } fake_desc;

CUresult cuDeviceGetDevResource(CUdevice dev, fake_resource *r, int type) {
	if (dev < 0 || dev >= FAKE_DEVICES || type != 1) return 1;
	memset(r, 0, sizeof *r);
	r->type = 1, r->first = 0, r->sms = FAKE_SMS;
	return 0;
}
CUresult cuDevSmResourceSplitByCount(fake_resource *result, unsigned *nb, const fake_resource *in, fake_resource *rest, unsigned flags, unsigned min) {
	if (!nb || !in || in->type != 1 || flags) return 1;
	unsigned size = min < 8 ? 8 : (min + 7) / 8 * 8;
	unsigned groups = in->sms / size;
	if (result) groups = groups < *nb ? groups : *nb;
	for (unsigned i = 0; result && i < groups; i++) {
		memset(&result[i], 0, sizeof result[i]);
		result[i].type = 1, result[i].first = in->first + i * size, result[i].sms = size;
	}
	if (rest) {
		memset(rest, 0, sizeof *rest);
		rest->type = 1, rest->first = in->first + groups * size, rest->sms = in->sms - groups * size;
	}
	*nb = groups;
	fake_log("split min=%u groups=%u size=%u", min, groups, size);
	return 0;
}
// A descriptor's groups must be adjacent, as Kerf asks for them.
CUresult cuDevResourceGenerateDesc(fake_desc **d, fake_resource *res, unsigned n) {
	if (!n) return 1;
	fake_desc *x = calloc(1, sizeof *x);
	x->first = res[0].first, x->n = n;
	for (unsigned i = 0; i < n; i++) {
		if (res[i].type != 1 || res[i].first != x->first + x->sms) { free(x); return 914; } // CUDA_ERROR_INVALID_RESOURCE_CONFIGURATION
		x->sms += res[i].sms;
	}
	*d = x;
	return 0;
}
// With KERF_FAKE_REFUSE_GREEN set, green contexts cannot be had.
CUresult cuGreenCtxCreate(void **g, fake_desc *d, CUdevice dev, unsigned flags) {
	if (!d || dev < 0 || dev >= FAKE_DEVICES || flags != 1) return 1;
	if (getenv("KERF_FAKE_REFUSE_GREEN")) return 2; // CUDA_ERROR_OUT_OF_MEMORY
	void *h = new_handle(), *ctx = new_handle();
	int r = 2;
	pthread_mutex_lock(&mu);
	for (int i = 0; i < 64; i++)
		if (!greens[i].g) {
			greens[i].g = h, greens[i].ctx = ctx, greens[i].first = d->first, greens[i].sms = d->sms;
			if (ngreens++ == 0) used += 64 * MiB; // the primary context
			r = 0;
			break;
		}
	pthread_mutex_unlock(&mu);
	if (r) return r;
	*g = h;
	fake_log("green create %p ctx=%p first=%u sms=%u", h, ctx, d->first, d->sms);
	return 0;
}
CUresult cuCtxFromGreenCtx(CUcontext *c, void *g) {
	int r = 400;
	pthread_mutex_lock(&mu);
	for (int i = 0; i < 64; i++)
		if (g && greens[i].g == g) { *c = greens[i].ctx; r = 0; break; }
	pthread_mutex_unlock(&mu);
	return r;
}
// Destroying the last green context releases the primary context, and
// with it what it holds.
CUresult cuGreenCtxDestroy(void *g) {
	int r = 400;
	pthread_mutex_lock(&mu);
	for (int i = 0; i < 64; i++)
		if (g && greens[i].g == g) {
			greens[i].g = 0, r = 0;
			if (--ngreens == 0) {
				used -= 64 * MiB;
				for (int j = 0; j < 256; j++) {
					if (allocs[j].p && allocs[j].ctx == PRIMARY) used -= allocs[j].n, allocs[j].p = 0;
					if (modules[j].h && modules[j].ctx == PRIMARY) used -= MiB, modules[j].h = 0;
				}
			}
			break;
		}
	pthread_mutex_unlock(&mu);
	if (!r) fake_log("green destroy %p", g);
	return r;
}
#endif

// The rest succeed and do nothing.
CUresult cuModuleGetGlobal(CUdeviceptr *p, size_t *n, CUmodule m, const char *name) {
	if (strcmp(name, "kerf_fake_image") != 0)
		return 0;
	int r = 400;
	pthread_mutex_lock(&mu);
	for (int i = 0; i < 256; i++)
		if (modules[i].h == m) { *p = modules[i].fnv, *n = modules[i].len; r = 0; break; }
	pthread_mutex_unlock(&mu);
	return r;
}
CUresult cuMemcpyHtoDAsync(CUdeviceptr dst, const void *src, size_t n, CUstream s) { (void)dst, (void)src, (void)n, (void)s; return 0; }
CUresult cuMemcpyDtoHAsync(void *dst, CUdeviceptr src, size_t n, CUstream s) { (void)dst, (void)src, (void)n, (void)s; return 0; }
CUresult cuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) { (void)dst, (void)src, (void)n, (void)s; return 0; }
CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char v, size_t n, CUstream s) { (void)dst, (void)v, (void)n, (void)s; return 0; }
CUresult cuMemsetD16Async(CUdeviceptr dst, unsigned short v, size_t n, CUstream s) { (void)dst, (void)v, (void)n, (void)s; return 0; }
CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned int v, size_t n, CUstream s) { (void)dst, (void)v, (void)n, (void)s; return 0; }
CUresult cuStreamQuery(CUstream s) { (void)s; return 0; }
CUresult cuStreamWaitEvent(CUstream s, CUevent e, unsigned int flags) { (void)s, (void)e, (void)flags; return 0; }
CUresult cuEventDestroy(CUevent e) { (void)e; return 0; }

// Arrays, texture and surface objects: arrays are handles with their
// descriptor (no bytes); copies between them and device memory, and
// objects, are logged. An object over an array that does not exist, or a
// surface over an array made without CUDA_ARRAY3D_SURFACE_LDST, is
// refused, as the driver refuses them.
static struct { void *h; CUDA_ARRAY3D_DESCRIPTOR d; } arrays[256];
static int array_slot(CUarray a) {
	for (int i = 0; a && i < 256; i++)
		if (arrays[i].h == (void *)a) return i;
	return -1;
}
CUresult cuArray3DCreate(CUarray *a, const CUDA_ARRAY3D_DESCRIPTOR *d) {
	if (!a || !d || !d->Width) return 1;
	void *h = new_handle();
	pthread_mutex_lock(&mu);
	int i;
	for (i = 0; i < 256 && arrays[i].h; i++) {}
	if (i == 256) { pthread_mutex_unlock(&mu); return 2; }
	arrays[i].h = h;
	arrays[i].d = *d;
	*a = (CUarray)arrays[i].h;
	pthread_mutex_unlock(&mu);
	fake_log("array create %p %zux%zux%zu flags=%u", arrays[i].h, d->Width, d->Height, d->Depth, d->Flags);
	return 0;
}
CUresult cuArrayDestroy(CUarray a) {
	pthread_mutex_lock(&mu);
	int i = array_slot(a);
	if (i >= 0) arrays[i].h = 0;
	pthread_mutex_unlock(&mu);
	if (i < 0) return 400;
	fake_log("array destroy %p", (void *)a);
	return 0;
}
CUresult cuMemcpy3DAsync(const CUDA_MEMCPY3D *m, CUstream s) {
	int in = m->dstMemoryType == 3;
	CUarray a = in ? m->dstArray : m->srcArray;
	pthread_mutex_lock(&mu);
	int i = array_slot(a);
	pthread_mutex_unlock(&mu);
	if (i < 0) return 400;
	fake_log("array copy %s %p ptr=%llx pitch=%zu row=%zu rows=%zu slices=%zu stream=%p", in ? "in" : "out", (void *)a,
		in ? m->srcDevice : m->dstDevice, in ? m->srcPitch : m->dstPitch, m->WidthInBytes, m->Height, m->Depth, (void *)s);
	return 0;
}
static unsigned long long next_obj = 1;
CUresult cuTexObjectCreate(CUtexObject *o, const CUDA_RESOURCE_DESC *r, const CUDA_TEXTURE_DESC *t, const CUDA_RESOURCE_VIEW_DESC *v) {
	if (!o || !r || !t || v) return 1;
	pthread_mutex_lock(&mu);
	int ok = r->resType == CU_RESOURCE_TYPE_LINEAR ? r->res.linear.devPtr != 0 : array_slot(r->res.array.hArray) >= 0;
	*o = next_obj++;
	pthread_mutex_unlock(&mu);
	if (!ok) return 1;
	if (r->resType == CU_RESOURCE_TYPE_LINEAR)
		fake_log("texture %llu linear ptr=%llx size=%zu", *o, r->res.linear.devPtr, r->res.linear.sizeInBytes);
	else
		fake_log("texture %llu array=%p filter=%d flags=%u", *o, (void *)r->res.array.hArray, t->filterMode, t->flags);
	return 0;
}
CUresult cuSurfObjectCreate(CUsurfObject *o, const CUDA_RESOURCE_DESC *r) {
	if (!o || !r || r->resType != CU_RESOURCE_TYPE_ARRAY) return 1;
	pthread_mutex_lock(&mu);
	int i = array_slot(r->res.array.hArray);
	int ok = i >= 0 && (arrays[i].d.Flags & CUDA_ARRAY3D_SURFACE_LDST);
	*o = next_obj++;
	pthread_mutex_unlock(&mu);
	if (!ok) return 1;
	fake_log("surface %llu array=%p", *o, (void *)r->res.array.hArray);
	return 0;
}
CUresult cuTexObjectDestroy(CUtexObject o) { fake_log("destroy texture %llu", o); return 0; }
CUresult cuSurfObjectDestroy(CUsurfObject o) { fake_log("destroy surface %llu", o); return 0; }
// A cooperative launch of more than 132 blocks is too large.
CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
		unsigned int by, unsigned int bz, unsigned int shared, CUstream s, void **params) {
	if ((unsigned long long)gx * gy * gz > 132) return 720;
	CUresult r = cuLaunchKernel(f, gx, gy, gz, bx, by, bz, shared, s, params, 0);
	if (!r) fake_log("cooperative");
	return r;
}
