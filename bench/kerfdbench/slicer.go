package kerfdbench

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/appliance"
	"github.com/kerf-edge/kerf/internal/tenantkit"
	"github.com/kerf-edge/kerf/internal/units"
	"github.com/kerf-edge/kerf/profiles"
	"github.com/kerf-edge/kerf/transport"
)

// SlicerOptions size `kerf bench slicer` and `kerf demo`.
type SlicerOptions struct {
	Tenants   int           // live tenants, each in its own slice (default 20)
	Rounds    int           // times the profile cycle is applied (default 10)
	Profiles  []string      // the cycle (default uniform-20, uniform-10, mixed-2x25-5x10)
	Settle    time.Duration // steady time between transitions (default 1s)
	Table     io.Writer     // if set, the node's slices after each step (the demo)
	Progress  io.Writer
	GPUMemory string // emulated GPU memory (default 16GiB)
	// TenantCommand starts the tenants' own process (see
	// RunSlicerTenants), as tenant programs are; nil runs them in this
	// process, where they share its scheduler with kerfd.
	TenantCommand []string
	// Unenforced measures compute shares without pacing kernels by them
	// (slicer.shares_unenforced): the baseline of enforcement's cost.
	Unenforced bool
}

// SlicerResult is what a run measured.
type SlicerResult struct {
	Tenants       int              `json:"tenants"`
	Transitions   int              `json:"transitions"`
	ApplyP50Ms    float64          `json:"apply_p50_ms"`
	ApplyP99Ms    float64          `json:"apply_p99_ms"`
	TenantCalls   uint64           `json:"tenant_calls"`
	TenantErrors  uint64           `json:"tenant_errors"`
	Mismatches    uint64           `json:"data_mismatches"`
	SteadyP99Ms   float64          `json:"steady_p99_ms"`
	DuringP99Ms   float64          `json:"during_transitions_p99_ms"`
	LatencyRatio  float64          `json:"latency_ratio"`
	Shares        []SlicerShare    `json:"shares"`
	ByTransition  []TransitionStat `json:"by_transition"`
	FirstErrorMsg string           `json:"first_error,omitempty"`
	// Compare, when measured, is the cost of enforcement: the same run
	// with shares enforced and unenforced, in turn.
	Compare *SlicerComparison `json:"compare,omitempty"`
}

// SlicerComparison is the cost of enforcing compute shares in `kerf bench
// slicer`. Contended is the run as it is: every tenant wants a kernel
// each round, so at any moment several want the GPU at once and, with
// shares enforced, take turns for it, a hand-over through kerfd between
// them. Uncontended is the same run with one tenant: nobody else asks for
// the GPU, so it measures what enforcement costs a tenant that has the
// GPU to itself.
type SlicerComparison struct {
	Contended   SlicerModes `json:"contended"`
	Uncontended SlicerModes `json:"uncontended"`
}

// SlicerModes is one case run unenforced and enforced, pair after pair,
// every other pair in the opposite order, so that neither a machine whose
// load drifts nor a run that is slower for coming later biases either
// mode; the ratios are the medians over the pairs.
type SlicerModes struct {
	Tenants    int          `json:"tenants"`
	Pairs      []SlicerPair `json:"pairs"`
	CallsRatio float64      `json:"calls_ratio"` // enforced/unenforced tenant calls (goal ≥ 0.95 uncontended)
	P99Ratio   float64      `json:"p99_ratio"`   // enforced/unenforced steady round p99 (goal ≤ 1.10 uncontended)
}

// SlicerPair is an unenforced run and an enforced run beside it.
type SlicerPair struct {
	OffCalls   uint64  `json:"unenforced_calls"`
	OnCalls    uint64  `json:"enforced_calls"`
	OffP99Ms   float64 `json:"unenforced_steady_p99_ms"`
	OnP99Ms    float64 `json:"enforced_steady_p99_ms"`
	CallsRatio float64 `json:"calls_ratio"`
	P99Ratio   float64 `json:"p99_ratio"`
}

