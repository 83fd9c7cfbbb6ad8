// Package nvml is the tenant's NVML: the nvml* functions of
// libnvidia-ml.so.1, answered from the tenant's lease rather than from a
// GPU. It is linked into the shim (libcuda.so.1), and `make build` puts
// bin/libnvidia-ml.so.1 beside it as a link to the same file, so that a
// program that loads both (PyTorch, a framework with pynvml) loads one
// library and one Go runtime.
//
// What a program sees:
//
//   - The devices are the lease's slices, in the order `kerf run` lists
//     them in KERF_DEVICES (CUDA_VISIBLE_DEVICES does not apply, as with
//     NVIDIA's NVML). Name, UUID ("GPU-" and the CUDA UUID), PCI address
//     and compute capability are the GPU's, as kerfd describes it.
//   - Memory: total is the slice's memory, used what the lease's sessions
//     hold in it (as of their last report, every 250 ms), free the rest.
//   - Utilization: gpu is the percentage of the GPU's time the slice's
//     kernels took over about the last second, from kerfd's metering of
//     its workers; memory (bandwidth) is not metered and reads 0.
//   - Running compute processes: the lease's programs with a session on
//     the device, by the process ID their own machine gave them, and the
//     memory each holds. There are no graphics processes.
//   - Driver and NVML versions are the CUDA driver API version kerfd
//     serves ("12.4"); nvmlSystemGetCudaDriverVersion gives it as 12040.
//   - Every other nvml* function go-nvml binds exists and returns
//     NVML_ERROR_NOT_SUPPORTED (unsupported_gen.c), so that loaders that
//     resolve every symbol at once find them all.
//
// nvmlInit reads the same KERF_* variables as cuInit (KERF_BUNDLE,
// KERF_VIA, KERF_SERVER) and needs KERF_LEASE: it opens one status stream
// to kerfd on the lease (transport.StatusClient), and each query of memory,
// utilization or processes asks it once. nvmlShutdown, matched to every
// nvmlInit, closes it. Without kerf run, or with kerfd unreachable,
// nvmlInit returns NVML_ERROR_DRIVER_NOT_LOADED and says why on stderr.
//
// It must not: open a device session (it would count as a process of the
// lease), answer anything about GPUs or tenants outside the lease, or
// write past the sizes a program passes. cgo and unsafe live only in
// *_cgo.go; the C declarations are its own, not NVIDIA's header.
package nvml

//go:generate go run ./gen
