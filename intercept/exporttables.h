/* The private tables of cuGetExportTable; see exporttables.c. */
#ifndef KERF_EXPORTTABLES_H
#define KERF_EXPORTTABLES_H

#include <stddef.h>
#include <stdint.h>

enum {
	KERF_ET_CUDART = 1,
	KERF_ET_TOOLS_TLS,
	KERF_ET_CALLBACK_HOOKS,
	KERF_ET_CONTEXT_STORAGE,
	KERF_ET_CONTEXT_CHECKS,
	KERF_ET_DEVICE_EXTENDED,
	KERF_ET_INTEGRITY,
};

/* The callback-hook buffers are larger than the sizes reported to cudart,
 * whichever unit it counts them in (bytes or pointers). */
#define KERF_HOOKS_BUF_WORDS 1024
#define KERF_HOOKS_BUF_REPORTED 1024
#define KERF_HOOKS_FLAGS_WORDS 32
#define KERF_HOOKS_FLAGS_REPORTED 14

const void *kerf_export_table(int which);
const void *kerf_integrity_fn(void);
uint32_t kerf_thread_word(void);
void kerf_call_cls_dtor(void *fn, void *ctx, void *key, void *value);

#endif
