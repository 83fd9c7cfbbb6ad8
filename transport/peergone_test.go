package transport

import (
	"context"
	"testing"

	"github.com/kerf-edge/kerf/internal/testkit"
)

// A QUIC tenant whose process dies without a word (its socket closed by
// the kernel, no CONNECTION_CLOSE) ends its session at the server's next
// keep-alive, when the tenant's host answers "port unreachable", not at
// the idle timeout (15 s, longer than the wait here). Another tenant on
// the same address, alive, keeps its session.
func TestQUICTenantGoneEndsItsSession(t *testing.T) {
	ts := startServer(t)
	neighbour := ts.dial(t, "quic", ts.token(t, "neighbour", 0))
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTimeout)
	defer cancel()
	conn, tr, err := dialQUICFrom(ctx, "127.0.0.1", ts.quic)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newClient(&quicStream{Stream: st}, nil, Options{Token: ts.token(t, "doomed", 0), Name: "doomed"})
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, c)
	sessionOf := func(tenant string) bool {
		for _, s := range ts.srv.Sessions() {
			if s.Tenant == tenant {
				return true
			}
		}
		return false
	}
	if !sessionOf("doomed") {
		t.Fatal("no session for the tenant")
	}

	tr.Conn.Close() // the process dies: its kernel closes the socket
	waitFor(t, "the dead tenant's session to end", func() bool { return !sessionOf("doomed") })
	if n := ts.qln.PeersGone(); n != 1 {
		t.Fatalf("%d connections closed for an unreachable port, want 1", n)
	}
	exercise(t, neighbour)
	if !sessionOf("neighbour") {
		t.Fatal("the live tenant's session ended")
	}
}
