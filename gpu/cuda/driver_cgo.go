package cuda

// The C layer: dlopen of libcuda, a table of entry points resolved with
// dlsym (syms_gen.h, generated from abi: the newest symbol the driver
// has), and one helper per call that makes the tenant's context current on
// the calling OS thread before calling through the table. Handles cross into Go as
// uintptr (they are driver pointers, never Go memory). Declarations are
// our own (abi/include/kerf_cuda.h), from the driver API's public ABI.

/*
#cgo CFLAGS: -I${SRCDIR}/../../abi/include
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#define KERF_CUDA_NO_PROTOTYPES
#include "kerf_cuda.h"
#include "syms_gen.h"

typedef int kcu_res;                // a CUresult
typedef unsigned long long kcu_ptr; // CUdeviceptr

static struct kcu_tab cu;
static void *kcu_lib;
enum { kcu_nsyms = sizeof kcu_syms / sizeof kcu_syms[0] };
static signed char kcu_chosen[kcu_nsyms]; // index into names of the symbol resolved, or -1

static const char *kcu_sym_name(int i) { return i >= 0 && i < kcu_nsyms ? kcu_syms[i].name : 0; }
static int kcu_sym_since(int i) { return i >= 0 && i < kcu_nsyms ? kcu_syms[i].since : 0; }
static const char *kcu_sym_chosen(int i) {
	return i >= 0 && i < kcu_nsyms && kcu_lib && kcu_chosen[i] >= 0 ? kcu_syms[i].names[kcu_chosen[i]] : 0;
}

// kcu_open loads path and resolves the first n symbols. A symbol newer
// than the driver's CUDA version (version) may be missing: its slot stays
// NULL. It returns NULL, or dlerror's message, or the name of the first
// missing symbol (*missing set).
static const char *kcu_open(const char *path, int n, int version, int *missing) {
	*missing = 0;
	for (int i = n; i < kcu_nsyms; i++)
		kcu_chosen[i] = -1;
	if (!kcu_lib) {
		kcu_lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		if (!kcu_lib) {
			const char *e = dlerror();
			return e ? e : "dlopen failed";
		}
	}
	for (int i = 0; i < n && i < kcu_nsyms; i++) {
		void *p = 0;
		kcu_chosen[i] = -1;
		for (int j = 0; !p && kcu_syms[i].names[j]; j++)
			if ((p = dlsym(kcu_lib, kcu_syms[i].names[j])))
				kcu_chosen[i] = (signed char)j;
		if (!p && kcu_syms[i].since <= version) {
			*missing = 1;
			return kcu_syms[i].name;
		}
		memcpy((char *)&cu + kcu_syms[i].off, &p, sizeof p);
	}
	return 0;
}

// kcu_close forgets a library that was refused.
static void kcu_close(void) {
	if (kcu_lib)
		dlclose(kcu_lib);
	kcu_lib = 0;
	memset(&cu, 0, sizeof cu);
}

#define H(x) ((void *)(uintptr_t)(x))
#define CUR(c) do { kcu_res r_ = cu.cuCtxSetCurrent(H(c)); if (r_) return r_; } while (0)

static kcu_res kcu_driver_version(int *v) { return cu.cuDriverGetVersion(v); }
static kcu_res kcu_init(void) { return cu.cuInit(0); }
static kcu_res kcu_device_count(int *n) { return cu.cuDeviceGetCount(n); }
static kcu_res kcu_device_get(int ord, int *dev) { return cu.cuDeviceGet(dev, ord); }
static kcu_res kcu_device_name(int dev, char *buf, int n) { return cu.cuDeviceGetName(buf, n, dev); }
static kcu_res kcu_device_uuid(int dev, unsigned char *out) {
	CUuuid u;
	kcu_res r = cu.cuDeviceGetUuid(&u, dev);
	memcpy(out, u.bytes, sizeof u.bytes);
	return r;
}
static kcu_res kcu_device_total_mem(int dev, size_t *n) { return cu.cuDeviceTotalMem(n, dev); }
static kcu_res kcu_device_attr(int dev, int attr, int *v) { return cu.cuDeviceGetAttribute(v, attr, dev); }

static kcu_res kcu_ctx_create(int dev, uintptr_t *ctx) {
	CUcontext h = 0;
	kcu_res r = cu.cuCtxCreate(&h, 0, dev);
	*ctx = (uintptr_t)h;
	return r;
}
static kcu_res kcu_ctx_destroy(uintptr_t c) { return cu.cuCtxDestroy(H(c)); }
static kcu_res kcu_ctx_sync(uintptr_t c) { CUR(c); return cu.cuCtxSynchronize(); }
static kcu_res kcu_ctx_set_limit(uintptr_t c, int limit, size_t v) { CUR(c); return cu.cuCtxSetLimit(limit, v); }
static kcu_res kcu_mem_info(uintptr_t c, size_t *fr, size_t *tot) { CUR(c); return cu.cuMemGetInfo(fr, tot); }
static kcu_res kcu_mem_alloc(uintptr_t c, size_t n, kcu_ptr *p) { CUR(c); return cu.cuMemAlloc(p, n); }
static kcu_res kcu_mem_free(uintptr_t c, kcu_ptr p) { CUR(c); return cu.cuMemFree(p); }
// Virtual memory: pinned memory on device dev, read-write for it.
static void kcu_vm_prop(int dev, CUmemAllocationProp *p) {
	memset(p, 0, sizeof *p);
	p->type = CU_MEM_ALLOCATION_TYPE_PINNED;
	p->location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	p->location.id = dev;
}
static kcu_res kcu_vm_granularity(uintptr_t c, int dev, int option, size_t *g) {
	CUR(c);
	CUmemAllocationProp p;
	kcu_vm_prop(dev, &p);
	return cu.cuMemGetAllocationGranularity(g, &p, option);
}
static kcu_res kcu_vm_reserve(uintptr_t c, size_t n, size_t align, kcu_ptr *p) { CUR(c); return cu.cuMemAddressReserve(p, n, align, 0, 0); }
static kcu_res kcu_vm_free(uintptr_t c, kcu_ptr p, size_t n) { CUR(c); return cu.cuMemAddressFree(p, n); }
static kcu_res kcu_vm_create(uintptr_t c, int dev, size_t n, unsigned long long *h) {
	CUR(c);
	CUmemAllocationProp p;
	kcu_vm_prop(dev, &p);
	CUmemGenericAllocationHandle hh = 0;
	kcu_res r = cu.cuMemCreate(&hh, n, &p, 0);
	*h = hh;
	return r;
}
static kcu_res kcu_vm_release(uintptr_t c, unsigned long long h) { CUR(c); return cu.cuMemRelease(h); }
static kcu_res kcu_vm_map(uintptr_t c, kcu_ptr p, size_t n, size_t off, unsigned long long h) { CUR(c); return cu.cuMemMap(p, n, off, h, 0); }
static kcu_res kcu_vm_unmap(uintptr_t c, kcu_ptr p, size_t n) { CUR(c); return cu.cuMemUnmap(p, n); }
static kcu_res kcu_vm_access(uintptr_t c, int dev, kcu_ptr p, size_t n) {
	CUR(c);
	CUmemAccessDesc d;
	memset(&d, 0, sizeof d);
	d.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	d.location.id = dev;
	d.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
	return cu.cuMemSetAccess(p, n, &d, 1);
}
static kcu_res kcu_mem_range(uintptr_t c, kcu_ptr p, kcu_ptr *base, size_t *n) { CUR(c); return cu.cuMemGetAddressRange(base, n, p); }

// Host-to-device from pageable memory is staged before the call returns.
static kcu_res kcu_htod(uintptr_t c, kcu_ptr dst, const void *src, size_t n, uintptr_t s) {
	CUR(c);
	return cu.cuMemcpyHtoDAsync(dst, src, n, H(s));
}
// Device-to-host waits for the stream, so dst is not used after return.
static kcu_res kcu_dtoh(uintptr_t c, void *dst, kcu_ptr src, size_t n, uintptr_t s) {
	CUR(c);
	kcu_res r = cu.cuMemcpyDtoHAsync(dst, src, n, H(s));
	if (r)
		return r;
	return cu.cuStreamSynchronize(H(s));
}
static kcu_res kcu_dtod(uintptr_t c, kcu_ptr dst, kcu_ptr src, size_t n, uintptr_t s) {
	CUR(c);
	return cu.cuMemcpyDtoDAsync(dst, src, n, H(s));
}
static kcu_res kcu_memset(uintptr_t c, kcu_ptr dst, unsigned v, unsigned elem, size_t count, uintptr_t s) {
	CUR(c);
	switch (elem) {
	case 1: return cu.cuMemsetD8Async(dst, (unsigned char)v, count, H(s));
	case 2: return cu.cuMemsetD16Async(dst, (unsigned short)v, count, H(s));
	case 4: return cu.cuMemsetD32Async(dst, v, count, H(s));
	}
	return 1; // CUDA_ERROR_INVALID_VALUE
}

// The image is copied with a NUL appended: PTX is read as a C string. The
// driver's JIT error log goes to log, NUL-terminated.
static kcu_res kcu_module_load(uintptr_t c, const void *img, size_t n, uintptr_t *mod, char *log, size_t logsize) {
	CUR(c);
	char *buf = malloc(n + 1);
	if (!buf)
		return 2; // CUDA_ERROR_OUT_OF_MEMORY
	memcpy(buf, img, n);
	buf[n] = 0;
	CUmodule h = 0;
	log[0] = 0;
	CUjit_option opts[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
	void *vals[] = {log, (void *)logsize};
	kcu_res r = cu.cuModuleLoadDataEx(&h, buf, 2, opts, vals);
	free(buf);
	log[logsize - 1] = 0;
	*mod = (uintptr_t)h;
	return r;
}
static kcu_res kcu_module_unload(uintptr_t c, uintptr_t m) { CUR(c); return cu.cuModuleUnload(H(m)); }
static kcu_res kcu_module_function(uintptr_t c, uintptr_t m, const char *name, uintptr_t *f) {
	CUR(c);
	CUfunction h = 0;
	kcu_res r = cu.cuModuleGetFunction(&h, H(m), name);
	*f = (uintptr_t)h;
	return r;
}
static kcu_res kcu_module_global(uintptr_t c, uintptr_t m, const char *name, kcu_ptr *p, size_t *n) {
	CUR(c);
	return cu.cuModuleGetGlobal(p, n, H(m), name);
}
static kcu_res kcu_func_attr(uintptr_t c, uintptr_t f, int attr, int *v) { CUR(c); return cu.cuFuncGetAttribute(v, attr, H(f)); }
static kcu_res kcu_func_set_attr(uintptr_t c, uintptr_t f, int attr, int v) { CUR(c); return cu.cuFuncSetAttribute(H(f), attr, v); }
static int kcu_has_param_info(void) { return cu.cuFuncGetParamInfo != 0; }
static kcu_res kcu_func_param(uintptr_t c, uintptr_t f, size_t i, size_t *off, size_t *size) {
	if (!cu.cuFuncGetParamInfo)
		return 801; // CUDA_ERROR_NOT_SUPPORTED
	CUR(c);
	return cu.cuFuncGetParamInfo(H(f), i, off, size);
}

// kcu_launch launches f with parameter i at buf+offs[i], bracketed by
// records of e0 and e1 on the same stream when they are set (metering),
// as a cooperative launch when coop is set.
static kcu_res kcu_launch(uintptr_t c, uintptr_t f, unsigned gx, unsigned gy, unsigned gz,
		unsigned bx, unsigned by, unsigned bz, unsigned shared, uintptr_t s,
		void *buf, const void *offs, int n, uintptr_t e0, uintptr_t e1, int coop) {
	CUR(c);
	void *small[32], **ptrs = small;
	if (n > 32 && !(ptrs = malloc(sizeof(void *) * (size_t)n)))
		return 2;
	for (int i = 0; i < n; i++)
		ptrs[i] = (char *)buf + ((const unsigned *)offs)[i];
	kcu_res r = 0;
	if (e0)
		r = cu.cuEventRecord(H(e0), H(s));
	if (!r && coop)
		r = cu.cuLaunchCooperativeKernel(H(f), gx, gy, gz, bx, by, bz, shared, H(s), n ? ptrs : 0);
	else if (!r)
		r = cu.cuLaunchKernel(H(f), gx, gy, gz, bx, by, bz, shared, H(s), n ? ptrs : 0, 0);
	if (!r && e1)
		r = cu.cuEventRecord(H(e1), H(s));
	if (ptrs != small)
		free(ptrs);
	return r;
}

// kcu_array_create makes a CUDA array of width×height×depth texels
// (height and depth 0 for dimensions it lacks, depth the layers when
// layered).
static kcu_res kcu_array_create(uintptr_t c, size_t w, size_t h, size_t d, int format, unsigned ch, unsigned flags, uintptr_t *a) {
	CUR(c);
	CUDA_ARRAY3D_DESCRIPTOR desc;
	memset(&desc, 0, sizeof desc);
	desc.Width = w, desc.Height = h, desc.Depth = d;
	desc.Format = format, desc.NumChannels = ch, desc.Flags = flags;
	CUarray arr = 0;
	kcu_res r = cu.cuArray3DCreate(&arr, &desc);
	*a = (uintptr_t)arr;
	return r;
}
static kcu_res kcu_array_destroy(uintptr_t c, uintptr_t a) { CUR(c); return cu.cuArrayDestroy(H(a)); }

// kcu_array_copy copies rows×slices rows of row bytes between pitched
// device memory and an array, in stream s: into the array when in is set.
// Memory type 3 is CU_MEMORYTYPE_ARRAY.
static kcu_res kcu_array_copy(uintptr_t c, uintptr_t a, kcu_ptr p, size_t pitch, size_t rows, size_t row,
		size_t slices, int in, uintptr_t s) {
	CUR(c);
	CUDA_MEMCPY3D m;
	memset(&m, 0, sizeof m);
	if (in) {
		m.srcMemoryType = CU_MEMORYTYPE_DEVICE, m.srcDevice = p, m.srcPitch = pitch, m.srcHeight = rows;
		m.dstMemoryType = 3, m.dstArray = H(a);
	} else {
		m.srcMemoryType = 3, m.srcArray = H(a);
		m.dstMemoryType = CU_MEMORYTYPE_DEVICE, m.dstDevice = p, m.dstPitch = pitch, m.dstHeight = rows;
	}
	m.WidthInBytes = row, m.Height = rows, m.Depth = slices;
	return cu.cuMemcpy3DAsync(&m, H(s));
}

// kcu_tex_create makes a texture object over an array, or over linear
// memory when a is 0 (size bytes at p); kcu_surf_create a surface object
// over an array.
static kcu_res kcu_tex_create(uintptr_t c, uintptr_t a, kcu_ptr p, size_t size, int format, unsigned ch,
		const unsigned *addr, int filter, unsigned flags, const float *border, unsigned long long *obj) {
	CUR(c);
	CUDA_RESOURCE_DESC res;
	memset(&res, 0, sizeof res);
	if (a) {
		res.resType = CU_RESOURCE_TYPE_ARRAY;
		res.res.array.hArray = H(a);
	} else {
		res.resType = CU_RESOURCE_TYPE_LINEAR;
		res.res.linear.devPtr = p, res.res.linear.format = format;
		res.res.linear.numChannels = ch, res.res.linear.sizeInBytes = size;
	}
	CUDA_TEXTURE_DESC td;
	memset(&td, 0, sizeof td);
	for (int i = 0; i < 3; i++)
		td.addressMode[i] = (CUaddress_mode)addr[i];
	td.filterMode = filter, td.flags = flags;
	for (int i = 0; i < 4; i++)
		td.borderColor[i] = border[i];
	CUtexObject o = 0;
	kcu_res r = cu.cuTexObjectCreate(&o, &res, &td, 0);
	*obj = o;
	return r;
}
static kcu_res kcu_surf_create(uintptr_t c, uintptr_t a, unsigned long long *obj) {
	CUR(c);
	CUDA_RESOURCE_DESC res;
	memset(&res, 0, sizeof res);
	res.resType = CU_RESOURCE_TYPE_ARRAY;
	res.res.array.hArray = H(a);
	CUsurfObject o = 0;
	kcu_res r = cu.cuSurfObjectCreate(&o, &res);
	*obj = o;
	return r;
}
static kcu_res kcu_tex_destroy(uintptr_t c, unsigned long long o, int surface) {
	CUR(c);
	return surface ? cu.cuSurfObjectDestroy(o) : cu.cuTexObjectDestroy(o);
}

static kcu_res kcu_stream_create(uintptr_t c, unsigned flags, int prio, uintptr_t *s) {
	CUR(c);
	CUstream h = 0;
	kcu_res r = cu.cuStreamCreateWithPriority(&h, flags, prio);
	*s = (uintptr_t)h;
	return r;
}
static kcu_res kcu_stream_destroy(uintptr_t c, uintptr_t s) { CUR(c); return cu.cuStreamDestroy(H(s)); }
static kcu_res kcu_stream_sync(uintptr_t c, uintptr_t s) { CUR(c); return cu.cuStreamSynchronize(H(s)); }
static kcu_res kcu_stream_query(uintptr_t c, uintptr_t s) { CUR(c); return cu.cuStreamQuery(H(s)); }
static kcu_res kcu_stream_wait(uintptr_t c, uintptr_t s, uintptr_t e) { CUR(c); return cu.cuStreamWaitEvent(H(s), H(e), 0); }
static kcu_res kcu_event_create(uintptr_t c, unsigned flags, uintptr_t *e) {
	CUR(c);
	CUevent h = 0;
	kcu_res r = cu.cuEventCreate(&h, flags);
	*e = (uintptr_t)h;
	return r;
}
static kcu_res kcu_event_record(uintptr_t c, uintptr_t e, uintptr_t s) { CUR(c); return cu.cuEventRecord(H(e), H(s)); }
static kcu_res kcu_event_query(uintptr_t c, uintptr_t e) { CUR(c); return cu.cuEventQuery(H(e)); }
static kcu_res kcu_event_sync(uintptr_t c, uintptr_t e) { CUR(c); return cu.cuEventSynchronize(H(e)); }
static kcu_res kcu_event_elapsed(uintptr_t c, float *ms, uintptr_t start, uintptr_t end) {
	CUR(c);
	return cu.cuEventElapsedTime(ms, H(start), H(end));
}
static kcu_res kcu_event_destroy(uintptr_t c, uintptr_t e) { CUR(c); return cu.cuEventDestroy(H(e)); }

// Green contexts (CUDA 12.4+), resolved apart from the table: optional
// on every driver. kcu_dev_resource is CUdevResource as the driver's ABI
// lays it out: 144 bytes, the SM count at byte 96 (our own declaration;
// later drivers add fields and a chain pointer within the same size).
typedef struct {
	int type; // 1: CU_DEV_RESOURCE_TYPE_SM
	unsigned char internal[92];
	unsigned int sm_count;
	unsigned char rest[36];
	void *next;
} kcu_dev_resource;
_Static_assert(sizeof(kcu_dev_resource) == 144, "CUdevResource is 144 bytes");
enum { kcu_res_sm = 1, kcu_green_default_stream = 1, kcu_max_groups = 256 };

static struct {
	CUresult (*cuDeviceGetDevResource)(CUdevice dev, kcu_dev_resource *res, int type);
	CUresult (*cuDevSmResourceSplitByCount)(kcu_dev_resource *result, unsigned *nbGroups, const kcu_dev_resource *input,
		kcu_dev_resource *remaining, unsigned flags, unsigned minCount);
	CUresult (*cuDevResourceGenerateDesc)(void **desc, kcu_dev_resource *res, unsigned nb);
	CUresult (*cuGreenCtxCreate)(void **green, void *desc, CUdevice dev, unsigned flags);
	CUresult (*cuGreenCtxDestroy)(void *green);
	CUresult (*cuCtxFromGreenCtx)(CUcontext *ctx, void *green);
} kcu_green;

// kcu_green_open resolves the green-context entry points; 1 if all are there.
static int kcu_green_open(void) {
	memset(&kcu_green, 0, sizeof kcu_green);
	if (!kcu_lib)
		return 0;
#define G(n) (*(void **)&kcu_green.n = dlsym(kcu_lib, #n))
	int all = G(cuDeviceGetDevResource) && G(cuDevSmResourceSplitByCount) && G(cuDevResourceGenerateDesc) &&
		G(cuGreenCtxCreate) && G(cuGreenCtxDestroy) && G(cuCtxFromGreenCtx);
#undef G
	if (!all)
		memset(&kcu_green, 0, sizeof kcu_green);
	return all;
}

// kcu_sm_split splits dev's SMs into groups of at least min_sms; groups
// gets up to kcu_max_groups of them, *n their count.
static kcu_res kcu_sm_split(int dev, unsigned min_sms, kcu_dev_resource *groups, unsigned *n) {
	if (!kcu_green.cuDeviceGetDevResource)
		return 801; // CUDA_ERROR_NOT_SUPPORTED
	kcu_dev_resource all, rest;
	memset(&all, 0, sizeof all);
	memset(&rest, 0, sizeof rest);
	kcu_res r = kcu_green.cuDeviceGetDevResource(dev, &all, kcu_res_sm);
	if (r)
		return r;
	*n = kcu_max_groups;
	return kcu_green.cuDevSmResourceSplitByCount(groups, n, &all, &rest, 0, min_sms);
}

// kcu_sm_groups reports how dev's SMs split: the group count, the SMs of
// a group, and the device's SMs.
static kcu_res kcu_sm_groups(int dev, unsigned min_sms, unsigned *n, unsigned *group_sms, unsigned *total) {
	kcu_dev_resource groups[kcu_max_groups];
	memset(groups, 0, sizeof groups);
	kcu_res r = kcu_sm_split(dev, min_sms, groups, n);
	*group_sms = *n ? groups[0].sm_count : 0;
	*total = 0;
	kcu_dev_resource all;
	if (!r && !kcu_green.cuDeviceGetDevResource(dev, &all, kcu_res_sm))
		*total = all.sm_count;
	return r;
}

// kcu_green_create makes a green context of groups [first, first+count)
// of dev's split, and its CUcontext; *sms is its SM count.
static kcu_res kcu_green_create(int dev, unsigned min_sms, unsigned first, unsigned count,
		uintptr_t *green, uintptr_t *ctx, unsigned *sms) {
	kcu_dev_resource groups[kcu_max_groups];
	memset(groups, 0, sizeof groups);
	unsigned n = 0;
	kcu_res r = kcu_sm_split(dev, min_sms, groups, &n);
	if (r)
		return r;
	if (count == 0 || first >= n || count > n - first)
		return 1; // CUDA_ERROR_INVALID_VALUE
	*sms = 0;
	for (unsigned i = first; i < first + count; i++)
		*sms += groups[i].sm_count;
	void *desc = 0, *g = 0;
	if ((r = kcu_green.cuDevResourceGenerateDesc(&desc, groups + first, count)))
		return r;
	if ((r = kcu_green.cuGreenCtxCreate(&g, desc, dev, kcu_green_default_stream)))
		return r;
	CUcontext c = 0;
	if ((r = kcu_green.cuCtxFromGreenCtx(&c, g))) {
		kcu_green.cuGreenCtxDestroy(g);
		return r;
	}
	*green = (uintptr_t)g;
	*ctx = (uintptr_t)c;
	return 0;
}
static kcu_res kcu_green_destroy(uintptr_t g) { return kcu_green.cuGreenCtxDestroy(H(g)); }
static void kcu_green_forget(void) { memset(&kcu_green, 0, sizeof kcu_green); }

static void kcu_free(char *p) { free(p); }

// kcu_has reports whether the loaded library exports name.
static int kcu_has(const char *name) { return kcu_lib && dlsym(kcu_lib, name) != 0; }
*/
import "C"
import (
	"math"
	"strings"
	"unsafe"

	"github.com/kerf-edge/kerf/abi"
)

