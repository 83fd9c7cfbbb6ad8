/* A CUDA-runtime program that asks what its pointers are: device memory,
 * pinned host memory and plain host memory through
 * cudaPointerGetAttributes, and the driver's range and attribute calls
 * through cudaGetDriverEntryPoint. argv[1]: the slice's memory in bytes. */
#include "rt_common.h"
#include <cuda.h>

typedef CUresult (*addressRangeFn)(CUdeviceptr *, size_t *, CUdeviceptr);
typedef CUresult (*attributeFn)(void *, CUpointer_attribute, CUdeviceptr);
typedef CUresult (*attributesFn)(unsigned int, CUpointer_attribute *, void **, CUdeviceptr);
typedef CUresult (*ctxGetCurrentFn)(CUcontext *);

static void *driver(const char *name) {
	void *fn = NULL;
	CHECK(cudaGetDriverEntryPoint(name, &fn, cudaEnableDefault));
	if (!fn)
		FAIL("no driver entry point %s", name);
	return fn;
}

#define CU(call)                                                                       \
	do {                                                                               \
		CUresult r_ = (call);                                                          \
		if (r_ != CUDA_SUCCESS)                                                        \
			FAIL("%s = %d", #call, (int)r_);                                           \
	} while (0)

int main(int argc, char **argv) {
	if (argc < 2)
		FAIL("usage: rt_pointers BYTES");
	CHECK(cudaSetDevice(0));
	const size_t size = 1000, off = 123;
	char *a = NULL, *b = NULL, *pinned = NULL;
	CHECK(cudaMalloc(&a, size));
	CHECK(cudaMalloc(&b, 2 * size));
	CHECK(cudaMallocHost(&pinned, size));

	/* The runtime's view. */
	cudaPointerAttributes at;
	CHECK(cudaPointerGetAttributes(&at, a + off));
	if (at.type != cudaMemoryTypeDevice || at.device != 0 || at.devicePointer != a + off || at.hostPointer != NULL)
		FAIL("device memory: type %d, device %d, device pointer %p (want %p), host pointer %p", at.type, at.device,
			at.devicePointer, (void *)(a + off), at.hostPointer);
	CHECK(cudaPointerGetAttributes(&at, pinned + off));
	if (at.type != cudaMemoryTypeHost || at.hostPointer != pinned + off)
		FAIL("pinned memory: type %d, host pointer %p (want %p)", at.type, at.hostPointer, (void *)(pinned + off));
	char *plain = (char *)malloc(size);
	CHECK(cudaPointerGetAttributes(&at, plain));
	if (at.type != cudaMemoryTypeUnregistered)
		FAIL("malloc'd memory: type %d, want unregistered", at.type);

	/* The driver's view, through the entry points cudart hands out. */
	addressRangeFn addressRange = (addressRangeFn)driver("cuMemGetAddressRange");
	attributeFn attribute = (attributeFn)driver("cuPointerGetAttribute");
	attributesFn attributes = (attributesFn)driver("cuPointerGetAttributes");
	ctxGetCurrentFn ctxGetCurrent = (ctxGetCurrentFn)driver("cuCtxGetCurrent");

	CUdeviceptr base = 0;
	size_t got = 0;
	CU(addressRange(&base, &got, (CUdeviceptr)(b + 2 * size - 1)));
	if (base != (CUdeviceptr)b || got != 2 * size)
		FAIL("cuMemGetAddressRange(b + %zu) = %#llx + %zu, want %p + %zu", 2 * size - 1, base, got, (void *)b, 2 * size);
	if (addressRange(&base, &got, (CUdeviceptr)(a + size)) != CUDA_ERROR_NOT_FOUND)
		FAIL("cuMemGetAddressRange one past an allocation found a range");

	CUcontext ctx = NULL, owner = NULL;
	CU(ctxGetCurrent(&ctx));
	CU(attribute(&owner, CU_POINTER_ATTRIBUTE_CONTEXT, (CUdeviceptr)a));
	if (owner != ctx || ctx == NULL)
		FAIL("context attribute %p, current context %p", (void *)owner, (void *)ctx);
	unsigned long long idA = 0, idB = 0;
	CU(attribute(&idA, CU_POINTER_ATTRIBUTE_BUFFER_ID, (CUdeviceptr)a));
	CU(attribute(&idB, CU_POINTER_ATTRIBUTE_BUFFER_ID, (CUdeviceptr)(b + 5)));
	if (idA == 0 || idA == idB)
		FAIL("buffer IDs %llu and %llu", idA, idB);
	void *hp = NULL;
	if (attribute(&hp, CU_POINTER_ATTRIBUTE_HOST_POINTER, (CUdeviceptr)a) != CUDA_ERROR_INVALID_VALUE)
		FAIL("device memory has a host pointer");
	if (attribute(&hp, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, (CUdeviceptr)plain) != CUDA_ERROR_INVALID_VALUE)
		FAIL("malloc'd memory has a memory type");

	CUpointer_attribute want[] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_DEVICE_POINTER,
		CU_POINTER_ATTRIBUTE_IS_MANAGED, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, CU_POINTER_ATTRIBUTE_RANGE_SIZE,
		CU_POINTER_ATTRIBUTE_MAPPED, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, CU_POINTER_ATTRIBUTE_BUFFER_ID};
	unsigned int memType = 0, managed = 7, mapped = 7;
	CUdeviceptr dptr = 0, start = 0;
	size_t rsize = 0;
	int ordinal = -1;
	unsigned long long id = 0;
	void *data[] = {&memType, &dptr, &managed, &start, &rsize, &mapped, &ordinal, &id};
	CU(attributes(8, want, data, (CUdeviceptr)(b + off)));
	if (memType != CU_MEMORYTYPE_DEVICE || dptr != (CUdeviceptr)(b + off) || managed != 0 ||
		start != (CUdeviceptr)b || rsize != 2 * size || mapped != 1 || ordinal != 0 || id != idB)
		FAIL("cuPointerGetAttributes(b + %zu): type %u, pointer %#llx, managed %u, range %#llx + %zu, mapped %u, "
			 "ordinal %d, id %llu",
			off, memType, dptr, managed, start, rsize, mapped, ordinal, id);
	memType = 9;
	CU(attributes(1, want, data, (CUdeviceptr)plain));
	if (memType != 0)
		FAIL("cuPointerGetAttributes(malloc'd) type %u, want 0", memType);

	/* Freed memory is nobody's. */
	CHECK(cudaFree(a));
	if (addressRange(&base, &got, (CUdeviceptr)a) != CUDA_ERROR_NOT_FOUND)
		FAIL("cuMemGetAddressRange found freed memory");
	CHECK(cudaPointerGetAttributes(&at, a));
	if (at.type == cudaMemoryTypeDevice)
		FAIL("freed memory is still device memory");

	CHECK(cudaFree(b));
	CHECK(cudaFreeHost(pinned));
	free(plain);
	printf("pointers ok\n");
	return 0;
}
