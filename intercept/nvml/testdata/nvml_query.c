/* Asks Kerf's NVML what tools ask (nvidia-smi, PyTorch, pynvml) while the
 * program holds a CUDA session, and checks its answers against the driver
 * API's. argv[1]: matmul.ptx, to keep the slice busy. Prints one line for
 * the test to check. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <time.h>
#include <unistd.h>
#include "common.h"
#include "kerf_nvml.h"

#define NVML(call)                                                                   \
	do {                                                                             \
		nvmlReturn_t r_ = (call);                                                    \
		if (r_ != NVML_SUCCESS)                                                      \
			FAIL("%s = %d %s", #call, r_, nvmlErrorString(r_));                      \
	} while (0)

#define NVML_EXPECT(call, want)                                                      \
	do {                                                                             \
		nvmlReturn_t r_ = (call);                                                    \
		if (r_ != (want))                                                            \
			FAIL("%s = %d %s, want %s", #call, r_, nvmlErrorString(r_), #want);      \
	} while (0)

#define ALLOC (16u << 20)
#define DIM 128

static double seconds(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* holds reports whether the device lists this process with at least
 * ALLOC bytes. */
static int listed(nvmlDevice_t dev, unsigned long long *mem) {
	nvmlProcessInfo_t infos[16];
	unsigned int n = 0;
	nvmlReturn_t r = nvmlDeviceGetComputeRunningProcesses_v3(dev, &n, NULL);
	if (r != NVML_SUCCESS && r != NVML_ERROR_INSUFFICIENT_SIZE)
		FAIL("process count: %d %s", r, nvmlErrorString(r));
	if (n == 0)
		return 0;
	n = 16;
	NVML(nvmlDeviceGetComputeRunningProcesses_v3(dev, &n, infos));
	for (unsigned int i = 0; i < n; i++)
		if (infos[i].pid == (unsigned int)getpid() && infos[i].usedGpuMemory >= ALLOC) {
			*mem = infos[i].usedGpuMemory;
			return 1;
		}
	return 0;
}

