package appliance

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/internal/testkit"
	"github.com/kerf-edge/kerf/transport"
)

// A tenant that opens sessions in a loop gets at most
// tenants.limits.sessions_per_lease workers in a lease and
// sessions_per_tenant in all; the rest are refused at their hello with
// CUDA_ERROR_OUT_OF_MEMORY and the cap named, counted in
// kerf_tenant_sessions_refused_total. Another tenant is still served, and
// a place comes back when a session ends.
func TestSessionCapsHoldUnderAFlood(t *testing.T) {
	dir := t.TempDir()
	cfg, err := LoadConfig("", []string{
		"KERF_STATE_DIR=" + dir, "KERF_LISTEN__QUIC=127.0.0.1:0", "KERF_LISTEN__HTTP=127.0.0.1:0",
		"KERF_GPU__BACKEND=emulated", "KERF_GPU__EMULATED__MEMORY=1GiB", "KERF_INGEST__ENABLED=false",
		"KERF_SLICER__MAX_FRACTION_PER_TENANT=0",
		"KERF_TENANTS__LIMITS__SESSIONS_PER_TENANT=5", "KERF_TENANTS__LIMITS__SESSIONS_PER_LEASE=3",
	})
	if err != nil {
		t.Fatal(err)
	}
	a := start(t, cfg)
	bundle := func(tenant string) auth.Bundle {
		t.Helper()
		path, err := a.IssueBundle(tenant, 0, filepath.Join(t.TempDir(), tenant+".json"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := auth.ReadBundle(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	flood, other := bundle("flood"), bundle("other")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lease := func(b auth.Bundle, fraction float64) string {
		t.Helper()
		l, err := transport.OpenLeaseUnix(ctx, b.Socket, transport.Options{Token: []byte(b.Token)}, transport.AllocRequest{Count: 1, Fraction: fraction})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l.ID
	}
	dial := func(b auth.Bundle, lease string, quic bool) (*transport.Client, error) {
		opts := transport.Options{Token: []byte(b.Token), Lease: lease}
		if quic {
			return transport.DialQUIC(ctx, b.QUIC, transport.QUICOptions{Options: opts, Fingerprint: a.Fingerprint()})
		}
		return transport.DialUnix(ctx, b.Socket, opts)
	}
	workers := func(tenant string) int {
		n := 0
		for _, s := range a.Sessions() {
			if s.Tenant == tenant && s.Worker != 0 {
				n++
			}
		}
		return n
	}
	refused := func(err error, cap string) {
		t.Helper()
		if abi.ResultOf(err) != abi.ErrOutOfMemory || !strings.Contains(err.Error(), cap) {
			t.Fatalf("a session over %s: %v", cap, err)
		}
	}

	first := lease(flood, 0.25)
	var open []*transport.Client
	for i := range 20 {
		c, err := dial(flood, first, i%2 == 1)
		if i < 3 {
			if err != nil {
				t.Fatalf("session %d of the lease: %v", i, err)
			}
			open = append(open, c)
			continue
		}
		refused(err, "tenants.sessions_per_lease")
		if n := workers("flood"); n > 3 {
			t.Fatalf("%d workers for a lease capped at 3", n)
		}
	}
	second := lease(flood, 0.25)
	for i := range 10 {
		c, err := dial(flood, second, false)
		if i < 2 {
			if err != nil {
				t.Fatalf("session %d of the second lease: %v", i, err)
			}
			open = append(open, c)
			continue
		}
		refused(err, "tenants.sessions_per_tenant")
	}
	if _, err := dial(flood, "", false); err == nil {
		t.Fatal("a session in a slice of its own passed the tenant's cap")
	}
	if n := workers("flood"); n != 5 {
		t.Fatalf("%d workers for a tenant capped at 5", n)
	}

	c, err := dial(other, lease(other, 0.1), true)
	if err != nil {
		t.Fatalf("another tenant during the flood: %v", err)
	}
	c.Close()

	if got := counter(t, a, "kerf_tenant_sessions_refused_total", "reason", "lease_cap"); got != 17 {
		t.Errorf("lease_cap refusals counted %g, want 17", got)
	}
	if got := counter(t, a, "kerf_tenant_sessions_refused_total", "reason", "tenant_cap"); got != 9 {
		t.Errorf("tenant_cap refusals counted %g, want 9", got)
	}

	open[0].Close()
	testkit.WaitFor(t, "the closed session's worker to go", func() bool { return workers("flood") == 4 })
	c, err = dial(flood, first, false)
	if err != nil {
		t.Fatalf("a session after one ended: %v", err)
	}
	open = append(open, c)
	for _, c := range open {
		c.Close()
	}
}
