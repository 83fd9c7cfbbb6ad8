package abi

// shimLocalMemory lists the managed and mapped host memory entry points:
// the shim keeps such memory as a host mirror of a device allocation,
// coherent at launches and synchronisations (intercept/managed.go).
var shimLocalMemory = []EntryPoint{
	{Name: "cuMemAllocManaged", Since: 6000, Params: "CUdeviceptr *dptr, size_t bytesize, unsigned int flags"},
	{Name: "cuMemHostRegister", Since: 4000, Versions: []Version{{"_v2", 6050}}, Params: "void *p, size_t bytesize, unsigned int Flags"},
	{Name: "cuMemHostUnregister", Since: 4000, Params: "void *p"},
	{Name: "cuMemHostGetDevicePointer", NoPlain: true, Versions: []Version{{"_v2", 3020}},
		Params: "CUdeviceptr *pdptr, void *p, unsigned int Flags"},
	{Name: "cuMemHostGetFlags", Since: 2030, Params: "unsigned int *pFlags, void *p"},
	{Name: "cuMemPrefetchAsync", Since: 8000, PerThread: "_ptsz",
		Params: "CUdeviceptr devPtr, size_t count, CUdevice dstDevice, CUstream hStream"},
	{Name: "cuMemAdvise", Since: 8000, Params: "CUdeviceptr devPtr, size_t count, CUmem_advise advice, CUdevice device"},
	{Name: "cuMemRangeGetAttribute", Since: 8000,
		Params: "void *data, size_t dataSize, CUmem_range_attribute attribute, CUdeviceptr devPtr, size_t count"},
	{Name: "cuMemRangeGetAttributes", Since: 8000,
		Params: "void **data, size_t *dataSizes, CUmem_range_attribute *attributes, size_t numAttributes, CUdeviceptr devPtr, size_t count"},
}

// shimLocalPools lists the stream-ordered allocator's entry points. The
// shim keeps the memory pools: each block a pool hands out is one of the
// session's allocations on kerfd (so it counts against the slice's
// quota), and a stream-ordered free runs on the stream's host-function
// queue, once the stream's earlier work is done.
var shimLocalPools = []EntryPoint{
	{Name: "cuMemAllocAsync", Since: 11020, PerThread: "_ptsz", Params: "CUdeviceptr *dptr, size_t bytesize, CUstream hStream"},
	{Name: "cuMemFreeAsync", Since: 11020, PerThread: "_ptsz", Params: "CUdeviceptr dptr, CUstream hStream"},
	{Name: "cuMemAllocFromPoolAsync", Since: 11020, PerThread: "_ptsz",
		Params: "CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool, CUstream hStream"},
	{Name: "cuDeviceGetDefaultMemPool", Since: 11020, Params: "CUmemoryPool *pool_out, CUdevice dev"},
	{Name: "cuDeviceGetMemPool", Since: 11020, Params: "CUmemoryPool *pool, CUdevice dev"},
	{Name: "cuDeviceSetMemPool", Since: 11020, Params: "CUdevice dev, CUmemoryPool pool"},
	{Name: "cuMemPoolCreate", Since: 11020, Params: "CUmemoryPool *pool, const CUmemPoolProps *poolProps"},
	{Name: "cuMemPoolDestroy", Since: 11020, Params: "CUmemoryPool pool"},
	{Name: "cuMemPoolSetAttribute", Since: 11020, Params: "CUmemoryPool pool, CUmemPool_attribute attr, void *value"},
	{Name: "cuMemPoolGetAttribute", Since: 11020, Params: "CUmemoryPool pool, CUmemPool_attribute attr, void *value"},
	{Name: "cuMemPoolTrimTo", Since: 11020, Params: "CUmemoryPool pool, size_t minBytesToKeep"},
	{Name: "cuMemPoolSetAccess", Since: 11020, Params: "CUmemoryPool pool, const CUmemAccessDesc *map, size_t count"},
	{Name: "cuMemPoolGetAccess", Since: 11020, Params: "CUmemAccess_flags *flags, CUmemoryPool memPool, CUmemLocation *location"},
}
