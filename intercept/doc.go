// Command intercept is Kerf's client shim: built with
//
//	go build -buildmode=c-shared -o bin/libcuda.so.1 ./intercept
//
// it is a replacement libcuda.so.1 that implements the CUDA driver API on
// top of transport.Client, so that unmodified CUDA programs (and runtimes
// that dlopen libcuda.so.1) run on a Kerf slice. It is also the tenant's
// libnvidia-ml.so.1: intercept/nvml's NVML functions are exported beside
// the driver API, and bin/libnvidia-ml.so.1 links to this library.
//
// Intercept owns the driver-API surface a program sees: device numbering,
// contexts and the per-thread context stack, handle validation, the
// client-side checks that CUDA reports at once (launch shapes, parameter
// sizes, null or stale handles), kernel-parameter packing, pinned host
// memory, and cuGetProcAddress. It must not: enforce tenant limits or
// ownership (kerfd does, whatever the shim says), panic or crash on any
// value the program passes that a real driver would reject, let a Go
// goroutine stand in for a thread's CUDA context, or fabricate Go pointers
// from integers. cgo and unsafe live only in *_cgo.go and *_unsafe.go.
//
// The exported surface comes from abi's entry-point table: go generate
// writes every //export (exports_gen_cgo.go) and the cuGetProcAddress table
// (procs_gen.go, procs_gen.c); each export calls one hand-written
// implementation in entrypoints_cgo.go, which only converts arguments and
// calls the Go logic. Adding an entry point means a table row and an
// implementation.
//
// # Configuration
//
// The launcher (`kerf run`) sets these; cuInit reads them once:
//
//	KERF_BUNDLE   path of the tenant's token bundle ({token, quic, socket,
//	              fingerprint}). Required: without it cuInit returns
//	              CUDA_ERROR_NOT_INITIALIZED and prints one line to stderr.
//	KERF_VIA      "unix" or "quic". Default: unix when the bundle's socket
//	              exists on this machine, else quic.
//	KERF_DEVICES  comma-separated server device ordinals that become this
//	              process's CUDA devices 0..n-1. Default "0".
//	KERF_MEMORY   bytes per slice ("268435456" or "256MiB"); asks kerfd for
//	              a memory limit below the token's. Optional.
//
// Two more help a user see what a program does:
//
//	KERF_TRACE       "1" writes a line to stderr for every driver call: the
//	                 entry point, its arguments (handles as small integers
//	                 numbered in order of first sight, sizes in decimal,
//	                 pointers and device addresses in hex, C strings quoted),
//	                 its result, what it wrote through its output pointers
//	                 when it succeeded, and the time it took:
//	                   kerf: cuMemAlloc_v2(bytesize=4096) = CUDA_SUCCESS [*dptr=0x700000000000] 93µs
//	                 Any other value but "0" names a file the lines are
//	                 appended to. It is read once, when the shim loads: each
//	                 export tests one bool, so tracing off costs one
//	                 predictable branch per call.
//	KERF_PROC_TRACE  a file to which every cuGetProcAddress request is
//	                 appended.
//
// cuInit opens one session per listed device at once, so a misconfigured
// program fails at cuInit rather than later; every context on a device
// shares that device's session. Sessions end when the process exits.
//
// # Semantics worth knowing
//
//   - The per-thread default stream (CU_STREAM_PER_THREAD, the _ptsz and
//     _ptds entry points that cuGetProcAddress hands out for
//     CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) is served by the legacy
//     default stream: stricter ordering, never weaker.
//   - Contexts on one device share its session, so a context's allocations
//     outlive cuCtxDestroy while the device has another context (created
//     and alive, or its primary context retained). Destroying the last
//     one (the last cuDevicePrimaryCtxRelease destroys the primary
//     context), or cuDevicePrimaryCtxReset, replaces kerfd's context: its
//     memory, modules, streams and events go, the memory back to the
//     slice, and so does a sticky error.
//   - The 32-bit v1 entry points (cuMemAlloc, cuMemcpyHtoD, ... without
//     _v2) are not exported: slice addresses do not fit in 32 bits.
//     Programs compiled against any CUDA header since 3.2 use the _v2 names.
//   - cuGetExportTable serves the private tables the CUDA runtime asks
//     for (exporttables.c): the cudart interface, context-local storage,
//     tools TLS, runtime callback hooks, context checks, extended device
//     attributes and the integrity check. Another UUID, or a slot whose
//     function is not known, gets CUDA_ERROR_NOT_SUPPORTED and one line on
//     stderr. KERF_PROC_TRACE=FILE appends every cuGetProcAddress request
//     to FILE.
//   - A module that fails to load (cuModuleLoadData, cuModuleLoadDataEx,
//     cuLibraryLoadData) gets its reason from kerfd: the PTX parser's line
//     and instruction on the emulated GPU. cuModuleLoadDataEx and
//     cuLibraryLoadData write it to the program's CU_JIT_ERROR_LOG_BUFFER
//     as the driver does (NUL-terminated, cut to
//     CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES, whose value becomes the bytes of
//     text written) and empty CU_JIT_INFO_LOG_BUFFER; other JIT options are
//     ignored. The shim also prints it on stderr ("kerf: module load:
//     ..."), and kerfd logs it with the tenant and session.
//   - cuModuleGetLoadingMode reports lazy loading, as CUDA 12 drivers do,
//     unless CUDA_MODULE_LOADING=EAGER.
//   - cuMemcpy and cuMemcpyAsync are not exported: they need one address
//     space for host and device, and kerfd's device addresses may coincide
//     with the program's host ones.
//   - CUDA graphs are the shim's (graph.go): a node is the stream work it
//     stands for, and cuGraphLaunch issues the nodes' catalogue calls into
//     the launch's stream one after another, in an order that keeps every
//     dependency. kerfd and the real-GPU backend never see a graph, so a
//     launch costs what its calls cost one by one. Stream capture records
//     the work a capturing stream (and any stream that waits on an event
//     recorded in it) is given instead of issuing it: kernels with their
//     arguments packed at capture, copies (host ends read or written at
//     launch), memsets and host functions. The documented refusals hold:
//     synchronising or querying a capturing stream, a stream callback, and
//     legacy-stream work while a blocking stream captures spoil the capture
//     (CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED or _IMPLICIT, then _INVALIDATED
//     at cuStreamEndCapture); allocating, freeing or synchronising the
//     context is refused by the thread's capture mode. Nodes built one by
//     one may be kernel, memcpy, memset, host, empty or child-graph nodes.
//     A peer copy into a capturing stream is refused and spoils the capture.
//   - Pinned host memory (cuMemHostAlloc, cuMemAllocHost) is page-aligned
//     memory of the program's own; cuMemHostRegister only records a range.
//     Copies from and to either take the ordinary path: on the local path
//     their bytes pass through the session's shared-memory ring slots (one
//     copy on each side, no socket), over QUIC through data frames. Pinned
//     memory is not itself placed in the shared region.
//   - Managed memory (cuMemAllocManaged) and host memory mapped into the
//     device (CU_MEMHOSTALLOC_DEVICEMAP, CU_MEMHOSTREGISTER_DEVICEMAP) are
//     host mirrors of device allocations (managed.go), on both paths:
//     the host's bytes go to the device before its next work, and come
//     back at the next synchronising call, as on a device without
//     concurrent managed access (which the shim reports). Managed and
//     mapped allocations are mapped into the program at their device
//     address, so one pointer serves host and kernels; a registration
//     keeps its own address and gets a distinct device pointer. Every
//     launch-and-synchronise cycle moves all of a device's mirrored bytes
//     both ways. Prefetches and advice are checked and remembered for
//     cuMemRangeGetAttribute; they move nothing.
//   - Memory pools and the stream-ordered allocator (mempool.go) are the
//     shim's: a block is a session allocation made at cuMemAllocAsync, so
//     it counts against the slice's quota; cuMemFreeAsync queues the free
//     on the stream's host-function queue, and a synchronisation waits for
//     it. A pool keeps no freed memory, so cuMemPoolTrimTo has nothing to
//     release; an allocation that finds the slice full waits for frees
//     already queued and tries once more. Allocating or freeing in a
//     capturing stream is refused (no memory nodes).
//   - Virtual memory (vmm.go) is kerfd's, on the session of the calling
//     thread's current device: allocation properties and access
//     descriptors may name only that device, an allocation handle is the
//     session's wire handle, only read-write access is served, and the
//     address hint of cuMemAddressReserve is not followed. A handle of
//     type POSIX file descriptor may be requested, but nothing exports it.
//   - A library (cuLibraryLoadData) lives on the device it was loaded on;
//     cuKernelGetAttribute for another device returns
//     CUDA_ERROR_NOT_SUPPORTED.
package main
