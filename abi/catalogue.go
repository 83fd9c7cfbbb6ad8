package abi

// ProtocolVersion and MinProtocolVersion bound the wire protocol versions
// this build speaks; a session runs at the newest both ends speak.
// Version 2 moves a local session's calls into shared memory (the call
// ring); the frames are those of version 1. Version 3 lets an error reply
// carry the error's text (at most MaxErrorText bytes). Version 4 sends
// the context's device printf output, in printf frames, before the reply
// to a call that flushes it (FlushesPrintf). Version 5 lets a lease
// stream answer an allocation with a redirect to the pool member holding
// a reservation, and take up a reservation (claim).
const (
	ProtocolVersion    uint16 = 5
	MinProtocolVersion uint16 = 1
	// ALPN is the TLS application protocol negotiated over QUIC.
	ALPN = "kerf/1"
)

// Limits enforced by both ends before anything is allocated.
const (
	// MaxFrame bounds one frame's payload (header excluded).
	MaxFrame = 1<<20 + 4096
	// BulkChunk is the payload size of one bulk data frame. Copies of
	// BulkChunk bytes or more are split into pipelined data frames.
	BulkChunk = 1 << 20
	// MaxModuleImage bounds a PTX, cubin or fatbin image.
	MaxModuleImage = 64 << 20
	// MaxKernelParams bounds a launch's parameter buffer (CUDA 12.1+ on
	// Volta and later allows 32764 bytes).
	MaxKernelParams = 32764
	// MaxName bounds symbol names (functions, globals).
	MaxName = 1024
	// MaxToken bounds a bearer token.
	MaxToken = 256
	// MaxValues bounds the scalar and blob counts of any call.
	MaxWords = 12
	MaxBlobs = 4
)

// Mode says how a call travels.
type Mode uint8

const (
	// Sync calls get a reply; the caller waits for it.
	Sync Mode = iota + 1
	// Async calls are sent without waiting. Their errors are latched by
	// the server and returned by the next Sync call, as CUDA reports
	// asynchronous errors.
	Async
)

func (m Mode) String() string {
	switch m {
	case Sync:
		return "sync"
	case Async:
		return "async"
	}
	return "invalid"
}

// Kind is the shape of one argument or result on the wire.
type Kind uint8

const (
	U32    Kind = iota + 1 // 4 bytes little-endian
	U64                    // 8 bytes little-endian
	DevPtr                 // 8 bytes: a device address, checked against the caller's allocations
	Handle                 // 8 bytes: a session-local handle of Arg.Handle kind
	Bytes                  // u32 length + bytes, length <= Arg.Max
	String                 // like Bytes, with no NUL byte
)

var kindNames = [...]string{U32: "u32", U64: "u64", DevPtr: "devptr", Handle: "handle", Bytes: "bytes", String: "string"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "invalid"
}

// IsWord reports whether k is a fixed-size scalar stored in Values.Words.
func (k Kind) IsWord() bool { return k == U32 || k == U64 || k == DevPtr || k == Handle }

// HandleKind names what a Handle argument refers to.
type HandleKind uint8

const (
	NoHandle HandleKind = iota
	ModuleHandle
	FunctionHandle
	// StreamHandle 0 is the legacy default stream.
	StreamHandle
	EventHandle
	// AllocationHandle is physical memory made by cuMemCreate
	// (CUmemGenericAllocationHandle).
	AllocationHandle
	numHandleKinds
)

var handleNames = [...]string{NoHandle: "none", ModuleHandle: "module", FunctionHandle: "function", StreamHandle: "stream", EventHandle: "event",
	AllocationHandle: "allocation"}

func (h HandleKind) String() string {
	if h < numHandleKinds {
		return handleNames[h]
	}
	return "invalid"
}

// Arg is one argument or result shape.
type Arg struct {
	Name   string
	Kind   Kind
	Handle HandleKind // for Kind == Handle
	Max    uint32     // for Bytes and String
}

// Bulk says whether a call carries a bulk payload in data frames after the
// call (In: host to server) or before the reply (Out: server to host).
// The payload length is the call's U64 argument named "size".
type Bulk uint8

const (
	NoBulk Bulk = iota
	BulkIn
	BulkOut
)

// CallID identifies a call on the wire. IDs are never reused.
type CallID uint16