// RunSlicerCompared runs the benchmark with shares unenforced and
// enforced, in turns, pairs times, with o.Tenants and then with one
// tenant, and returns the first enforced run with o.Tenants, the
// comparison attached.
func RunSlicerCompared(ctx context.Context, o SlicerOptions, pairs int) (SlicerResult, error) {
	var first SlicerResult
	var cmp SlicerComparison
	for i, tenants := range []int{o.Tenants, 1} {
		m := SlicerModes{Tenants: tenants}
		for p := range max(pairs, 1) {
			var on, off SlicerResult
			for _, enforced := range turns(p) {
				oo := o
				oo.Tenants, oo.Unenforced = tenants, !enforced
				r, err := RunSlicer(ctx, oo)
				if err != nil {
					return first, fmt.Errorf("%d tenants, enforced %v: %w", tenants, enforced, err)
				}
				if enforced {
					on = r
				} else {
					off = r
				}
			}
			if i == 0 && p == 0 {
				first = on
			}
			m.Pairs = append(m.Pairs, SlicerPair{OffCalls: off.TenantCalls, OnCalls: on.TenantCalls, OffP99Ms: off.SteadyP99Ms, OnP99Ms: on.SteadyP99Ms,
				CallsRatio: float64(on.TenantCalls) / float64(max(off.TenantCalls, 1)), P99Ratio: on.SteadyP99Ms / off.SteadyP99Ms})
		}
		var cr, pr []float64
		for _, p := range m.Pairs {
			cr, pr = append(cr, p.CallsRatio), append(pr, p.P99Ratio)
		}
		m.CallsRatio, m.P99Ratio = median(cr), median(pr)
		if i == 0 {
			cmp.Contended = m
		} else {
			cmp.Uncontended = m
		}
	}
	first.Compare = &cmp
	return first, nil
}

// SlicerShare is a tenant's compute share, planned and achieved.
type SlicerShare struct {
	Tenant   string  `json:"tenant"`
	Target   float64 `json:"target"`
	Achieved float64 `json:"achieved"`
}

// TransitionStat is one profile change.
type TransitionStat struct {
	To      string  `json:"to"`
	ApplyMs float64 `json:"apply_ms"`
	Pending int     `json:"pending"`
}

// tenantLoop is one live tenant: a kernel-and-copy loop checking its own
// results, timing each round.
type tenantLoop struct {
	c      *transport.Client
	fn     uint64
	params []byte
	a, b   []float32
	bufs   [3]uint64
	n      int
}

