// Package abi is the CUDA call catalogue: one table entry per driver-API
// call that Kerf forwards, plus the result codes, handle kinds and
// protocol constants shared by the client shim and the server.
//
// It holds declarations only. It must not do I/O, depend on any other Kerf
// package, or contain NVIDIA headers or code: every value here is our own
// declaration of the driver's public ABI.
package abi

//go:generate go run ./gendoc -o ../docs/calls.md
//go:generate go run ./genheader -o include/kerf_cuda.h