// Number of leading table entries resolved before the version check.
const bootstrapSymbols = int(C.kcu_bootstrap)

// driverSymbol is a driver entry point Kerf resolves, the CUDA version
// of its oldest symbol, and the symbol the loaded driver gave it ("" if
// none, or none loaded).
type driverSymbol struct {
	name     string
	since    int
	resolved string
}

// driverSymbols lists the driver entry points Kerf resolves.
func driverSymbols() []driverSymbol {
	var out []driverSymbol
	for i := C.int(0); ; i++ {
		n := C.kcu_sym_name(i)
		if n == nil {
			return out
		}
		var resolved string
		if c := C.kcu_sym_chosen(i); c != nil {
			resolved = C.GoString(c)
		}
		out = append(out, driverSymbol{C.GoString(n), int(C.kcu_sym_since(i)), resolved})
	}
}

// dlOpen loads lib and resolves the first n symbols (-1: all); those newer
// than CUDA version may be absent. missing is set when the failure is an
// absent symbol, whose name is msg.
func dlOpen(lib string, n, version int) (msg string, missing bool) {
	cs := C.CString(lib)
	defer C.kcu_free(cs)
	if n < 0 {
		n = int(C.kcu_nsyms)
	}
	var miss C.int
	m := C.kcu_open(cs, C.int(n), C.int(version), &miss)
	if m == nil {
		return "", false
	}
	return C.GoString(m), miss != 0
}

