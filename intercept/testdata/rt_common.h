/* What the CUDA-runtime test programs share: checks that name the failing
 * call and stop the program. */
#ifndef KERF_RT_COMMON_H
#define KERF_RT_COMMON_H

#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

/* CHECK stops the program when a runtime call fails, naming the call. */
#define CHECK(call)                                                                    \
	do {                                                                               \
		cudaError_t e_ = (call);                                                       \
		if (e_ != cudaSuccess) {                                                       \
			fprintf(stderr, "%s:%d: %s = %s\n", __FILE__, __LINE__, #call,             \
				cudaGetErrorName(e_));                                                 \
			exit(1);                                                                   \
		}                                                                              \
	} while (0)

/* FAIL stops the program with a message. */
#define FAIL(...)                                                                      \
	do {                                                                               \
		fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                \
		fprintf(stderr, __VA_ARGS__);                                                  \
		fprintf(stderr, "\n");                                                         \
		exit(1);                                                                       \
	} while (0)

/* EXPECT stops the program when cond is false. */
#define EXPECT(cond)                                                                   \
	do {                                                                               \
		if (!(cond))                                                                   \
			FAIL("expected %s", #cond);                                                \
	} while (0)

#endif
