package kerfdbench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kerf-edge/kerf/appliance"
	"github.com/kerf-edge/kerf/internal/tenantkit"
	"github.com/kerf-edge/kerf/profiles"
	"github.com/kerf-edge/kerf/profiles/api"
	"github.com/kerf-edge/kerf/transport"
)

// SharesOptions size `kerf bench shares`.
type SharesOptions struct {
	Shares   []float64     // one tenant per share, in slices of that share (default 0.3, 0.7)
	Duration time.Duration // measured time, after a warm-up (default 10s)
	Window   time.Duration // the windows shares are judged over (default 1s)
	Kernel   uint32        // the matmul's n: the kernels' length (default 32)
	Backend  string        // emulated (default) or cuda
	// TimeSlicing keeps shares enforced by time on a GPU whose SMs kerfd
	// would otherwise partition (gpu.cuda.time_slicing).
	TimeSlicing bool
}

// SharesResult is what `kerf bench shares` measured.
type SharesResult struct {
	Windows []SharesWindow `json:"windows"`
	Tenants []SharesTenant `json:"tenants"`
	// Utilisation is the GPU time used over wall time, all tenants.
	Utilisation float64 `json:"utilisation"`
	// Uncontended, when measured, is the cost of enforcement to a tenant
	// alone on the GPU.
	Uncontended *Uncontended `json:"uncontended,omitempty"`
}

// SharesWindow is one window: each tenant's part of the GPU time used.
type SharesWindow struct {
	Seconds float64   `json:"seconds"`
	Parts   []float64 `json:"parts"`
}