func dlClose() {
	C.kcu_green_forget()
	C.kcu_close()
}

// dlHas reports whether the loaded library exports symbol name.
func dlHas(name string) bool {
	cs := C.CString(name)
	defer C.kcu_free(cs)
	return C.kcu_has(cs) != 0
}

func driverVersion() (int, int) {
	var v C.int
	r := C.kcu_driver_version(&v)
	return int(v), int(r)
}

func cuInit() int { return int(C.kcu_init()) }

func deviceCount() (int, int) {
	var n C.int
	r := C.kcu_device_count(&n)
	return int(n), int(r)
}

func deviceGet(ord int) (int, int) {
	var d C.int
	r := C.kcu_device_get(C.int(ord), &d)
	return int(d), int(r)
}

func deviceName(dev int) (string, int) {
	var buf [256]C.char
	r := C.kcu_device_name(C.int(dev), &buf[0], C.int(len(buf)-1))
	if r != 0 {
		return "", int(r)
	}
	return C.GoString(&buf[0]), 0
}

func deviceUUID(dev int) ([16]byte, int) {
	var u [16]C.uchar
	var out [16]byte
	r := C.kcu_device_uuid(C.int(dev), &u[0])
	for i := range u {
		out[i] = byte(u[i])
	}
	return out, int(r)
}

