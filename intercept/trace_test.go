package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/internal/kerfenv"
)

// TestTrace runs C programs with KERF_TRACE and reads their trace: every
// driver call with its arguments, result, outputs and time, on stderr for
// "1" and in the file another value names.
func TestTrace(t *testing.T) {
	k := startKerfd(t)
	b := k.bundle(t, "alice")
	t.Run("stderr", func(t *testing.T) {
		out, err := run(t, []string{"KERF_BUNDLE=" + b, "KERF_TRACE=1"}, "errors", ptx("vadd"))
		if err != nil {
			t.Fatalf("errors: %v\n%s", err, out)
		}
		for _, want := range []string{
			`(?m)^kerf: cuInit\(flags=1\) = CUDA_ERROR_INVALID_VALUE \S+$`,
			`(?m)^kerf: cuMemAlloc_v2\(bytesize=4096\) = CUDA_SUCCESS \[\*dptr=0x[0-9a-f]+\] \S+$`,
			`(?m)^kerf: cuModuleGetFunction\(hmod=#\d+, name="vadd"\) = CUDA_SUCCESS \[\*hfunc=#\d+\] \S+$`,
			`(?m)^kerf: cuModuleGetFunction\(hmod=#\d+, name="no_such_kernel"\) = CUDA_ERROR_NOT_FOUND `,
			`(?m)^kerf: cuMemAlloc_v2\(dptr=NULL, bytesize=\d+\) = CUDA_ERROR_INVALID_VALUE `,
			`(?m)^kerf: module load: line 7: unsupported instruction "frobnicate.u32"$`,
			`(?m)^kerf: cuModuleLoadDataEx\(image=0x[0-9a-f]+, numOptions=4, options=0x[0-9a-f]+, optionValues=0x[0-9a-f]+\) = CUDA_ERROR_INVALID_PTX `,
			`(?m)^kerf: cuGetErrorName\(error=CUDA_ERROR_ILLEGAL_ADDRESS, pStr=0x[0-9a-f]+\) = CUDA_SUCCESS `,
		} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("no trace line matches %s", want)
			}
		}
		if t.Failed() {
			t.Logf("output:\n%s", out)
		}
	})
	t.Run("file", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "trace")
		out, err := run(t, []string{"KERF_BUNDLE=" + b, "KERF_TRACE=" + f}, "vadd", ptx("vadd"), ptx("stencil"))
		if err != nil {
			t.Fatalf("vadd: %v\n%s", err, out)
		}
		if strings.Contains(out, "cuInit(") {
			t.Errorf("the trace went to stderr too:\n%s", out)
		}
		trace, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			`(?m)^kerf: cuInit\(flags=0\) = CUDA_SUCCESS \S+$`,
			`(?m)^kerf: cuLaunchKernel\(f=#\d+, gridDimX=\d+, .*\) = CUDA_SUCCESS \S+$`,
			`(?m)^kerf: cuMemcpyDtoH_v2\(dstHost=0x[0-9a-f]+, srcDevice=0x[0-9a-f]+, byteCount=\d+\) = CUDA_SUCCESS \S+$`,
		} {
			if !regexp.MustCompile(want).Match(trace) {
				t.Errorf("no trace line matches %s", want)
			}
		}
		if t.Failed() {
			t.Logf("trace:\n%s", trace)
		}
	})
}

// TestRuntimeTrace traces a CUDA-runtime program: the driver calls cudart
// makes through cuGetProcAddress are traced as a program's own are.
func TestRuntimeTrace(t *testing.T) {
	buildRuntimePrograms(t)
	k := startKerfd(t)
	b := k.bundle(t, "alice")
	f := filepath.Join(t.TempDir(), "trace")
	t.Setenv(kerfenv.Trace, f)
	kerfRun(t, b, "unix", 1, rtSlice, "rt_kernels_shared", fmt.Sprint(rtSlice))
	trace, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`(?m)^kerf: cuGetProcAddress\S*\(symbol="cuLaunchKernel\S*", .*\) = CUDA_SUCCESS `,
		`(?m)^kerf: cuMemAlloc_v2\(bytesize=\d+\) = CUDA_SUCCESS \[\*dptr=0x[0-9a-f]+\] \S+$`,
		`(?m)^kerf: cuLaunchKernel\S*\(f=#\d+, .*\) = CUDA_SUCCESS \S+$`,
	} {
		if !regexp.MustCompile(want).Match(trace) {
			t.Errorf("no trace line matches %s", want)
		}
	}
	if t.Failed() {
		t.Logf("trace:\n%s", trace)
	}
}