// SharesTenant sums up one tenant over the windows.
type SharesTenant struct {
	Target float64 `json:"target"`
	Mean   float64 `json:"mean"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	// WorstError is the largest |part − target| / target of any window.
	WorstError float64 `json:"worst_relative_error"`
	Kernels    uint64  `json:"kernels"`
	// KernelsPS is the tenant's throughput over the measured time;
	// BatchP99 the 99th percentile of its batches of 8 kernels and a
	// synchronise (BatchP99/8: a kernel's share of it).
	KernelsPS float64       `json:"kernels_per_second"`
	BatchP99  time.Duration `json:"batch_p99_ns"`
}

// RunShares runs tenants in slices of different compute shares on GPU 0
// (emulated, or real with Backend "cuda"), each launching kernels without pause and synchronising
// only with itself, and measures the part of the GPU time each gets over
// every window.
func RunShares(ctx context.Context, o SharesOptions) (SharesResult, error) {
	if len(o.Shares) == 0 {
		o.Shares = []float64{0.3, 0.7}
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Window <= 0 {
		o.Window = time.Second
	}
	if o.Kernel == 0 {
		o.Kernel = 32
	}
	var res SharesResult
	if o.Kernel%16 != 0 || o.Kernel > 4096 {
		return res, fmt.Errorf("kernel size %d: want a multiple of 16 up to 4096", o.Kernel)
	}
	dir, err := os.MkdirTemp("", "kerf-bench-shares")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	if o.Backend == "" {
		o.Backend = "emulated"
	}
	// A tenant's share may be more than half the GPU: no per-tenant limit.
	a, stop, err := startBenchAppliance(ctx, dir, "KERF_GPU__EMULATED__MEMORY=4GiB", "KERF_SLICER__PROFILE=whole",
		"KERF_SLICER__MAX_FRACTION_PER_TENANT=0", "KERF_GPU__BACKEND="+o.Backend,
		fmt.Sprintf("KERF_GPU__CUDA__TIME_SLICING=%v", o.TimeSlicing))
	if err != nil {
		return res, err
	}
	defer stop()
	p := api.Profile{Name: "bench-shares", GPUs: []api.GPUProfile{{GPU: 0}}}
	for _, s := range o.Shares {
		p.GPUs[0].Slices = append(p.GPUs[0].Slices, api.SliceSpec{MemoryFraction: s * 0.8, ComputeShare: s})
	}
	if _, err := a.Node().Apply(ctx, p, profiles.ApplyOptions{}); err != nil {
		return res, err
	}

	// Each tenant takes the smallest free slice, so they are started from
	// the smallest share up.
	order := make([]int, len(o.Shares))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(x, y int) bool { return o.Shares[order[x]] < o.Shares[order[y]] })
	names := make([]string, len(o.Shares))
	clients := make([]*transport.Client, len(o.Shares))
	for _, i := range order {
		names[i] = fmt.Sprintf("s%d-%02.0f", i, 100*o.Shares[i])
		tok, err := a.Tokens().Issue(names[i], 0)
		if err != nil {
			return res, err
		}
		if clients[i], err = transport.DialUnix(ctx, a.unixPath, transport.Options{Token: []byte(tok), Name: names[i]}); err != nil {
			return res, fmt.Errorf("tenant %s: %w", names[i], err)
		}
		defer clients[i].Close()
	}
	for _, s := range a.Node().Slices() {
		if i := slices.Index(names, s.Tenant); i >= 0 && math.Abs(s.ShareTarget-o.Shares[i]) > 1e-6 {
			return res, fmt.Errorf("tenant %s landed in a %.0f%% slice, not %.0f%%", s.Tenant, 100*s.ShareTarget, 100*o.Shares[i])
		}
	}

	lctx, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	kernelsRun := make([]uint64, len(clients))
	batches := make([][]time.Duration, len(clients)) // measured, after the warm-up
	var measuring atomic.Bool
	errc := make(chan error, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		launch, err := tenantkit.NewMatmul(c, o.Kernel)
		if err != nil {
			return res, fmt.Errorf("tenant %s: %w", names[i], err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lctx.Err() == nil {
				t0 := time.Now()
				for range 8 {
					if err := launch(); err != nil {
						errc <- fmt.Errorf("tenant %s: %w", names[i], err)
						return
					}
				}
				if err := c.Synchronize(); err != nil {
					errc <- fmt.Errorf("tenant %s: %w", names[i], err)
					return
				}
				if measuring.Load() {
					kernelsRun[i] += 8
					batches[i] = append(batches[i], time.Since(t0))
				}
			}
		}()
	}
	busy := func() []appliance.GPUTime {
		by := a.TenantGPUTime()
		out := make([]appliance.GPUTime, len(names))
		for i, n := range names {
			out[i] = by[n]
		}
		return out
	}
	// Warm up: workers report every reportEvery; let a few reports in.
	time.Sleep(2 * time.Second)
	// Each tenant's rate is taken between its own reports, so a report
	// that is older for one tenant than another skews no window.
	prev, start := busy(), time.Now()
	measuring.Store(true)
	first := prev
	for time.Since(start) < o.Duration {
		select {
		case err := <-errc:
			return res, err
		case <-time.After(o.Window):
		}
		cur := busy()
		rates, sum := make([]float64, len(cur)), 0.0
		for i := range cur {
			if dt := cur[i].At.Sub(prev[i].At); dt > 0 {
				rates[i] = float64(cur[i].Busy-prev[i].Busy) / float64(dt)
			}
			sum += rates[i]
		}
		if sum <= 0 {
			return res, errors.New("no GPU time was reported in a window")
		}
		w := SharesWindow{Seconds: cur[0].At.Sub(prev[0].At).Seconds()}
		for i := range cur {
			w.Parts = append(w.Parts, rates[i]/sum)
		}
		res.Windows = append(res.Windows, w)
		prev = cur
	}
	measuring.Store(false)
	measured := time.Since(start)
	stopLoops()
	wg.Wait()
	for i := range prev {
		if dt := prev[i].At.Sub(first[i].At); dt > 0 {
			res.Utilisation += float64(prev[i].Busy-first[i].Busy) / float64(dt)
		}
	}
	for i, target := range o.Shares {
		t := SharesTenant{Target: target, Min: 1, Kernels: kernelsRun[i], KernelsPS: float64(kernelsRun[i]) / measured.Seconds(),
			BatchP99: p99(batches[i])}
		for _, w := range res.Windows {
			part := w.Parts[i]
			t.Mean += part / float64(len(res.Windows))
			t.Min, t.Max = min(t.Min, part), max(t.Max, part)
			t.WorstError = max(t.WorstError, math.Abs(part-target)/target)
		}
		res.Tenants = append(res.Tenants, t)
	}
	return res, nil
}

// UncontendedRun is one tenant alone on the GPU: batches of 8 kernels and
// a synchronise, back to back.
type UncontendedRun struct {
	Enforced   bool          `json:"enforced"`
	KernelsPS  float64       `json:"kernels_per_second"`
	BatchP99   time.Duration `json:"batch_p99_ns"`
	BatchCount int           `json:"batches"`
}

// Uncontended compares a tenant alone on the GPU with shares enforced and
// not, in the same run: the cost of enforcement where nothing contends.
// The two modes run in turn, each pair side by side and every other pair
// in the opposite order (unenforced, enforced, enforced, unenforced, ...),
// so that neither a machine whose load drifts nor a run that is slower for
// coming later biases either mode.
type Uncontended struct {
	// On and Off are the pair whose throughput ratio is the median.
	On, Off UncontendedRun
	Pairs   []UncontendedPair `json:"pairs"`
	// ThroughputRatio is the median over the pairs of enforced/unenforced
	// kernels per second (goal ≥ 0.95); P99Ratio the median of
	// enforced/unenforced batch p99 (goal ≤ 1.10).
	ThroughputRatio float64 `json:"throughput_ratio"`
	P99Ratio        float64 `json:"p99_ratio"`
}

// UncontendedPair is an unenforced run and an enforced run beside it.
type UncontendedPair struct {
	On, Off         UncontendedRun
	ThroughputRatio float64 `json:"throughput_ratio"`
	P99Ratio        float64 `json:"p99_ratio"`
}

// RunUncontended runs one tenant in a 50% slice for d, after a warm-up,
// pairs times with enforcement off and on, in turns (each run on a kerfd
// of its own).
func RunUncontended(ctx context.Context, o SharesOptions, d time.Duration, pairs int) (Uncontended, error) {
	var u Uncontended
	for i := range max(pairs, 1) {
		var p UncontendedPair
		for _, enforced := range turns(i) {
			r, err := runAlone(ctx, o, d, enforced)
			if err != nil {
				return u, err
			}
			if enforced {
				p.On = r
			} else {
				p.Off = r
			}
		}
		p.ThroughputRatio = p.On.KernelsPS / p.Off.KernelsPS
		p.P99Ratio = float64(p.On.BatchP99) / float64(p.Off.BatchP99)
		u.Pairs = append(u.Pairs, p)
	}
	var tr, pr []float64
	for _, p := range u.Pairs {
		tr, pr = append(tr, p.ThroughputRatio), append(pr, p.P99Ratio)
	}
	u.ThroughputRatio, u.P99Ratio = median(tr), median(pr)
	for _, p := range u.Pairs {
		if p.ThroughputRatio == u.ThroughputRatio {
			u.On, u.Off = p.On, p.Off
		}
	}
	return u, nil
}

// turns is the order of pair i's runs, enforced or not: unenforced first
// in even pairs, enforced first in odd ones.
func turns(i int) [2]bool {
	if i%2 == 0 {
		return [2]bool{false, true}
	}
	return [2]bool{true, false}
}

// median is the middle value of v (the mean of the two middle ones for an
// even count); 0 if empty.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

func runAlone(ctx context.Context, o SharesOptions, d time.Duration, enforced bool) (UncontendedRun, error) {
	run := UncontendedRun{Enforced: enforced}
	if o.Kernel == 0 {
		o.Kernel = 32
	}
	if o.Backend == "" {
		o.Backend = "emulated"
	}
	dir, err := os.MkdirTemp("", "kerf-bench-alone")
	if err != nil {
		return run, err
	}
	defer os.RemoveAll(dir)
	a, stop, err := startBenchAppliance(ctx, dir, "KERF_GPU__EMULATED__MEMORY=4GiB", "KERF_SLICER__PROFILE=whole",
		"KERF_SLICER__MAX_FRACTION_PER_TENANT=0", "KERF_GPU__BACKEND="+o.Backend,
		fmt.Sprintf("KERF_SLICER__SHARES_UNENFORCED=%v", !enforced))
	if err != nil {
		return run, err
	}
	defer stop()
	p := api.Profile{Name: "bench-alone", GPUs: []api.GPUProfile{{GPU: 0, Slices: []api.SliceSpec{
		{MemoryFraction: 0.4, ComputeShare: 0.5}, {MemoryFraction: 0.4, ComputeShare: 0.5}}}}}
	if _, err := a.Node().Apply(ctx, p, profiles.ApplyOptions{}); err != nil {
		return run, err
	}
	tok, err := a.Tokens().Issue("alone", 0)
	if err != nil {
		return run, err
	}
	c, err := transport.DialUnix(ctx, a.unixPath, transport.Options{Token: []byte(tok), Name: "alone"})
	if err != nil {
		return run, err
	}
	defer c.Close()
	launch, err := tenantkit.NewMatmul(c, o.Kernel)
	if err != nil {
		return run, err
	}
	batch := func() (time.Duration, error) {
		t0 := time.Now()
		for range 8 {
			if err := launch(); err != nil {
				return 0, err
			}
		}
		return time.Since(t0), c.Synchronize()
	}
	for warm := time.Now(); time.Since(warm) < time.Second; {
		if _, err := batch(); err != nil {
			return run, err
		}
	}
	var lat []time.Duration
	start := time.Now()
	for time.Since(start) < d {
		t0 := time.Now()
		if _, err := batch(); err != nil {
			return run, err
		}
		lat = append(lat, time.Since(t0))
	}
	run.KernelsPS = float64(8*len(lat)) / time.Since(start).Seconds()
	run.BatchP99 = p99(lat)
	run.BatchCount = len(lat)
	return run, nil
}

// p99 is the 99th percentile of lat (sorted in place); 0 if empty.
func p99(lat []time.Duration) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return lat[min(len(lat)-1, len(lat)*99/100)]
}
