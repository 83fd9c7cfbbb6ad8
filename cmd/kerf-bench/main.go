// Command kerf-bench runs Kerf's benchmarks and its demo. `kerf bench NAME`
// and `kerf demo` run it from beside kerf (or from $PATH), so that the
// tenant CLI does not link the daemon: the benchmarks that need a kerfd run
// one in this process, with its workers re-executing this binary.
//
//	kerf-bench transport [--json] [--bulk SIZE]
//	kerf-bench emu [--json] [--time D]
//	kerf-bench intercept [--json] [--launches N] [--src DIR] [--shim DIR]
//	kerf-bench runtime [--json] [--launches N] [--copy SIZE] [--rounds N] [--src DIR] [--shim DIR]
//	kerf-bench slicer [--json] [--tenants N] [--rounds N] [--profiles A,B,...] [--compare=false] [--pairs N]
//	kerf-bench shares [--json] [--time D] [--shares 0.3,0.7] [--kernel N] [--backend emulated|cuda] [--time-slicing] [--alone D] [--pairs N]
//	kerf-bench ingest [--json] [--time D] [--topics N] [--publishers N] [--inflight N] [--via nats|mqtt] [--rate N] [--oscillate D]
//	kerf-bench pool [--json] [--placements N] [--placers N] [--time D] [--kerfd PATH]
//	kerf-bench demo
//	kerf-bench demo-pool --spin PROGRAM --short "PROGRAM ARGS" [--kerfd PATH] [--shim DIR]
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kerf-edge/kerf/appliance"
	"github.com/kerf-edge/kerf/bench/emubench"
	"github.com/kerf-edge/kerf/bench/ingestbench"
	"github.com/kerf-edge/kerf/bench/kerfdbench"
	"github.com/kerf-edge/kerf/bench/poolbench"
	"github.com/kerf-edge/kerf/bench/transportbench"
	"github.com/kerf-edge/kerf/intercept/launcher"
	"github.com/kerf-edge/kerf/internal/kerfenv"
	"github.com/kerf-edge/kerf/internal/units"
)

