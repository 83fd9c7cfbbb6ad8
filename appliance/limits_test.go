package appliance

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/transport"
)

// newIdle builds an appliance that never runs, for its allocator.
func newIdle(t *testing.T, cfg Config) *Appliance {
	t.Helper()
	a, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

// With the shipped defaults, one tenant taking slice after slice (a
// session each) stops at half the node, and another tenant still gets one.
func TestDefaultLimitLeavesRoomForOthers(t *testing.T) {
	a := newIdle(t, testConfig(t, t.TempDir()))
	session := transport.AllocRequest{Count: 1, Device: 0}
	granted := 0
	var err error
	for range len(a.node.Slices()) {
		if _, err = a.node.slices.Allocate(auth.Tenant{ID: "greedy"}, session); err != nil {
			break
		}
		granted++
	}
	if abi.ResultOf(err) != abi.ErrNotPermitted {
		t.Fatalf("after %d slices: %v, want the tenant's limit", granted, err)
	}
	var held, total uint64
	for _, s := range a.node.Slices() {
		total += s.MemoryLimitBytes
		if s.Tenant == "greedy" {
			held += s.MemoryLimitBytes
		}
	}
	if held == 0 || float64(held) > 0.5*float64(total)+1 {
		t.Fatalf("greedy holds %d of %d bytes", held, total)
	}
	if _, err := a.node.slices.Allocate(auth.Tenant{ID: "other"}, session); err != nil {
		t.Fatalf("another tenant: %v", err)
	}
}

// The configured limit and idle timeout hold at every start, whatever the
// state kept from the last run says, and the start log says so.
func TestConfiguredLimitHoldsAfterRestart(t *testing.T) {
	dir := t.TempDir()
	for i, tc := range []struct {
		fraction, gpus, want float64
		idle                 time.Duration
	}{
		{0.5, 0, 0.5, 0},
		{0, 0, 0, time.Minute},
		{0.5, 0.2, 0.2, time.Hour},
		{0.25, 2, 0.25, 0},
	} {
		cfg := testConfig(t, dir)
		cfg.Slicer.MaxFractionPerTenant, cfg.Slicer.MaxGPUsPerTenant, cfg.Slicer.IdleTimeout = tc.fraction, tc.gpus, tc.idle
		var logged bytes.Buffer
		a, err := New(cfg, slog.New(slog.NewTextHandler(&logged, nil)))
		if err != nil {
			t.Fatal(err)
		}
		got := a.node.sl.Status().DefaultPolicy
		a.Close()
		if got.MaxGPUs != tc.want || got.IdleTimeout != tc.idle {
			t.Fatalf("fraction %g, GPUs %g, idle %v: policy %+v, want %g GPUs", tc.fraction, tc.gpus, tc.idle, got, tc.want)
		}
		if !strings.Contains(logged.String(), "slicer default policy from the configuration") ||
			i > 0 && !strings.Contains(logged.String(), "replaces the one kept in the state") {
			t.Fatalf("start %d logged:\n%s", i, logged.String())
		}
	}
}

// On the shipped default layout an idle GPU serves any fraction, and
// a whole GPU without -p; a refusal tells the tenant what would fit
// without naming the others, and the log names them for the operator.
func TestAnyFractionOnTheDefaultLayout(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Slicer.MaxFractionPerTenant = 0
	var logged bytes.Buffer
	// Refusals are logged at debug level: waiting tenants retry.
	a, err := New(cfg, slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	lease := func(tenant string, fraction float64) (transport.Lease, error) {
		return a.node.slices.Allocate(auth.Tenant{ID: tenant}, transport.AllocRequest{Count: 1, Fraction: fraction, Device: -1})
	}
	whole, err := lease("w", 0)
	if err != nil {
		t.Fatalf("a whole GPU on %s: %v", cfg.Slicer.Profile, err)
	}
	a.node.slices.Release(whole.ID)
	if _, err := lease("a", 0.5); err != nil {
		t.Fatalf("half the GPU on %s: %v", cfg.Slicer.Profile, err)
	}
	if _, err := lease("b", 0.3); err != nil {
		t.Fatalf("0.3 of the GPU: %v", err)
	}
	_, err = lease("c", 0.25)
	if abi.ResultOf(err) != abi.ErrOutOfMemory || !strings.Contains(err.Error(), "ask for at most 20% of a GPU") ||
		!strings.Contains(err.Error(), "other tenants hold 80%") || strings.Contains(err.Error(), " a holds") {
		t.Fatalf("past the capacity: %v", err)
	}
	if !strings.Contains(logged.String(), "a holds 50%") {
		t.Fatalf("the log does not name the holders:\n%s", logged.String())
	}
}
