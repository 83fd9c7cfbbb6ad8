package kerfdbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kerf-edge/kerf/bench/transportbench"
	"github.com/kerf-edge/kerf/intercept/launcher"
	"github.com/kerf-edge/kerf/internal/units"
)

// RuntimeOptions size `kerf bench runtime`.
type RuntimeOptions struct {
	Launches  int    // kernels per launch round (default 100,000)
	CopyBytes uint64 // bytes per copy round (default 256 MiB, at most 1 GiB)
	Rounds    int    // interleaved rounds of each measurement (default 5)
	Source    string // the Kerf source tree, for the programs (default ".")
	ShimDir   string // directory holding libcuda.so.1
	Progress  io.Writer
}

// RuntimeResult compares, on the local path of one kerfd, a CUDA-runtime
// program's launches with the same loop through the driver API, and its
// pinned host-to-device copies with the same copy through the driver API
// and a raw Unix stream of the same bytes.
// Each figure is the median of its rounds; the forms take turns.
type RuntimeResult struct {
	Rounds          int     `json:"rounds"`
	Launches        int     `json:"launches"`
	RuntimePerSec   float64 `json:"runtime_launches_per_s"`
	DriverPerSec    float64 `json:"driver_launches_per_s"`
	LaunchRatio     float64 `json:"launch_ratio"`
	RuntimeSubmitUs float64 `json:"runtime_submit_us_per_launch"`
	DriverSubmitUs  float64 `json:"driver_submit_us_per_launch"`
	CopyBytes       uint64  `json:"copy_bytes"`
	HostMemory      string  `json:"host_memory"`
	CopyGBps        float64 `json:"copy_gb_per_s"`
	DriverCopyGBps  float64 `json:"driver_copy_gb_per_s"`
	RawUnixGBps     float64 `json:"raw_unix_gb_per_s"`
	CopyRatio       float64 `json:"copy_ratio"`

	Targets []transportbench.Target `json:"targets"`
}

// pinnedHostMemory says what the copy's host memory is: cudaMallocHost
// reaches the shim as cuMemHostAlloc, which the shim serves with ordinary
// page-aligned memory; the copy takes the same shared-memory ring as any.
const pinnedHostMemory = "cudaMallocHost (the shim's cuMemHostAlloc: page-aligned, not page-locked)"

// errNoNvcc names what to install when nvcc is missing.
var errNoNvcc = errors.New("nvcc is not installed: the runtime benchmark builds its CUDA programs with NVIDIA's CUDA 11.8 toolkit and clang-14 as nvcc's host compiler (apt-get install nvidia-cuda-toolkit clang-14, from Debian non-free)")

// NvccAvailable reports whether `kerf bench runtime` can build its programs.
func NvccAvailable() error {
	if _, err := exec.LookPath("nvcc"); err != nil {
		return errNoNvcc
	}
	if _, err := exec.LookPath(nvccHost); err != nil {
		return fmt.Errorf("nvcc needs %s as its host compiler (apt-get install %s): %w", nvccHost, nvccHost, err)
	}
	return nil
}

const nvccHost = "clang-14" // nvcc 11.8 refuses gcc 12

