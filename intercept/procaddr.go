package main

//go:generate go run ./gen

import (
	"strings"

	"github.com/kerf-edge/kerf/abi"
)

// procEntry is one exported entry point: its symbol, the name a program
// asks cuGetProcAddress for, and the CUDA version it appeared in.
type procEntry struct {
	name      string
	base      string
	since     int
	perThread bool // a _ptsz or _ptds form
}

// procPerThread is CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM.
const procPerThread = 1 << 1

// Query results (CUdriverProcAddressQueryResult).
const (
	procFound         = 0
	procNotFound      = 1
	procNotSufficient = 2
)

// resolveProc finds the entry point cuGetProcAddress returns for symbol at
// cudaVersion: the newest version of the base name the caller's CUDA
// version knows, in its per-thread-default-stream form (_ptsz, _ptds) when
// perThread asks for it and one exists. An exact exported name
// (cuMemAlloc_v2, cuLaunchKernel_ptsz) is accepted too. It returns the
// index into procs, or -1 with a query result.
func resolveProc(symbol string, cudaVersion int, perThread bool) (int, int) {
	sym := strings.TrimSuffix(strings.TrimSuffix(symbol, "_ptsz"), "_ptds")
	if sym != symbol {
		perThread = true
	}
	best, tooNew := -1, false
	better := func(p, q procEntry) bool {
		if (p.perThread == perThread) != (q.perThread == perThread) {
			return p.perThread == perThread
		}
		return p.since > q.since
	}
	for i, p := range procs {
		if p.base != sym {
			continue
		}
		if p.since > cudaVersion {
			tooNew = true
			continue
		}
		if best < 0 || better(p, procs[best]) {
			best = i
		}
	}
	if best >= 0 {
		return best, procFound
	}
	if tooNew {
		return -1, procNotSufficient
	}
	for i, p := range procs {
		if p.name == symbol {
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
	i, q := resolveProc(symbol, cudaVersion, flags&procPerThread != 0)
	if i < 0 {
		return -1, q, abi.ErrNotFound
	}
	return i, q, abi.Success
}
