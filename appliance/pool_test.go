package appliance

import (
	"errors"
	"testing"

	"github.com/kerf-edge/kerf/pool"
	"github.com/kerf-edge/kerf/profiles"
	"github.com/kerf-edge/kerf/profiles/api"
)

// A placement asked of a member whose pool state is not ready is
// unavailable (503), not an internal error.
func TestPoolPlaceBeforeReadyIsUnavailable(t *testing.T) {
	p := pool.New(pool.Options{Node: "a"})
	_, err := poolAPI{p}.Place(api.PoolPlacementRequest{Tenant: "t", Count: 1, Fraction: 0.5})
	if !errors.Is(err, profiles.ErrUnavailable) || !errors.Is(err, pool.ErrNotReady) {
		t.Fatalf("Place before the pool started: %v, want ErrUnavailable wrapping ErrNotReady", err)
	}
	if err := poolAPIError(pool.ErrNotReady); !errors.Is(err, profiles.ErrUnavailable) {
		t.Fatalf("buckets not yet created: %v, want ErrUnavailable", err)
	}
}