// Call is one catalogue entry.
type Call struct {
	ID   CallID
	Name string // wire name, the primary CUDA function it mirrors
	// EntryPoints are the driver-API functions the shim forwards onto it.
	EntryPoints []EntryPoint
	Mode        Mode
	Args        []Arg
	Results     []Arg
	Bulk        Bulk
	// MaxBulk bounds the bulk payload; 0 means bounded only by the
	// allocation it targets.
	MaxBulk uint64
	Doc     string
}

// SizeArg returns the index, among Args, of the bulk size argument.
func (c *Call) SizeArg() int {
	for i, a := range c.Args {
		if a.Name == "size" && a.Kind == U64 {
			return i
		}
	}
	return -1
}

// Call IDs. Append only.
const (
	CallCtxSynchronize CallID = iota + 1
	CallDeviceGetAttribute
	CallMemAlloc
	CallMemFree
	CallMemGetInfo
	CallMemcpyHtoD
	CallMemcpyHtoDAsync
	CallMemcpyDtoH
	CallMemcpyDtoHAsync
	CallMemcpyDtoD
	CallMemcpyDtoDAsync
	CallMemset
	CallMemsetAsync
	CallModuleLoad
	CallModuleUnload
	CallModuleGetFunction
	CallModuleGetGlobal
	CallFuncGetAttribute
	CallFuncGetParamLayout
	CallLaunchKernel
	CallStreamCreate
	CallStreamDestroy
	CallStreamSynchronize
	CallStreamQuery
	CallStreamWaitEvent
	CallEventCreate
	CallEventRecord
	CallEventQuery
	CallEventSynchronize
	CallEventElapsedTime
	CallEventDestroy
	CallFuncSetAttribute
	CallMemGetAddressRange
	CallCtxSetLimit
	CallCtxReset
	CallTexObjectCreate
	CallTexObjectDestroy
	CallLaunchCooperativeKernel
	// The virtual memory calls.
	CallMemGetAllocationGranularity
	CallMemAddressReserve
	CallMemAddressFree
	CallMemCreate
	CallMemRelease
	CallMemMap
	CallMemUnmap
	CallMemSetAccess
	CallMemGetAccess
	numCalls
)

// Versioned symbols shared by many entry points.
var (
	v2at3020 = []Version{{"_v2", 3020}}
	v2at4000 = []Version{{"_v2", 4000}}
)

func h(name string, k HandleKind) Arg { return Arg{Name: name, Kind: Handle, Handle: k} }
func w(name string, k Kind) Arg       { return Arg{Name: name, Kind: k} }
func b(name string, k Kind, max uint32) Arg {
	return Arg{Name: name, Kind: k, Max: max}
}

var (
	stream = h("stream", StreamHandle)
	size   = w("size", U64)
)

