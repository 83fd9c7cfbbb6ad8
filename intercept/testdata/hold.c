/* Allocates device memory, says so, and holds it until killed: the test
 * kills it with SIGKILL and checks that the server frees everything. */
#include <stdio.h>
#include <unistd.h>

#include "common.h"

int main(void) {
	setup(0);
	CUdeviceptr p;
	CHECK(cuMemAlloc(&p, 8 << 20));
	CHECK(cuMemsetD8(p, 7, 8 << 20));
	CHECK(cuCtxSynchronize());
	printf("holding pid %d\n", (int)getpid());
	fflush(stdout);
	for (;;)
		pause();
}
