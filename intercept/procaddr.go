package main

//go:generate go run ./gen

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/internal/kerfenv"
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
	traceProc(symbol, cudaVersion, i >= 0)
	if i < 0 {
		return -1, q, abi.ErrNotFound
	}
	return i, q, abi.Success
}

// procTrace is the file named by KERF_PROC_TRACE, opened at the first
// cuGetProcAddress; nil when unset.
var procTrace struct {
	once sync.Once
	mu   sync.Mutex
	f    *os.File
}

// traceProc records one cuGetProcAddress request: "name version served"
// or "name version missing".
func traceProc(symbol string, cudaVersion int, served bool) {
	procTrace.once.Do(func() {
		if p := os.Getenv(kerfenv.ProcTrace); p != "" {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			if err != nil {
				say("%s: %v", kerfenv.ProcTrace, err)
				return
			}
			procTrace.f = f
		}
	})
	if procTrace.f == nil {
		return
	}
	state := "missing"
	if served {
		state = "served"
	}
	procTrace.mu.Lock()
	defer procTrace.mu.Unlock()
	fmt.Fprintf(procTrace.f, "%s %d %s\n", symbol, cudaVersion, state)
}