int main(int argc, char **argv) {
	if (argc < 2)
		FAIL("usage: nvml_query matmul.ptx");

	/* NVML and the driver API are one library, with one Go runtime. */
	Dl_info a, b;
	if (!dladdr(dlsym(RTLD_DEFAULT, "nvmlInit_v2"), &a) || !dladdr(dlsym(RTLD_DEFAULT, "cuInit"), &b) ||
		a.dli_fbase != b.dli_fbase)
		FAIL("NVML and CUDA come from two libraries: %s, %s", a.dli_fname, b.dli_fname);

	unsigned int n;
	NVML_EXPECT(nvmlDeviceGetCount_v2(&n), NVML_ERROR_UNINITIALIZED);

	/* A CUDA session on the slice, holding memory. */
	CUcontext ctx = setup(0);
	size_t cudaTotal;
	CHECK(cuDeviceTotalMem(&cudaTotal, 0));
	char cudaName[96];
	CHECK(cuDeviceGetName(cudaName, sizeof cudaName, 0));
	CUuuid cu;
	CHECK(cuDeviceGetUuid(&cu, 0));
	int cudaVersion, cudaBus;
	CHECK(cuDriverGetVersion(&cudaVersion));
	CHECK(cuDeviceGetAttribute(&cudaBus, 33 /* CU_DEVICE_ATTRIBUTE_PCI_BUS_ID */, 0));
	CUdeviceptr held;
	CHECK(cuMemAlloc(&held, ALLOC));

	NVML(nvmlInit_v2());
	char driver[80];
	NVML(nvmlSystemGetDriverVersion(driver, sizeof driver));
	int version;
	NVML(nvmlSystemGetCudaDriverVersion(&version));
	if (version != cudaVersion)
		FAIL("NVML's CUDA version %d, the driver's %d", version, cudaVersion);
	NVML(nvmlDeviceGetCount_v2(&n));
	if (n != 1)
		FAIL("%u devices, want the lease's one slice", n);
	nvmlDevice_t dev, again;
	NVML(nvmlDeviceGetHandleByIndex_v2(0, &dev));
	NVML_EXPECT(nvmlDeviceGetHandleByIndex_v2(1, &again), NVML_ERROR_INVALID_ARGUMENT);
	unsigned int index;
	NVML(nvmlDeviceGetIndex(dev, &index));
	if (index != 0)
		FAIL("index %u", index);

	char name[96], uuid[80], want[80];
	NVML(nvmlDeviceGetName(dev, name, sizeof name));
	if (strcmp(name, cudaName) != 0)
		FAIL("NVML names the device %s, CUDA %s", name, cudaName);
	NVML(nvmlDeviceGetUUID(dev, uuid, sizeof uuid));
	const unsigned char *u = (const unsigned char *)cu.bytes;
	snprintf(want, sizeof want, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
		u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
	if (strcmp(uuid, want) != 0)
		FAIL("UUID %s, CUDA's %s", uuid, want);
	NVML(nvmlDeviceGetHandleByUUID(uuid, &again));
	if (again != dev)
		FAIL("the handle by UUID differs");
	nvmlPciInfo_t pci;
	NVML(nvmlDeviceGetPciInfo_v3(dev, &pci));
	if ((int)pci.bus != cudaBus)
		FAIL("PCI bus %u, CUDA's %d", pci.bus, cudaBus);
	NVML(nvmlDeviceGetHandleByPciBusId_v2(pci.busId, &again));
	if (again != dev)
		FAIL("the handle by PCI bus ID %s differs", pci.busId);

	/* Memory: the slice, and what the lease holds of it. */
	nvmlMemory_t mem;
	NVML(nvmlDeviceGetMemoryInfo(dev, &mem));
	if (mem.total != cudaTotal || mem.used + mem.free != mem.total)
		FAIL("memory total %llu used %llu free %llu; CUDA's total %zu", mem.total, mem.used, mem.free, cudaTotal);
	nvmlMemory_v2_t mem2 = {.version = 1};
	NVML_EXPECT(nvmlDeviceGetMemoryInfo_v2(dev, &mem2), NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
	mem2.version = nvmlMemory_v2;
	NVML(nvmlDeviceGetMemoryInfo_v2(dev, &mem2));
	if (mem2.total != cudaTotal)
		FAIL("memory v2 total %llu, CUDA's %zu", mem2.total, cudaTotal);

	/* This process, with its memory (kerfd learns it within a report). */
	unsigned long long procMem = 0;
	for (double end = seconds() + 20; !listed(dev, &procMem);) {
		if (seconds() > end)
			FAIL("pid %d never listed with %u bytes", getpid(), ALLOC);
		usleep(50 * 1000);
	}
	NVML(nvmlDeviceGetMemoryInfo(dev, &mem));
	if (mem.used < ALLOC)
		FAIL("memory used %llu, the program holds %u", mem.used, ALLOC);

	/* Utilization: kernels keep the slice busy until kerfd sees it. */
	char *ptx = read_ptx(argv[1]);
	CUmodule mod;
	CUfunction fn;
	CHECK(cuModuleLoadData(&mod, ptx));
	CHECK(cuModuleGetFunction(&fn, mod, "matmul"));
	CUdeviceptr dA, dB, dC;
	CHECK(cuMemAlloc(&dA, DIM * DIM * 4));
	CHECK(cuMemAlloc(&dB, DIM * DIM * 4));
	CHECK(cuMemAlloc(&dC, DIM * DIM * 4));
	int dim = DIM;
	void *params[] = {&dA, &dB, &dC, &dim, &dim, &dim};
	nvmlUtilization_t util = {0};
	for (double end = seconds() + 60; util.gpu == 0;) {
		if (seconds() > end)
			FAIL("utilization stayed 0 while kernels ran");
		CHECK(cuLaunchKernel(fn, DIM / 16, DIM / 16, 1, 16, 16, 1, 0, NULL, params, NULL));
		CHECK(cuCtxSynchronize());
		NVML(nvmlDeviceGetUtilizationRates(dev, &util));
		if (util.gpu > 100)
			FAIL("utilization %u%%", util.gpu);
	}

	/* What Kerf does not answer, and what it refuses. */
	unsigned int temp, power;
	NVML_EXPECT(nvmlDeviceGetTemperature(dev, 0, &temp), NVML_ERROR_NOT_SUPPORTED);
	NVML_EXPECT(nvmlDeviceGetPowerUsage(dev, &power), NVML_ERROR_NOT_SUPPORTED);
	NVML_EXPECT(nvmlDeviceGetName(dev, name, 1), NVML_ERROR_INSUFFICIENT_SIZE);
	NVML_EXPECT(nvmlDeviceGetName((nvmlDevice_t)&n, name, sizeof name), NVML_ERROR_INVALID_ARGUMENT);
	NVML_EXPECT(nvmlDeviceGetHandleByUUID("GPU-00000000-0000-0000-0000-000000000000", &again), NVML_ERROR_NOT_FOUND);

	NVML(nvmlShutdown());
	NVML_EXPECT(nvmlShutdown(), NVML_ERROR_UNINITIALIZED);
	CHECK(cuCtxDestroy(ctx));
	printf("nvml ok: pid=%d devices=%u total=%llu used=%llu process=%llu util=%u temperature=%d name=%s uuid=%s bus=%s driver=%s\n",
		getpid(), n, mem.total, mem.used, procMem, util.gpu, NVML_ERROR_NOT_SUPPORTED, name, uuid, pci.busId, driver);
	return 0;
}
