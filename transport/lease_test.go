package transport

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/auth"
)

// testAllocator places slices by free memory per device; the slicer's
// allocator replaces it in kerfd.
type testAllocator struct {
	mu     sync.Mutex
	total  []uint64
	free   []uint64
	leases map[string]testLease
	next   int
}

type testLease struct {
	tenant string
	lease  Lease
}

func newTestAllocator(total ...uint64) *testAllocator {
	return &testAllocator{total: total, free: append([]uint64(nil), total...), leases: map[string]testLease{}}
}

func (a *testAllocator) Allocate(t auth.Tenant, req AllocRequest) (Lease, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.next++
	l := Lease{ID: fmt.Sprintf("lease-%d", a.next)}
	used := map[int]bool{}
	for range req.Count {
		placed := false
		for d := range a.free {
			if used[d] || req.Device >= 0 && d != req.Device {
				continue
			}
			need := req.Memory
			if need == 0 {
				need = uint64(req.Fraction * float64(a.total[d]))
			}
			if need == 0 {
				need = a.total[d] / 4
			}
			if a.free[d] >= need {
				used[d], placed = true, true
				l.Slices = append(l.Slices, LeaseSlice{Device: d, Memory: need})
				break
			}
		}
		if !placed {
			for _, s := range l.Slices {
				a.free[s.Device] += s.Memory
			}
			return Lease{}, abi.Errorf(abi.ErrOutOfMemory, "no capacity for %d slices", req.Count)
		}
	}
	for _, s := range l.Slices {
		a.free[s.Device] -= s.Memory
	}
	a.leases[l.ID] = testLease{t.ID, l}
	return l, nil
}

func (a *testAllocator) Lease(t auth.Tenant, id string) (Lease, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l, ok := a.leases[id]
	if !ok || l.tenant != t.ID {
		return Lease{}, fmt.Errorf("no lease %s for tenant %s", id, t.ID)
	}
	return l.lease, nil
}

func (a *testAllocator) Release(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l, ok := a.leases[id]
	if !ok {
		panic("released twice or never granted: " + id)
	}
	for _, s := range l.lease.Slices {
		a.free[s.Device] += s.Memory
	}
	delete(a.leases, id)
}

func (a *testAllocator) live() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.leases)
}

func (ts *testServer) openLease(t *testing.T, via string, tok []byte, req AllocRequest) (*LeaseHolder, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := Options{Token: tok, Name: "lease-test"}
	if isUnix(via) {
		return OpenLeaseUnix(ctx, ts.sock, opts, req)
	}
	return OpenLeaseQUIC(ctx, ts.quic, QUICOptions{Options: opts, Fingerprint: ts.fp}, req)
}

func TestLeases(t *testing.T) {
	alloc := newTestAllocator(1 << 30)
	ts := startServerB(t, func(s *Server) { s.Allocator = alloc })
	for _, via := range transports {
		t.Run(via, func(t *testing.T) {
			tok := ts.token(t, "ivan-"+via, 0)
			l, err := ts.openLease(t, via, tok, AllocRequest{Count: 1, Fraction: 0.5})
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Slices) != 1 || l.Slices[0].Memory != 512<<20 {
				t.Fatalf("lease %+v", l.Lease)
			}
			// A session in the lease sees the slice.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := DialUnix(ctx, ts.sock, Options{Token: tok, Lease: l.ID})
			if err != nil {
				t.Fatal(err)
			}
			if c.Device.TotalMem != 512<<20 {
				t.Fatalf("session in lease sees %d bytes", c.Device.TotalMem)
			}
			// No room for a second half and a bit.
			_, err = ts.openLease(t, via, tok, AllocRequest{Count: 1, Fraction: 0.6})
			if abi.ResultOf(err) != abi.ErrOutOfMemory || !strings.Contains(err.Error(), "no capacity") {
				t.Fatalf("over-committed lease: %v", err)
			}
			// Another tenant cannot use this lease.
			other := ts.token(t, "judy-"+via, 0)
			if _, err := DialUnix(ctx, ts.sock, Options{Token: other, Lease: l.ID}); abi.ResultOf(err) != abi.ErrNotPermitted {
				t.Fatalf("lease used by another tenant: %v", err)
			}
			// Nor a device outside it.
			if _, err := DialUnix(ctx, ts.sock, Options{Token: tok, Lease: l.ID, Device: 1}); err == nil {
				t.Fatal("session outside its lease admitted")
			}
			c.Close()
			l.Close()
			waitFor(t, "the lease to be released", func() bool { return alloc.live() == 0 })
		})
	}
}

func TestSessionWithoutLeaseGetsItsOwnSlice(t *testing.T) {
	alloc := newTestAllocator(1 << 30)
	ts := startServerB(t, func(s *Server) { s.Allocator = alloc })
	c := ts.dial(t, "quic", ts.token(t, "kim", 0))
	if c.Device.TotalMem != 256<<20 || alloc.live() != 1 {
		t.Fatalf("implicit slice: total %d, %d leases", c.Device.TotalMem, alloc.live())
	}
	c.Close()
	waitFor(t, "the session's slice to be released", func() bool { return alloc.live() == 0 })
}

func TestLeaseNeedsTwoDistinctDevices(t *testing.T) {
	alloc := newTestAllocator(1 << 30)
	ts := startServerB(t, func(s *Server) { s.Allocator = alloc })
	if _, err := ts.openLease(t, "unix", ts.token(t, "leo", 0), AllocRequest{Count: 2, Fraction: 0.1}); abi.ResultOf(err) != abi.ErrOutOfMemory {
		t.Fatalf("two slices on a one-GPU node: %v", err)
	}
}