func deviceTotalMem(dev int) (uint64, int) {
	var n C.size_t
	r := C.kcu_device_total_mem(C.int(dev), &n)
	return uint64(n), int(r)
}

func deviceAttr(dev int, attr uint32) (int32, int) {
	var v C.int
	r := C.kcu_device_attr(C.int(dev), C.int(attr), &v)
	return int32(v), int(r)
}

func ctxCreate(dev int) (uintptr, int) {
	var c C.uintptr_t
	r := C.kcu_ctx_create(C.int(dev), &c)
	return uintptr(c), int(r)
}

func ctxDestroy(c uintptr) int { return int(C.kcu_ctx_destroy(C.uintptr_t(c))) }
func ctxSync(c uintptr) int    { return int(C.kcu_ctx_sync(C.uintptr_t(c))) }

func ctxSetLimit(c uintptr, limit uint32, v uint64) int {
	return int(C.kcu_ctx_set_limit(C.uintptr_t(c), C.int(limit), C.size_t(v)))
}

func memInfo(c uintptr) (free, total uint64, r int) {
	var f, t C.size_t
	r = int(C.kcu_mem_info(C.uintptr_t(c), &f, &t))
	return uint64(f), uint64(t), r
}

func memAlloc(c uintptr, n uint64) (uint64, int) {
	var p C.kcu_ptr
	r := C.kcu_mem_alloc(C.uintptr_t(c), C.size_t(n), &p)
	return uint64(p), int(r)
}

