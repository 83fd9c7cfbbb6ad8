package abi

import (
	"fmt"
	"sort"
	"strings"
)

// EntryPoint is one driver-API function as a program names it (cuMemAlloc),
// with every symbol the driver ABI gives it. Forwarded entry points hang
// off their catalogue Call; the others sit in shimLocal or driverOnly.
// The shim's exports, its cuGetProcAddress table, the real-GPU backend's
// symbol list, kerf_cuda.h and docs/calls.md are all generated from these.
type EntryPoint struct {
	// Name is the plain name, without a version or per-thread suffix.
	Name string
	// Since is the CUDA version (1000*major + 10*minor) that introduced
	// the plain name; 0 for the earliest ones, older than any version a
	// cuGetProcAddress caller asks for.
	Since int
	// Params is the C parameter list of the newest symbol, in our own
	// words: "CUdeviceptr *dptr, size_t bytesize". Every function returns
	// CUresult.
	Params string
	// Versions are the versioned symbols (_v2, _v3), oldest first. The
	// newest is what kerf_cuda.h maps the plain name to.
	Versions []Version
	// PlainParams is the plain symbol's own parameter list where its ABI
	// differs from Params (the 32-bit sizes of the pre-3.2 calls).
	PlainParams string
	// NoPlain leaves the plain symbol out: its 32-bit device pointers
	// cannot hold a slice's addresses.
	NoPlain bool
	// OwnParams are the parameter lists of versioned symbols whose ABI
	// differs from Params, by suffix (cuCtxCreate_v3's affinity
	// parameters). Such a symbol has its own implementation in the shim,
	// is never the real-GPU backend's, and has no per-thread form.
	OwnParams map[string]string
	// PerThread is the suffix of the newest symbol's per-thread-default-
	// stream form: "_ptsz" for stream-ordered calls, "_ptds" for
	// synchronous ones, "" for calls that take no default stream.
	PerThread string
	// Backend marks the entry points the real-GPU backend (gpu/cuda)
	// resolves from the NVIDIA driver.
	Backend bool

	// Set from the table that holds the entry point.
	Call   CallID // the catalogue call it is forwarded onto; 0 if none
	Served Service
}

// Version is one versioned symbol of an entry point.
type Version struct {
	Suffix string // "_v2"
	Since  int
}

// Service says how the shim serves an entry point.
type Service uint8

const (
	// Forwarded entry points become their catalogue Call on kerfd.
	Forwarded Service = iota + 1
	// Local entry points are answered by the shim alone (devices,
	// contexts, pinned host memory, cuGetProcAddress).
	Local
	// NotServed entry points are not exported by the shim; only the
	// real-GPU backend resolves them from the driver.
	NotServed
)

// CUDAVersion is the CUDA version kerf_cuda.h declares: a plain name
// there means its newest symbol introduced by this version.
const CUDAVersion = 12040

// PerThreadSince is the CUDA version that introduced per-thread default
// streams (the _ptsz and _ptds symbols).
const PerThreadSince = 7000

// Param is one C parameter.
type Param struct {
	Type string // C type, "const void *"
	Name string
}

// Symbol is one exported name of an entry point.
type Symbol struct {
	Name      string  // cuMemcpyHtoD_v2_ptds
	Since     int     // the CUDA version from which it is the one to use
	Params    []Param // its C prototype
	PerThread bool    // a _ptsz or _ptds form
	// Legacy marks a plain symbol with its own, older ABI (PlainParams).
	Legacy bool
	// Own is the suffix of a versioned symbol with its own ABI
	// (OwnParams), "" for the others.
	Own string
}

// Newest returns the name of the entry point's newest symbol, the one
// kerf_cuda.h maps its plain name to.
func (e *EntryPoint) Newest() string {
	if n := len(e.Versions); n > 0 {
		return e.Name + e.Versions[n-1].Suffix
	}
	return e.Name
}

// SymbolAt returns the symbol a program compiled against CUDA version v
// links to for the plain name: the newest one introduced by v.
func (e *EntryPoint) SymbolAt(v int) string {
	for i := len(e.Versions) - 1; i >= 0; i-- {
		if _, own := e.OwnParams[e.Versions[i].Suffix]; own {
			continue // called by its own name only
		}
		if e.Versions[i].Since <= v {
			return e.Name + e.Versions[i].Suffix
		}
	}
	return e.Name
}

// NewestSince returns the CUDA version of the newest symbol.
func (e *EntryPoint) NewestSince() int {
	if n := len(e.Versions); n > 0 {
		return e.Versions[n-1].Since
	}
	return e.Since
}

