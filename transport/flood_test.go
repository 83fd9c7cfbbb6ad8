package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/internal/quicnet"
	"github.com/kerf-edge/kerf/internal/testkit"
	"github.com/kerf-edge/kerf/transport/internal/wire"
)

// floodConns is how many idle connections a flood test opens: enough to
// show every one is held without shared memory or large buffers, few
// enough to run in seconds under the race detector.
const floodConns = 200

// floodServer is a server whose handshake timeout outlasts the test, so
// that a flood stays until the test ends it, and whose log the test reads.
func floodServer(t *testing.T, limits Limits) (*testServer, *testkit.SyncBuffer) {
	t.Helper()
	logs := &testkit.SyncBuffer{}
	ts := startServerB(t, func(s *Server) {
		s.Limits = limits
		s.HandshakeTimeout = time.Minute
		s.Log = slog.New(slog.NewTextHandler(logs, nil))
	})
	return ts, logs
}

// exercise runs a tenant's round trip of a megabyte through c.
func exercise(t *testing.T, c *Client) {
	t.Helper()
	data := bytes.Repeat([]byte("kerf"), 1<<18)
	p, err := c.MemAlloc(uint64(len(data)))
	if err != nil {
		t.Fatalf("tenant session during the flood: %v", err)
	}
	defer c.MemFree(p)
	if err := c.MemcpyHtoD(p, data); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	if err := c.MemcpyDtoH(got, p); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("tenant data during the flood: %v", err)
	}
}

// shmDescriptors counts this process's shared-memory rings (memfds).
func shmDescriptors(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && strings.Contains(l, "memfd:kerf-shm") {
			n++
		}
	}
	return n
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// expectRefused checks that the server closes c at once, long before the
// handshake timeout, without a word.
func expectRefused(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(testkit.WaitTimeout))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("connection over the cap: read %d bytes, %v; want it closed", n, err)
	}
}

// A flood of idle connections on the Unix socket: each holds neither a
// shared-memory ring nor large buffers, the one over the per-uid cap is
// closed at once, the refusals make a line or two of log, and a tenant's
// session is served throughout.
func TestUnixFloodBeforeHello(t *testing.T) {
	ts, logs := floodServer(t, Limits{Unauthenticated: 4 * floodConns, PerPeer: floodConns})
	tenant := ts.dial(t, "unix", ts.token(t, "tenant", 0))
	exercise(t, tenant)
	rings, heap := shmDescriptors(t), heapInUse()

	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	for range floodConns {
		c, err := net.Dial("unix", ts.sock)
		if err != nil {
			t.Fatal(err)
		}
		flood = append(flood, c)
	}
	waitFor(t, "the flood to be held", func() bool {
		unix, _ := ts.srv.ListenerStats()
		return unix.Unauthenticated == floodConns
	})
	if got := shmDescriptors(t); got != rings {
		t.Fatalf("%d idle connections hold %d shared-memory rings", floodConns, got-rings)
	}
	grew := heapInUse() - heap
	if grew > floodConns*(64<<10) {
		t.Fatalf("%d idle connections took %d KiB of heap", floodConns, grew>>10)
	}
	t.Logf("%d idle connections hold no ring and %d KiB of heap", floodConns, grew>>10)
	exercise(t, tenant)

	const over = 50
	for range over {
		c, err := net.Dial("unix", ts.sock)
		if err != nil {
			t.Fatal(err)
		}
		expectRefused(t, c)
		c.Close()
	}
	if unix, _ := ts.srv.ListenerStats(); unix.Refused != over {
		t.Fatalf("refused %d connections, want %d", unix.Refused, over)
	}
	if n := strings.Count(logs.String(), "refused an unauthenticated connection"); n != 1 {
		t.Fatalf("%d log lines for %d refusals, want 1 (then a summary per interval):\n%s", n, over, logs)
	}
	exercise(t, tenant)

	// The flood leaves; tenants connect again.
	for _, c := range flood {
		c.Close()
	}
	waitFor(t, "the flood to be released", func() bool {
		unix, _ := ts.srv.ListenerStats()
		return unix.Unauthenticated == 0
	})
	exercise(t, ts.dial(t, "unix", ts.token(t, "later", 0)))
}

