package appliance

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/profiles/api"
	"github.com/kerf-edge/kerf/transport"
)

// SharesBenchOptions size `kerf bench shares`.
type SharesBenchOptions struct {
	Shares   []float64     // one tenant per share, in slices of that share (default 0.3, 0.7)
	Duration time.Duration // measured time, after a warm-up (default 10s)
	Window   time.Duration // the windows shares are judged over (default 1s)
	Kernel   uint32        // the matmul's n: the kernels' length (default 32)
	Backend  string        // emulated (default) or cuda
}

// SharesBenchResult is what `kerf bench shares` measured.
type SharesBenchResult struct {
	Windows []SharesWindow `json:"windows"`
	Tenants []SharesTenant `json:"tenants"`
	// Utilisation is the GPU time used over wall time, all tenants.
	Utilisation float64 `json:"utilisation"`
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
}

// BenchShares runs tenants in slices of different compute shares on GPU 0
// (emulated, or real with Backend "cuda"), each launching kernels without pause and synchronising
// only with itself, and measures the part of the GPU time each gets over
// every window.
func BenchShares(ctx context.Context, o SharesBenchOptions) (SharesBenchResult, error) {
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
	var res SharesBenchResult
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
	a, stop, err := startBenchAppliance(ctx, dir, "KERF_GPU__EMULATED__MEMORY=4GiB", "KERF_SLICER__PROFILE=whole",
		"KERF_GPU__BACKEND="+o.Backend)
	if err != nil {
		return res, err
	}
	defer stop()
	p := api.Profile{Name: "bench-shares", GPUs: []api.GPUProfile{{GPU: 0}}}
	for _, s := range o.Shares {
		p.GPUs[0].Slices = append(p.GPUs[0].Slices, api.SliceSpec{MemoryFraction: s * 0.8, ComputeShare: s})
	}
	if _, err := a.node.Apply(ctx, p); err != nil {
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
		tok, err := a.tokens.Issue(names[i], 0)
		if err != nil {
			return res, err
		}
		if clients[i], err = transport.DialUnix(ctx, a.cfg.UnixPath(), transport.Options{Token: []byte(tok), Name: names[i]}); err != nil {
			return res, fmt.Errorf("tenant %s: %w", names[i], err)
		}
		defer clients[i].Close()
	}
	for _, s := range a.node.Slices() {
		if i := slices.Index(names, s.Tenant); i >= 0 && math.Abs(s.ShareTarget-o.Shares[i]) > 1e-6 {
			return res, fmt.Errorf("tenant %s landed in a %.0f%% slice, not %.0f%%", s.Tenant, 100*s.ShareTarget, 100*o.Shares[i])
		}
	}

	lctx, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	kernelsRun := make([]uint64, len(clients))
	errc := make(chan error, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		launch, err := newMatmul(c, o.Kernel)
		if err != nil {
			return res, fmt.Errorf("tenant %s: %w", names[i], err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lctx.Err() == nil {
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
				kernelsRun[i] += 8
			}
		}()
	}
	busy := func() []busyReport {
		by := a.workers.busyByTenant()
		out := make([]busyReport, len(names))
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
			if dt := cur[i].at.Sub(prev[i].at); dt > 0 {
				rates[i] = float64(cur[i].busy-prev[i].busy) / float64(dt)
			}
			sum += rates[i]
		}
		if sum <= 0 {
			return res, errors.New("no GPU time was reported in a window")
		}
		w := SharesWindow{Seconds: cur[0].at.Sub(prev[0].at).Seconds()}
		for i := range cur {
			w.Parts = append(w.Parts, rates[i]/sum)
		}
		res.Windows = append(res.Windows, w)
		prev = cur
	}
	stopLoops()
	wg.Wait()
	for i := range prev {
		if dt := prev[i].at.Sub(first[i].at); dt > 0 {
			res.Utilisation += float64(prev[i].busy-first[i].busy) / float64(dt)
		}
	}
	for i, target := range o.Shares {
		t := SharesTenant{Target: target, Min: 1, Kernels: kernelsRun[i]}
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

// newMatmul prepares an n×n matmul on c and returns a function that
// launches it.
func newMatmul(c *transport.Client, n uint32) (func() error, error) {
	fn, layout, err := loadBenchKernel(c, "matmul")
	if err != nil {
		return nil, err
	}
	var bufs [3]uint64
	for i := range bufs {
		if bufs[i], err = c.MemAlloc(uint64(4 * n * n)); err != nil {
			return nil, err
		}
	}
	params := make([]byte, layout[len(layout)-1].Offset+layout[len(layout)-1].Size)
	for i, l := range layout {
		if l.Size == 8 {
			binary.LittleEndian.PutUint64(params[l.Offset:], bufs[i%3])
		} else {
			binary.LittleEndian.PutUint32(params[l.Offset:], n)
		}
	}
	cfg := abi.LaunchConfig{Grid: abi.Dim3{X: n / 16, Y: n / 16, Z: 1}, Block: abi.Dim3{X: 16, Y: 16, Z: 1}}
	return func() error { return c.LaunchKernel(fn, cfg, 0, params) }, nil
}
