// Command gen writes the shim's driver-API surface from the entry-point
// table in abi (abi.EntryPoints):
//
//   - exports_gen_cgo.go: every exported symbol, versioned and per-thread
//     forms included, as an //export wrapper with the table's C signature
//     that guards against panics and calls the entry point's hand-written
//     implementation (impl<Name>, impl<Name>V1 for a plain symbol with an
//     older ABI). A missing or mistyped implementation fails the build.
//     Under KERF_TRACE each export also writes a trace line (trace.go):
//     its arguments by C type, its result, what it wrote and its time.
//
//   - procs_gen.go and procs_gen.c: the table behind cuGetProcAddress, every
//     exported symbol with its name, base name and CUDA version, and the
//     function pointers in the same order.
//
//     go run ./gen   (from intercept/, via go generate)
package main

import (
	"bytes"
	"fmt"
	"go/format"
	"go/token"
	"log"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/kerf-edge/kerf/abi"
)

// cgoBase maps a C base type to its cgo name.
var cgoBase = map[string]string{
	"unsigned int": "uint", "unsigned char": "uchar", "unsigned short": "ushort",
	"int": "int", "char": "char", "float": "float", "size_t": "size_t",
}

// goType returns the cgo type of a C parameter type. cgo drops const, so
// "const void *" and "void *" are both unsafe.Pointer.
func goType(ctype string) string {
	t := strings.TrimSpace(strings.ReplaceAll(ctype, "const ", ""))
	stars := strings.Count(t, "*")
	base := strings.TrimSpace(strings.ReplaceAll(t, "*", ""))
	if base == "void" {
		if stars == 0 {
			log.Fatalf("type %q: void is not a parameter type", ctype)
		}
		return strings.Repeat("*", stars-1) + "unsafe.Pointer"
	}
	if b, ok := cgoBase[base]; ok {
		base = b
	} else if strings.Contains(base, " ") {
		log.Fatalf("type %q: no cgo name", ctype)
	}
	return strings.Repeat("*", stars) + "C." + base
}

// goName keeps a C parameter name from being a Go keyword.
func goName(n string) string {
	if token.IsKeyword(n) {
		return n + "_"
	}
	return n
}

// impl names the Go implementation a symbol calls.
func impl(e *abi.EntryPoint, s abi.Symbol) string {
	n := "impl" + strings.TrimPrefix(e.Name, "cu")
	if s.Legacy {
		n += "V1"
	}
	if s.Own != "" {
		n += strings.ToUpper(strings.TrimPrefix(s.Own, "_"))
	}
	return n
}

// handleTypes are the C handle types, traced as small integers.
var handleTypes = map[string]bool{
	"CUcontext": true, "CUmodule": true, "CUfunction": true, "CUstream": true,
	"CUevent": true, "CUlibrary": true, "CUkernel": true,
	"CUgraph": true, "CUgraphNode": true, "CUgraphExec": true, "CUmemoryPool": true,
}

// intTypes are the header's integer types, traced as signed decimals: int
// and every `typedef int` of kerf_cuda.h (a test keeps the list complete).
var intTypes = map[string]bool{
	"int": true, "CUdevice": true, "CUdevice_attribute": true, "CUfunction_attribute": true,
	"CUjit_option": true, "CUlibraryOption": true, "CUmoduleLoadingMode": true,
	"CUlimit": true, "CUfunc_cache": true, "CUsharedconfig": true, "CUpointer_attribute": true, "CUmemorytype": true,
	"CUdriverProcAddressQueryResult": true, "CUstreamCaptureMode": true, "CUstreamCaptureStatus": true,
	"CUgraphNodeType": true, "CUmem_advise": true, "CUmem_range_attribute": true,
	"CUarray_format": true, "CUresourcetype": true, "CUaddress_mode": true, "CUfilter_mode": true, "CUresourceViewFormat": true,
	"CUmemPool_attribute": true, "CUmemAccess_flags": true, "CUmemLocationType": true, "CUmemAllocationType": true,
	"CUmemAllocationHandleType": true, "CUmemAllocationGranularity_flags": true, "CUgraphExecUpdateResult": true,
}

// optionArrays are integer types whose pointers are arrays the program
// passes in (JIT and library options), never results.
var optionArrays = map[string]bool{"CUjit_option": true, "CUlibraryOption": true}

