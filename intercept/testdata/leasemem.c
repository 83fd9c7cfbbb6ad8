/* One process of a lease: allocates argv[1] bytes and says how that went
 * ("alloc pid N result R"), then holds the memory until the file argv[2]
 * exists, makes one more call and says how that went ("after pid N result
 * R"). Several of them in one lease share its slice's memory; a lease that
 * ends under them makes their next call fail. */
#include <unistd.h>

#include "common.h"

int main(int argc, char **argv) {
	if (argc < 3)
		FAIL("usage: leasemem BYTES GOFILE");
	size_t n = strtoull(argv[1], NULL, 10);
	setup(0);
	CUdeviceptr p = 0;
	CUresult r = cuMemAlloc(&p, n);
	printf("alloc pid %d result %d\n", (int)getpid(), (int)r);
	fflush(stdout);
	for (int i = 0; i < 6000 && access(argv[2], F_OK) != 0; i++)
		usleep(10000);
	if (r == CUDA_SUCCESS)
		r = cuMemsetD8(p, 7, n);
	if (r == CUDA_SUCCESS)
		r = cuCtxSynchronize();
	printf("after pid %d result %d\n", (int)getpid(), (int)r);
	fflush(stdout);
	return 0;
}
