/* Works the GPU for argv[1] seconds: fills device memory with a new
 * value, copies it back and checks it, over and over. It exits 0 with
 * "spin ok: N rounds" when the time is up; the first failed call prints
 * its CUDA error name (CHECK) and exits 1. The pool's tests and demo run
 * it on every member and kill one. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common.h"

#define WORDS (64 * 1024)

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
	if (argc < 2)
		FAIL("usage: spin SECONDS");
	double secs = atof(argv[1]);
	setup(0);
	CUdeviceptr p;
	CHECK(cuMemAlloc(&p, WORDS * sizeof(uint32_t)));
	static uint32_t host[WORDS];
	printf("spinning\n");
	fflush(stdout);
	long rounds = 0;
	for (double end = now() + secs; now() < end; rounds++) {
		uint32_t v = (uint32_t)rounds * 2654435761u;
		CHECK(cuMemsetD32(p, v, WORDS));
		CHECK(cuMemcpyDtoH(host, p, sizeof host));
		for (int i = 0; i < WORDS; i++)
			if (host[i] != v)
				FAIL("round %ld: word %d = %u, want %u", rounds, i, host[i], v);
	}
	CHECK(cuMemFree(p));
	printf("spin ok: %ld rounds\n", rounds);
	return 0;
}
