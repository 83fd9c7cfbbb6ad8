package transport

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/abi"
)

// sharedMemory is one LeaseMemory of limit bytes for every session.
type sharedMemory struct {
	mu           sync.Mutex
	limit, total uint64
}

func (m *sharedMemory) Reserve(n uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.total+n > m.limit {
		return abi.Errorf(abi.ErrOutOfMemory, "lease full")
	}
	m.total += n
	return nil
}

func (m *sharedMemory) Release(n uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.total -= n
}

func (m *sharedMemory) Available() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.limit - m.total
}

func (m *sharedMemory) used() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.total
}

// leaseWithSessions opens a half-GPU lease as the holder of tok and n
// local sessions in it.
func (ts *testServer) leaseWithSessions(t *testing.T, tok []byte, n int) (*LeaseHolder, []*Client) {
	t.Helper()
	l, err := ts.openLease(t, "unix", tok, AllocRequest{Count: 1, Fraction: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs := make([]*Client, n)
	for i := range cs {
		if cs[i], err = DialUnix(ctx, ts.sock, Options{Token: tok, Lease: l.ID}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cs[i].Close() })
	}
	return l, cs
}

// The sessions of a lease draw from one account: what one holds another
// cannot have, and what a session leaves goes back when it ends.
func TestLeaseSessionsShareMemory(t *testing.T) {
	alloc := newTestAllocator(1 << 30)
	shared := &sharedMemory{limit: 48 << 20}
	ts := startServerB(t, func(s *Server) {
		s.Allocator = alloc
		s.LeaseMemory = func(Admission) LeaseMemory { return shared }
	})
	_, cs := ts.leaseWithSessions(t, ts.token(t, "mia", 0), 2)
	a, b := cs[0], cs[1]
	p, err := a.MemAlloc(32 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.MemAlloc(32 << 20); abi.ResultOf(err) != abi.ErrOutOfMemory {
		t.Fatalf("a second 32 MiB in a 48 MiB lease: %v", err)
	}
	if free, _, err := b.MemGetInfo(); err != nil || free != 16<<20 {
		t.Fatalf("the other session's free memory: %d, %v; want the lease's 16 MiB", free, err)
	}
	if err := a.MemFree(p); err != nil {
		t.Fatal(err)
	}
	if _, err := b.MemAlloc(32 << 20); err != nil {
		t.Fatalf("after the first was freed: %v", err)
	}
	if _, err := a.MemAlloc(8 << 20); err != nil {
		t.Fatal(err)
	}
	a.Close()
	waitFor(t, "the closed session's memory to go back", func() bool { return shared.used() == 32<<20 })
}

// When the stream holding a lease closes, the lease's sessions end first
// (their next call: CUDA_ERROR_DEVICE_UNAVAILABLE), then it is released;
// closing a tenant closes the streams holding its leases.
func TestLeaseEndEndsItsSessions(t *testing.T) {
	alloc := newTestAllocator(1 << 30)
	ts := startServerB(t, func(s *Server) { s.Allocator = alloc })
	for _, end := range []string{"holder", "tenant", "lease"} {
		t.Run(end, func(t *testing.T) {
			tenant := "nia-" + end
			l, cs := ts.leaseWithSessions(t, ts.token(t, tenant, 0), 1)
			c := cs[0]
			if _, err := c.MemAlloc(1 << 20); err != nil {
				t.Fatal(err)
			}
			switch end {
			case "holder":
				l.Close()
			case "tenant":
				ts.srv.CloseTenant(tenant)
			case "lease":
				ts.srv.CloseLease(l.ID)
			}
			waitFor(t, "the lease to be released", func() bool { return alloc.live() == 0 })
			if n := len(ts.srv.Sessions()); n != 0 {
				t.Fatalf("%d sessions left once the lease was released", n)
			}
			if _, err := c.MemAlloc(1 << 20); abi.ResultOf(err) != abi.ErrDeviceUnavailable {
				t.Fatalf("a call after the lease ended: %v", err)
			}
			select {
			case <-l.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the holder did not learn that its lease ended")
			}
		})
	}
}