// traceArg returns the statement that traces an argument of C type ctype
// as the call receives it, and for a pointer the call writes through, the
// statement that traces what it wrote.
func traceArg(ctype, n, cname string) (in, out string) {
	t := strings.TrimSpace(ctype)
	isConst := strings.HasPrefix(t, "const ")
	t = strings.TrimSpace(strings.TrimPrefix(t, "const "))
	q := strconv.Quote(cname)
	switch {
	case handleTypes[t]:
		return fmt.Sprintf("l.handle(%s, uintptr(unsafe.Pointer(%s)))", q, n), ""
	case t == "CUdeviceptr" || t == "CUtexObject" || t == "CUsurfObject" || t == "CUmemGenericAllocationHandle":
		return fmt.Sprintf("l.hex(%s, uint64(%s))", q, n), ""
	case t == "size_t" || t == "unsigned int" || t == "unsigned short" || t == "unsigned char" || t == "cuuint64_t":
		return fmt.Sprintf("l.udec(%s, uint64(%s))", q, n), ""
	case intTypes[t]:
		return fmt.Sprintf("l.dec(%s, int64(%s))", q, n), ""
	case t == "CUresult":
		return fmt.Sprintf("l.result(%s, Result(%s))", q, n), ""
	case t == "char *" && isConst:
		return fmt.Sprintf("l.cstr(%s, %s)", q, n), ""
	}
	ptr := fmt.Sprintf("l.hex(%s, uint64(uintptr(unsafe.Pointer(%s))))", q, n)
	if isConst || strings.Count(t, "*") != 1 {
		return ptr, ""
	}
	base := strings.TrimSpace(strings.TrimSuffix(t, "*"))
	var w string
	switch {
	case handleTypes[base]:
		w = fmt.Sprintf("l.outHandle(%s, uintptr(unsafe.Pointer(*%s)))", q, n)
	case base == "CUdeviceptr" || base == "CUtexObject" || base == "CUsurfObject":
		w = fmt.Sprintf("l.outHex(%s, uint64(*%s))", q, n)
	case base == "size_t" || base == "unsigned int":
		w = fmt.Sprintf("l.outUdec(%s, uint64(*%s))", q, n)
	case intTypes[base] && !optionArrays[base]:
		w = fmt.Sprintf("l.outDec(%s, int64(*%s))", q, n)
	case base == "float":
		w = fmt.Sprintf("l.outFloat(%s, float64(*%s))", q, n)
	default:
		return ptr, ""
	}
	// An output pointer shows at entry only when it is NULL.
	return fmt.Sprintf("if %s == nil {\n\t\t\tl.str(%s, \"\", false)\n\t\t}", n, q),
		fmt.Sprintf("if ret == 0 && %s != nil {\n\t\t\t\t%s\n\t\t\t}", n, w)
}

// traceCode is the start of an export: when tracing, a trace line of its
// arguments, finished with its result and outputs when it returns.
func traceCode(s abi.Symbol) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\tif tracing {\n\t\tl := traceBegin(%q)\n", s.Name)
	var outs []string
	for _, p := range s.Params {
		in, out := traceArg(p.Type, goName(p.Name), p.Name)
		fmt.Fprintf(&b, "\t\t%s\n", in)
		if out != "" {
			outs = append(outs, out)
		}
	}
	b.WriteString("\t\tl.run()\n\t\tdefer func() {\n")
	for _, o := range outs {
		fmt.Fprintf(&b, "\t\t\t%s\n", o)
	}
	b.WriteString("\t\t\tl.end(Result(ret))\n\t\t}()\n\t}\n")
	return b.String()
}

type proc struct {
	name, base string
	since      int
	perThread  bool
}

func main() {
	for name, b := range render() {
		if err := os.WriteFile(name, b, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// render returns the generated files by name.
func render() map[string][]byte {
	var ex bytes.Buffer
	ex.WriteString(`// Code generated by go run ./gen; DO NOT EDIT.

package main

// The driver-API exports, one per symbol of abi.EntryPoints. Each turns a
// panic into CUDA_ERROR_UNKNOWN and calls the entry point's implementation;
// per-thread forms call the same one, as the shim serves the per-thread
// default stream with the legacy one.

/*
#include "shim.h"
*/
import "C"

import "unsafe"

var _ unsafe.Pointer

`)
	var procs []proc
	for _, e := range abi.EntryPoints() {
		for _, s := range e.Symbols() {
			procs = append(procs, proc{s.Name, e.Name, s.Since, s.PerThread})
			var params, args []string
			for _, p := range s.Params {
				n := goName(p.Name)
				if n == "ret" {
					log.Fatalf("%s: parameter named ret", s.Name)
				}
				params = append(params, n+" "+goType(p.Type))
				args = append(args, n)
			}
			fmt.Fprintf(&ex, "//export %s\nfunc %s(%s) (ret C.CUresult) {\n%s\tdefer guard(&ret)\n\treturn %s(%s)\n}\n\n",
				s.Name, s.Name, strings.Join(params, ", "), traceCode(s), impl(e, s), strings.Join(args, ", "))
		}
	}
	sort.Slice(procs, func(i, j int) bool { return procs[i].name < procs[j].name })
	var g, c bytes.Buffer
	fmt.Fprintf(&g, "// Code generated by go run ./gen; DO NOT EDIT.\n\npackage main\n\n")
	fmt.Fprintf(&g, "// procs lists every exported entry point, in the order of kerf_proc_fn.\nvar procs = [...]procEntry{\n")
	fmt.Fprintf(&c, "// Code generated by go run ./gen; DO NOT EDIT.\n\n#include \"_cgo_export.h\"\n\nstatic void *const procs[] = {\n")
	for _, p := range procs {
		fmt.Fprintf(&g, "\t{name: %q, base: %q, since: %d, perThread: %v},\n", p.name, p.base, p.since, p.perThread)
		fmt.Fprintf(&c, "\t(void *)%s,\n", p.name)
	}
	fmt.Fprintf(&g, "}\n")
	fmt.Fprintf(&c, "};\n\nint kerf_proc_count(void) { return (int)(sizeof procs / sizeof procs[0]); }\n\n")
	fmt.Fprintf(&c, "void *kerf_proc_fn(int i) { return i >= 0 && i < kerf_proc_count() ? procs[i] : 0; }\n")
	return map[string][]byte{
		"exports_gen_cgo.go": gofmt("exports_gen_cgo.go", ex.Bytes()),
		"procs_gen.go":       gofmt("procs_gen.go", g.Bytes()),
		"procs_gen.c":        c.Bytes(),
	}
}

func gofmt(name string, b []byte) []byte {
	b, err := format.Source(b)
	if err != nil {
		log.Fatalf("%s: %v", name, err)
	}
	return b
}
