package appliance

import (
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/transport"
)

// The sessions of a lease share its slice; a tenant's sessions its cap;
// what one holder gives back is at most what it holds; a holder that ends
// gives back everything.
func TestLeaseMemoryAccounts(t *testing.T) {
	slice := map[string]uint64{"l1": 100, "l2": 100}
	var tenantCap uint64
	m := newLeaseMemory(func(lease string, dev int) uint64 { return slice[lease] }, func(string) uint64 { return tenantCap })
	adm := func(lease string) transport.Admission {
		return transport.Admission{Tenant: auth.Tenant{ID: "alice"}, Lease: lease}
	}
	a, b, other := m.open(adm("l1")), m.open(adm("l1")), m.open(adm("l2"))
	must := func(h *leaseHolder, n uint64, want abi.Result) {
		t.Helper()
		if got := abi.ResultOf(h.Reserve(n)); got != want {
			t.Fatalf("reserve %d: %v, want %v", n, got, want)
		}
	}
	must(a, 60, abi.Success)
	if got := b.Available(); got != 40 {
		t.Fatalf("b sees %d free in its lease, want 40", got)
	}
	must(b, 60, abi.ErrOutOfMemory) // 120 > 100 across the lease's sessions
	must(b, 40, abi.Success)
	must(other, 100, abi.Success) // another lease, another slice
	b.Release(1000)               // at most what b holds goes back
	if got := m.used("l1", 0); got != 60 {
		t.Fatalf("l1 holds %d after b let go, want 60", got)
	}
	a.close()
	if got := m.used("l1", 0); got != 0 {
		t.Fatalf("l1 holds %d after its holders ended", got)
	}
	tenantCap = 150 // alice holds 100 in l2
	if got := a.Available(); got != 50 {
		t.Fatalf("a sees %d free under alice's cap, want 50", got)
	}
	must(a, 60, abi.ErrOutOfMemory)
	must(a, 50, abi.Success)
	delete(slice, "l1") // the lease ended
	must(b, 1, abi.ErrDeviceUnavailable)
}
