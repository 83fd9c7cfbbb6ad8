// Package kernels holds Kerf's CUDA test kernels and the PTX clang
// generated from them (scripts/gen-ptx.sh), embedded so that tests,
// benchmarks and the emulator can use them without clang.
package kernels

import (
	"embed"
	"sort"
	"strings"
)

//go:embed *.ptx
var files embed.FS

// PTX returns the PTX of kernel file name ("matmul" or "matmul.ptx"), or
// nil when there is none.
func PTX(name string) []byte {
	if !strings.HasSuffix(name, ".ptx") {
		name += ".ptx"
	}
	b, err := files.ReadFile(name)
	if err != nil {
		return nil
	}
	return b
}

// Names lists the embedded PTX files without their extension, sorted.
func Names() []string {
	ents, _ := files.ReadDir(".")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".ptx"))
	}
	sort.Strings(out)
	return out
}