// catalogue is indexed by CallID.
var catalogue = [numCalls]Call{
	CallCtxSynchronize: {Name: "cuCtxSynchronize", EntryPoints: []EntryPoint{{Name: "cuCtxSynchronize", Backend: true}}, Mode: Sync,
		Doc: "Waits for all work in the tenant's context."},
	CallDeviceGetAttribute: {Name: "cuDeviceGetAttribute", EntryPoints: []EntryPoint{{Name: "cuDeviceGetAttribute", Params: "int *pi, CUdevice_attribute attrib, CUdevice dev", Backend: true}}, Mode: Sync,
		Args: []Arg{w("attrib", U32)}, Results: []Arg{w("value", U32)},
		Doc: "Returns one device attribute of the session's device, as seen inside the slice."},
	CallMemAlloc: {Name: "cuMemAlloc_v2", EntryPoints: []EntryPoint{{Name: "cuMemAlloc", NoPlain: true, Versions: v2at3020, Params: "CUdeviceptr *dptr, size_t bytesize", Backend: true}}, Mode: Sync,
		Args: []Arg{w("bytesize", U64)}, Results: []Arg{w("dptr", DevPtr)},
		Doc: "Allocates device memory inside the slice's quota."},
	CallMemFree: {Name: "cuMemFree_v2", EntryPoints: []EntryPoint{{Name: "cuMemFree", NoPlain: true, Versions: v2at3020, Params: "CUdeviceptr dptr", Backend: true}}, Mode: Sync,
		Args: []Arg{w("dptr", DevPtr)},
		Doc:  "Frees an allocation the caller owns."},
	CallMemGetInfo: {Name: "cuMemGetInfo_v2", EntryPoints: []EntryPoint{{Name: "cuMemGetInfo", Versions: v2at3020, Params: "size_t *free, size_t *total",
		PlainParams: "unsigned int *free, unsigned int *total", Backend: true}}, Mode: Sync,
		Results: []Arg{w("free", U64), w("total", U64)},
		Doc:     "Returns the slice's free and total memory."},
	CallMemcpyHtoD: {Name: "cuMemcpyHtoD_v2", EntryPoints: []EntryPoint{{Name: "cuMemcpyHtoD", NoPlain: true, Versions: v2at3020, PerThread: "_ptds",
		Params: "CUdeviceptr dstDevice, const void *srcHost, size_t byteCount"}}, Mode: Sync,
		Args: []Arg{w("dst", DevPtr), size}, Bulk: BulkIn,
		Doc: "Copies host memory to the device; the bytes follow in data frames."},
	CallMemcpyHtoDAsync: {Name: "cuMemcpyHtoDAsync_v2", EntryPoints: []EntryPoint{{Name: "cuMemcpyHtoDAsync", NoPlain: true, Versions: v2at3020, PerThread: "_ptsz", Backend: true,
		Params: "CUdeviceptr dstDevice, const void *srcHost, size_t byteCount, CUstream hStream"}}, Mode: Async,
		Args: []Arg{w("dst", DevPtr), size, stream}, Bulk: BulkIn,
		Doc: "Like cuMemcpyHtoD, ordered in a stream; the client does not wait."},
	CallMemcpyDtoH: {Name: "cuMemcpyDtoH_v2", EntryPoints: []EntryPoint{{Name: "cuMemcpyDtoH", NoPlain: true, Versions: v2at3020, PerThread: "_ptds",
		Params: "void *dstHost, CUdeviceptr srcDevice, size_t byteCount"}}, Mode: Sync,
		Args: []Arg{w("src", DevPtr), size}, Bulk: BulkOut,
		Doc: "Copies device memory to the host; the bytes come back in data frames before the reply."},
	CallMemcpyDtoHAsync: {Name: "cuMemcpyDtoHAsync_v2", EntryPoints: []EntryPoint{{Name: "cuMemcpyDtoHAsync", NoPlain: true, Versions: v2at3020, PerThread: "_ptsz", Backend: true,
		Params: "void *dstHost, CUdeviceptr srcDevice, size_t byteCount, CUstream hStream"}}, Mode: Async,
		Args: []Arg{w("src", DevPtr), size, stream}, Bulk: BulkOut,
		Doc: "Like cuMemcpyDtoH, ordered in a stream; the bytes arrive before any later reply."},
	CallMemcpyDtoD: {Name: "cuMemcpyDtoD_v2", EntryPoints: []EntryPoint{{Name: "cuMemcpyDtoD", NoPlain: true, Versions: v2at3020, PerThread: "_ptds",
		Params: "CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t byteCount"}}, Mode: Sync,
		Args: []Arg{w("dst", DevPtr), w("src", DevPtr), size},
		Doc:  "Copies between two of the caller's allocations."},
	CallMemcpyDtoDAsync: {Name: "cuMemcpyDtoDAsync_v2", EntryPoints: []EntryPoint{{Name: "cuMemcpyDtoDAsync", NoPlain: true, Versions: v2at3020, PerThread: "_ptsz", Backend: true,
		Params: "CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t byteCount, CUstream hStream"}}, Mode: Async,
		Args: []Arg{w("dst", DevPtr), w("src", DevPtr), size, stream},
		Doc:  "Like cuMemcpyDtoD, ordered in a stream."},
	CallMemset: {Name: "cuMemsetD8_v2", EntryPoints: []EntryPoint{
		{Name: "cuMemsetD8", NoPlain: true, Versions: v2at3020, PerThread: "_ptds", Params: "CUdeviceptr dstDevice, unsigned char uc, size_t n"},
		{Name: "cuMemsetD16", NoPlain: true, Versions: v2at3020, PerThread: "_ptds", Params: "CUdeviceptr dstDevice, unsigned short us, size_t n"},
		{Name: "cuMemsetD32", NoPlain: true, Versions: v2at3020, PerThread: "_ptds", Params: "CUdeviceptr dstDevice, unsigned int ui, size_t n"},
	}, Mode: Sync,
		Args: []Arg{w("dst", DevPtr), w("value", U32), w("elemsize", U32), w("count", U64)},
		Doc:  "Sets count elements of elemsize 1, 2 or 4 bytes."},
	CallMemsetAsync: {Name: "cuMemsetD8Async", EntryPoints: []EntryPoint{
		{Name: "cuMemsetD8Async", PerThread: "_ptsz", Backend: true, Params: "CUdeviceptr dstDevice, unsigned char uc, size_t n, CUstream hStream"},
		{Name: "cuMemsetD16Async", PerThread: "_ptsz", Backend: true, Params: "CUdeviceptr dstDevice, unsigned short us, size_t n, CUstream hStream"},
		{Name: "cuMemsetD32Async", PerThread: "_ptsz", Backend: true, Params: "CUdeviceptr dstDevice, unsigned int ui, size_t n, CUstream hStream"},
	}, Mode: Async,
		Args: []Arg{w("dst", DevPtr), w("value", U32), w("elemsize", U32), w("count", U64), stream},
		Doc:  "Like the memsets, ordered in a stream."},
	CallModuleLoad: {Name: "cuModuleLoadData", EntryPoints: []EntryPoint{
		{Name: "cuModuleLoadData", Params: "CUmodule *module, const void *image", Backend: true},
		{Name: "cuModuleLoadDataEx", Params: "CUmodule *module, const void *image, unsigned int numOptions, CUjit_option *options, void **optionValues", Backend: true},
		{Name: "cuModuleLoadFatBinary", Params: "CUmodule *module, const void *fatCubin"},
		{Name: "cuLibraryLoadData", Since: 12000, Params: "CUlibrary *library, const void *code, CUjit_option *jitOptions, void **jitOptionsValues, unsigned int numJitOptions, " +
			"CUlibraryOption *libraryOptions, void **libraryOptionValues, unsigned int numLibraryOptions"},
	}, Mode: Sync,
		Args: []Arg{size}, Results: []Arg{h("module", ModuleHandle)}, Bulk: BulkIn, MaxBulk: MaxModuleImage,
		Doc: "Loads a PTX, cubin or fatbin image; the image follows in data frames."},
	CallModuleUnload: {Name: "cuModuleUnload", EntryPoints: []EntryPoint{
		{Name: "cuModuleUnload", Params: "CUmodule hmod", Backend: true},
		{Name: "cuLibraryUnload", Since: 12000, Params: "CUlibrary library"},
	}, Mode: Sync,
		Args: []Arg{h("module", ModuleHandle)},
		Doc:  "Unloads a module and invalidates its functions."},
	CallModuleGetFunction: {Name: "cuModuleGetFunction", EntryPoints: []EntryPoint{
		{Name: "cuModuleGetFunction", Params: "CUfunction *hfunc, CUmodule hmod, const char *name", Backend: true},
		{Name: "cuLibraryGetKernel", Since: 12000, Params: "CUkernel *pKernel, CUlibrary library, const char *name"},
	}, Mode: Sync,
		Args: []Arg{h("module", ModuleHandle), b("name", String, MaxName)}, Results: []Arg{h("function", FunctionHandle)},
		Doc: "Looks up a kernel by name."},
	CallModuleGetGlobal: {Name: "cuModuleGetGlobal_v2", EntryPoints: []EntryPoint{
		{Name: "cuModuleGetGlobal", NoPlain: true, Versions: v2at3020, Params: "CUdeviceptr *dptr, size_t *bytes, CUmodule hmod, const char *name", Backend: true},
		{Name: "cuLibraryGetGlobal", Since: 12000, Params: "CUdeviceptr *dptr, size_t *bytes, CUlibrary library, const char *name"},
	}, Mode: Sync,
		Args: []Arg{h("module", ModuleHandle), b("name", String, MaxName)}, Results: []Arg{w("dptr", DevPtr), w("bytes", U64)},
		Doc: "Looks up a module global; its range becomes addressable by the caller."},
	CallFuncGetAttribute: {Name: "cuFuncGetAttribute", EntryPoints: []EntryPoint{
		{Name: "cuFuncGetAttribute", Params: "int *pi, CUfunction_attribute attrib, CUfunction hfunc", Backend: true},
		{Name: "cuKernelGetAttribute", Since: 12000, Params: "int *pi, CUfunction_attribute attrib, CUkernel kernel, CUdevice dev"},
	}, Mode: Sync,
		Args: []Arg{h("function", FunctionHandle), w("attrib", U32)}, Results: []Arg{w("value", U32)},
		Doc: "Returns one function attribute."},
	CallFuncGetParamLayout: {Name: "cuFuncGetParamInfo", EntryPoints: []EntryPoint{{Name: "cuFuncGetParamInfo", Since: 12040, Params: "CUfunction func, size_t paramIndex, size_t *paramOffset, size_t *paramSize", Backend: true}}, Mode: Sync,
		Args: []Arg{h("function", FunctionHandle)}, Results: []Arg{b("layout", Bytes, 8*4096)},
		Doc: "Returns every parameter's offset and size (u32 pairs); the shim caches it per function."},
	CallLaunchKernel: {Name: "cuLaunchKernel", EntryPoints: []EntryPoint{
		{Name: "cuLaunchKernel", Since: 4000, PerThread: "_ptsz", Backend: true,
			Params: "CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ, " +
				"unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ, " +
				"unsigned int sharedMemBytes, CUstream hStream, void **kernelParams, void **extra"},
		{Name: "cuLaunchKernelEx", Since: 11060, PerThread: "_ptsz", Params: "const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra"},
	}, Mode: Async,
		Args: []Arg{h("function", FunctionHandle),
			w("gridX", U32), w("gridY", U32), w("gridZ", U32),
			w("blockX", U32), w("blockY", U32), w("blockZ", U32),
			w("sharedMemBytes", U32), stream, b("params", Bytes, MaxKernelParams)},
		Doc: "Launches a kernel with its packed parameter buffer."},
	CallStreamCreate: {Name: "cuStreamCreate", EntryPoints: []EntryPoint{
		{Name: "cuStreamCreate", Params: "CUstream *phStream, unsigned int flags"},
		{Name: "cuStreamCreateWithPriority", Since: 5050, Params: "CUstream *phStream, unsigned int flags, int priority", Backend: true},
	}, Mode: Sync,
		Args: []Arg{w("flags", U32), w("priority", U32)}, Results: []Arg{h("stream", StreamHandle)},
		Doc: "Creates a stream."},
	CallStreamDestroy: {Name: "cuStreamDestroy_v2", EntryPoints: []EntryPoint{{Name: "cuStreamDestroy", Versions: v2at4000, Params: "CUstream hStream", Backend: true}}, Mode: Sync,
		Args: []Arg{stream},
		Doc:  "Destroys a stream once its work completes."},
	CallStreamSynchronize: {Name: "cuStreamSynchronize", EntryPoints: []EntryPoint{{Name: "cuStreamSynchronize", PerThread: "_ptsz", Params: "CUstream hStream", Backend: true}}, Mode: Sync,
		Args: []Arg{stream},
		Doc:  "Waits for a stream's work."},
	CallStreamQuery: {Name: "cuStreamQuery", EntryPoints: []EntryPoint{{Name: "cuStreamQuery", PerThread: "_ptsz", Params: "CUstream hStream", Backend: true}}, Mode: Sync,
		Args: []Arg{stream},
		Doc:  "Returns CUDA_SUCCESS when the stream is idle, CUDA_ERROR_NOT_READY otherwise."},
	CallStreamWaitEvent: {Name: "cuStreamWaitEvent", EntryPoints: []EntryPoint{{Name: "cuStreamWaitEvent", PerThread: "_ptsz", Params: "CUstream hStream, CUevent hEvent, unsigned int flags", Backend: true}}, Mode: Async,
		Args: []Arg{stream, h("event", EventHandle), w("flags", U32)},
		Doc:  "Makes later work in a stream wait for an event."},
	CallEventCreate: {Name: "cuEventCreate", EntryPoints: []EntryPoint{{Name: "cuEventCreate", Params: "CUevent *phEvent, unsigned int flags", Backend: true}}, Mode: Sync,
		Args: []Arg{w("flags", U32)}, Results: []Arg{h("event", EventHandle)},
		Doc: "Creates an event."},
	CallEventRecord: {Name: "cuEventRecord", EntryPoints: []EntryPoint{
		{Name: "cuEventRecord", PerThread: "_ptsz", Params: "CUevent hEvent, CUstream hStream", Backend: true},
		{Name: "cuEventRecordWithFlags", Since: 11010, PerThread: "_ptsz", Params: "CUevent hEvent, CUstream hStream, unsigned int flags"},
	}, Mode: Async,
		Args: []Arg{h("event", EventHandle), stream},
		Doc:  "Records an event in a stream."},
	CallEventQuery: {Name: "cuEventQuery", EntryPoints: []EntryPoint{{Name: "cuEventQuery", Params: "CUevent hEvent", Backend: true}}, Mode: Sync,
		Args: []Arg{h("event", EventHandle)},
		Doc:  "Returns CUDA_SUCCESS once the event has completed, CUDA_ERROR_NOT_READY before."},
	CallEventSynchronize: {Name: "cuEventSynchronize", EntryPoints: []EntryPoint{{Name: "cuEventSynchronize", Params: "CUevent hEvent", Backend: true}}, Mode: Sync,
		Args: []Arg{h("event", EventHandle)},
		Doc:  "Waits for an event."},
	CallEventElapsedTime: {Name: "cuEventElapsedTime", EntryPoints: []EntryPoint{{Name: "cuEventElapsedTime", Versions: []Version{{"_v2", 12080}}, Params: "float *pMilliseconds, CUevent hStart, CUevent hEnd", Backend: true}}, Mode: Sync,
		Args: []Arg{h("start", EventHandle), h("end", EventHandle)}, Results: []Arg{w("millisecondsBits", U32)},
		Doc: "Returns the time between two events, as float32 bits."},
	CallEventDestroy: {Name: "cuEventDestroy_v2", EntryPoints: []EntryPoint{{Name: "cuEventDestroy", Versions: v2at4000, Params: "CUevent hEvent", Backend: true}}, Mode: Sync,
		Args: []Arg{h("event", EventHandle)},
		Doc:  "Destroys an event."},
	CallFuncSetAttribute: {Name: "cuFuncSetAttribute", EntryPoints: []EntryPoint{
		{Name: "cuFuncSetAttribute", Since: 9000, Params: "CUfunction hfunc, CUfunction_attribute attrib, int value", Backend: true},
	}, Mode: Sync,
		Args: []Arg{h("function", FunctionHandle), w("attrib", U32), w("value", U32)},
		Doc:  "Sets a settable function attribute: the dynamic shared memory limit or the preferred shared memory carveout."},
	CallMemGetAddressRange: {Name: "cuMemGetAddressRange_v2", EntryPoints: []EntryPoint{
		{Name: "cuMemGetAddressRange", NoPlain: true, Versions: v2at3020, Params: "CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr", Backend: true},
		{Name: "cuPointerGetAttribute", Since: 4000, Params: "void *data, CUpointer_attribute attribute, CUdeviceptr ptr"},
		{Name: "cuPointerGetAttributes", Since: 7000, Params: "unsigned int numAttributes, CUpointer_attribute *attributes, void **data, CUdeviceptr ptr"},
	}, Mode: Sync,
		Args: []Arg{w("ptr", U64)}, Results: []Arg{w("base", U64), w("size", U64), w("bufferID", U64)},
		Doc: "Returns the allocation or module global of the caller's that contains ptr: its base, size and a buffer ID unique within the session. " +
			"Pointer attributes are answered from it; pinned host memory is answered by the shim."},
	CallCtxSetLimit: {Name: "cuCtxSetLimit", EntryPoints: []EntryPoint{
		{Name: "cuCtxSetLimit", Since: 3010, Params: "CUlimit limit, size_t value", Backend: true},
	}, Mode: Sync,
		Args: []Arg{w("limit", U32), w("value", U64)},
		Doc: "Sets a limit of the session's context (the printf FIFO's size, the stack and the device malloc heap), " +
			"after the shim has checked it against the device; the shim answers cuCtxGetLimit."},
	CallCtxReset: {Name: "cuDevicePrimaryCtxReset", EntryPoints: []EntryPoint{
		{Name: "cuDevicePrimaryCtxReset", Since: 7000, Versions: []Version{{"_v2", 11000}}, Params: "CUdevice dev"},
	}, Mode: Sync,
		Doc: "Replaces the session's context with a fresh one, as resetting the device's primary context does: " +
			"every allocation, module, stream and event of the session goes, and so does a sticky error."},
	CallTexObjectCreate: {Name: "cuTexObjectCreate", EntryPoints: []EntryPoint{
		{Name: "cuTexObjectCreate", Since: 5000, Params: "CUtexObject *pTexObject, const CUDA_RESOURCE_DESC *pResDesc, const CUDA_TEXTURE_DESC *pTexDesc, const CUDA_RESOURCE_VIEW_DESC *pResViewDesc", Backend: true},
		{Name: "cuSurfObjectCreate", Since: 5000, Params: "CUsurfObject *pSurfObject, const CUDA_RESOURCE_DESC *pResDesc", Backend: true},
	}, Mode: Sync,
		Args: []Arg{b("desc", Bytes, TexObjectSize)}, Results: []Arg{w("object", U64)},
		Doc: "Creates a texture or surface object over an image in the caller's device memory (a CUDA array, which the shim keeps there, " +
			"linear or pitched memory), described by an abi.TexObject; the whole image must lie in one of the caller's allocations."},
	CallTexObjectDestroy: {Name: "cuTexObjectDestroy", EntryPoints: []EntryPoint{
		{Name: "cuTexObjectDestroy", Since: 5000, Params: "CUtexObject texObject", Backend: true},
		{Name: "cuSurfObjectDestroy", Since: 5000, Params: "CUsurfObject surfObject", Backend: true},
	}, Mode: Sync,
		Args: []Arg{w("object", U64), w("surface", U32)},
		Doc:  "Destroys a texture or surface object the caller created."},
	CallLaunchCooperativeKernel: {Name: "cuLaunchCooperativeKernel", EntryPoints: []EntryPoint{
		{Name: "cuLaunchCooperativeKernel", Since: 9000, PerThread: "_ptsz", Backend: true,
			Params: "CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ, " +
				"unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ, " +
				"unsigned int sharedMemBytes, CUstream hStream, void **kernelParams"},
	}, Mode: Sync,
		Args: []Arg{h("function", FunctionHandle),
			w("gridX", U32), w("gridY", U32), w("gridZ", U32),
			w("blockX", U32), w("blockY", U32), w("blockZ", U32),
			w("sharedMemBytes", U32), stream, b("params", Bytes, MaxKernelParams)},
		Doc: "Launches a kernel whose blocks all run at once, so that they may synchronise with each other (grid.sync()); " +
			"a grid larger than the device holds at once is CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE. Sync, so that this error comes back at once."},

	// Virtual memory: address ranges reserved, physical memory made (and
	// counted against the slice's quota), mapped into a range and made
	// accessible. Sizes, offsets and addresses are multiples of the
	// granularity; a mapping is addressable by the caller once access to
	// it is set.
	CallMemGetAllocationGranularity: {Name: "cuMemGetAllocationGranularity", EntryPoints: []EntryPoint{
		{Name: "cuMemGetAllocationGranularity", Since: 10020, Backend: true,
			Params: "size_t *granularity, const CUmemAllocationProp *prop, CUmemAllocationGranularity_flags option"},
	}, Mode: Sync,
		Args: []Arg{w("option", U32)}, Results: []Arg{w("granularity", U64)},
		Doc: "Returns the device's minimum or recommended granularity of physical memory and mappings; the shim checks the allocation properties."},
	CallMemAddressReserve: {Name: "cuMemAddressReserve", EntryPoints: []EntryPoint{
		{Name: "cuMemAddressReserve", Since: 10020, Backend: true,
			Params: "CUdeviceptr *ptr, size_t size, size_t alignment, CUdeviceptr addr, cuuint64_t flags"},
	}, Mode: Sync,
		Args: []Arg{size, w("alignment", U64)}, Results: []Arg{w("ptr", U64)},
		Doc: "Reserves a range of device addresses, aligned to alignment (a power of two; 0 means the granularity). The address hint is not followed."},
	CallMemAddressFree: {Name: "cuMemAddressFree", EntryPoints: []EntryPoint{
		{Name: "cuMemAddressFree", Since: 10020, Backend: true, Params: "CUdeviceptr ptr, size_t size"},
	}, Mode: Sync,
		Args: []Arg{w("ptr", U64), size},
		Doc:  "Frees a whole range the caller reserved, once nothing is mapped in it."},
	CallMemCreate: {Name: "cuMemCreate", EntryPoints: []EntryPoint{
		{Name: "cuMemCreate", Since: 10020, Backend: true,
			Params: "CUmemGenericAllocationHandle *handle, size_t size, const CUmemAllocationProp *prop, cuuint64_t flags"},
	}, Mode: Sync,
		Args: []Arg{size}, Results: []Arg{h("handle", AllocationHandle)},
		Doc: "Makes physical memory on the session's device, counted against the slice's quota; the shim checks the allocation properties."},
	CallMemRelease: {Name: "cuMemRelease", EntryPoints: []EntryPoint{
		{Name: "cuMemRelease", Since: 10020, Backend: true, Params: "CUmemGenericAllocationHandle handle"},
	}, Mode: Sync,
		Args: []Arg{h("handle", AllocationHandle)},
		Doc:  "Releases physical memory: the handle goes at once, the memory once no mapping uses it."},
	CallMemMap: {Name: "cuMemMap", EntryPoints: []EntryPoint{
		{Name: "cuMemMap", Since: 10020, Backend: true,
			Params: "CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle, cuuint64_t flags"},
	}, Mode: Sync,
		Args: []Arg{w("ptr", U64), size, w("offset", U64), h("handle", AllocationHandle)},
		Doc:  "Maps size bytes of physical memory, from offset, at ptr, inside a range the caller reserved and over no other mapping."},
	CallMemUnmap: {Name: "cuMemUnmap", EntryPoints: []EntryPoint{
		{Name: "cuMemUnmap", Since: 10020, Backend: true, Params: "CUdeviceptr ptr, size_t size"},
	}, Mode: Sync,
		Args: []Arg{w("ptr", U64), size},
		Doc:  "Unmaps the whole mappings that make up [ptr, ptr+size), after the device's work so far."},
	CallMemSetAccess: {Name: "cuMemSetAccess", EntryPoints: []EntryPoint{
		{Name: "cuMemSetAccess", Since: 10020, Backend: true, Params: "CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc, size_t count"},
	}, Mode: Sync,
		Args: []Arg{w("ptr", U64), size, w("flags", U32)},
		Doc: "Lets the session's device read and write the whole mappings that make up [ptr, ptr+size) (flags CU_MEM_ACCESS_FLAGS_PROT_READWRITE); " +
			"the shim checks the access descriptors name that device."},
	CallMemGetAccess: {Name: "cuMemGetAccess", EntryPoints: []EntryPoint{
		{Name: "cuMemGetAccess", Since: 10020, Params: "cuuint64_t *flags, const CUmemLocation *location, CUdeviceptr ptr"},
	}, Mode: Sync,
		Args: []Arg{w("ptr", U64)}, Results: []Arg{w("flags", U32)},
		Doc: "Returns the session's device's access to the mapping at ptr."},
}

func init() {
	for i := range catalogue {
		catalogue[i].ID = CallID(i)
	}
}

// Lookup returns the catalogue entry for id, or nil for an unknown id.
func Lookup(id CallID) *Call {
	if id == 0 || id >= numCalls {
		return nil
	}
	return &catalogue[id]
}

// Calls returns every catalogue entry in ID order.
func Calls() []*Call {
	out := make([]*Call, 0, numCalls-1)
	for i := CallID(1); i < numCalls; i++ {
		out = append(out, &catalogue[i])
	}
	return out
}

// FlushesPrintf reports whether call id flushes the context's device
// printf output to the tenant, as CUDA flushes the printf FIFO at
// synchronisation, blocking copies and module load and unload. From
// protocol version 4 the server sends it before the call's reply.
func FlushesPrintf(id CallID) bool {
	switch id {
	case CallCtxSynchronize, CallStreamSynchronize, CallEventSynchronize,
		CallMemcpyHtoD, CallMemcpyDtoH, CallMemcpyDtoD, CallModuleLoad, CallModuleUnload:
		return true
	}
	return false
}
