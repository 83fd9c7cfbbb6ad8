package appliance

import (
	"slices"
	"testing"

	"github.com/kerf-edge/kerf/internal/kerfenv"
)

// A worker keeps only what the driver and the Go runtime read; the shim's
// KERF_* settings go along only when the test-only shim driver is allowed.
func TestWorkerEnviron(t *testing.T) {
	parent := []string{"LD_LIBRARY_PATH=/lib", "HOME=/root", kerfenv.Bundle + "=/state/bundles/default.json", "KERF_STATE_DIR=/state"}
	got := workerEnviron(parent)
	want := []string{workerEnv + "=1", "LD_LIBRARY_PATH=/lib"}
	if !slices.Equal(got, want) {
		t.Fatalf("worker environment %q, want %q", got, want)
	}
	got = workerEnviron(append(parent, kerfenv.TestAllowShimDriver+"=1", workerEnv+"=0"))
	want = []string{workerEnv + "=1", "LD_LIBRARY_PATH=/lib", kerfenv.Bundle + "=/state/bundles/default.json", "KERF_STATE_DIR=/state", kerfenv.TestAllowShimDriver + "=1"}
	if !slices.Equal(got, want) {
		t.Fatalf("worker environment with the shim as driver %q, want %q", got, want)
	}
}
