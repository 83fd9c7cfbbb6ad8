package cuda

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/abi/fatbin"
	"github.com/kerf-edge/kerf/abi/fatbin/fatbintest"
	"github.com/kerf-edge/kerf/gpu/emu/kernels"
)

// p is a parameter at off of size bytes.
func p(off, size uint32) abi.ParamInfo { return abi.ParamInfo{Offset: off, Size: size} }

// paramsDeclared are testdata/params.cu's kernels as their C declarations
// lay them out (x86-64 and CUDA agree on these types' sizes and
// alignments).
var paramsDeclared = kernelLayouts{
	// char, short, int, long long, float, double, char
	"scalars": {p(0, 1), p(2, 2), p(4, 4), p(8, 8), p(16, 4), p(24, 8), p(32, 1)},
	// char, double *, float4 (16-aligned), int, {char; double}, 16-aligned float[5] (32 bytes), char
	"aggregates": {p(0, 1), p(8, 8), p(16, 16), p(32, 4), p(40, 16), p(64, 32), p(96, 1)},
	"vadd":       {p(0, 8), p(8, 8), p(16, 8), p(24, 4)},
	"noparams":   {},
	// scale<double>(double *, double)
	"_Z5scaleIdEvPT_S0_": {p(0, 8), p(8, 8)},
}

