package transport

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/auth"
)

// poolAllocator answers every allocation with a redirect to another
// member, and grants only the reservation it named.
type poolAllocator struct {
	*testAllocator
	redirect Redirect
}

func (a *poolAllocator) Allocate(t auth.Tenant, req AllocRequest) (Lease, error) {
	switch req.Reservation {
	case "":
		if !req.Redirects {
			return a.testAllocator.Allocate(t, req)
		}
		rd := a.redirect
		return Lease{}, &rd
	case a.redirect.Reservation:
		return a.testAllocator.Allocate(t, AllocRequest{Count: 1, Fraction: 0.5, Device: -1})
	}
	return Lease{}, abi.Errorf(abi.ErrOutOfMemory, "no reservation %s", req.Reservation)
}

func TestRedirectAndClaim(t *testing.T) {
	alloc := &poolAllocator{testAllocator: newTestAllocator(1 << 30),
		redirect: Redirect{Node: "node-b", Addr: "127.0.0.1:7443", Reservation: "pool-0123456789abcdef"}}
	ts := startServerB(t, func(s *Server) { s.Allocator = alloc })
	for _, via := range []string{"unix", "quic"} {
		t.Run(via, func(t *testing.T) {
			tok := ts.token(t, "olga-"+via, 0)
			_, err := ts.openLease(t, via, tok, AllocRequest{Count: 1, Fraction: 0.5, Device: -1})
			var rd *Redirect
			if !errors.As(err, &rd) || *rd != alloc.redirect {
				t.Fatalf("allocation answered %v, want the redirect %+v", err, alloc.redirect)
			}
			if alloc.live() != 0 {
				t.Fatalf("a redirected allocation holds %d leases here", alloc.live())
			}
			l, err := ts.openLease(t, via, tok, AllocRequest{Reservation: rd.Reservation})
			if err != nil {
				t.Fatalf("claim of %s: %v", rd.Reservation, err)
			}
			if len(l.Slices) != 1 || alloc.live() != 1 {
				t.Fatalf("claimed lease %+v, %d live", l.Lease, alloc.live())
			}
			l.Close()
			waitFor(t, "the claimed lease to be released", func() bool { return alloc.live() == 0 })
			if _, err := ts.openLease(t, via, tok, AllocRequest{Reservation: "pool-none"}); abi.ResultOf(err) != abi.ErrOutOfMemory {
				t.Fatalf("claim of an unknown reservation: %v", err)
			}
		})
	}
}

// A client older than the redirect (protocol version 4) is never sent
// one: the allocator serves it as a node alone.
func TestNoRedirectForOlderClients(t *testing.T) {
	alloc := &poolAllocator{testAllocator: newTestAllocator(1 << 30),
		redirect: Redirect{Node: "node-b", Addr: "127.0.0.1:7443", Reservation: "pool-0123456789abcdef"}}
	ts := startServerB(t, func(s *Server) { s.Allocator = alloc })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := OpenLeaseUnix(ctx, ts.sock, Options{Token: ts.token(t, "old", 0), maxVersion: 4}, AllocRequest{Count: 1, Fraction: 0.5, Device: -1})
	if err != nil {
		t.Fatalf("a version 4 client: %v, want a lease", err)
	}
	if len(l.Slices) != 1 || alloc.live() != 1 {
		t.Fatalf("lease %+v, %d live", l.Lease, alloc.live())
	}
	l.Close()
}
