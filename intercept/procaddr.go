package main

//go:generate go run ./gen

import (
	"strings"

	"github.com/kerf-edge/kerf/transport/abi"
)

// procEntry is one exported entry point: its symbol, the name a program
// asks cuGetProcAddress for, and the CUDA version it appeared in.
type procEntry struct {
	name  string
	base  string
	since int
}

// Query results (CUdriverProcAddressQueryResult).
const (
	procFound         = 0
	procNotFound      = 1
	procNotSufficient = 2
)

// resolveProc finds the entry point cuGetProcAddress returns for symbol at
// cudaVersion: the newest version of the base name the caller's CUDA
// version knows. Per-thread-stream names (_ptsz, _ptds) resolve to the same
// functions: the shim serves the per-thread default stream with the legacy
// one. It returns the index into procs, or -1 with a query result.
func resolveProc(symbol string, cudaVersion int) (int, int) {
	sym := strings.TrimSuffix(strings.TrimSuffix(symbol, "_ptsz"), "_ptds")
	best, tooNew := -1, false
	for i, p := range procs {
		if p.base != sym {
			continue
		}
		if p.since > cudaVersion {
			tooNew = true
			continue
		}
		if best < 0 || p.since > procs[best].since {
			best = i
		}
	}
	if best >= 0 {
		return best, procFound
	}
	if tooNew {
		return -1, procNotSufficient
	}
	// An exact symbol name (cuMemAlloc_v2) is accepted too.
	for i, p := range procs {
		if p.name == sym {
			return i, procFound
		}
	}
	return -1, procNotFound
}

// getProcAddress implements cuGetProcAddress.
func getProcAddress(symbol string, cudaVersion int, flags uint64) (int, int, Result) {
	// No cuInit needed: runtimes look cuInit itself up this way.
	if symbol == "" || flags > 3 {
		return -1, procNotFound, abi.ErrInvalidValue
	}
	i, q := resolveProc(symbol, cudaVersion)
	if i < 0 {
		return -1, q, abi.ErrNotFound
	}
	return i, q, abi.Success
}
