package abi

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

var versionSuffix = regexp.MustCompile(`^_v[0-9]+$`)

// TestEntryPointTable keeps the table coherent: every prototype parses,
// every symbol is named once, versions come in order, and each entry point
// is served one way.
func TestEntryPointTable(t *testing.T) {
	seen := map[string]string{}
	for _, e := range EntryPoints() {
		t.Run(e.Name, func(t *testing.T) {
			if !strings.HasPrefix(e.Name, "cu") || versionSuffix.MatchString(e.Name[max(0, len(e.Name)-3):]) {
				t.Errorf("name %q: want a plain cu name", e.Name)
			}
			if _, err := ParseParams(e.Params); err != nil {
				t.Error(err)
			}
			if e.PlainParams != "" {
				if _, err := ParseParams(e.PlainParams); err != nil {
					t.Error(err)
				}
			}
			if (e.PlainParams != "" || e.NoPlain) && len(e.Versions) == 0 {
				t.Error("a plain symbol of its own, or none, needs a versioned one")
			}
			since := e.Since
			for _, v := range e.Versions {
				if !versionSuffix.MatchString(v.Suffix) || v.Since <= since {
					t.Errorf("version %+v: want _vN introduced after %d", v, since)
				}
				since = v.Since
			}
			if e.PerThread != "" && e.PerThread != "_ptsz" && e.PerThread != "_ptds" {
				t.Errorf("per-thread suffix %q", e.PerThread)
			}
			switch e.Served {
			case Forwarded:
				if c := Lookup(e.Call); c == nil || !slices.ContainsFunc(c.EntryPoints, func(x EntryPoint) bool { return x.Name == e.Name }) {
					t.Errorf("forwarded onto call %d, which does not list it", e.Call)
				}
			case Local:
				if e.Call != 0 {
					t.Errorf("local, with call %d", e.Call)
				}
			case NotServed:
				if !e.Backend || len(e.Symbols()) != 0 {
					t.Error("an entry point the shim does not serve must be one the backend resolves")
				}
			default:
				t.Errorf("served %d", e.Served)
			}
			if e.Backend && len(e.DriverSymbols()) == 0 {
				t.Error("the backend has no symbol to resolve")
			}
			for _, s := range e.Symbols() {
				if other, dup := seen[s.Name]; dup {
					t.Errorf("symbol %s also belongs to %s", s.Name, other)
				}
				seen[s.Name] = e.Name
			}
		})
	}
	for _, c := range Calls() {
		if len(c.EntryPoints) == 0 {
			t.Errorf("call %s: no entry point forwards onto it", c.Name)
		}
	}
}

func TestSymbols(t *testing.T) {
	for _, tc := range []struct {
		name string
		want []string
		at   string // the symbol kerf_cuda.h maps the plain name to
	}{
		{"cuMemAlloc", []string{"cuMemAlloc_v2"}, "cuMemAlloc_v2"},
		{"cuMemcpyHtoD", []string{"cuMemcpyHtoD_v2", "cuMemcpyHtoD_v2_ptds"}, "cuMemcpyHtoD_v2"},
		{"cuLaunchKernel", []string{"cuLaunchKernel", "cuLaunchKernel_ptsz"}, "cuLaunchKernel"},
		{"cuDeviceTotalMem", []string{"cuDeviceTotalMem", "cuDeviceTotalMem_v2"}, "cuDeviceTotalMem_v2"},
		{"cuEventElapsedTime", []string{"cuEventElapsedTime", "cuEventElapsedTime_v2"}, "cuEventElapsedTime"},
		{"cuFuncSetAttribute", []string{"cuFuncSetAttribute"}, "cuFuncSetAttribute"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := LookupEntryPoint(tc.name)
			if e == nil {
				t.Fatal("not in the table")
			}
			var got []string
			for _, s := range e.Symbols() {
				got = append(got, s.Name)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("symbols %v, want %v", got, tc.want)
			}
			if at := e.SymbolAt(CUDAVersion); at != tc.at {
				t.Errorf("at CUDA %d: %s, want %s", CUDAVersion, at, tc.at)
			}
		})
	}
	// The pre-3.2 ABIs are never the backend's.
	if got := LookupEntryPoint("cuDeviceTotalMem").DriverSymbols(); !slices.Equal(got, []string{"cuDeviceTotalMem_v2"}) {
		t.Errorf("cuDeviceTotalMem driver symbols %v", got)
	}
	if got := LookupEntryPoint("cuCtxCreate").DriverSymbols(); !slices.Equal(got, []string{"cuCtxCreate_v2", "cuCtxCreate"}) {
		t.Errorf("cuCtxCreate driver symbols %v", got)
	}
}

func TestParseParams(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want: CDecl of the result, or "error"
	}{
		{"", "void"},
		{"int *pi, CUdevice dev", "int *pi, CUdevice dev"},
		{"const char  ** pStr", "const char **pStr"},
		{"const void* src, size_t  n", "const void *src, size_t n"},
		{"void", "error"},
		{"int", "error"},
		{"int *", "error"},
		{"int a,", "error"},
		{"int 3x", "error"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			p, err := ParseParams(tc.in)
			got := CDecl(p)
			if err != nil {
				got = "error"
			}
			if got != tc.want {
				t.Errorf("got %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}