// Prototype returns the parsed Params.
func (e *EntryPoint) Prototype() []Param { return mustParams(e.Params) }

// Symbols returns every symbol the shim exports for e, oldest first: the
// plain one (unless NoPlain), the versioned ones, then the per-thread
// form of the newest.
func (e *EntryPoint) Symbols() []Symbol {
	if e.Served == NotServed {
		return nil
	}
	var out []Symbol
	if !e.NoPlain {
		s := Symbol{Name: e.Name, Since: e.Since, Params: e.Prototype()}
		if e.PlainParams != "" {
			s.Params, s.Legacy = mustParams(e.PlainParams), true
		}
		out = append(out, s)
	}
	for _, v := range e.Versions {
		s := Symbol{Name: e.Name + v.Suffix, Since: v.Since, Params: e.Prototype()}
		if own, ok := e.OwnParams[v.Suffix]; ok {
			s.Params, s.Own = mustParams(own), v.Suffix
		}
		out = append(out, s)
	}
	if e.PerThread != "" {
		out = append(out, Symbol{Name: e.Newest() + e.PerThread, Since: max(e.NewestSince(), PerThreadSince),
			Params: e.Prototype(), PerThread: true})
	}
	return out
}

// DriverSymbols returns the names under which the real-GPU backend looks
// e up in the NVIDIA driver, newest first: every symbol with the newest
// prototype. A plain symbol with a 32-bit or older ABI is never one.
func (e *EntryPoint) DriverSymbols() []string {
	var out []string
	for i := len(e.Versions) - 1; i >= 0; i-- {
		if _, own := e.OwnParams[e.Versions[i].Suffix]; !own {
			out = append(out, e.Name+e.Versions[i].Suffix)
		}
	}
	if e.PlainParams == "" && !e.NoPlain {
		out = append(out, e.Name)
	}
	return out
}

// ParseParams parses a C parameter list ("int *pi, CUdevice dev"); the
// empty list has no parameters.
func ParseParams(list string) ([]Param, error) {
	list = strings.TrimSpace(list)
	if list == "" {
		return nil, nil
	}
	var out []Param
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		i := strings.LastIndexAny(p, " *")
		if i < 0 || i == len(p)-1 {
			return nil, fmt.Errorf("parameter %q: want a type and a name", p)
		}
		name, typ := p[i+1:], strings.TrimSpace(p[:i+1])
		if !isIdent(name) || typ == "" {
			return nil, fmt.Errorf("parameter %q: want a type and a name", p)
		}
		// One spelling: "char **", "const void *".
		typ = strings.Join(strings.Fields(strings.ReplaceAll(typ, "*", " * ")), " ")
		typ = strings.ReplaceAll(typ, "* *", "**")
		typ = strings.ReplaceAll(typ, "* *", "**")
		out = append(out, Param{Type: typ, Name: name})
	}
	return out, nil
}

func mustParams(list string) []Param {
	p, err := ParseParams(list)
	if err != nil {
		panic(err)
	}
	return p
}

