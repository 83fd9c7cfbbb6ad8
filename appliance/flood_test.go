package appliance

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/internal/testkit"
	"github.com/kerf-edge/kerf/transport"
)

// limitConfig is testConfig with listener limits set by KERF_ variables.
func limitConfig(t *testing.T, dir string, limits ...string) Config {
	t.Helper()
	env := []string{"KERF_STATE_DIR=" + dir, "KERF_LISTEN__QUIC=127.0.0.1:0", "KERF_LISTEN__HTTP=127.0.0.1:0",
		"KERF_GPU__EMULATED__MEMORY=1GiB", "KERF_GPU__BACKEND=emulated", "KERF_INGEST__ENABLED=false"}
	for _, l := range limits {
		env = append(env, "KERF_LISTEN__LIMITS__"+l)
	}
	cfg, err := LoadConfig("", env)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// healthz sends GET /healthz on c, keeping the connection alive, and
// returns the status, or an error when the server closed c instead.
func healthz(c net.Conn, br *bufio.Reader) (int, error) {
	c.SetDeadline(time.Now().Add(testkit.WaitTimeout))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: kerfd\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// The attack as found: idle keep-alive connections after GET /healthz.
// Those over the per-IP cap are closed at once, and tenants on the Unix
// socket and QUIC are served throughout, old sessions and new.
func TestHTTPFloodLeavesTenantsServed(t *testing.T) {
	const flood = 200
	dir := t.TempDir()
	a := start(t, limitConfig(t, dir, fmt.Sprint("HTTP_PER_PEER=", flood)))
	b, err := auth.ReadBundle(filepath.Join(dir, "bundles", "default.json"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTimeout)
	defer cancel()
	opts := transport.Options{Token: []byte(b.Token)}
	dial := func() (local, remote *transport.Client) {
		t.Helper()
		local, err := transport.DialUnix(ctx, b.Socket, opts)
		if err != nil {
			t.Fatalf("unix session during the flood: %v", err)
		}
		t.Cleanup(func() { local.Close() })
		remote, err = transport.DialQUIC(ctx, b.QUIC, transport.QUICOptions{Options: opts, Fingerprint: a.Fingerprint()})
		if err != nil {
			t.Fatalf("QUIC session during the flood: %v", err)
		}
		t.Cleanup(func() { remote.Close() })
		return local, remote
	}
	local, remote := dial()

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range flood {
		c, err := net.Dial("tcp", a.HTTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if code, err := healthz(c, bufio.NewReader(c)); err != nil || code != http.StatusOK {
			t.Fatalf("connection %d of the flood: %d %v", i, code, err)
		}
	}
	// The next connection from the same address is closed unanswered.
	c, err := net.Dial("tcp", a.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if code, err := healthz(c, bufio.NewReader(c)); err == nil {
		t.Fatalf("connection %d over the per-IP cap answered %d", flood+1, code)
	}
	if st := a.httpLn.guard.Stats(); st.Unauthenticated != flood || st.Refused == 0 {
		t.Fatalf("HTTP listener: %+v", st)
	}
	for name, c := range map[string]*transport.Client{"unix": local, "quic": remote} {
		t.Run(name, func(t *testing.T) { runVadd(t, c, 1000) })
	}
	local, remote = dial()
	for name, c := range map[string]*transport.Client{"new unix": local, "new quic": remote} {
		t.Run(name, func(t *testing.T) { runVadd(t, c, 1000) })
	}
}

// A keep-alive connection left idle after a request is closed after the
// idle timeout.
func TestHTTPIdleKeepAliveClosed(t *testing.T) {
	a := start(t, limitConfig(t, t.TempDir(), "HTTP_IDLE_TIMEOUT=200ms"))
	c, err := net.Dial("tcp", a.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	if code, err := healthz(c, br); err != nil || code != http.StatusOK {
		t.Fatalf("healthz: %d %v", code, err)
	}
	c.SetReadDeadline(time.Now().Add(testkit.WaitTimeout))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle keep-alive connection: %v, want it closed", err)
	}
	testkit.WaitFor(t, "its place to be given back", func() bool { return a.httpLn.guard.Stats().Unauthenticated == 0 })
}

func TestConnBudget(t *testing.T) {
	l := ListenLimits{Unauthenticated: 1024, UnauthenticatedPerPeer: 64, UnauthenticatedShare: 0.25, HTTPShare: 0.25, HTTPPerPeer: 32}
	for _, tt := range []struct {
		descriptors, tenant, http int
	}{
		{20000, 1024, 5000}, // the caps hold well within the shares
		{1024, 256, 256},    // a small limit: the shares hold
		{0, 1024, 0},        // unknown: the caps alone
	} {
		b := newConnBudget(l, tt.descriptors)
		if b.tenant.Unauthenticated != tt.tenant || b.http != tt.http || b.tenant.PerPeer != 64 || b.httpPerPeer != 32 {
			t.Errorf("%d descriptors: %+v, want tenant %d, http %d", tt.descriptors, b, tt.tenant, tt.http)
		}
	}
}
