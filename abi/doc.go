// Package abi is the CUDA call catalogue: one table entry per driver-API
// call that Kerf forwards, plus the result codes, handle kinds and
// protocol constants shared by the client shim and the server.
//
// It also holds the entry-point table (entrypoints.go): every driver
// function the shim exports or the real-GPU backend resolves, with its
// versioned and per-thread symbols and its C prototype, each hung off the
// catalogue call it is forwarded onto or listed as served by the shim
// alone. The shim's exports, cuGetProcAddress, the backend's symbol list,
// include/kerf_cuda.h and docs/calls.md are generated from it.
//
// It holds declarations only (and the parsing of its own prototypes). It
// must not do I/O, depend on any other Kerf
// package, or contain NVIDIA headers or code: every value here is our own
// declaration of the driver's public ABI.
package abi

//go:generate go run ./gendoc -o ../docs/calls.md
//go:generate go run ./genheader -o include/kerf_cuda.h