// A hello that fails to authenticate never gets a ring either.
func TestUnixRingOnlyAfterAuthentication(t *testing.T) {
	ts := startServer(t)
	c, err := net.Dial("unix", ts.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wc := wire.NewConn(c)
	b, _ := (&wire.HelloMsg{MinVersion: 1, MaxVersion: abi.ProtocolVersion, Token: []byte("kerf_bogus")}).Append(nil)
	wc.WriteFrame(wire.Header{Type: wire.Hello}, b)
	wc.Flush()
	fd, prefix, err := recvShm(c.(*net.UnixConn))
	if err != nil || fd >= 0 || prefix == nil {
		if fd >= 0 {
			closeFD(fd)
		}
		t.Fatalf("a refused hello got fd %d, %v", fd, err)
	}
	_, err = ts.tryDial("unix", []byte("kerf_bogus"))
	wantCode(t, err, abi.ErrNotPermitted)
}

// A hello header claiming a megabyte is refused before anything is read
// or allocated for it.
func TestOversizedHelloRefused(t *testing.T) {
	ts, _ := floodServer(t, Limits{})
	tok := ts.token(t, "tenant", 0) // QUIC's raw stream shares a tenant's connection
	for _, via := range []string{"unix", "quic"} {
		t.Run(via, func(t *testing.T) {
			rw, wc := ts.rawDial(t, via, tok, false)
			var h [wire.HeaderSize]byte
			wire.PutHeader(h[:], wire.Header{Type: wire.Hello, Len: abi.MaxFrame})
			if _, err := rw.Write(h[:]); err != nil {
				t.Fatal(err)
			}
			got, p, err := wc.ReadFrame()
			if err != nil || got.Type != wire.Error {
				t.Fatalf("want an error frame, got %v %v", got.Type, err)
			}
			var m wire.ErrorMsg
			if err := m.Decode(p); err != nil || !strings.Contains(m.Message, "hello of") {
				t.Fatalf("refusal %q %v", m.Message, err)
			}
		})
	}
}

// dialQUICFrom opens a QUIC connection to addr from the IP from, completes
// TLS and opens no session.
func dialQUICFrom(ctx context.Context, from, addr string) (*quic.Conn, *quic.Transport, error) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(from)})
	if err != nil {
		return nil, nil, err
	}
	raddr, _ := net.ResolveUDPAddr("udp", addr)
	tr := &quic.Transport{Conn: udp}
	tc := quicnet.ClientTLS(abi.ALPN, func([]byte) error { return nil })
	conn, err := tr.Dial(ctx, raddr, tc, quicConfig())
	if err != nil {
		tr.Close()
		udp.Close()
		return nil, nil, err
	}
	return conn, tr, nil
}

// A flood of idle QUIC connections from one address: the one over the
// per-IP cap is refused at once, while tenants from another address
// connect and are served.
func TestQUICFloodBeforeHello(t *testing.T) {
	const perPeer = floodConns / 4 // a QUIC connection costs more goroutines
	ts, logs := floodServer(t, Limits{Unauthenticated: 4 * perPeer, PerPeer: perPeer})
	tenant := ts.dial(t, "quic", ts.token(t, "tenant", 0))
	exercise(t, tenant)
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTimeout)
	defer cancel()
	var trs []*quic.Transport
	defer func() {
		for _, tr := range trs {
			tr.Close()
			tr.Conn.Close()
		}
	}()
	for range perPeer {
		_, tr, err := dialQUICFrom(ctx, "127.0.0.2", ts.quic)
		if err != nil {
			t.Fatal(err)
		}
		trs = append(trs, tr)
	}
	waitFor(t, "the flood to be held", func() bool {
		_, q := ts.srv.ListenerStats()
		return q.Unauthenticated == perPeer
	})
	exercise(t, tenant)

	const over = 10
	for range over {
		conn, tr, err := dialQUICFrom(ctx, "127.0.0.2", ts.quic)
		if err == nil {
			trs = append(trs, tr)
			select {
			case <-conn.Context().Done():
			case <-ctx.Done():
				t.Fatal("a connection over the per-IP cap was accepted")
			}
			continue
		}
		var te *quic.TransportError
		if !errors.As(err, &te) || te.ErrorCode != quic.ConnectionRefused {
			t.Fatalf("over the cap: %v, want the connection refused", err)
		}
	}
	// quic-go may ask the guard again for a refused connection's
	// retransmitted Initial packet.
	if _, q := ts.srv.ListenerStats(); q.Refused < over {
		t.Fatalf("refused %d connection attempts, want at least %d", q.Refused, over)
	}
	if n := strings.Count(logs.String(), "refused an unauthenticated connection"); n != 1 {
		t.Fatalf("%d log lines for %d refusals, want 1:\n%s", n, over, logs)
	}
	// Another address is not held back by this one's flood.
	exercise(t, ts.dial(t, "quic", ts.token(t, "neighbour", 0)))
	exercise(t, tenant)
}

// A QUIC connection that completes TLS but authenticates no session is
// closed after the handshake timeout, keep-alives or not, and gives its
// place back.
func TestQUICIdleConnectionClosed(t *testing.T) {
	ts := startServerB(t, func(s *Server) { s.HandshakeTimeout = 200 * time.Millisecond; s.Limits.PerPeer = 1 })
	// An authenticated session outlives the handshake timeout: its
	// timer runs out before the idle connections' below.
	tenant := ts.dial(t, "quic", ts.token(t, "tenant", 0))
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTimeout)
	defer cancel()
	for _, stream := range []bool{false, true} {
		conn, tr, err := dialQUICFrom(ctx, "127.0.0.1", ts.quic)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		if stream {
			st, err := conn.OpenStreamSync(ctx)
			if err != nil {
				t.Fatal(err)
			}
			st.Write([]byte{0}) // a hello that never completes
		}
		select {
		case <-conn.Context().Done():
		case <-ctx.Done():
			t.Fatalf("connection without a session (stream: %v) still open", stream)
		}
		waitFor(t, "its place to be given back", func() bool {
			_, q := ts.srv.ListenerStats()
			return q.Unauthenticated == 0
		})
	}
	exercise(t, tenant)
}
