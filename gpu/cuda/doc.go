// Package cuda implements gpu.Backend on a real NVIDIA GPU through the
// CUDA driver API. libcuda.so.1 is opened with dlopen at run time, so
// kerfd builds and runs where no driver is installed: New then returns an
// error wrapping ErrNoDriver and kerfd serves the emulated GPU instead.
//
// The C layer (driver_cgo.go) is a table of function pointers resolved
// with dlsym, preferring the _v2 symbols, and one small C helper per call
// that makes the tenant's context current on the calling thread first
// (goroutines move between threads). The declarations are our own, from
// the driver's public ABI; no NVIDIA header is used. Drivers from CUDA
// 11.0 up are accepted: an entry point newer than the driver may be
// missing. The one such entry point the backend uses, cuFuncGetParamInfo
// (CUDA 12.4), has a fallback: kernel parameter layouts are then read
// from the module image (layout.go: PTX .entry lists, a cubin's .nv.info
// attributes, the fatbin entry the driver loads). Entry points are looked
// up with dlsym under their versioned names (cuMemAlloc_v2), which every
// driver since their introduction exports with an unchanged ABI, not with
// cuGetProcAddress (CUDA 11.3+): one lookup serves every supported driver.
//
// Each Context is one driver context (cuCtxCreate) with a memory quota
// (a gpu.Quota). The quota counts the tenant's allocations, rounded as the driver
// rounds them, plus what the context itself and each loaded module take
// on the device, measured as cuMemGetInfo deltas. Launches are metered
// with CUDA events (BusyTime), for compute-share accounting; a backend
// given a gpu.Gate (Pace) enters it before each launch and charges it
// the launch's measured time when its events complete.
//
// Where the driver and GPU have green contexts (CUDA 12.4+, Hopper and
// newer; ComputeMode), a context given an SM partition (SetSMPartition)
// is a green context of those SMs, and moves to a new partition at its
// next launch (partition.go); the policy that turns shares into
// partitions is the pure PlanSMPartitions (smplan.go). Elsewhere shares
// stay time-sliced by the gate. This package plans nothing across
// tenants: kerfd does, and tells each worker its partition.
//
// Everything here that needs a GPU is unverified until it has run on one;
// see docs/gpu-validation.md.
package cuda

//go:generate go run ./gensyms
