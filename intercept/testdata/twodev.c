/* Two devices (KERF_DEVICES=0,1), driven from two threads with their own
 * current contexts, and from one thread with push and pop. argv[1]: vadd.ptx. */
#include <pthread.h>
#include "common.h"

#define N 2000

static char *ptx;
static CUcontext ctxs[2];

/* run adds two vectors on the calling thread's current context. */
static void run(float off) {
	CUmodule mod;
	CUfunction fn;
	CHECK(cuModuleLoadData(&mod, ptx));
	CHECK(cuModuleGetFunction(&fn, mod, "vadd"));
	static __thread float a[N], b[N], c[N];
	fill(a, N, 1.0f, off);
	fill(b, N, 3.0f, 0);
	CUdeviceptr da, db, dc;
	CHECK(cuMemAlloc(&da, sizeof a));
	CHECK(cuMemAlloc(&db, sizeof b));
	CHECK(cuMemAlloc(&dc, sizeof c));
	CHECK(cuMemcpyHtoD(da, a, sizeof a));
	CHECK(cuMemcpyHtoD(db, b, sizeof b));
	int n = N;
	void *p[] = {&da, &db, &dc, &n};
	for (int rep = 0; rep < 5; rep++)
		CHECK(cuLaunchKernel(fn, (N + 255) / 256, 1, 1, 256, 1, 1, 0, NULL, p, NULL));
	CHECK(cuMemcpyDtoH(c, dc, sizeof c));
	for (int i = 0; i < N; i++)
		if (c[i] != a[i] + b[i])
			FAIL("offset %f: c[%d] = %f", off, i, c[i]);
	CHECK(cuMemFree(da));
	CHECK(cuMemFree(db));
	CHECK(cuMemFree(dc));
	CHECK(cuModuleUnload(mod));
}

static void *worker(void *arg) {
	int dev = (int)(intptr_t)arg;
	CUcontext cur = (CUcontext)1;
	CHECK(cuCtxGetCurrent(&cur));
	if (cur != NULL)
		FAIL("a new thread has a current context");
	CHECK(cuCtxSetCurrent(ctxs[dev]));
	CUdevice d;
	CHECK(cuCtxGetDevice(&d));
	if (d != dev)
		FAIL("thread for device %d sees device %d", dev, d);
	for (int i = 0; i < 3; i++)
		run(100.0f * dev + i);
	return NULL;
}

int main(int argc, char **argv) {
	if (argc < 2)
		FAIL("usage: twodev vadd.ptx");
	ptx = read_ptx(argv[1]);
	CHECK(cuInit(0));
	int count = 0;
	CHECK(cuDeviceGetCount(&count));
	if (count != 2)
		FAIL("%d devices, want 2", count);
	CUuuid u0, u1;
	CHECK(cuDeviceGetUuid(&u0, 0));
	CHECK(cuDeviceGetUuid(&u1, 1));
	if (memcmp(&u0, &u1, sizeof u0) == 0)
		FAIL("both devices have one UUID");
	CHECK(cuCtxCreate(&ctxs[0], 0, 0));
	CHECK(cuCtxCreate(&ctxs[1], 0, 1));
	/* cuCtxCreate pushes: ctxs[1] is current, ctxs[0] under it */
	CUcontext popped;
	CHECK(cuCtxPopCurrent(&popped));
	if (popped != ctxs[1])
		FAIL("popped %p, want %p", (void *)popped, (void *)ctxs[1]);
	CUdevice d;
	CHECK(cuCtxGetDevice(&d));
	if (d != 0)
		FAIL("after pop, device %d", d);
	CHECK(cuCtxPushCurrent(ctxs[1]));
	run(7);
	CHECK(cuCtxPopCurrent(NULL));
	run(8);

	/* an event of device 0 waited on by a stream of device 1 */
	CUevent ev;
	CUstream s1;
	CHECK(cuEventCreate(&ev, 0));
	CHECK(cuEventRecord(ev, NULL));
	CHECK(cuCtxPushCurrent(ctxs[1]));
	CHECK(cuStreamCreate(&s1, 0));
	CHECK(cuStreamWaitEvent(s1, ev, 0));
	CHECK(cuStreamSynchronize(s1));
	CHECK(cuStreamDestroy(s1));
	CHECK(cuCtxPopCurrent(NULL));

	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i) != 0)
			FAIL("pthread_create");
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	CHECK(cuCtxDestroy(ctxs[1]));
	CHECK(cuCtxDestroy(ctxs[0]));
	printf("twodev ok\n");
	return 0;
}