func vmGranularity(c uintptr, dev int, recommended bool) (uint64, int) {
	var g C.size_t
	opt := C.int(0)
	if recommended {
		opt = 1
	}
	r := C.kcu_vm_granularity(C.uintptr_t(c), C.int(dev), opt, &g)
	return uint64(g), int(r)
}

func vmReserve(c uintptr, n, align uint64) (uint64, int) {
	var p C.kcu_ptr
	r := C.kcu_vm_reserve(C.uintptr_t(c), C.size_t(n), C.size_t(align), &p)
	return uint64(p), int(r)
}

func vmFree(c uintptr, p, n uint64) int {
	return int(C.kcu_vm_free(C.uintptr_t(c), C.kcu_ptr(p), C.size_t(n)))
}

func vmCreate(c uintptr, dev int, n uint64) (uint64, int) {
	var h C.ulonglong
	r := C.kcu_vm_create(C.uintptr_t(c), C.int(dev), C.size_t(n), &h)
	return uint64(h), int(r)
}

func vmRelease(c uintptr, h uint64) int { return int(C.kcu_vm_release(C.uintptr_t(c), C.ulonglong(h))) }

func vmMap(c uintptr, p, n, off, h uint64) int {
	return int(C.kcu_vm_map(C.uintptr_t(c), C.kcu_ptr(p), C.size_t(n), C.size_t(off), C.ulonglong(h)))
}

