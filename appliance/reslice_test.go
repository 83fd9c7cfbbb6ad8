package appliance

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/internal/tenantkit"
	"github.com/kerf-edge/kerf/internal/testkit"
	"github.com/kerf-edge/kerf/profiles"
	"github.com/kerf-edge/kerf/profiles/api"
	"github.com/kerf-edge/kerf/slicer"
	"github.com/kerf-edge/kerf/transport"
)

// A live tenant's slice grows and shrinks in place when the operator
// applies profiles: its worker is not restarted, its calls keep working,
// and a shrink below what it uses waits until it frees memory.
func TestLiveResliceChangesLimitInPlace(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.GPU.Emulated.Memory = "2GiB"
	cfg.Slicer.Profile = "uniform-10"
	a := start(t, cfg)
	c := dialTenant(t, a, "live", "unix")
	_, before, err := c.MemGetInfo()
	if err != nil {
		t.Fatal(err)
	}
	pid := workerOf(t, a, "live")
	apply := func(name string, force bool) {
		t.Helper()
		p, err := a.api.Store().Profile(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.node.Apply(context.Background(), p, profiles.ApplyOptions{Force: force}); err != nil {
			t.Fatalf("apply %s: %v", name, err)
		}
	}
	total := func() uint64 {
		_, tot, err := c.MemGetInfo()
		if err != nil {
			t.Fatalf("call during re-slicing: %v", err)
		}
		return tot
	}

	// Grow: the whole GPU, at once.
	apply("whole", false)
	testkit.WaitFor(t, "the slice to grow in place", func() bool { return total() > 4*before })
	big, err := c.MemAlloc(5 * before) // more than the old slice held
	if err != nil {
		t.Fatalf("allocation in the grown slice: %v", err)
	}
	if workerOf(t, a, "live") != pid {
		t.Fatal("the worker was restarted")
	}

	// Back to its grant (a tenth), below use: pending until the tenant
	// frees; uniform-20 has no slice that big, so it stays outside it.
	apply("uniform-20", false)
	st := a.node.sl.Status()
	if len(st.Pending) == 0 {
		t.Fatalf("shrinking below use left nothing pending: %+v", st)
	}
	if tot := total(); tot < 5*before {
		t.Fatalf("limit %d went below what the tenant uses", tot)
	}
	if err := c.MemFree(big); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the pending shrink to apply once memory was freed", func() bool {
		return total() == before
	})
	if p := a.node.sl.Status().Pending; len(p) != 3 || p[0].Kind != "orphan" || p[1].Kind != "create" {
		t.Fatalf("pending at the grant: %+v", p)
	}
	// Forced: below the grant, to the profile's 5%.
	apply("uniform-20", true)
	testkit.WaitFor(t, "the forced shrink", func() bool {
		return total() < before && len(a.node.sl.Status().Pending) == 0
	})
	if workerOf(t, a, "live") != pid {
		t.Fatal("the worker was restarted")
	}
	_ = slicer.ErrPending
}

// A tenant running kernels shows an achieved compute share on its slice;
// an idle tenant's slice shows none.
func TestAchievedShareIsMeasured(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Slicer.Profile = "uniform-10"
	a := start(t, cfg)
	busy := dialTenant(t, a, "busy", "unix")
	dialTenant(t, a, "idle", "unix")
	launch := mustMatmul(t, busy, 96)
	share := func(tenant string) float64 {
		for _, s := range a.node.Slices() {
			if s.Tenant == tenant {
				return s.ShareAchieved
			}
		}
		return -1
	}
	testkit.WaitFor(t, "the busy tenant's achieved share", func() bool {
		for range 4 {
			if err := launch(); err != nil {
				t.Fatal(err)
			}
		}
		if err := busy.Synchronize(); err != nil {
			t.Fatal(err)
		}
		return share("busy") > 0.2
	})
	if s := share("idle"); s != 0 {
		t.Fatalf("idle tenant's achieved share %v", s)
	}
}

// Two tenants in 30% and 70% slices, both running kernels without pause,
// get GPU time in that proportion: kernels are paced by compute share.
func TestComputeSharesAreEnforced(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Slicer.Profile = "whole"
	cfg.Slicer.MaxFractionPerTenant = 0 // "big" holds 70% of the node
	// A grant must cover several kernels; under the race detector an
	// emulated matmul runs for 50–70 ms.
	cfg.Slicer.ShareQuantum = 300 * time.Millisecond
	a := start(t, cfg)
	split := api.Profile{Name: "split-30-70", GPUs: []api.GPUProfile{{GPU: 0, Slices: []api.SliceSpec{
		{MemoryFraction: 0.3, ComputeShare: 0.3}, {MemoryFraction: 0.7, ComputeShare: 0.7}}}}}
	if _, err := a.node.Apply(context.Background(), split, profiles.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	small := dialTenant(t, a, "small", "unix") // the smallest free slice: 30%
	big := dialTenant(t, a, "big", "unix")
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	for _, c := range []*transport.Client{small, big} {
		launch := mustMatmul(t, c, 64)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				// Long batches: a tenant between batches is not asking, and
				// work conservation gives its turn away.
				for range 32 {
					if err := launch(); err != nil {
						t.Error(err)
						return
					}
				}
				if err := c.Synchronize(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	share := func(tenant string) float64 {
		for _, s := range a.node.Slices() {
			if s.Tenant == tenant {
				return s.ShareAchieved
			}
		}
		return 0
	}
	// Let the smoothed shares settle, then check the split over a window.
	time.Sleep(4 * time.Second)
	var sum float64
	const samples = 8
	for range samples {
		s, b := share("small"), share("big")
		if s+b == 0 {
			t.Fatal("no GPU time measured")
		}
		sum += b / (s + b)
		time.Sleep(250 * time.Millisecond)
	}
	stop()
	wg.Wait()
	got := sum / samples
	t.Logf("big tenant's part of the GPU time: %.3f (target 0.7)", got)
	if got < 0.6 || got > 0.8 {
		t.Fatalf("big tenant got %.2f of the GPU time, want 0.7 ± 0.1", got)
	}
}

// mustMatmul prepares an n×n matmul on c and returns its launcher.
func mustMatmul(t *testing.T, c *transport.Client, n uint32) func() error {
	t.Helper()
	launch, err := tenantkit.NewMatmul(c, n)
	if err != nil {
		t.Fatal(err)
	}
	return launch
}
