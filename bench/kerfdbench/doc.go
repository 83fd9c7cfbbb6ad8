// Package kerfdbench holds the benchmarks that run a whole kerfd in
// process, on the emulated GPU (or GPU 0 of the machine), with tenants in
// worker processes as in production:
//
//   - RunIntercept: the launch rate of a C program through the shim
//     against the same calls made with the Go transport client
//     (`kerf bench intercept`);
//   - RunRuntime: a CUDA-runtime program built with nvcc (testdata/rt_bench.cu)
//     under `kerf run`, its launches against the same loop through the
//     driver API (testdata/rt_driver.c) and its pinned host-to-device copy
//     against the driver API's and a raw Unix stream (`kerf bench runtime`);
//   - RunSlicer: live re-slicing under running tenants that check every
//     result, timed, and the latency the tenants see (`kerf bench slicer`,
//     and `kerf demo` in short); the tenants run in a process of their
//     own, RunSlicerTenants;
//   - RunShares: the part of the GPU time tenants in slices of different
//     compute shares get under contention (`kerf bench shares`).
//
// It uses appliance, transport and the rest only through their exported
// APIs. It measures and reports, and asserts nothing about speed. No
// product package may import it; a binary that calls it must serve as
// kerfd's worker executable (appliance.IsWorker, appliance.RunWorker).
package kerfdbench