func vmUnmap(c uintptr, p, n uint64) int {
	return int(C.kcu_vm_unmap(C.uintptr_t(c), C.kcu_ptr(p), C.size_t(n)))
}

func vmAccess(c uintptr, dev int, p, n uint64) int {
	return int(C.kcu_vm_access(C.uintptr_t(c), C.int(dev), C.kcu_ptr(p), C.size_t(n)))
}

func memFree(c uintptr, p uint64) int { return int(C.kcu_mem_free(C.uintptr_t(c), C.kcu_ptr(p))) }

func memRange(c uintptr, p uint64) (base, size uint64, r int) {
	var b C.kcu_ptr
	var n C.size_t
	r = int(C.kcu_mem_range(C.uintptr_t(c), C.kcu_ptr(p), &b, &n))
	return uint64(b), uint64(n), r
}

func memcpyHtoD(c uintptr, dst uint64, src []byte, s uintptr) int {
	return int(C.kcu_htod(C.uintptr_t(c), C.kcu_ptr(dst), bytesPtr(src), C.size_t(len(src)), C.uintptr_t(s)))
}

func memcpyDtoH(c uintptr, dst []byte, src uint64, s uintptr) int {
	return int(C.kcu_dtoh(C.uintptr_t(c), bytesPtr(dst), C.kcu_ptr(src), C.size_t(len(dst)), C.uintptr_t(s)))
}

