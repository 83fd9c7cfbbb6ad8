package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/abi"
)

// dropped are driver entry points Kerf deliberately does not export, each
// with the reason. They must stay out of the table and the library.
var dropped = map[string]string{
	"cuMemcpy": "unified addressing across host and device: kerfd's device addresses may coincide with " +
		"the program's host addresses, so the shim cannot tell which side a pointer is on",
	"cuMemcpyAsync": "as cuMemcpy",
}

// TestEveryEntryPointExported reads the built library's dynamic symbols:
// every symbol of the entry-point table is there, and every cu* symbol
// there is in the table.
func TestEveryEntryPointExported(t *testing.T) {
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	f, err := elf.Open(filepath.Join(binDir, "libcuda.so.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Section != elf.SHN_UNDEF && strings.HasPrefix(s.Name, "cu") {
			exported[s.Name] = true
		}
	}
	inTable := map[string]bool{}
	for _, e := range abi.EntryPoints() {
		for _, s := range e.Symbols() {
			inTable[s.Name] = true
			if !exported[s.Name] {
				t.Errorf("%s (entry point %s) is not exported", s.Name, e.Name)
			}
		}
	}
	for n := range exported {
		if !inTable[n] {
			t.Errorf("%s is exported but not in the entry-point table", n)
		}
	}
	for n, why := range dropped {
		if exported[n] || abi.LookupEntryPoint(n) != nil {
			t.Errorf("%s is served, but listed as dropped (%s)", n, why)
		}
	}
}

// TestEveryEntryPointResolves asks cuGetProcAddress's resolver for each
// symbol: by its entry point's name at the symbol's CUDA version (per-
// thread forms with the per-thread flag), and by its own name.
func TestEveryEntryPointResolves(t *testing.T) {
	for _, e := range abi.EntryPoints() {
		for _, s := range e.Symbols() {
			i, q := resolveProc(e.Name, s.Since, s.PerThread)
			if q != procFound || procs[i].name != s.Name {
				t.Errorf("%s at %d (per-thread %v): got %d %v, want %s", e.Name, s.Since, s.PerThread, q, nameOf(i), s.Name)
			}
			if i, q := resolveProc(s.Name, abi.CUDAVersion+1000, false); q != procFound || procs[i].base != e.Name {
				t.Errorf("%s by its own name: got %d %v", s.Name, q, nameOf(i))
			}
		}
	}
	for n := range dropped {
		if _, q := resolveProc(n, abi.CUDAVersion, false); q != procNotFound {
			t.Errorf("dropped %s resolves (%d)", n, q)
		}
	}
}

func nameOf(i int) string {
	if i < 0 {
		return "none"
	}
	return procs[i].name
}

// TestExportHeaderAgrees compiles cgo's export header of the built
// library together with kerf_cuda.h declaring every symbol: a parameter
// whose type differs between the table and the Go implementation is a
// conflicting declaration. cgo drops const, so the check does too.
func TestExportHeaderAgrees(t *testing.T) {
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no gcc")
	}
	src := filepath.Join(t.TempDir(), "agree.c")
	code := "#define const\n#define KERF_CUDA_ALL_VERSIONS\n#include \"kerf_cuda.h\"\n#include \"" +
		filepath.Join(binDir, "libcuda.so.h") + "\"\n"
	if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("gcc", "-Wall", "-Werror", "-fsyntax-only", "-I../abi/include", "-I.", src).CombinedOutput()
	if err != nil {
		t.Fatalf("export header and kerf_cuda.h disagree: %v\n%s", err, out)
	}
}
