package appliance

import (
	"io"
	"log/slog"
	"testing"

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

// The configured limit holds at every start, whatever the state kept from
// the last run says.
func TestConfiguredLimitHoldsAfterRestart(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		fraction, gpus, want float64
	}{
		{0.5, 0, 0.5},
		{0, 0, 0},
		{0.5, 0.2, 0.2},
		{0.25, 2, 0.25},
	} {
		cfg := testConfig(t, dir)
		cfg.Slicer.MaxFractionPerTenant, cfg.Slicer.MaxGPUsPerTenant = tc.fraction, tc.gpus
		a, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		got := a.node.sl.Status().DefaultPolicy.MaxGPUs
		a.Close()
		if got != tc.want {
			t.Fatalf("fraction %g, GPUs %g: a tenant's limit is %g GPUs, want %g", tc.fraction, tc.gpus, got, tc.want)
		}
	}
}