func memcpyDtoD(c uintptr, dst, src, n uint64, s uintptr) int {
	return int(C.kcu_dtod(C.uintptr_t(c), C.kcu_ptr(dst), C.kcu_ptr(src), C.size_t(n), C.uintptr_t(s)))
}

func memset(c uintptr, dst uint64, v, elem uint32, count uint64, s uintptr) int {
	return int(C.kcu_memset(C.uintptr_t(c), C.kcu_ptr(dst), C.unsigned(v), C.unsigned(elem), C.size_t(count), C.uintptr_t(s)))
}

// moduleLoad loads img on context c, returning the driver's JIT error
// log with a failure.
func moduleLoad(c uintptr, img []byte) (uintptr, int, string) {
	var m C.uintptr_t
	log := (*C.char)(C.malloc(abi.MaxErrorText))
	defer C.free(unsafe.Pointer(log))
	r := C.kcu_module_load(C.uintptr_t(c), bytesPtr(img), C.size_t(len(img)), &m, log, abi.MaxErrorText)
	return uintptr(m), int(r), strings.TrimSpace(C.GoString(log))
}

func moduleUnload(c, m uintptr) int { return int(C.kcu_module_unload(C.uintptr_t(c), C.uintptr_t(m))) }

func moduleFunction(c, m uintptr, name string) (uintptr, int) {
	cs := C.CString(name)
	defer C.kcu_free(cs)
	var f C.uintptr_t
	r := C.kcu_module_function(C.uintptr_t(c), C.uintptr_t(m), cs, &f)
	return uintptr(f), int(r)
}

func moduleGlobal(c, m uintptr, name string) (uint64, uint64, int) {
	cs := C.CString(name)
	defer C.kcu_free(cs)
	var p C.kcu_ptr
	var n C.size_t
	r := C.kcu_module_global(C.uintptr_t(c), C.uintptr_t(m), cs, &p, &n)
	return uint64(p), uint64(n), int(r)
}

func funcAttr(c, f uintptr, attr uint32) (int32, int) {
	var v C.int
	r := C.kcu_func_attr(C.uintptr_t(c), C.uintptr_t(f), C.int(attr), &v)
	return int32(v), int(r)
}

func funcSetAttr(c, f uintptr, attr uint32, v int32) int {
	return int(C.kcu_func_set_attr(C.uintptr_t(c), C.uintptr_t(f), C.int(attr), C.int(v)))
}

// haveParamInfo reports whether the driver has cuFuncGetParamInfo.
func haveParamInfo() bool { return C.kcu_has_param_info() != 0 }

func funcParam(c, f uintptr, i int) (off, size uint64, r int) {
	var o, s C.size_t
	r = int(C.kcu_func_param(C.uintptr_t(c), C.uintptr_t(f), C.size_t(i), &o, &s))
	return uint64(o), uint64(s), r
}

// launch passes parameter i at params[offs[i]]; e0 and e1 (0: none) are
// recorded around the launch on the same stream. A cooperative launch
// goes through cuLaunchCooperativeKernel.
func launch(c, f uintptr, grid, block [3]uint32, shared uint32, s uintptr, params []byte, offs []uint32, e0, e1 uintptr, coop bool) int {
	co := C.int(0)
	if coop {
		co = 1
	}
	return int(C.kcu_launch(C.uintptr_t(c), C.uintptr_t(f),
		C.unsigned(grid[0]), C.unsigned(grid[1]), C.unsigned(grid[2]),
		C.unsigned(block[0]), C.unsigned(block[1]), C.unsigned(block[2]),
		C.unsigned(shared), C.uintptr_t(s), bytesPtr(params), u32Ptr(offs), C.int(len(offs)),
		C.uintptr_t(e0), C.uintptr_t(e1), co))
}

// arrayShape is a CUDA array's descriptor.
type arrayShape struct {
	width, height, depth uint64 // height and depth 0 where it has none
	format, channels     uint32
	flags                uint32
}

func arrayCreate(c uintptr, a arrayShape) (uintptr, int) {
	var h C.uintptr_t
	r := C.kcu_array_create(C.uintptr_t(c), C.size_t(a.width), C.size_t(a.height), C.size_t(a.depth),
		C.int(a.format), C.uint(a.channels), C.uint(a.flags), &h)
	return uintptr(h), int(r)
}

func arrayDestroy(c, a uintptr) int { return int(C.kcu_array_destroy(C.uintptr_t(c), C.uintptr_t(a))) }

