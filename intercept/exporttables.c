/*
 * The private tables cuGetExportTable hands out: arrays of function
 * pointers, most led by their own size in bytes, that the CUDA runtime
 * (cudart) asks the driver for by UUID. The UUIDs and layouts are
 * documented by projects that reimplement the driver (ZLUDA's "dark API",
 * wine's nvcuda, cricket); the functions are ours and call the shim's Go
 * logic (exporttables_cgo.go). A slot whose meaning is not known calls a
 * stub that logs once and returns CUDA_ERROR_NOT_SUPPORTED.
 */
#include <pthread.h>
#include <stdint.h>
#include "_cgo_export.h"
#include "exporttables.h"

/* A slot with no known function: one stub per (table, slot), so that its
 * log line can name both. */
#define UNKNOWN_SLOT(t, s) \
	static CUresult unknown_##t##_##s(void) { return kerfExportUnknownSlot(t, s); }
#define SIZE_OF(n) ((void *)(uintptr_t)((n) * sizeof(void *)))

UNKNOWN_SLOT(KERF_ET_CUDART, 3)
UNKNOWN_SLOT(KERF_ET_CUDART, 4)
UNKNOWN_SLOT(KERF_ET_CUDART, 5)
UNKNOWN_SLOT(KERF_ET_CUDART, 7)
UNKNOWN_SLOT(KERF_ET_CUDART, 9)
UNKNOWN_SLOT(KERF_ET_CUDART, 10)
UNKNOWN_SLOT(KERF_ET_CUDART, 11)
UNKNOWN_SLOT(KERF_ET_TOOLS_TLS, 1)
UNKNOWN_SLOT(KERF_ET_TOOLS_TLS, 2)
UNKNOWN_SLOT(KERF_ET_TOOLS_TLS, 3)
UNKNOWN_SLOT(KERF_ET_CALLBACK_HOOKS, 1)
UNKNOWN_SLOT(KERF_ET_CALLBACK_HOOKS, 3)
UNKNOWN_SLOT(KERF_ET_CALLBACK_HOOKS, 4)
UNKNOWN_SLOT(KERF_ET_CALLBACK_HOOKS, 5)
UNKNOWN_SLOT(KERF_ET_CONTEXT_STORAGE, 3)
UNKNOWN_SLOT(KERF_ET_CONTEXT_CHECKS, 1)
UNKNOWN_SLOT(KERF_ET_INTEGRITY, 2)
UNKNOWN_SLOT(KERF_ET_DEVICE_EXTENDED, 13)

/* The cudart interface: modules from the fatbins cudart registers, and
 * the primary context without a reference. */
static void *const cudart_interface[13] = {
	SIZE_OF(13),
	(void *)kerfCudartModuleFromWrapper,
	(void *)kerfCudartPrimaryContext,
	(void *)unknown_KERF_ET_CUDART_3,
	(void *)unknown_KERF_ET_CUDART_4,
	(void *)unknown_KERF_ET_CUDART_5,
	(void *)kerfCudartModuleFromWrapperEx,
	(void *)unknown_KERF_ET_CUDART_7,
	(void *)kerfCudartModuleFromFatbinEx,
	(void *)unknown_KERF_ET_CUDART_9,
	(void *)unknown_KERF_ET_CUDART_10,
	(void *)unknown_KERF_ET_CUDART_11,
	(void *)kerfCudartLoadCompilers,
};

/* Tools thread-local storage: a tool's per-thread slots. No tool attaches
 * to the shim, so only the size is known. */
static void *const tools_tls[4] = {
	SIZE_OF(4),
	(void *)unknown_KERF_ET_TOOLS_TLS_1,
	(void *)unknown_KERF_ET_TOOLS_TLS_2,
	(void *)unknown_KERF_ET_TOOLS_TLS_3,
};

/* Runtime callback hooks: the driver lends cudart two buffers into which
 * it writes the hooks a profiling tool may call. They live as long as the
 * process; the shim reads nothing back from them. */
static uint64_t callback_hooks_buf[KERF_HOOKS_BUF_WORDS];
static uint64_t callback_hooks_flags[KERF_HOOKS_FLAGS_WORDS];

static void callback_hooks_buffer(void **buf, size_t *size) {
	if (buf == NULL || size == NULL)
		return;
	*buf = callback_hooks_buf;
	*size = KERF_HOOKS_BUF_REPORTED;
}

static void callback_hooks_flags_buffer(void **buf, size_t *size) {
	if (buf == NULL || size == NULL)
		return;
	*buf = callback_hooks_flags;
	*size = KERF_HOOKS_FLAGS_REPORTED;
}

static void *const callback_hooks[7] = {
	SIZE_OF(7),
	(void *)unknown_KERF_ET_CALLBACK_HOOKS_1,
	(void *)callback_hooks_buffer,
	(void *)unknown_KERF_ET_CALLBACK_HOOKS_3,
	(void *)unknown_KERF_ET_CALLBACK_HOOKS_4,
	(void *)unknown_KERF_ET_CALLBACK_HOOKS_5,
	(void *)callback_hooks_flags_buffer,
};

/* Context-local storage: no size slot; put, delete, get. */
static void *const context_storage[4] = {
	(void *)kerfContextStoragePut,
	(void *)kerfContextStorageDelete,
	(void *)kerfContextStorageGet,
	(void *)unknown_KERF_ET_CONTEXT_STORAGE_3,
};

/* Context checks: whether a context carries state the runtime must treat
 * specially. */
static unsigned int context_flags_any(void) { return kerfContextFlagsAny(); }

static void *const context_checks[4] = {
	SIZE_OF(4),
	(void *)unknown_KERF_ET_CONTEXT_CHECKS_1,
	(void *)kerfContextCheck,
	(void *)context_flags_any,
};

/* Extended device attributes, asked for with ids outside
 * CUdevice_attribute. Its slots are many; those without a known function
 * share one stub. */
static CUresult unknown_device_extended(void) { return kerfExportUnknownSlot(KERF_ET_DEVICE_EXTENDED, -1); }

static void *const device_extended[26] = {
	[0] = SIZE_OF(26),
	[1 ... 25] = (void *)unknown_device_extended,
	[5] = (void *)kerfDeviceAttributeExt,
	[13] = (void *)unknown_KERF_ET_DEVICE_EXTENDED_13,
};

static void *const integrity_check[3] = {
	SIZE_OF(3),
	(void *)kerfIntegrityCheck,
	(void *)unknown_KERF_ET_INTEGRITY_2,
};

const void *kerf_export_table(int which) {
	switch (which) {
	case KERF_ET_CUDART:
		return cudart_interface;
	case KERF_ET_TOOLS_TLS:
		return tools_tls;
	case KERF_ET_CALLBACK_HOOKS:
		return callback_hooks;
	case KERF_ET_CONTEXT_STORAGE:
		return context_storage;
	case KERF_ET_CONTEXT_CHECKS:
		return context_checks;
	case KERF_ET_DEVICE_EXTENDED:
		return device_extended;
	case KERF_ET_INTEGRITY:
		return integrity_check;
	}
	return NULL;
}

/* The addresses the integrity check mixes in: both tables and its own
 * function, as cudart sees them. */
const void *kerf_integrity_fn(void) { return integrity_check[1]; }

uint32_t kerf_thread_word(void) { return (uint32_t)(uintptr_t)pthread_self(); }

void kerf_call_cls_dtor(void *fn, void *ctx, void *key, void *value) {
	((void (*)(void *, void *, void *))fn)(ctx, key, value);
}