// nvcc builds testdata/params.cu with args into dir/out and returns the
// output, or skips the test when nvcc is absent.
func nvcc(t *testing.T, dir, out string, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("nvcc"); err != nil {
		t.Skip("nvcc not found: install NVIDIA's CUDA toolkit (Debian: nvidia-cuda-toolkit, with clang-14) to check layouts against real PTX and cubins")
	}
	path := filepath.Join(dir, out)
	args = append([]string{"-ccbin", "clang-14", "-o", path}, args...)
	args = append(args, filepath.Join("testdata", "params.cu"))
	if b, err := exec.Command("nvcc", args...).CombinedOutput(); err != nil {
		t.Fatalf("nvcc %v: %v\n%s", args, err, b)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sameLayouts(t *testing.T, what string, got, want kernelLayouts) {
	t.Helper()
	if !maps.EqualFunc(got, want, func(a, b []abi.ParamInfo) bool { return slices.Equal(a, b) }) {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}

// TestNvccLayouts builds testdata/params.cu into PTX, an sm_80 cubin and
// fatbins, and checks that the layout read from each is the declared one.
func TestNvccLayouts(t *testing.T) {
	dir := t.TempDir()
	ptx := nvcc(t, dir, "params.ptx", "-ptx", "-arch=sm_80")
	cubin := nvcc(t, dir, "params.cubin", "-cubin", "-arch=sm_80")
	gencode := []string{"-gencode", "arch=compute_75,code=sm_75", "-gencode", "arch=compute_80,code=[sm_80,compute_80]"}
	plain := nvcc(t, dir, "params.fatbin", append([]string{"-fatbin"}, gencode...)...)
	packed := nvcc(t, dir, "packed.fatbin", append([]string{"-fatbin", "-Xfatbin", "-compress-all"}, gencode...)...)

	fromPTX, err := ptxLayouts(ptx)
	if err != nil {
		t.Fatal(err)
	}
	sameLayouts(t, "PTX", fromPTX, paramsDeclared)
	fromCubin, err := cubinLayouts(cubin)
	if err != nil {
		t.Fatal(err)
	}
	sameLayouts(t, "cubin", fromCubin, paramsDeclared)
	sameLayouts(t, "cubin against PTX", fromCubin, fromPTX)

	for _, tc := range []struct {
		name         string
		image        []byte
		major, minor int
		want         fatbin.Kind // the entry the driver loads
		arch         uint32
	}{
		{"fatbin on sm_80", plain, 8, 0, fatbin.KindELF, 80},
		{"fatbin on sm_86 runs the sm_80 cubin", plain, 8, 6, fatbin.KindELF, 80},
		{"fatbin on sm_75", plain, 7, 5, fatbin.KindELF, 75},
		{"fatbin on sm_90 compiles the PTX", plain, 9, 0, fatbin.KindPTX, 80},
		{"compressed fatbin on sm_80", packed, 8, 0, fatbin.KindELF, 80},
		{"compressed fatbin on sm_90", packed, 9, 0, fatbin.KindPTX, 80},
		{"PTX", ptx, 8, 0, 0, 0},
		{"cubin", cubin, 8, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want != 0 {
				c, err := fatbin.Parse(tc.image)
				if err != nil {
					t.Fatal(err)
				}
				e, err := loadedEntry(c, tc.major, tc.minor)
				if err != nil || e.Kind != tc.want || e.Arch != tc.arch {
					t.Fatalf("loads %v sm_%d (%v), want %v sm_%d", e.Kind, e.Arch, err, tc.want, tc.arch)
				}
			}
			got, err := imageLayouts(tc.image, tc.major, tc.minor)
			if err != nil {
				t.Fatal(err)
			}
			sameLayouts(t, tc.name, got, paramsDeclared)
		})
	}
	// No entry for an sm_70 device: the driver would refuse the image too.
	if _, err := imageLayouts(plain, 7, 0); abi.ResultOf(err) != abi.ErrNoBinaryForGPU {
		t.Errorf("fatbin on sm_70: %v", err)
	}
}

func TestPTXLayouts(t *testing.T) {
	for _, tc := range []struct {
		name string
		ptx  string
		want kernelLayouts
	}{
		{"none", ".version 8.4\n.target sm_80\n", kernelLayouts{}},
		{"pointee alignment is not the parameter's",
			".entry k(.param .u64 .ptr .global .align 16 a, .param .u8 b, .param .u32 .ptr .align 64 c)\n{ ret; }",
			kernelLayouts{"k": {p(0, 8), p(8, 1), p(12, 4)}}},
		{"arrays and explicit alignment",
			".visible .entry k(\n.param .b32 a[3],\n.param .align 8 .b8 b [ 5 ],\n.param .f16x2 c\n)",
			kernelLayouts{"k": {p(0, 12), p(16, 5), p(24, 4)}}},
		{"comments and two kernels",
			"// .entry fake(.param .u8 x)\n/* .entry other(.param .u8 y) */\n.entry a() {}\n.weak .entry b(.param .texref t, .param .f64 d)",
			kernelLayouts{"a": {}, "b": {p(0, 8), p(8, 8)}}},
		{"no parameter list", ".entry k\n.maxntid 64\n{ ret; }", kernelLayouts{"k": {}}},
		{"trailing NULs", ".entry k(.param .s16 a)\x00\x00", kernelLayouts{"k": {p(0, 2)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ptxLayouts([]byte(tc.ptx))
			if err != nil {
				t.Fatal(err)
			}
			sameLayouts(t, tc.name, got, tc.want)
		})
	}
}

// TestEmulatorKernelLayouts reads every emulator test kernel's PTX (nvcc
// output): each declares kernels, and every layout fits.
func TestEmulatorKernelLayouts(t *testing.T) {
	for _, name := range kernels.Names() {
		ls, err := ptxLayouts(kernels.PTX(name))
		if err != nil || len(ls) == 0 {
			t.Errorf("%s: %v, %v", name, ls, err)
		}
	}
	vadd, _ := ptxLayouts(kernels.PTX("vadd"))
	// vadd as in params.cu; saxpy(int n, float a, const float *x, float *y)
	sameLayouts(t, "vadd.ptx", vadd, kernelLayouts{"vadd": paramsDeclared["vadd"], "saxpy": {p(0, 4), p(4, 4), p(8, 8), p(16, 8)}})
}

func TestPTXLayoutsRefused(t *testing.T) {
	for name, ptx := range map[string]string{
		"unterminated":     ".entry k(.param .u8 a",
		"no type":          ".entry k(.param a)",
		"two types":        ".entry k(.param .u8 .u16 a)",
		"unknown type":     ".entry k(.param .pred a)",
		"bad alignment":    ".entry k(.param .align 3 .b8 a[4])",
		"zero-size array":  ".entry k(.param .b8 a[0])",
		"too large":        ".entry k(.param .b8 a[40000])",
		"twice":            ".entry k() {} .entry k() {}",
		"nameless":         ".entry (.param .u8 a)",
		"align with no n":  ".entry k(.param .b8 a .align)",
		"unclosed bracket": ".entry k(.param .b8 a[4)",
	} {
		t.Run(name, func(t *testing.T) {
			if got, err := ptxLayouts([]byte(ptx)); abi.ResultOf(err) != abi.ErrInvalidImage {
				t.Fatalf("got %v, %v; want CUDA_ERROR_INVALID_IMAGE", got, err)
			}
		})
	}
}

// nvInfo builds a .nv.info section from attributes: format, attribute,
// then a u16 value or, for SVAL, its data.
func nvInfo(attrs ...[]byte) []byte {
	var b []byte
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

func kparam(ord, off uint16, size uint32) []byte {
	v := size << kparamSizeBits
	return []byte{eifmtSVAL, eiattrKParamInfo, kparamInfoLen, 0, 0, 0, 0, 0,
		byte(ord), byte(ord >> 8), byte(off), byte(off >> 8), byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
}

func hval(attr byte, v uint16) []byte { return []byte{eifmtHVAL, attr, byte(v), byte(v >> 8)} }

func TestNvInfoParams(t *testing.T) {
	other := []byte{eifmtSVAL, 0x37, 4, 0, 0x76, 0, 0, 0} // CUDA_API_VERSION
	for _, tc := range []struct {
		name string
		info []byte
		want []abi.ParamInfo
		ok   bool
	}{
		{"records in reverse", nvInfo(other, hval(eiattrCBankParamSize, 12), kparam(1, 8, 4), kparam(0, 0, 8)), []abi.ParamInfo{p(0, 8), p(8, 4)}, true},
		{"no parameters", nvInfo(other, []byte{eifmtNVAL, 0x35, 0, 0}), []abi.ParamInfo{}, true},
		{"ordinal missing", nvInfo(kparam(1, 8, 4)), nil, false},
		{"ordinal twice", nvInfo(kparam(0, 0, 4), kparam(0, 0, 4)), nil, false},
		{"overlap", nvInfo(kparam(0, 0, 8), kparam(1, 4, 4)), nil, false},
		{"beyond CBANK_PARAM_SIZE", nvInfo(hval(eiattrCBankParamSize, 8), kparam(0, 0, 8), kparam(1, 8, 4)), nil, false},
		{"zero size", nvInfo(kparam(0, 0, 0)), nil, false},
		{"SVAL past the end", []byte{eifmtSVAL, eiattrKParamInfo, 12, 0, 1}, nil, false},
		{"short KPARAM_INFO", []byte{eifmtSVAL, eiattrKParamInfo, 4, 0, 0, 0, 0, 0}, nil, false},
		{"unknown format", []byte{9, 1, 0, 0}, nil, false},
		{"trailing bytes", nvInfo(kparam(0, 0, 8), []byte{1}), nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := nvInfoParams(tc.info)
			if tc.ok != (err == nil) || tc.ok && !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, %v; want %v (ok %v)", got, err, tc.want, tc.ok)
			}
			if err != nil && abi.ResultOf(err) != abi.ErrInvalidImage {
				t.Fatalf("error %v carries no CUDA_ERROR_INVALID_IMAGE", err)
			}
		})
	}
}

func TestImageLayoutsRefusesBadImages(t *testing.T) {
	for name, img := range fatbintest.Malformed() {
		if _, err := imageLayouts(img, 8, 0); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzImageLayouts feeds arbitrary images (PTX, cubins, fatbins) to the
// layout reader: it must never panic, and what it returns must fit.
func FuzzImageLayouts(f *testing.F) {
	f.Add([]byte(".entry k(.param .u64 .ptr .align 8 a, .param .align 16 .b8 b[20])"))
	f.Add(fatbintest.Container(fatbintest.PTX(80, []byte(".entry k(.param .u32 n)"), true)))
	f.Add(fatbintest.ELF(512))
	f.Add(nvInfo(hval(eiattrCBankParamSize, 12), kparam(1, 8, 4), kparam(0, 0, 8)))
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(ls kernelLayouts) {
			for name, ps := range ls {
				var end uint64
				for _, p := range ps {
					if p.Size == 0 || uint64(p.Offset) < end {
						t.Fatalf("%s: %v", name, ps)
					}
					end = uint64(p.Offset) + uint64(p.Size)
				}
				if end > abi.MaxKernelParams {
					t.Fatalf("%s: ends at %d", name, end)
				}
			}
		}
		if ls, err := imageLayouts(b, 8, 0); err == nil {
			check(ls)
		}
		if ps, err := nvInfoParams(b); err == nil {
			check(kernelLayouts{"k": ps})
		}
	})
}
