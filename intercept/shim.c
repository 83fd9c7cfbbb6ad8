/*
 * The C side of the Kerf shim: what Go cannot or should not do itself.
 * The per-thread context stack (Go goroutines are not OS threads), packing
 * kernel parameters from the program's pointers, and sizing module images.
 */
#include <stdlib.h>
#include <string.h>
#include "shim.h"

/* Every handle the shim gives a program is a small C allocation; Go keeps
 * the set of live ones and checks each handle against it before use. */
void *kerf_handle_new(void) { return calloc(1, 16); }
void kerf_handle_free(void *h) { free(h); }

/* The calling thread's context stack, as the driver keeps one per thread. */
#define KERF_CTX_DEPTH 64
static __thread void *ctx_stack[KERF_CTX_DEPTH];
static __thread int ctx_depth;

void *kerf_ctx_top(void) { return ctx_depth > 0 ? ctx_stack[ctx_depth - 1] : NULL; }

int kerf_ctx_push(void *ctx) {
	if (ctx_depth >= KERF_CTX_DEPTH)
		return -1;
	ctx_stack[ctx_depth++] = ctx;
	return 0;
}

void *kerf_ctx_pop(void) { return ctx_depth > 0 ? ctx_stack[--ctx_depth] : NULL; }

void kerf_ctx_set(void *ctx) {
	if (ctx == NULL) {
		if (ctx_depth > 0)
			ctx_depth--;
		return;
	}
	if (ctx_depth == 0)
		ctx_depth = 1;
	ctx_stack[ctx_depth - 1] = ctx;
}

/* kerf_ctx_forget removes a destroyed context from the calling thread's
 * stack. Other threads find out when Go no longer knows the handle. */
void kerf_ctx_forget(void *ctx) {
	int j = 0;
	for (int i = 0; i < ctx_depth; i++)
		if (ctx_stack[i] != ctx)
			ctx_stack[j++] = ctx_stack[i];
	ctx_depth = j;
}

/* kerf_pack_params copies each parameter the program points at into its
 * place in out. It returns -1 when a parameter pointer is NULL. */
int kerf_pack_params(void **params, int n, const uint32_t *offs, const uint32_t *sizes, unsigned char *out) {
	for (int i = 0; i < n; i++) {
		if (params[i] == NULL)
			return -1;
		memcpy(out + offs[i], params[i], sizes[i]);
	}
	return 0;
}

/* kerf_parse_extra reads a CU_LAUNCH_PARAM_* list. It returns 0 with the
 * buffer and its size, or -1 for a malformed list. */
int kerf_parse_extra(void **extra, void **buf, size_t *size) {
	void *b = NULL;
	size_t *sz = NULL;
	for (int i = 0; i < 64; i += 2) {
		void *key = extra[i];
		if (key == CU_LAUNCH_PARAM_END) {
			if (b == NULL || sz == NULL)
				return -1;
			*buf = b;
			*size = *sz;
			return 0;
		}
		if (key == CU_LAUNCH_PARAM_BUFFER_POINTER)
			b = extra[i + 1];
		else if (key == CU_LAUNCH_PARAM_BUFFER_SIZE)
			sz = (size_t *)extra[i + 1];
		else
			return -1;
	}
	return -1;
}

void kerf_launch_attr(const CUlaunchAttribute *attrs, unsigned int i, int *id, unsigned int vals[3]) {
	*id = attrs[i].id;
	memcpy(vals, attrs[i].value.pad, 3 * sizeof(unsigned int));
}

void *kerf_host_alloc(size_t size) {
	void *p = NULL;
	if (size == 0)
		size = 1;
	if (posix_memalign(&p, 4096, size) != 0)
		return NULL;
	return p;
}

void kerf_host_free(void *p) { free(p); }

extern void kerfShutdown(void);
static void kerf_at_exit(void) { kerfShutdown(); }
void kerf_register_atexit(void) { atexit(kerf_at_exit); }

/* Marks this library as Kerf's shim, so that kerfd's real-GPU backend
 * refuses to load it as the NVIDIA driver (gpu/cuda.ShimMarker). */
const char kerf_intercept_version[] = "kerf-shim 1";
