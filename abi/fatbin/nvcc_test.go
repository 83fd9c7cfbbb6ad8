package fatbin_test

import (
	"bytes"
	"testing"

	"github.com/kerf-edge/kerf/abi/fatbin"
	"github.com/kerf-edge/kerf/abi/fatbin/fatbintest"
)

// Containers nvcc builds here and now (never committed binaries) parse:
// their compressed PTX decompresses to the kernel's text, their cubins
// are whole ELF images, and the best PTX for a device is picked.
func TestNvccContainer(t *testing.T) {
	tests := []struct {
		name    string
		gencode []string
		kinds   map[fatbin.Kind]int // entries of each kind
	}{
		{"ptx", []string{"arch=compute_80,code=compute_80"}, map[fatbin.Kind]int{fatbin.KindPTX: 1}},
		{"ptx and cubins", []string{"arch=compute_80,code=[compute_80,sm_80]", "arch=compute_70,code=[compute_70,sm_70]"},
			map[fatbin.Kind]int{fatbin.KindPTX: 2, fatbin.KindELF: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := fatbintest.Nvcc(t, fatbintest.ScaleKernel, tt.gencode...)
			c, err := fatbin.Parse(img)
			if err != nil {
				t.Fatal(err)
			}
			if c.Len != uint64(len(img)) {
				t.Errorf("container of %d bytes in a %d-byte file", c.Len, len(img))
			}
			if f, err := fatbin.Check(img); f != fatbin.FormatContainer || err != nil {
				t.Errorf("Check = %v, %v", f, err)
			}
			kinds := map[fatbin.Kind]int{}
			for _, e := range c.Entries {
				kinds[e.Kind]++
				body, err := e.Contents()
				t.Logf("%s sm_%d ISA %d.%d flags %#x: %d bytes stored, %d contents (%v)",
					e.Kind, e.Arch, e.Version.Major, e.Version.Minor, e.Flags, len(e.Payload), len(body), err)
				if err != nil {
					t.Fatal(err)
				}
				if e.Kind == fatbin.KindELF {
					if n, err := fatbin.ELFLen(body); err != nil || n > uint64(len(body)) {
						t.Errorf("cubin for sm_%d: length %d of %d bytes, %v", e.Arch, n, len(body), err)
					}
				}
			}
			for k, n := range tt.kinds {
				if kinds[k] != n {
					t.Errorf("%d %s entries, want %d", kinds[k], k, n)
				}
			}
			e, text, err := c.PTX(func(e fatbin.Entry) bool { return e.Arch <= 80 })
			if err != nil {
				t.Fatal(err)
			}
			if e.Arch != 80 || e.Version.Major == 0 {
				t.Errorf("picked sm_%d ISA %v, want sm_80", e.Arch, e.Version)
			}
			for _, want := range []string{".version ", ".target sm_80", ".entry kerf_scale("} {
				if !bytes.Contains(text, []byte(want)) {
					t.Errorf("PTX text lacks %q:\n%s", want, text)
				}
			}
		})
	}
}
