/* C helpers of the Kerf shim; see shim.c. */
#ifndef KERF_SHIM_H
#define KERF_SHIM_H

#define KERF_CUDA_NO_PROTOTYPES
#include "kerf_cuda.h"

void *kerf_ctx_top(void);
int kerf_ctx_push(void *ctx);
void *kerf_ctx_pop(void);
void kerf_ctx_set(void *ctx);
void kerf_ctx_forget(void *ctx);

void *kerf_handle_new(void);
void kerf_handle_free(void *h);

int kerf_pack_params(void **params, int n, const uint32_t *offs, const uint32_t *sizes, unsigned char *out);
int kerf_parse_extra(void **extra, void **buf, size_t *size);
void kerf_launch_attr(const CUlaunchAttribute *attrs, unsigned int i, int *id, unsigned int vals[3]);

void *kerf_host_alloc(size_t size);
void kerf_host_free(void *p);

void *kerf_proc_fn(int i);
int kerf_proc_count(void);

void kerf_register_atexit(void);

#endif