func main() {
	if appliance.IsWorker() {
		os.Exit(appliance.RunWorker()) // benchmarks run a kerfd in process
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "kerf-bench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage (also as kerf bench NAME ..., and kerf demo):
  kerf-bench transport [--json] [--bulk SIZE]     transport against raw baselines
  kerf-bench emu [--json] [--time D]              PTX emulator speed
  kerf-bench intercept [--json] [--launches N]    launch rate through the shim vs the Go client
  kerf-bench runtime [--json] [--launches N] [--copy SIZE] [--rounds N]
                                                  a CUDA-runtime program (nvcc) vs the driver API and a raw Unix stream
  kerf-bench slicer [--json] [--tenants N] [--rounds N] [--profiles A,B,...] [--compare=false] [--pairs N]
                                                  live re-slicing under running tenants
  kerf-bench shares [--json] [--time D] [--shares 0.3,0.7] [--kernel N] [--backend emulated|cuda] [--time-slicing] [--alone D] [--pairs N]
                                                  compute shares under contention, per 1 s window
  kerf-bench ingest [--json] [--time D] [--topics N] [--publishers N] [--inflight N] [--via nats|mqtt] [--rate N] [--oscillate D]
                                                  MQTT devices → embedded broker → decisions
  kerf-bench pool [--json] [--placements N] [--placers N] [--time D] [--kerfd PATH]
                                                  a pool of 3 kerfd on loopback: placement vs a node alone, failover
  kerf-bench demo                                 a tour: tenants, then 20 → 10 → mixed slices
  kerf-bench demo-pool --spin PROGRAM --short "PROGRAM ARGS" [--kerfd PATH] [--shim DIR]
                                                  a pool of 3 kerfd: tenants on each, one member killed (make demo-pool)
With KERF_CPUPROFILE=FILE, a benchmark also writes a CPU profile of its process to FILE.
`)
}

func run(args []string) error {
	if len(args) == 0 {
		usage()
		return fmt.Errorf("name a benchmark")
	}
	switch args[0] {
	case "demo":
		return benchSlicer(args[1:], true)
	case "demo-pool":
		return demoPool(args[1:])
	case "help", "-h", "--help":
		usage()
		return nil
	}
	if path := os.Getenv(kerfenv.CPUProfile); path != "" {
		stop, err := startCPUProfile(path)
		if err != nil {
			return err
		}
		defer stop()
	}
	switch args[0] {
	case "transport":
		return benchTransport(args[1:])
	case "emu":
		return benchEmu(args[1:])
	case "intercept":
		return benchIntercept(args[1:])
	case "runtime":
		return benchRuntime(args[1:])
	case "slicer":
		return benchSlicer(args[1:], false)
	case "shares":
		return benchShares(args[1:])
	case "slicer-tenants": // the tenants' process of bench slicer and demo
		return kerfdbench.RunSlicerTenants(context.Background(), os.Stdin, os.Stdout)
	case "ingest":
		return benchIngest(args[1:])
	case "pool":
		return benchPool(args[1:])
	}
	return fmt.Errorf("unknown benchmark %q", args[0])
}

func benchTransport(args []string) error {
	fs := flag.NewFlagSet("kerf bench transport", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "machine-readable output")
	bulk := fs.String("bulk", "1GiB", "size of the bulk copy")
	if err := fs.Parse(args); err != nil {
		return err
	}
	n, err := units.ParseBytes(*bulk)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := transportbench.Run(ctx, transportbench.Options{Bulk: n, Progress: progressOut(*asJSON)})
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(res)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tMEASURE\tKERF\tRAW BASELINE\tRATIO")
	for _, r := range res {
		fmt.Fprintf(tw, "%s\tsync round trip p50 / p99\t%.1f / %.1f µs\t%.1f / %.1f µs\t+%.1f µs\n", r.Path, r.SyncP50us, r.SyncP99us, r.RawSyncP50us, r.RawSyncP99us, r.SyncP50us-r.RawSyncP50us)
		fmt.Fprintf(tw, "%s\tpipelined async\t%.0f calls/s\t%.0f msgs/s\t%.2f×\n", r.Path, r.AsyncPerSec, r.RawAsyncPerSec, r.AsyncRatio)
		fmt.Fprintf(tw, "%s\t%s host-to-device\t%.2f GB/s\t%.2f GB/s\t%.2f×\n", r.Path, units.FormatBytes(r.BulkBytes), r.BulkGBps, r.RawBulkGBps, r.BulkRatio)
	}
	tw.Flush()
	fmt.Println()
	tw = tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tTARGET\tGOAL\tGOT\tMET")
	for _, r := range res {
		for _, t := range r.Targets {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", r.Path, t.Name, t.Goal, t.Got, t.Met)
		}
	}
	return tw.Flush()
}

func benchEmu(args []string) error {
	fs := flag.NewFlagSet("kerf bench emu", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "machine-readable output")
	d := fs.Duration("time", 3*time.Second, "time per measurement")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "kerf-bench-emu-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var out struct {
		Emulator []emubench.Result
		// NVCC compares each kernel's two builds, launches taking turns.
		NVCC    []emubench.Comparison `json:",omitempty"`
		Native  []emubench.NativeResult
		Skipped []string `json:",omitempty"`
	}
	nvccPTX, err := emubench.CompileNVCC(ctx, dir)
	if errors.Is(err, emubench.ErrNoCompiler) {
		out.Skipped = append(out.Skipped, "nvcc rows: nvcc is not on PATH")
	} else if err != nil {
		return err
	}
	nativeBin, err := emubench.BuildNative(ctx, dir)
	if errors.Is(err, emubench.ErrNoCompiler) {
		out.Skipped = append(out.Skipped, "native rows: "+err.Error())
	} else if err != nil {
		return err
	}
	// clang's and nvcc's builds of a kernel run one after the other at
	// each worker count, so that both see the same load
	workers := []int{1}
	if runtime.GOMAXPROCS(0) > 1 {
		workers = append(workers, runtime.GOMAXPROCS(0))
	}
	for _, k := range emubench.Kernels {
		for _, w := range workers {
			r, err := emubench.Run(k, w, *d)
			if err != nil {
				return err
			}
			out.Emulator = append(out.Emulator, r)
			if src, ok := nvccPTX[k]; ok {
				if r, err = emubench.RunPTX(k, src, w, *d); err != nil {
					return err
				}
				out.Emulator = append(out.Emulator, r)
			}
		}
		if src, ok := nvccPTX[k]; ok {
			c, err := emubench.CompareNVCC(k, src, *d)
			if err != nil {
				return err
			}
			out.NVCC = append(out.NVCC, c)
		}
		if nativeBin != "" {
			r, err := emubench.RunNative(ctx, nativeBin, k, *d)
			if err != nil {
				return err
			}
			out.Native = append(out.Native, r)
		}
	}
	if *asJSON {
		return printJSON(out)
	}
	printEmu(out.Emulator, out.NVCC, out.Native, out.Skipped)
	return nil
}

// printEmu prints kerf bench emu's tables: the interpreter's rates, then
// each kernel's single-worker launch time by compiler against the same
// kernel compiled for the CPU, and nvcc's build against clang's, launches
// taking turns.
func printEmu(emu []emubench.Result, nvcc []emubench.Comparison, native []emubench.NativeResult, skipped []string) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KERNEL\tPTX BY\tWORKERS\tLAUNCHES\tLAUNCH\tTHREAD-INSTR/S\tPER WORKER\tTARGET (matmul, per core)")
	for _, r := range emu {
		target := "-"
		if r.Kernel == "matmul" {
			target = fmt.Sprintf("≥ 200M: %v", r.PerWorker >= 200e6)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%v\t%.0fM\t%.0fM\t%s\n", r.Kernel, r.Compiler, r.Workers, r.Launches, r.LaunchTime.Round(time.Microsecond), r.ThreadInstrPerSec/1e6, r.PerWorker/1e6, target)
	}
	tw.Flush()
	fmt.Println()
	oneWorker := func(k, compiler string) (emubench.Result, bool) {
		for _, r := range emu {
			if r.Kernel == k && r.Compiler == compiler && r.Workers == 1 {
				return r, true
			}
		}
		return emubench.Result{}, false
	}
	tw = tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FASTEST LAUNCH, 1 CORE\tCLANG PTX\tNVCC PTX\tNATIVE (gcc -O2)\tEMULATOR SLOWDOWN (clang / nvcc)")
	for _, k := range emubench.Kernels {
		c, _ := oneWorker(k, "clang")
		row := []string{k, c.FastestLaunch.Round(time.Microsecond).String(), "-", "-", "-"}
		n, haveNVCC := oneWorker(k, "nvcc")
		if haveNVCC {
			row[2] = n.FastestLaunch.Round(time.Microsecond).String()
		}
		for _, nr := range native {
			if nr.Kernel != k {
				continue
			}
			row[3] = nr.FastestLaunch.Round(time.Microsecond).String()
			row[4] = fmt.Sprintf("%.0f×", c.FastestLaunch.Seconds()/nr.FastestLaunch.Seconds())
			if haveNVCC {
				row[4] += fmt.Sprintf(" / %.0f×", n.FastestLaunch.Seconds()/nr.FastestLaunch.Seconds())
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
	if len(nvcc) > 0 {
		fmt.Println()
		tw = tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TAKING TURNS, 1 CORE\tLAUNCHES EACH\tCLANG CPU/LAUNCH\tNVCC CPU/LAUNCH\tNVCC/CLANG SPEED (≥ 1.0)")
		for _, c := range nvcc {
			fmt.Fprintf(tw, "%s\t%d\t%v\t%v\t%.2f: %v\n", c.Kernel, c.Launches, c.ClangCPU.Round(time.Microsecond), c.NVCCCPU.Round(time.Microsecond), c.Speed, c.Speed >= 1.0)
		}
		tw.Flush()
	}
	for _, s := range skipped {
		fmt.Println("skipped", s)
	}
}

func benchIntercept(args []string) error {
	fs := flag.NewFlagSet("kerf bench intercept", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "machine-readable output")
	n := fs.Int("launches", 100000, "kernels launched per run")
	src := fs.String("src", ".", "the Kerf source tree (for the C program)")
	shim := fs.String("shim", launcher.DefaultShimDir(), "directory holding Kerf's libcuda.so.1")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := kerfdbench.RunIntercept(ctx, kerfdbench.InterceptOptions{Launches: *n, Source: *src, ShimDir: *shim, Progress: progressOut(*asJSON)})
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(res)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tLAUNCHES\tSHIM (C PROGRAM)\tGO CLIENT\tRATIO\tSHIM SUBMIT")
	for _, r := range res {
		fmt.Fprintf(tw, "%s\t%d\t%.0f/s\t%.0f/s\t%.2f×\t%.2f µs/launch\n", r.Path, r.Launches, r.ShimPerSec, r.RawPerSec, r.Ratio, r.ShimSubmitUs)
	}
	return tw.Flush()
}

func benchRuntime(args []string) error {
	fs := flag.NewFlagSet("kerf bench runtime", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "machine-readable output")
	n := fs.Int("launches", 100000, "kernels launched per round")
	size := fs.String("copy", "256MiB", "bytes per host-to-device copy (at most 1GiB)")
	rounds := fs.Int("rounds", 5, "rounds of each measurement, the forms taking turns")
	src := fs.String("src", ".", "the Kerf source tree (for the CUDA and C programs)")
	shim := fs.String("shim", launcher.DefaultShimDir(), "directory holding Kerf's libcuda.so.1")
	if err := fs.Parse(args); err != nil {
		return err
	}
	copyBytes, err := units.ParseBytes(*size)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r, err := kerfdbench.RunRuntime(ctx, kerfdbench.RuntimeOptions{Launches: *n, CopyBytes: copyBytes, Rounds: *rounds,
		Source: *src, ShimDir: *shim, Progress: progressOut(*asJSON)})
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(r)
	}
	fmt.Printf("local path (Unix socket + shared memory), emulated GPU; medians of %d interleaved rounds\n", r.Rounds)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEASURE\tCUDA RUNTIME\tBASELINE\tRATIO")
	fmt.Fprintf(tw, "empty kernel <<<1,1>>>, %d launches + sync\t%.0f launches/s\t%.0f launches/s (driver API)\t%.2f×\n",
		r.Launches, r.RuntimePerSec, r.DriverPerSec, r.LaunchRatio)
	fmt.Fprintf(tw, "submit cost (launch loop, no sync)\t%.2f µs/launch\t%.2f µs/launch (driver API)\t%.2f×\n",
		r.RuntimeSubmitUs, r.DriverSubmitUs, r.RuntimeSubmitUs/r.DriverSubmitUs)
	fmt.Fprintf(tw, "%s host-to-device cudaMemcpyAsync\t%.2f GB/s\t%.2f GB/s (raw Unix stream)\t%.2f×\n",
		units.FormatBytes(r.CopyBytes), r.CopyGBps, r.RawUnixGBps, r.CopyRatio)
	fmt.Fprintf(tw, "\t\t%.2f GB/s (driver API)\t%.2f×\n", r.DriverCopyGBps, r.CopyGBps/r.DriverCopyGBps)
	tw.Flush()
	fmt.Printf("host memory of the copy: %s\n\n", r.HostMemory)
	tw = tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tGOAL\tGOT\tMET")
	for _, t := range r.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", t.Name, t.Goal, t.Got, t.Met)
	}
	return tw.Flush()
}

// benchSlicer runs `kerf bench slicer`, or with demo the newcomer's tour:
// a few tenants and one pass of re-slicing, with the node's table after
// each step.
func benchSlicer(args []string, demo bool) error {
	fs := flag.NewFlagSet("kerf bench slicer", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "machine-readable output")
	tenants := fs.Int("tenants", 20, "live tenants")
	rounds := fs.Int("rounds", 10, "passes over the profile cycle")
	cycle := fs.String("profiles", "uniform-20,uniform-10,mixed-2x25-5x10", "the profile cycle, comma-separated; the first is the starting layout (uniform-20,uniform-20 measures the benchmark's own floor)")
	compare := fs.Bool("compare", true, "run with compute shares unenforced and enforced in turn, with the tenants and with one tenant alone: the cost of enforcement")
	pairs := fs.Int("pairs", 4, "with --compare: how many times each mode runs, in turn, per case; the ratios reported are the medians")
	if demo {
		*tenants, *rounds = 4, 1
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	o := kerfdbench.SlicerOptions{Tenants: *tenants, Rounds: *rounds, Profiles: strings.Split(*cycle, ","), Progress: progressOut(*asJSON),
		TenantCommand: []string{self, "slicer-tenants"}}
	if demo {
		fmt.Println("Kerf demo: kerfd on an emulated 16 GiB GPU; each tenant runs a kernel-and-copy loop in its own")
		fmt.Println("worker process and checks every result, while the node is re-sliced under it.")
		o.Table, o.Progress, o.Settle = os.Stdout, nil, 2*time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var res kerfdbench.SlicerResult
	if *compare && !demo {
		res, err = kerfdbench.RunSlicerCompared(ctx, o, *pairs)
	} else {
		res, err = kerfdbench.RunSlicer(ctx, o)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(res)
	}
	if cmp := res.Compare; cmp != nil {
		defer printSlicerCompare(cmp)
	}
	fmt.Printf("\n%d tenants, %d transitions: plan+apply p50 %.2f ms, p99 %.2f ms (goal p99 ≤ 5 ms)\n", res.Tenants, res.Transitions, res.ApplyP50Ms, res.ApplyP99Ms)
	fmt.Printf("tenant calls %d, errors %d, data mismatches %d (goal 0 and 0)\n", res.TenantCalls, res.TenantErrors, res.Mismatches)
	if res.FirstErrorMsg != "" {
		fmt.Printf("first error: %s\n", res.FirstErrorMsg)
	}
	fmt.Printf("round p99: steady %.2f ms, during transitions %.2f ms: %.2f× (goal ≤ 1.10×)\n", res.SteadyP99Ms, res.DuringP99Ms, res.LatencyRatio)
	if !demo {
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TENANT\tSHARE TARGET\tACHIEVED")
		for _, s := range res.Shares {
			fmt.Fprintf(tw, "%s\t%.0f%%\t%.1f%%\n", s.Tenant, 100*s.Target, 100*s.Achieved)
		}
		tw.Flush()
	}
	return nil
}

// printSlicerCompare prints the cost of enforcement measured by `kerf
// bench slicer`.
func printSlicerCompare(cmp *kerfdbench.SlicerComparison) {
	fmt.Printf("\nshares enforced/unenforced, run in turns (unenforced first in odd pairs, enforced first in even ones):\n")
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tPAIR\tUNENFORCED CALLS\tENFORCED CALLS\tRATIO\tUNENFORCED P99\tENFORCED P99\tRATIO")
	for _, m := range []struct {
		name string
		m    kerfdbench.SlicerModes
	}{{fmt.Sprintf("contended (%d tenants)", cmp.Contended.Tenants), cmp.Contended}, {"uncontended (1 tenant)", cmp.Uncontended}} {
		for i, p := range m.m.Pairs {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f×\t%.2f ms\t%.2f ms\t%.2f×\n", m.name, i+1, p.OffCalls, p.OnCalls, p.CallsRatio, p.OffP99Ms, p.OnP99Ms, p.P99Ratio)
		}
	}
	tw.Flush()
	fmt.Printf("uncontended, median of %d pairs: tenant calls %.2f× (goal ≥ 0.95), steady round p99 %.2f× (goal ≤ 1.10)\n",
		len(cmp.Uncontended.Pairs), cmp.Uncontended.CallsRatio, cmp.Uncontended.P99Ratio)
	fmt.Printf("contended (%d tenants taking turns for the GPU), median of %d pairs: tenant calls %.2f×, steady round p99 %.2f×\n",
		cmp.Contended.Tenants, len(cmp.Contended.Pairs), cmp.Contended.CallsRatio, cmp.Contended.P99Ratio)
}

// benchShares runs `kerf bench shares`.
func benchShares(args []string) error {
	fs := flag.NewFlagSet("kerf bench shares", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "machine-readable output")
	d := fs.Duration("time", 10*time.Second, "measured time, after a 2 s warm-up")
	split := fs.String("shares", "0.3,0.7", "the tenants' compute shares, comma-separated")
	kernel := fs.Uint("kernel", 32, "the matmul's n (a multiple of 16): how long each kernel runs")
	backend := fs.String("backend", "emulated", "emulated, or cuda for GPU 0 of this machine")
	alone := fs.Duration("alone", 3*time.Second, "then a tenant alone, this long with shares enforced and as long without, in turn (0: skip)")
	pairs := fs.Int("pairs", 5, "with --alone: how many times each mode runs, in turn; the ratios reported are the medians")
	timeSlicing := fs.Bool("time-slicing", false, "enforce shares by time even where kerfd would partition the GPU's SMs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o := kerfdbench.SharesOptions{Duration: *d, Kernel: uint32(*kernel), Backend: *backend, TimeSlicing: *timeSlicing}
	for _, f := range strings.Split(*split, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 || v > 1 {
			return fmt.Errorf("--shares: %q is not a share in (0, 1]", f)
		}
		o.Shares = append(o.Shares, v)
	}
	res, err := kerfdbench.RunShares(context.Background(), o)
	if err != nil {
		return err
	}
	if *alone > 0 {
		u, err := kerfdbench.RunUncontended(context.Background(), o, *alone, *pairs)
		if err != nil {
			return err
		}
		res.Uncontended = &u
	}
	if *asJSON {
		return printJSON(res)
	}
	if u := res.Uncontended; u != nil {
		defer func() {
			fmt.Printf("alone on the GPU, batches of 8 kernels and a synchronise; shares unenforced and enforced in turns (unenforced first in odd pairs):\n")
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PAIR\tUNENFORCED KERNELS/S\tENFORCED KERNELS/S\tRATIO\tUNENFORCED P99\tENFORCED P99\tRATIO")
			for i, p := range u.Pairs {
				fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.2f×\t%.2f ms\t%.2f ms\t%.2f×\n", i+1, p.Off.KernelsPS, p.On.KernelsPS, p.ThroughputRatio,
					float64(p.Off.BatchP99)/1e6, float64(p.On.BatchP99)/1e6, p.P99Ratio)
			}
			tw.Flush()
			fmt.Printf("  enforced/unenforced, median of %d pairs: throughput %.2f× (goal ≥ 0.95), batch p99 %.2f× (goal ≤ 1.10)\n", len(u.Pairs), u.ThroughputRatio, u.P99Ratio)
		}()
	}
	fmt.Printf("%d windows of 1 s, GPU busy %.0f%% of the time; each tenant's part of the GPU time used:\n", len(res.Windows), 100*res.Utilisation)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tTARGET\tMEAN\tMIN\tMAX\tWORST WINDOW\tKERNELS\tKERNELS/S\tBATCH P99 (8 kernels)\tMET (±5% of target, every window)")
	for i, t := range res.Tenants {
		fmt.Fprintf(tw, "%d\t%.1f%%\t%.1f%%\t%.1f%%\t%.1f%%\t%.1f%%\t%d\t%.0f\t%.3f ms\t%v\n", i, 100*t.Target, 100*t.Mean, 100*t.Min, 100*t.Max,
			100*t.WorstError, t.Kernels, t.KernelsPS, float64(t.BatchP99)/1e6, t.WorstError <= 0.05)
	}
	return tw.Flush()
}

func benchIngest(args []string) error {
	fs := flag.NewFlagSet("kerf bench ingest", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "machine-readable output")
	d := fs.Duration("time", 10*time.Second, "publishing time")
	topics := fs.Int("topics", 10000, "simulated devices, one topic each")
	pubs := fs.Int("publishers", 8, "MQTT connections (gateways) the devices share")
	inflight := fs.Int("inflight", 32, "unacknowledged QoS 1 publishes per connection")
	via := fs.String("via", "nats", "how kerfd subscribes to the embedded broker: nats or mqtt")
	rate := fs.Int("rate", 0, "signals/s in all (0: as fast as QoS 1 allows)")
	oscillate := fs.Duration("oscillate", 5*time.Second, "then a load swinging across a threshold, this long (0: skip)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The broker and the Go runtime run as kerfd's defaults have them
	// (KERF_* variables apply), on loopback ports and a scratch store.
	b, stop, err := ingestbench.StartBroker()
	if err != nil {
		return err
	}
	defer stop()
	if *oscillate == 0 {
		*oscillate = -1 // Options: negative skips, zero takes the default
	}
	o := ingestbench.Options{MQTTAddr: b.MQTTAddr(), Subscriber: b.KerfdLogin(), Topics: *topics, Publishers: *pubs, InFlight: *inflight, Duration: *d,
		Rate: *rate, Oscillate: *oscillate}
	if *via == "nats" {
		o.NATSURL = b.ClientURL()
	} else if *via != "mqtt" {
		return fmt.Errorf("--via %q: want nats or mqtt", *via)
	}
	r, err := ingestbench.Run(context.Background(), o)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(r)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPICS\tVIA\tPUBLISHED\tDELIVERED\tLOST\tSIGNALS/S\tP50\tP99\tMAX\tDECISIONS")
	fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%.0f\t%v\t%v\t%v\t%d\n", r.Topics, r.Via, r.Published, r.Delivered, r.Lost,
		r.SignalsPerSec, r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Max.Round(time.Microsecond), r.Decisions)
	if err := tw.Flush(); err != nil {
		return err
	}
	if osc := r.Oscillation; osc != nil {
		fmt.Printf("oscillating load, %.1fs: %d threshold crossings, %d re-slices (min dwell %v, cooldown %v: at most %d)\n",
			osc.Seconds, osc.Crossings, osc.Reslices, osc.MinDwell, osc.Cooldown, osc.Allowed)
	}
	return nil
}

// benchPool runs `kerf bench pool`.
func benchPool(args []string) error {
	fs := flag.NewFlagSet("kerf bench pool", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "machine-readable output")
	n := fs.Int("placements", 200, "sequential placements measured, in the pool and on the node alone each")
	placers := fs.Int("placers", 8, "concurrent placers under contention")
	d := fs.Duration("time", 3*time.Second, "time placing under contention, in the pool and on the node alone each")
	kerfd := fs.String("kerfd", "", "the kerfd binary (default: beside this one, else on $PATH)")
	under := fs.String("dir", "", "where the nodes keep their state, on the disk to measure (default: the system's temporary directory)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	bin, err := kerfdBinary(*kerfd)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(*under, "kerf-bench-pool-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r, err := poolbench.Run(ctx, poolbench.Options{Kerfd: bin, Dir: dir, Placements: *n, Placers: *placers, Contention: *d, Progress: progressOut(*asJSON)})
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(r)
	}
	fmt.Printf("a pool of %d kerfd on loopback against a kerfd alone, %d emulated GPUs each; a placement: a tenant's lease of %.2f GPU over QUIC\n", r.Nodes, r.GPUs, r.Fraction)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEASURE\tPOOL\tNODE ALONE\tRATIO")
	fmt.Fprintf(tw, "placement p50 (%d, one at a time)\t%.2f ms\t%.2f ms\t%.2f×\n", r.Placements, r.PoolP50Ms, r.SingleP50Ms, r.P50Ratio)
	fmt.Fprintf(tw, "placement p99\t%.2f ms\t%.2f ms\t%.2f×\n", r.PoolP99Ms, r.SingleP99Ms, r.P99Ratio)
	fmt.Fprintf(tw, "  state disk, one synced append p50 / p99\t%.2f / %.2f ms\t\t\n", r.SyncP50Ms, r.SyncP99Ms)
	fmt.Fprintf(tw, "placements/s, %d placers for %v\t%.0f\t%.0f\t%.2f×\n", r.Placers, time.Duration(r.ContentionSeconds*float64(time.Second)), r.PoolPerSec, r.SinglePerSec, r.ContentionRatio)
	fmt.Fprintf(tw, "  refused for room (retried) / other errors\t%d / %d\t%d / %d\t\n", r.PoolRefused, r.PoolErrors, r.SingleRefused, r.SingleErrors)
	tw.Flush()
	fmt.Printf("%d of %d pool placements were granted by another member than the one asked\n", r.Redirected, r.Placements)
	if r.FirstError != "" {
		fmt.Printf("first error under contention: %s\n", r.FirstError)
	}
	fmt.Println("\neach member killed by SIGKILL in turn, JetStream's meta leader first, then another (restarted before the next); placements asked of the members left")
	fmt.Println("every 100 ms until the meta group has a leader other than the member killed, and a second more, and one is granted:")
	tw = tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KILLED\tMETA LEADER\tFIRST PLACEMENT\tLONGEST WAIT\tLEADER ELECTED\tASKED / REFUSED\tGRANTED ON\tFIRST REFUSAL")
	for _, f := range r.Failovers {
		elected := "-"
		if f.MetaLeader {
			elected = fmt.Sprintf("%.0f ms", f.ElectedMs)
		}
		fmt.Fprintf(tw, "%s\t%v\t%.0f ms\t%.0f ms\t%s\t%d / %d\t%s\t%s\n", f.Killed, f.MetaLeader, f.Ms, f.WaitMs, elected, f.Attempts, f.Refused, f.GrantedOn, cmp.Or(f.FirstError, "-"))
	}
	tw.Flush()
	fmt.Println()
	tw = tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tGOAL\tGOT\tMET")
	for _, t := range r.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", t.Name, t.Goal, t.Got, t.Met)
	}
	return tw.Flush()
}

// demoPool runs the pool's demo (make demo-pool).
func demoPool(args []string) error {
	fs := flag.NewFlagSet("kerf-bench demo-pool", flag.ContinueOnError)
	spin := fs.String("spin", "", "a program that works the GPU for the seconds given as its argument (intercept/testdata/spin.c)")
	short := fs.String("short", "", "a short GPU program and its arguments, space-separated (intercept/testdata/vadd.c)")
	kerfd := fs.String("kerfd", "", "the kerfd binary (default: beside this one, else on $PATH)")
	shim := fs.String("shim", launcher.DefaultShimDir(), "directory holding Kerf's libcuda.so.1")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *spin == "" || *short == "" {
		return errors.New("demo-pool: --spin and --short name the tenants' programs (make demo-pool builds them)")
	}
	bin, err := kerfdBinary(*kerfd)
	if err != nil {
		return err
	}
	kerf := filepath.Join(filepath.Dir(bin), "kerf")
	dir, err := os.MkdirTemp("", "kerf-demo-pool-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	abs := func(argv []string) []string {
		if p, err := filepath.Abs(argv[0]); err == nil {
			argv[0] = p
		}
		return argv
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return poolbench.Demo(ctx, poolbench.DemoOptions{Kerfd: bin, Kerf: kerf, ShimDir: *shim, Spin: abs([]string{*spin}),
		Short: abs(strings.Fields(*short)), Dir: dir, Out: os.Stdout})
}

// kerfdBinary is the kerfd that benchmarks of whole processes start:
// flag, else beside this binary, else on $PATH.
func kerfdBinary(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "kerfd")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("kerfd")
	if err != nil {
		return "", fmt.Errorf("no kerfd beside kerf-bench or on $PATH (make build, or --kerfd PATH): %w", err)
	}
	return p, nil
}

// progressOut is where a benchmark reports progress: stderr, or nowhere
// when it prints JSON.
func progressOut(asJSON bool) io.Writer {
	if asJSON {
		return nil
	}
	return os.Stderr
}

// printJSON writes v to stdout, indented: a benchmark's --json output.
func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// startCPUProfile writes a CPU profile of the process to path until stop.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
