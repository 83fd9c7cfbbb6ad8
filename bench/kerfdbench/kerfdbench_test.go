package kerfdbench

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/appliance"
)

// A round is classed by when it started, so a long round that merely
// overlaps a transition's window does not count as slowed by it.
func TestSplitRoundsClassesByStart(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	windows := [][2]time.Time{{at(1000), at(1350)}, {at(2250), at(2600)}}
	rounds := []roundSample{
		{at(0), 20 * time.Millisecond},    // steady
		{at(900), 200 * time.Millisecond}, // overlaps the first window but started before it: steady
		{at(1000), 30 * time.Millisecond}, // at the window's start: during
		{at(1349), 40 * time.Millisecond}, // during
		{at(1350), 50 * time.Millisecond}, // at the window's end: steady
		{at(2300), 60 * time.Millisecond}, // second window: during
		{at(3000), 70 * time.Millisecond}, // steady
	}
	steady, during := splitRounds(rounds, windows)
	want := func(got []time.Duration, ms ...int) {
		t.Helper()
		if len(got) != len(ms) {
			t.Fatalf("got %v, want %v ms", got, ms)
		}
		for i, m := range ms {
			if got[i] != time.Duration(m)*time.Millisecond {
				t.Fatalf("got %v, want %v ms", got, ms)
			}
		}
	}
	want(steady, 20, 200, 50, 70)
	want(during, 30, 40, 60)
}

// A short run of the benchmark harness, tenants in this process: every
// transition is applied and timed, and the tenants' loops run clean.
func TestBenchSlicerShortRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kerfd and worker processes")
	}
	res, err := RunSlicer(t.Context(), SlicerOptions{Tenants: 2, Rounds: 1, Settle: 300 * time.Millisecond, GPUMemory: "4GiB"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Transitions != 3 || len(res.ByTransition) != 3 {
		t.Fatalf("%d transitions, want 3", res.Transitions)
	}
	if res.TenantCalls == 0 || res.TenantErrors != 0 || res.Mismatches != 0 || res.FirstErrorMsg != "" {
		t.Fatalf("calls %d, errors %d (%s), mismatches %d", res.TenantCalls, res.TenantErrors, res.FirstErrorMsg, res.Mismatches)
	}
	if res.SteadyP99Ms <= 0 || res.DuringP99Ms <= 0 {
		t.Fatalf("round latencies not measured: %+v", res)
	}
}

// The tenants' process speaks a spec line in, "ready", then its report
// once its input closes; here over pipes, against a real kerfd.
func TestRunSlicerTenantsProtocol(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kerfd and worker processes")
	}
	a, stop, err := startBenchAppliance(t.Context(), t.TempDir(), "KERF_GPU__EMULATED__MEMORY=4GiB")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	tok, err := a.Tokens().Issue("t00", 0)
	if err != nil {
		t.Fatal(err)
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- RunSlicerTenants(t.Context(), inR, outW); outW.Close() }()
	json.NewEncoder(inW).Encode(SlicerTenantsSpec{UnixPath: a.unixPath, Names: []string{"t00"}, Tokens: []string{tok}})
	br := bufio.NewReader(outR)
	if line, err := br.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	time.Sleep(200 * time.Millisecond)
	inW.Close()
	var rep SlicerTenantsReport
	if err := json.NewDecoder(br).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(rep.Starts) == 0 || len(rep.Starts) != len(rep.Durations) || rep.Errors != 0 || rep.Mismatches != 0 {
		t.Fatalf("report: %d rounds (%d durations), %d errors, %d mismatches", len(rep.Starts), len(rep.Durations), rep.Errors, rep.Mismatches)
	}
}

// A short run of `kerf bench shares`: windows are measured, each window's
// parts sum to one, and every tenant ran kernels.
func TestBenchSharesShortRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kerfd and worker processes")
	}
	res, err := RunShares(t.Context(), SharesOptions{Shares: []float64{0.3, 0.7}, Duration: 3 * time.Second, Kernel: 16})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Windows) == 0 || len(res.Tenants) != 2 {
		t.Fatalf("%d windows, %d tenants", len(res.Windows), len(res.Tenants))
	}
	for _, w := range res.Windows {
		if sum := w.Parts[0] + w.Parts[1]; sum < 0.999 || sum > 1.001 {
			t.Fatalf("window parts %v sum to %v", w.Parts, sum)
		}
	}
	for i, tn := range res.Tenants {
		if tn.Kernels == 0 || tn.Target != []float64{0.3, 0.7}[i] {
			t.Fatalf("tenant %d: %+v", i, tn)
		}
	}
	t.Logf("parts: %+v", res.Tenants)
}

// A short run of `kerf bench runtime`: nvcc builds the programs, which run
// under the shim against kerfd and report every figure.
func TestBenchRuntimeShortRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the shim and starts kerfd and worker processes")
	}
	if err := NvccAvailable(); err != nil {
		t.Skip(err)
	}
	shimDir := t.TempDir()
	// Not with -race: ThreadSanitizer cannot map its shadow memory inside a
	// shared library.
	build := exec.Command("go", "build", "-buildmode=c-shared", "-o", filepath.Join(shimDir, "libcuda.so.1"), "github.com/kerf-edge/kerf/intercept")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the shim: %v\n%s", err, out)
	}
	var progress strings.Builder
	r, err := RunRuntime(t.Context(), RuntimeOptions{Launches: 200, CopyBytes: 1 << 20, Rounds: 2, Source: "../..", ShimDir: shimDir, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if r.RuntimePerSec <= 0 || r.DriverPerSec <= 0 || r.RuntimeSubmitUs <= 0 || r.DriverSubmitUs <= 0 ||
		r.CopyGBps <= 0 || r.DriverCopyGBps <= 0 || r.RawUnixGBps <= 0 || len(r.Targets) != 2 {
		t.Fatalf("missing figures: %+v", r)
	}
	if !strings.Contains(progress.String(), "round 2, driver API") {
		t.Fatalf("progress does not report the rounds:\n%s", progress.String())
	}
	t.Logf("%+v", r)
}

// TestMain lets the test binary serve as kerfd's worker executable.
func TestMain(m *testing.M) {
	if appliance.IsWorker() {
		os.Exit(appliance.RunWorker())
	}
	os.Exit(m.Run())
}
