package emubench

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

//go:embed nvcc/*.cu native/kernels.c
var sources embed.FS

// ErrNoCompiler reports that a compiler the comparison needs is not on
// PATH.
var ErrNoCompiler = errors.New("compiler not found")

// NVCCArgs are the arguments CompileNVCC gives nvcc before the output
// and the source.
var NVCCArgs = []string{"-ccbin", "clang-14", "-ptx", "-gencode", "arch=compute_80,code=compute_80"}

// NVCCKernels lists the kernels CompileNVCC compiles.
var NVCCKernels = []string{"matmul", "reduce"}

// CompileNVCC compiles NVCCKernels' CUDA sources with nvcc (NVCCArgs)
// in dir and returns each kernel's PTX. It returns an error wrapping
// ErrNoCompiler when nvcc is not on PATH.
func CompileNVCC(ctx context.Context, dir string) (map[string][]byte, error) {
	nvcc, err := exec.LookPath("nvcc")
	if err != nil {
		return nil, fmt.Errorf("nvcc: %w", ErrNoCompiler)
	}
	out := make(map[string][]byte)
	for _, k := range NVCCKernels {
		cu, err := writeSource(dir, "nvcc/"+k+".cu")
		if err != nil {
			return nil, err
		}
		ptxPath := strings.TrimSuffix(cu, ".cu") + ".ptx"
		args := append(append([]string{}, NVCCArgs...), "-o", ptxPath, cu)
		if msg, err := exec.CommandContext(ctx, nvcc, args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("nvcc %s: %w: %s", k, err, msg)
		}
		if out[k], err = os.ReadFile(ptxPath); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// NativeResult is one kernel compiled for the CPU and run on one core.
type NativeResult struct {
	Kernel     string
	Launches   int
	Elapsed    time.Duration
	LaunchTime time.Duration
	// FastestLaunch is the shortest launch.
	FastestLaunch time.Duration
}

// NativeCompiler is how BuildNative compiles native/kernels.c.
var NativeCompiler = []string{"gcc", "-O2"}

// BuildNative compiles the kernels as plain C (NativeCompiler) into a
// program in dir and returns its path. It returns an error wrapping
// ErrNoCompiler when the C compiler is not on PATH.
func BuildNative(ctx context.Context, dir string) (string, error) {
	cc, err := exec.LookPath(NativeCompiler[0])
	if err != nil {
		return "", fmt.Errorf("%s: %w", NativeCompiler[0], ErrNoCompiler)
	}
	src, err := writeSource(dir, "native/kernels.c")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kernels")
	args := append(append([]string{}, NativeCompiler[1:]...), "-o", bin, src, "-lm")
	if msg, err := exec.CommandContext(ctx, cc, args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s: %w: %s", NativeCompiler[0], err, msg)
	}
	return bin, nil
}

// RunNative runs kernel in the program BuildNative made, repeatedly for
// about d on one core, the same problem sizes and inputs as Run.
func RunNative(ctx context.Context, bin, kernel string, d time.Duration) (NativeResult, error) {
	res := NativeResult{Kernel: kernel}
	out, err := exec.CommandContext(ctx, bin, kernel, strconv.FormatFloat(d.Seconds(), 'f', -1, 64)).Output()
	if err != nil {
		return res, fmt.Errorf("native %s: %w", kernel, err)
	}
	var ns, fastest float64
	var checksum string
	if _, err := fmt.Sscan(string(bytes.TrimSpace(out)), &res.Launches, &ns, &fastest, &checksum); err != nil || res.Launches <= 0 {
		return res, fmt.Errorf("native %s: unexpected output %q", kernel, out)
	}
	res.Elapsed = time.Duration(ns)
	res.LaunchTime = res.Elapsed / time.Duration(res.Launches)
	res.FastestLaunch = time.Duration(fastest)
	return res, nil
}

// writeSource copies the embedded file name into dir.
func writeSource(dir, name string) (string, error) {
	b, err := sources.ReadFile(name)
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, filepath.Base(name))
	return p, os.WriteFile(p, b, 0o644)
}