// arrayCopy copies slices×rows rows of row bytes, pitch apart, between
// device memory at p and array a, in stream s: into the array if in.
func arrayCopy(c, a uintptr, p, pitch, rows, row, slices uint64, in bool, s uintptr) int {
	dir := C.int(0)
	if in {
		dir = 1
	}
	return int(C.kcu_array_copy(C.uintptr_t(c), C.uintptr_t(a), C.kcu_ptr(p), C.size_t(pitch), C.size_t(rows),
		C.size_t(row), C.size_t(slices), dir, C.uintptr_t(s)))
}

// texCreate makes a texture object of d's sampling over array a, or over
// d's linear memory when a is 0.
func texCreate(c, a uintptr, d *abi.TexObject) (uint64, int) {
	var addr [3]C.uint
	var border [4]C.float
	for i, m := range d.AddressMode {
		addr[i] = C.uint(m)
	}
	for i, b := range d.BorderColor {
		border[i] = C.float(math.Float32frombits(b))
	}
	ext, _ := d.Extent()
	var o C.ulonglong
	r := C.kcu_tex_create(C.uintptr_t(c), C.uintptr_t(a), C.kcu_ptr(d.Ptr), C.size_t(ext), C.int(d.Format), C.uint(d.Channels),
		&addr[0], C.int(d.FilterMode), C.uint(d.Flags), &border[0], &o)
	return uint64(o), int(r)
}

func surfCreate(c, a uintptr) (uint64, int) {
	var o C.ulonglong
	r := C.kcu_surf_create(C.uintptr_t(c), C.uintptr_t(a), &o)
	return uint64(o), int(r)
}

func texDestroy(c uintptr, o uint64, surface bool) int {
	s := C.int(0)
	if surface {
		s = 1
	}
	return int(C.kcu_tex_destroy(C.uintptr_t(c), C.ulonglong(o), s))
}

func streamCreate(c uintptr, flags uint32, prio int32) (uintptr, int) {
	var s C.uintptr_t
	r := C.kcu_stream_create(C.uintptr_t(c), C.unsigned(flags), C.int(prio), &s)
	return uintptr(s), int(r)
}

func streamDestroy(c, s uintptr) int {
	return int(C.kcu_stream_destroy(C.uintptr_t(c), C.uintptr_t(s)))
}
func streamSync(c, s uintptr) int  { return int(C.kcu_stream_sync(C.uintptr_t(c), C.uintptr_t(s))) }
func streamQuery(c, s uintptr) int { return int(C.kcu_stream_query(C.uintptr_t(c), C.uintptr_t(s))) }
func streamWait(c, s, e uintptr) int {
	return int(C.kcu_stream_wait(C.uintptr_t(c), C.uintptr_t(s), C.uintptr_t(e)))
}

func eventCreate(c uintptr, flags uint32) (uintptr, int) {
	var e C.uintptr_t
	r := C.kcu_event_create(C.uintptr_t(c), C.unsigned(flags), &e)
	return uintptr(e), int(r)
}

func eventRecord(c, e, s uintptr) int {
	return int(C.kcu_event_record(C.uintptr_t(c), C.uintptr_t(e), C.uintptr_t(s)))
}
func eventQuery(c, e uintptr) int   { return int(C.kcu_event_query(C.uintptr_t(c), C.uintptr_t(e))) }
func eventSync(c, e uintptr) int    { return int(C.kcu_event_sync(C.uintptr_t(c), C.uintptr_t(e))) }
func eventDestroy(c, e uintptr) int { return int(C.kcu_event_destroy(C.uintptr_t(c), C.uintptr_t(e))) }

func eventElapsed(c, start, end uintptr) (float32, int) {
	var ms C.float
	r := C.kcu_event_elapsed(C.uintptr_t(c), &ms, C.uintptr_t(start), C.uintptr_t(end))
	return float32(ms), int(r)
}

// greenOpen resolves the green-context entry points of the loaded
// driver; it reports whether all of them are there.
func greenOpen() bool { return C.kcu_green_open() != 0 }

// smGroups splits device dev's SMs into groups of at least minSMs: the
// group count, the SMs in a group, and the device's SMs.
func smGroups(dev, minSMs int) (groups, groupSMs, total int, r int) {
	var n, g, t C.unsigned
	r = int(C.kcu_sm_groups(C.int(dev), C.unsigned(minSMs), &n, &g, &t))
	return int(n), int(g), int(t), r
}

// greenCreate makes a green context of partition p of device dev's split
// into groups of at least minSMs: the green context, the CUcontext that
// stands for it, and its SM count.
func greenCreate(dev, minSMs int, p SMPartition) (green, ctx uintptr, sms int, r int) {
	var g, c C.uintptr_t
	var n C.unsigned
	r = int(C.kcu_green_create(C.int(dev), C.unsigned(minSMs), C.unsigned(p.First), C.unsigned(p.Groups), &g, &c, &n))
	return uintptr(g), uintptr(c), int(n), r
}

func greenDestroy(g uintptr) int { return int(C.kcu_green_destroy(C.uintptr_t(g))) }