// RunSlicer runs live tenants on the emulated GPU and re-slices under
// them, measuring what the tenants see.
func RunSlicer(ctx context.Context, o SlicerOptions) (SlicerResult, error) {
	if o.Tenants == 0 {
		o.Tenants = 20
	}
	if o.Rounds == 0 {
		o.Rounds = 10
	}
	if len(o.Profiles) == 0 {
		o.Profiles = []string{"uniform-20", "uniform-10", "mixed-2x25-5x10"}
	}
	if o.Settle == 0 {
		o.Settle = time.Second
	}
	if o.GPUMemory == "" {
		o.GPUMemory = "16GiB"
	}
	res := SlicerResult{Tenants: o.Tenants}
	dir, err := os.MkdirTemp("", "kerf-bench-slicer")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	a, stop, err := startBenchAppliance(ctx, dir, "KERF_GPU__EMULATED__MEMORY="+o.GPUMemory,
		"KERF_SLICER__PROFILE="+o.Profiles[0], fmt.Sprintf("KERF_SLICER__SHARES_UNENFORCED=%v", o.Unenforced))
	if err != nil {
		return res, err
	}
	defer stop()

	// Tenants, each with its own token, slice and worker.
	spec := SlicerTenantsSpec{UnixPath: a.unixPath}
	for i := range o.Tenants {
		name := fmt.Sprintf("t%02d", i)
		tok, err := a.Tokens().Issue(name, 0)
		if err != nil {
			return res, err
		}
		spec.Names, spec.Tokens = append(spec.Names, name), append(spec.Tokens, tok)
	}
	tenants, err := startTenants(ctx, o.TenantCommand, spec)
	if err != nil {
		return res, err
	}
	defer tenants.abort()

	show := func(title string) {
		if o.Table != nil {
			fmt.Fprintf(o.Table, "\n== %s\n", title)
			writeSlices(o.Table, a)
		}
	}
	show("start: " + o.Profiles[0])
	var applyTimes []time.Duration
	var windows [][2]time.Time // [start, end) of each transition's window
	time.Sleep(o.Settle)
	for r := range o.Rounds {
		for i := range o.Profiles {
			to := o.Profiles[(i+1)%len(o.Profiles)]
			p, err := a.Profile(to)
			if err != nil {
				return res, err
			}
			t0 := time.Now()
			_, err = a.Node().Apply(ctx, p, profiles.ApplyOptions{})
			d := time.Since(t0)
			time.Sleep(o.Settle / 4) // the transition's tail: pending work, limits landing
			windows = append(windows, [2]time.Time{t0.Add(-transitionLead), time.Now()})
			if err != nil {
				return res, fmt.Errorf("applying %s: %w", to, err)
			}
			applyTimes = append(applyTimes, d)
			st := TransitionStat{To: to, ApplyMs: float64(d.Microseconds()) / 1000, Pending: len(a.Pending())}
			res.ByTransition = append(res.ByTransition, st)
			if o.Progress != nil {
				fmt.Fprintf(o.Progress, "round %d: → %s in %.2f ms, %d pending\n", r+1, to, st.ApplyMs, st.Pending)
			}
			show(fmt.Sprintf("after applying %s (%.2f ms)", to, st.ApplyMs))
			time.Sleep(o.Settle)
		}
	}
	for _, s := range a.Node().Slices() {
		if s.Tenant != "" {
			res.Shares = append(res.Shares, SlicerShare{Tenant: s.Tenant, Target: s.ShareTarget, Achieved: s.ShareAchieved})
		}
	}
	rep, err := tenants.stop()
	if err != nil {
		return res, err
	}

	res.Transitions = len(applyTimes)
	res.ApplyP50Ms, res.ApplyP99Ms = quantileMs(applyTimes, 0.5), quantileMs(applyTimes, 0.99)
	res.TenantCalls, res.TenantErrors, res.Mismatches, res.FirstErrorMsg = rep.Calls, rep.Errors, rep.Mismatches, rep.FirstError
	steady, during := splitRounds(rep.rounds(), windows)
	res.SteadyP99Ms, res.DuringP99Ms = quantileMs(steady, 0.99), quantileMs(during, 0.99)
	if res.SteadyP99Ms > 0 {
		res.LatencyRatio = res.DuringP99Ms / res.SteadyP99Ms
	}
	sort.Slice(res.Shares, func(i, j int) bool { return res.Shares[i].Tenant < res.Shares[j].Tenant })
	return res, nil
}

// transitionLead is how long before an apply a round counts as during the
// transition: about the steady p99 of a round, so that rounds in flight
// when the layout changes are counted too.
const transitionLead = 100 * time.Millisecond

type roundSample struct {
	start time.Time
	d     time.Duration
}

// splitRounds sorts rounds into those that started inside a transition's
// window and the rest. Rounds are classed by their start alone: classing
// a round by whether it overlaps a window would favour long rounds (the
// longer a round, the likelier it overlaps), and would show neighbours
// slowed by a transition that changes nothing.
func splitRounds(rounds []roundSample, windows [][2]time.Time) (steady, during []time.Duration) {
	for _, r := range rounds {
		in := false
		for _, w := range windows {
			if !r.start.Before(w[0]) && r.start.Before(w[1]) {
				in = true
				break
			}
		}
		if in {
			during = append(during, r.d)
		} else {
			steady = append(steady, r.d)
		}
	}
	return steady, during
}

func newTenantLoop(c *transport.Client, n int) (*tenantLoop, error) {
	fn, layout, err := tenantkit.LoadKernel(c, "vadd")
	if err != nil {
		return nil, err
	}
	l := &tenantLoop{c: c, fn: fn, n: n, a: make([]float32, n), b: make([]float32, n)}
	for i := range l.bufs {
		if l.bufs[i], err = c.MemAlloc(uint64(4 * n)); err != nil {
			return nil, err
		}
	}
	l.params = make([]byte, layout[3].Offset+layout[3].Size)
	for i := range 3 {
		binary.LittleEndian.PutUint64(l.params[layout[i].Offset:], l.bufs[i])
	}
	binary.LittleEndian.PutUint32(l.params[layout[3].Offset:], uint32(n))
	return l, nil
}