// RunRuntime starts a kerfd on the emulated GPU, builds the benchmark's
// programs and runs them under `kerf run` on the local path, rounds taking
// turns with their baselines.
func RunRuntime(ctx context.Context, o RuntimeOptions) (RuntimeResult, error) {
	if o.Launches == 0 {
		o.Launches = 100000
	}
	if o.CopyBytes == 0 {
		o.CopyBytes = 256 << 20
	}
	if o.Rounds == 0 {
		o.Rounds = 5
	}
	if o.Source == "" {
		o.Source = "."
	}
	r := RuntimeResult{Rounds: o.Rounds, Launches: o.Launches, CopyBytes: o.CopyBytes, HostMemory: pinnedHostMemory}
	if o.CopyBytes > 1<<30 {
		return r, fmt.Errorf("copy of %s: at most 1 GiB", units.FormatBytes(o.CopyBytes))
	}
	if err := NvccAvailable(); err != nil {
		return r, err
	}
	testdata := filepath.Join(o.Source, "bench", "kerfdbench", "testdata")
	if _, err := os.Stat(filepath.Join(testdata, "rt_bench.cu")); err != nil {
		return r, fmt.Errorf("run from the Kerf source tree (or pass --src): %w", err)
	}
	if _, err := os.Stat(filepath.Join(o.ShimDir, "libcuda.so.1")); err != nil {
		return r, fmt.Errorf("no shim in %s: run make build: %w", o.ShimDir, err)
	}
	dir, err := os.MkdirTemp("", "kerf-bench-runtime")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	if err := buildRuntimePrograms(ctx, o.Source, testdata, o.ShimDir, dir); err != nil {
		return r, err
	}

	stop, bundle, err := startWithBundle(ctx, dir)
	if err != nil {
		return r, err
	}
	defer stop()
	progress := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", args...)
		}
	}
	// run runs a program under `kerf run` and returns its stdout; what the
	// shim or the program says on stderr is passed on once.
	said := map[string]bool{}
	run := func(args ...string) (string, error) {
		var stdout, stderr bytes.Buffer
		lo := launcher.Options{GPUs: 1, Memory: o.CopyBytes + 64<<20, Bundle: bundle, Via: "unix", Timeout: time.Minute,
			ShimDir: o.ShimDir, Stdout: &stdout, Stderr: &stderr}
		code, err := launcher.Run(ctx, lo, args)
		if err == nil && code != 0 {
			err = fmt.Errorf("exit status %d", code)
		}
		if err != nil {
			return "", fmt.Errorf("kerf run %s: %v\n%s%s", strings.Join(args, " "), err, stderr.String(), stdout.String())
		}
		if msg := strings.TrimSpace(stderr.String()); msg != "" && !said[msg] {
			said[msg] = true
			progress("%s said on stderr: %s", filepath.Base(args[0]), msg)
		}
		return strings.TrimSpace(stdout.String()), nil
	}

	// Launches: the runtime program and the driver-API program take turns,
	// each going first in every other round.
	forms := []struct {
		name         string
		args         []string
		rates, subms []float64
	}{
		{name: "runtime", args: []string{filepath.Join(dir, "rt_bench"), "launch", fmt.Sprint(o.Launches)}},
		{name: "driver API", args: []string{filepath.Join(dir, "rt_driver"), "launch", filepath.Join(dir, "rt_bench.ptx"), fmt.Sprint(o.Launches)}},
	}
	for i := range o.Rounds {
		for j := range forms {
			f := &forms[(i+j)%len(forms)]
			out, err := run(f.args...)
			if err != nil {
				return r, err
			}
			var n int
			var submit, total float64
			if _, err := fmt.Sscanf(out, "launches %d submit_s %f total_s %f", &n, &submit, &total); err != nil || n != o.Launches {
				return r, fmt.Errorf("%s launches: unexpected output %q", f.name, out)
			}
			f.rates = append(f.rates, float64(n)/total)
			f.subms = append(f.subms, submit/float64(n)*1e6)
			progress("round %d, %s: %.0f launches/s, submit %.2f µs/launch", i+1, f.name, float64(n)/total, submit/float64(n)*1e6)
		}
	}
	r.RuntimePerSec, r.RuntimeSubmitUs = transportbench.Median(forms[0].rates), transportbench.Median(forms[0].subms)
	r.DriverPerSec, r.DriverSubmitUs = transportbench.Median(forms[1].rates), transportbench.Median(forms[1].subms)
	r.LaunchRatio = r.RuntimePerSec / r.DriverPerSec

	// Copies: the runtime program's pinned copy, the same copy through the
	// driver API, and a raw Unix stream of the same bytes, taking turns.
	raw, err := transportbench.StartRawUnixStream(ctx, dir, o.CopyBytes)
	if err != nil {
		return r, err
	}
	defer raw.Close()
	src := bytes.Repeat([]byte{1}, int(o.CopyBytes))
	if _, err := raw.Round(src); err != nil { // warm-up, as the programs have
		return r, fmt.Errorf("raw Unix stream: %w", err)
	}
	// programCopy runs a program's copies and returns the median rate of
	// its timed copies, in GB/s.
	programCopy := func(name string) (float64, error) {
		out, err := run(filepath.Join(dir, name), "copy", fmt.Sprint(o.CopyBytes))
		if err != nil {
			return 0, err
		}
		var rates []float64
		for _, line := range strings.Split(out, "\n") {
			var n uint64
			var secs float64
			if _, err := fmt.Sscanf(line, "copy %d seconds %f", &n, &secs); err != nil || n != o.CopyBytes || secs <= 0 {
				return 0, fmt.Errorf("%s copy: unexpected output %q", name, out)
			}
			rates = append(rates, float64(n)/secs/1e9)
		}
		progress("%s copies: %s GB/s", name, joinRates(rates))
		return transportbench.Median(rates), nil
	}
	var copies, driverCopies, raws []float64
	for i := range o.Rounds {
		gbps, err := programCopy("rt_bench")
		if err != nil {
			return r, err
		}
		driverGBps, err := programCopy("rt_driver")
		if err != nil {
			return r, err
		}
		rawGBps, err := raw.Round(src)
		if err != nil {
			return r, fmt.Errorf("raw Unix stream: %w", err)
		}
		copies, driverCopies, raws = append(copies, gbps), append(driverCopies, driverGBps), append(raws, rawGBps)
		progress("round %d, %s: runtime copy %.2f GB/s, driver API %.2f GB/s, raw Unix stream %.2f GB/s",
			i+1, units.FormatBytes(o.CopyBytes), gbps, driverGBps, rawGBps)
	}
	r.CopyGBps, r.DriverCopyGBps, r.RawUnixGBps = transportbench.Median(copies), transportbench.Median(driverCopies), transportbench.Median(raws)
	r.CopyRatio = r.CopyGBps / r.RawUnixGBps
	r.judge()
	return r, nil
}

