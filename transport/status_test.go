package transport

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/transport/internal/wire"
)

// reportingAllocator is a testAllocator that reports on its leases: a
// fixed share and utilization per slice, and sessions served elsewhere
// that the test adds.
type reportingAllocator struct {
	*testAllocator
	mu    sync.Mutex
	extra []SessionInfo
}

func (a *reportingAllocator) LeaseUse(t auth.Tenant, id string) (LeaseUse, error) {
	l, err := a.Lease(t, id)
	if err != nil {
		return LeaseUse{}, err
	}
	use := LeaseUse{ID: l.ID}
	for _, s := range l.Slices {
		use.Slices = append(use.Slices, SliceUse{LeaseSlice: s, Share: 0.5, Utilization: 0.125})
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.extra {
		if s.Lease == id {
			use.Sessions = append(use.Sessions, s)
		}
	}
	return use, nil
}

var _ LeaseReporter = (*reportingAllocator)(nil)

func (ts *testServer) openStatus(via string, tok []byte, lease string) (*StatusClient, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := Options{Token: tok, Lease: lease, Name: "status-test"}
	if isUnix(via) {
		return OpenStatusUnix(ctx, ts.sock, opts)
	}
	return OpenStatusQUIC(ctx, ts.quic, QUICOptions{Options: opts, Fingerprint: ts.fp})
}

func TestStatusStream(t *testing.T) {
	alloc := &reportingAllocator{testAllocator: newTestAllocator(1 << 30)}
	ts := startServerB(t, func(s *Server) { s.Allocator = alloc })
	for _, via := range []string{"unix", "quic"} {
		t.Run(via, func(t *testing.T) {
			tok := ts.token(t, "olga-"+via, 0)
			l, err := ts.openLease(t, via, tok, AllocRequest{Count: 1, Fraction: 0.5})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := DialUnix(ctx, ts.sock, Options{Token: tok, Lease: l.ID, Name: "program"})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.MemAlloc(4 << 20); err != nil {
				t.Fatal(err)
			}
			// A session of the lease that another process serves.
			alloc.mu.Lock()
			alloc.extra = append(alloc.extra, SessionInfo{Lease: l.ID, Device: 0, PID: 99, MemUsed: 1 << 20})
			alloc.mu.Unlock()

			sc, err := ts.openStatus(via, tok, l.ID)
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			st, err := sc.Status()
			if err != nil {
				t.Fatal(err)
			}
			if st.Lease != l.ID || len(st.Slices) != 1 || st.DriverVersion != 12040 {
				t.Fatalf("status %+v", st)
			}
			s := st.Slices[0]
			dev := ts.mem.Devices()[0]
			if s.Memory != 512<<20 || s.Share != 0.5 || s.Utilization != 0.125 || s.Name != dev.Name || s.CCMajor != dev.CCMajor {
				t.Fatalf("slice %+v", s)
			}
			if s.Used < 5<<20 {
				t.Fatalf("slice used %d, want the session's 4 MiB and the other process's 1 MiB", s.Used)
			}
			procs := map[int]uint64{}
			for _, p := range st.Processes {
				procs[p.PID] = p.MemUsed
			}
			if len(procs) != 2 || procs[os.Getpid()] < 4<<20 || procs[99] != 1<<20 {
				t.Fatalf("processes %+v, want this one (pid %d) and 99", st.Processes, os.Getpid())
			}
			if sc.Initial.Lease != l.ID || len(sc.Initial.Slices) != 1 {
				t.Fatalf("first status %+v", sc.Initial)
			}

			// The lease is its tenant's to ask about.
			other := ts.token(t, "pia-"+via, 0)
			if _, err := ts.openStatus(via, other, l.ID); abi.ResultOf(err) != abi.ErrNotPermitted {
				t.Fatalf("another tenant's status: %v", err)
			}
			if _, err := ts.openStatus(via, tok, "no-such-lease"); abi.ResultOf(err) != abi.ErrNotPermitted {
				t.Fatalf("status of an unknown lease: %v", err)
			}
			if _, err := ts.openStatus(via, tok, ""); err == nil {
				t.Fatal("a status stream without a lease opened")
			}

			// Once the lease ends, so does its status.
			c.Close()
			l.Close()
			waitFor(t, "the lease to be released", func() bool { return alloc.live() == 0 })
			if _, err := sc.Status(); abi.ResultOf(err) != abi.ErrNotPermitted {
				t.Fatalf("status of a released lease: %v", err)
			}
		})
	}
}

func TestStatusNeedsAReportingAllocator(t *testing.T) {
	alloc := newTestAllocator(1 << 30)
	ts := startServerB(t, func(s *Server) { s.Allocator = alloc })
	tok := ts.token(t, "quinn", 0)
	l, err := ts.openLease(t, "unix", tok, AllocRequest{Count: 1, Fraction: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := ts.openStatus("unix", tok, l.ID); abi.ResultOf(err) != abi.ErrNotSupported {
		t.Fatalf("status without a reporting allocator: %v", err)
	}
}

func TestStatusStreamTakesOnlyQueries(t *testing.T) {
	alloc := &reportingAllocator{testAllocator: newTestAllocator(1 << 30)}
	ts := startServerB(t, func(s *Server) { s.Allocator = alloc })
	tok := ts.token(t, "rita", 0)
	l, err := ts.openLease(t, "unix", tok, AllocRequest{Count: 1, Fraction: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sc, err := ts.openStatus("unix", tok, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if err := sc.conn.WriteFrame(wire.Header{Type: wire.Query}, []byte{1}); err != nil {
		t.Fatal(err)
	}
	if err := sc.conn.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.conn.ReadFrame(); err == nil {
		t.Fatal("a query with a payload was answered")
	}
}

func TestClientDescriptionNamesThePID(t *testing.T) {
	for _, tc := range []struct {
		desc string
		pid  int
	}{
		{clientDescription(4242, "shim /opt/app"), 4242},
		{clientDescription(7, strings.Repeat("x", 300)), 7},
		{"pid 12", 12},
		{"shim pid 12 app", 0},
		{"pid 12x app", 0},
		{"pid -3 app", 0},
		{"pid 99999999999 app", 0},
		{"", 0},
	} {
		if got := clientPID(tc.desc); got != tc.pid {
			t.Errorf("clientPID(%q) = %d, want %d", tc.desc, got, tc.pid)
		}
		h := wire.HelloMsg{Token: []byte("t"), Client: tc.desc}
		if _, err := h.Append(nil); err != nil {
			t.Errorf("hello with client %q: %v", tc.desc, err)
		}
	}
}