// round copies fresh inputs in, adds them on the device, copies the sum
// back and checks it. It reports false on a wrong result.
func (l *tenantLoop) round(rng *rand.Rand) (bool, error) {
	for i := range l.a {
		l.a[i], l.b[i] = float32(rng.IntN(1000)), float32(rng.IntN(1000))
	}
	if err := l.c.MemcpyHtoD(l.bufs[0], tenantkit.F32Bytes(l.a)); err != nil {
		return false, err
	}
	if err := l.c.MemcpyHtoD(l.bufs[1], tenantkit.F32Bytes(l.b)); err != nil {
		return false, err
	}
	cfg := abi.LaunchConfig{Grid: abi.Dim3{X: uint32((l.n + 255) / 256), Y: 1, Z: 1}, Block: abi.Dim3{X: 256, Y: 1, Z: 1}}
	if err := l.c.LaunchKernel(l.fn, cfg, 0, l.params); err != nil {
		return false, err
	}
	out := make([]byte, 4*l.n)
	if err := l.c.MemcpyDtoH(out, l.bufs[2]); err != nil {
		return false, err
	}
	for i := range l.a {
		if math.Float32frombits(binary.LittleEndian.Uint32(out[4*i:])) != l.a[i]+l.b[i] {
			return false, nil
		}
	}
	return true, nil
}

func quantileMs(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(q*float64(len(s))))].Microseconds()) / 1000
}

// writeSlices prints the node's GPUs, slices, tenants, memory and shares.
func writeSlices(w io.Writer, a *kerfd) {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GPU\tSLICE MEMORY\tUSED\tSHARE TARGET\tACHIEVED\tTENANT\tPENDING")
	for _, s := range a.Node().Slices() {
		tenant := s.Tenant
		if tenant == "" {
			tenant = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.0f%%\t%.0f%%\t%s\t%v\n", s.GPU, units.FormatBytes(s.MemoryLimitBytes), units.FormatBytes(s.MemoryUsedBytes),
			100*s.ShareTarget, 100*s.ShareAchieved, tenant, s.Pending)
	}
	tw.Flush()
	w.Write(buf.Bytes())
}

// kerfd is an appliance a benchmark runs, and where its Unix socket is.
type kerfd struct {
	*appliance.Appliance
	unixPath string
}

// startBenchAppliance runs an appliance for a benchmark: state in dir, the
// emulated GPU, QUIC on a free port, no HTTP and no ingest; extra adds or
// overrides KERF_* settings. It returns once the Unix socket exists.
// startWithBundle starts a benchmark kerfd on a 4 GiB emulated GPU and
// issues tenant "bench" a bundle, returning the bundle's path.
func startWithBundle(ctx context.Context, dir string) (stop func(), bundlePath string, err error) {
	a, stop, err := startBenchAppliance(ctx, dir, "KERF_GPU__EMULATED__MEMORY=4GiB")
	if err != nil {
		return nil, "", err
	}
	bundlePath, err = a.IssueBundle("bench", 0, filepath.Join(dir, "bench.json"))
	if err != nil {
		stop()
		return nil, "", err
	}
	return stop, bundlePath, nil
}

func startBenchAppliance(ctx context.Context, dir string, extra ...string) (*kerfd, func(), error) {
	// A previous run's appliance (its emulated GPU's memory above all) is
	// garbage by now: collect it before this run starts, not during it.
	runtime.GC()
	env := append([]string{"KERF_STATE_DIR=" + filepath.Join(dir, "state"), "KERF_LISTEN__QUIC=127.0.0.1:0",
		"KERF_LISTEN__HTTP=", "KERF_GPU__BACKEND=emulated", "KERF_INGEST__ENABLED=false", "KERF_LOG__LEVEL=warn"}, extra...)
	cfg, err := appliance.LoadConfig("", env)
	if err != nil {
		return nil, nil, err
	}
	a, err := appliance.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(rctx) }()
	stop := func() { cancel(); <-done }
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(cfg.UnixPath()); err == nil {
			return &kerfd{Appliance: a, unixPath: cfg.UnixPath()}, stop, nil
		} else if time.Now().After(deadline) {
			stop()
			return nil, nil, fmt.Errorf("kerfd did not start: %w", err)
		}
	}
}