// judge records the goals: the runtime's launch rate within 10% of the
// driver API's, and the copy's shared-memory path ahead of a raw Unix
// stream as transport's bulk copies are (`kerf bench transport`).
func (r *RuntimeResult) judge() {
	r.Targets = []transportbench.Target{
		{Name: "runtime launch rate", Goal: "≥ 0.9× driver API", Got: fmt.Sprintf("%.3f×", r.LaunchRatio), Met: r.LaunchRatio >= 0.9},
		{Name: "pinned H2D copy", Goal: "≥ 1.5× raw Unix stream", Got: fmt.Sprintf("%.2f×", r.CopyRatio), Met: r.CopyRatio >= 1.5},
	}
}

// buildRuntimePrograms compiles rt_bench.cu (static cudart, PTX only, for
// the emulated GPU), its PTX for the driver-API program, and rt_driver.c
// against the shim, into dir.
func buildRuntimePrograms(ctx context.Context, source, testdata, shimDir, dir string) error {
	cu := filepath.Join(testdata, "rt_bench.cu")
	builds := [][]string{
		{"nvcc", "-ccbin", nvccHost, "-O2", "-gencode", "arch=compute_80,code=compute_80", "-o", filepath.Join(dir, "rt_bench"), cu},
		{"nvcc", "-ccbin", nvccHost, "-arch=compute_80", "-ptx", "-o", filepath.Join(dir, "rt_bench.ptx"), cu},
		{"gcc", "-O2", "-Wall", "-Werror", "-I" + filepath.Join(source, "abi", "include"), "-o", filepath.Join(dir, "rt_driver"),
			filepath.Join(testdata, "rt_driver.c"), "-L" + shimDir, "-l:libcuda.so.1"},
	}
	for _, b := range builds {
		if out, err := exec.CommandContext(ctx, b[0], b[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("building the benchmark programs: %s: %v\n%s", strings.Join(b, " "), err, out)
		}
	}
	return nil
}

// joinRates formats rates with two decimals, space-separated.
func joinRates(x []float64) string {
	out := make([]string, len(x))
	for i, v := range x {
		out[i] = fmt.Sprintf("%.2f", v)
	}
	return strings.Join(out, " ")
}