func isIdent(s string) bool {
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// CDecl renders params as a C parameter list: "int *pi, CUdevice dev", or
// "void" for none.
func CDecl(params []Param) string {
	if len(params) == 0 {
		return "void"
	}
	parts := make([]string, len(params))
	for i, p := range params {
		if strings.HasSuffix(p.Type, "*") {
			parts[i] = p.Type + p.Name
		} else {
			parts[i] = p.Type + " " + p.Name
		}
	}
	return strings.Join(parts, ", ")
}

// EntryPoints returns every entry point, sorted by name.
func EntryPoints() []*EntryPoint { return entryPoints }

// LookupEntryPoint returns the entry point named name (plain), or nil.
func LookupEntryPoint(name string) *EntryPoint {
	i := sort.Search(len(entryPoints), func(i int) bool { return entryPoints[i].Name >= name })
	if i < len(entryPoints) && entryPoints[i].Name == name {
		return entryPoints[i]
	}
	return nil
}

var entryPoints []*EntryPoint

func init() {
	for i := range catalogue {
		c := &catalogue[i]
		for j := range c.EntryPoints {
			e := &c.EntryPoints[j]
			e.Call, e.Served = c.ID, Forwarded
			entryPoints = append(entryPoints, e)
		}
	}
	for _, table := range [][]EntryPoint{shimLocal, shimLocalGraphs, shimLocalMemory, shimLocalPools} {
		for i := range table {
			table[i].Served = Local
			entryPoints = append(entryPoints, &table[i])
		}
	}
	for i := range driverOnly {
		driverOnly[i].Served = NotServed
		entryPoints = append(entryPoints, &driverOnly[i])
	}
	sort.Slice(entryPoints, func(i, j int) bool { return entryPoints[i].Name < entryPoints[j].Name })
}

// shimLocal lists the entry points the shim answers without a catalogue
// call.
var shimLocal = []EntryPoint{
	{Name: "cuInit", Params: "unsigned int flags", Backend: true},
	{Name: "cuDriverGetVersion", Params: "int *driverVersion", Backend: true},
	{Name: "cuGetErrorName", Params: "CUresult error, const char **pStr"},
	{Name: "cuGetErrorString", Params: "CUresult error, const char **pStr"},
	{Name: "cuGetProcAddress", Since: 11030, Versions: []Version{{"_v2", 12000}},
		Params:      "const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags, CUdriverProcAddressQueryResult *symbolStatus",
		PlainParams: "const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags"},
	{Name: "cuGetExportTable", Params: "const void **ppExportTable, const CUuuid *pExportTableId"},

	{Name: "cuDeviceGetCount", Params: "int *count", Backend: true},
	{Name: "cuDeviceGet", Params: "CUdevice *device, int ordinal", Backend: true},
	{Name: "cuDeviceGetName", Params: "char *name, int len, CUdevice dev", Backend: true},
	{Name: "cuDeviceGetUuid", Since: 9020, Versions: []Version{{"_v2", 11040}}, Params: "CUuuid *uuid, CUdevice dev", Backend: true},
	{Name: "cuDeviceComputeCapability", Params: "int *major, int *minor, CUdevice dev"},
	{Name: "cuDeviceGetProperties", Params: "CUdevprop *prop, CUdevice dev"},
	{Name: "cuDeviceGetLuid", Since: 10000, Params: "char *luid, unsigned int *deviceNodeMask, CUdevice dev"},
	// Peer access: each device of a process is its own session, so no
	// device reads another's memory; cuMemcpyPeer stages through the shim.
	{Name: "cuDeviceCanAccessPeer", Since: 4000, Params: "int *canAccessPeer, CUdevice dev, CUdevice peerDev"},
	{Name: "cuCtxEnablePeerAccess", Since: 4000, Params: "CUcontext peerContext, unsigned int Flags"},
	{Name: "cuCtxDisablePeerAccess", Since: 4000, Params: "CUcontext peerContext"},
	{Name: "cuMemcpyPeer", Since: 4000, PerThread: "_ptds",
		Params: "CUdeviceptr dstDevice, CUcontext dstContext, CUdeviceptr srcDevice, CUcontext srcContext, size_t ByteCount"},
	{Name: "cuMemcpyPeerAsync", Since: 4000, PerThread: "_ptsz",
		Params: "CUdeviceptr dstDevice, CUcontext dstContext, CUdeviceptr srcDevice, CUcontext srcContext, size_t ByteCount, CUstream hStream"},
	{Name: "cuDeviceTotalMem", Versions: []Version{{"_v2", 3020}}, Params: "size_t *bytes, CUdevice dev",
		PlainParams: "unsigned int *bytes, CUdevice dev", Backend: true},
	{Name: "cuDevicePrimaryCtxRetain", Since: 7000, Params: "CUcontext *pctx, CUdevice dev"},
	{Name: "cuDevicePrimaryCtxRelease", Since: 7000, Versions: []Version{{"_v2", 11000}}, Params: "CUdevice dev"},
	{Name: "cuDevicePrimaryCtxGetState", Since: 7000, Params: "CUdevice dev, unsigned int *flags, int *active"},

	{Name: "cuCtxCreate", Versions: []Version{{"_v2", 3020}, {"_v3", 11040}, {"_v4", 12050}},
		Params: "CUcontext *pctx, unsigned int flags, CUdevice dev", Backend: true, OwnParams: map[string]string{
			"_v3": "CUcontext *pctx, CUexecAffinityParam *paramsArray, int numParams, unsigned int flags, CUdevice dev",
			"_v4": "CUcontext *pctx, CUctxCreateParams *ctxCreateParams, unsigned int flags, CUdevice dev"}},
	{Name: "cuCtxDestroy", Versions: []Version{{"_v2", 4000}}, Params: "CUcontext ctx", Backend: true},
	{Name: "cuCtxPushCurrent", Versions: []Version{{"_v2", 4000}}, Params: "CUcontext ctx"},
	{Name: "cuCtxPopCurrent", Versions: []Version{{"_v2", 4000}}, Params: "CUcontext *pctx"},
	{Name: "cuCtxSetCurrent", Since: 4000, Params: "CUcontext ctx", Backend: true},
	{Name: "cuCtxGetCurrent", Since: 4000, Params: "CUcontext *pctx"},
	{Name: "cuCtxGetDevice", Params: "CUdevice *device"},
	{Name: "cuCtxGetFlags", Since: 7000, Params: "unsigned int *flags"},
	{Name: "cuCtxGetApiVersion", Since: 3020, Params: "CUcontext ctx, unsigned int *version"},
	{Name: "cuCtxGetLimit", Since: 3010, Params: "size_t *pvalue, CUlimit limit"},
	{Name: "cuCtxGetCacheConfig", Since: 3020, Params: "CUfunc_cache *pconfig"},
	{Name: "cuCtxSetCacheConfig", Since: 3020, Params: "CUfunc_cache config"},
	{Name: "cuCtxGetSharedMemConfig", Since: 4020, Params: "CUsharedconfig *pConfig"},
	{Name: "cuCtxSetSharedMemConfig", Since: 4020, Params: "CUsharedconfig config"},
	{Name: "cuCtxGetStreamPriorityRange", Since: 5050, Params: "int *leastPriority, int *greatestPriority"},
	{Name: "cuDevicePrimaryCtxSetFlags", Since: 7000, Versions: []Version{{"_v2", 11000}}, Params: "CUdevice dev, unsigned int flags"},

	{Name: "cuMemAllocHost", Versions: []Version{{"_v2", 3020}}, Params: "void **pp, size_t bytesize",
		PlainParams: "void **pp, unsigned int bytesize"},
	{Name: "cuMemHostAlloc", Params: "void **pp, size_t bytesize, unsigned int flags"},
	{Name: "cuMemFreeHost", Params: "void *p"},

	// Pitched, 2D and 3D copies and 2D memsets: the shim splits them
	// into the catalogue's linear copies and memsets, row by row.
	{Name: "cuMemAllocPitch", NoPlain: true, Versions: v2at3020,
		Params: "CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes, size_t Height, unsigned int ElementSizeBytes"},
	{Name: "cuMemcpy2D", NoPlain: true, Versions: v2at3020, PerThread: "_ptds", Params: "const CUDA_MEMCPY2D *pCopy"},
	{Name: "cuMemcpy2DUnaligned", NoPlain: true, Versions: v2at3020, PerThread: "_ptds", Params: "const CUDA_MEMCPY2D *pCopy"},
	{Name: "cuMemcpy2DAsync", NoPlain: true, Versions: v2at3020, PerThread: "_ptsz", Params: "const CUDA_MEMCPY2D *pCopy, CUstream hStream"},
	{Name: "cuMemcpy3D", NoPlain: true, Versions: v2at3020, PerThread: "_ptds", Params: "const CUDA_MEMCPY3D *pCopy"},
	{Name: "cuMemcpy3DAsync", NoPlain: true, Versions: v2at3020, PerThread: "_ptsz", Params: "const CUDA_MEMCPY3D *pCopy, CUstream hStream", Backend: true},
	{Name: "cuMemsetD2D8", NoPlain: true, Versions: v2at3020, PerThread: "_ptds",
		Params: "CUdeviceptr dstDevice, size_t dstPitch, unsigned char uc, size_t Width, size_t Height"},
	{Name: "cuMemsetD2D16", NoPlain: true, Versions: v2at3020, PerThread: "_ptds",
		Params: "CUdeviceptr dstDevice, size_t dstPitch, unsigned short us, size_t Width, size_t Height"},
	{Name: "cuMemsetD2D32", NoPlain: true, Versions: v2at3020, PerThread: "_ptds",
		Params: "CUdeviceptr dstDevice, size_t dstPitch, unsigned int ui, size_t Width, size_t Height"},
	{Name: "cuMemsetD2D8Async", Since: 3020, PerThread: "_ptsz",
		Params: "CUdeviceptr dstDevice, size_t dstPitch, unsigned char uc, size_t Width, size_t Height, CUstream hStream"},
	{Name: "cuMemsetD2D16Async", Since: 3020, PerThread: "_ptsz",
		Params: "CUdeviceptr dstDevice, size_t dstPitch, unsigned short us, size_t Width, size_t Height, CUstream hStream"},
	{Name: "cuMemsetD2D32Async", Since: 3020, PerThread: "_ptsz",
		Params: "CUdeviceptr dstDevice, size_t dstPitch, unsigned int ui, size_t Width, size_t Height, CUstream hStream"},

	{Name: "cuFuncSetCacheConfig", Since: 3000, Params: "CUfunction hfunc, CUfunc_cache config"},
	{Name: "cuFuncSetSharedMemConfig", Since: 4020, Params: "CUfunction hfunc, CUsharedconfig config"},
	{Name: "cuOccupancyMaxActiveBlocksPerMultiprocessor", Since: 6050,
		Params: "int *numBlocks, CUfunction func, int blockSize, size_t dynamicSMemSize"},
	{Name: "cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags", Since: 7000,
		Params: "int *numBlocks, CUfunction func, int blockSize, size_t dynamicSMemSize, unsigned int flags"},
	{Name: "cuOccupancyMaxPotentialBlockSize", Since: 6050,
		Params: "int *minGridSize, int *blockSize, CUfunction func, CUoccupancyB2DSize blockSizeToDynamicSMemSize, size_t dynamicSMemSize, int blockSizeLimit"},
	{Name: "cuOccupancyMaxPotentialBlockSizeWithFlags", Since: 7000,
		Params: "int *minGridSize, int *blockSize, CUfunction func, CUoccupancyB2DSize blockSizeToDynamicSMemSize, size_t dynamicSMemSize, int blockSizeLimit, unsigned int flags"},
	{Name: "cuOccupancyAvailableDynamicSMemPerBlock", Since: 10020,
		Params: "size_t *dynamicSmemSize, CUfunction func, int numBlocks, int blockSize"},

	// Host functions run on a shim thread once their stream's earlier
	// work is done; the stream's later work waits for them.
	{Name: "cuLaunchHostFunc", Since: 10000, PerThread: "_ptsz", Params: "CUstream hStream, CUhostFn fn, void *userData"},
	{Name: "cuStreamAddCallback", Since: 5000, PerThread: "_ptsz",
		Params: "CUstream hStream, CUstreamCallback callback, void *userData, unsigned int flags"},

	// CUDA arrays live in the session's device memory, allocated and
	// copied through the catalogue's linear calls; the shim keeps their
	// descriptors, and the descriptors of its texture and surface
	// objects. A mipmapped array is one allocation holding its levels,
	// each a CUDA array of its own.
	{Name: "cuArrayCreate", Versions: v2at3020, Params: "CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR *pAllocateArray", NoPlain: true},
	{Name: "cuArray3DCreate", Versions: v2at3020, Params: "CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *pAllocateArray", NoPlain: true, Backend: true},
	{Name: "cuArrayDestroy", Params: "CUarray hArray", Backend: true},
	{Name: "cuArrayGetDescriptor", Versions: v2at3020, Params: "CUDA_ARRAY_DESCRIPTOR *pArrayDescriptor, CUarray hArray", NoPlain: true},
	{Name: "cuArray3DGetDescriptor", Versions: v2at3020, Params: "CUDA_ARRAY3D_DESCRIPTOR *pArrayDescriptor, CUarray hArray", NoPlain: true},
	{Name: "cuMipmappedArrayCreate", Since: 5000,
		Params: "CUmipmappedArray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *pMipmappedArrayDesc, unsigned int numMipmapLevels"},
	{Name: "cuMipmappedArrayGetLevel", Since: 5000,
		Params: "CUarray *pLevelArray, CUmipmappedArray hMipmappedArray, unsigned int level"},
	{Name: "cuMipmappedArrayDestroy", Since: 5000, Params: "CUmipmappedArray hMipmappedArray"},
	{Name: "cuTexObjectGetResourceDesc", Since: 5000, Params: "CUDA_RESOURCE_DESC *pResDesc, CUtexObject texObject"},
	{Name: "cuTexObjectGetTextureDesc", Since: 5000, Params: "CUDA_TEXTURE_DESC *pTexDesc, CUtexObject texObject"},
	{Name: "cuSurfObjectGetResourceDesc", Since: 5000, Params: "CUDA_RESOURCE_DESC *pResDesc, CUsurfObject surfObject"},

	{Name: "cuKernelGetFunction", Since: 12000, Params: "CUfunction *pFunc, CUkernel kernel"},
	{Name: "cuModuleGetLoadingMode", Since: 11070, Params: "CUmoduleLoadingMode *mode"},
}

// driverOnly lists entry points the real-GPU backend resolves that the
// shim does not serve.
var driverOnly = []EntryPoint{}
