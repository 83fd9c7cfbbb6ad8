package transport

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/gpu/hostmem"
	"github.com/kerf-edge/kerf/internal/testkit"
)

// testServer is a real server on a Unix socket and on QUIC over loopback,
// backed by host memory.
type testServer struct {
	srv        *Server
	mem        *hostmem.Backend
	tokens     *auth.TokenStore
	tokensPath string
	sock       string
	quic       string
	qln        *QUICListener
	fp         Fingerprint
	cancel     context.CancelFunc
	done       chan struct{}
}

func startServer(t *testing.T) *testServer { return startServerB(t) }

// startServerB starts a server, applying configure before it serves.
func startServerB(t testing.TB, configure ...func(*Server)) *testServer {
	t.Helper()
	dir := t.TempDir()
	tokensPath := filepath.Join(dir, "tokens.json")
	tokens, err := auth.OpenTokenStore(tokensPath)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{mem: hostmem.New(1 << 30), tokens: tokens, tokensPath: tokensPath, done: make(chan struct{})}
	ts.srv = &Server{Backend: ts.mem, Auth: tokens, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if testing.Verbose() {
		ts.srv.Log = slog.Default()
	}
	tokens.OnRevoke = func(id string) { ts.srv.CloseTenant(id) }
	for _, f := range configure {
		f(ts.srv)
	}
	cert, fp, err := LoadOrCreateCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	ts.fp = fp
	ts.sock = filepath.Join(dir, "kerf.sock")
	uln, err := ListenUnix(ts.sock)
	if err != nil {
		t.Fatal(err)
	}
	qln, err := ListenQUIC("127.0.0.1:0", cert)
	if err != nil {
		t.Fatal(err)
	}
	ts.quic, ts.qln = qln.Addr().String(), qln
	ctx, cancel := context.WithCancel(context.Background())
	ts.cancel = cancel
	go func() {
		defer close(ts.done)
		errc := make(chan error, 2)
		go func() { errc <- ts.srv.ServeUnix(ctx, uln) }()
		go func() { errc <- ts.srv.ServeQUIC(ctx, qln) }()
		<-errc
		<-errc
		ts.srv.Wait()
	}()
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) stop() {
	ts.cancel()
	<-ts.done
}

func (ts *testServer) tokenB(t testing.TB) []byte { return ts.token(t, "bench", 0) }

func (ts *testServer) token(t testing.TB, tenant string, limit uint64) []byte {
	t.Helper()
	tok, err := ts.tokens.Issue(tenant, limit)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(tok)
}

// transports lists the ways a tenant reaches the server: "unix-v1" is the
// local path as a protocol version 1 client uses it, without the call ring.
// ("unix-v2", a version 2 client, gets no error texts.)
var transports = []string{"unix", "unix-v1", "quic"}

func isUnix(via string) bool { return via == "unix" || via == "unix-v1" || via == "unix-v2" }

func (ts *testServer) dial(t *testing.T, via string, tok []byte) *Client {
	t.Helper()
	c, err := ts.tryDial(via, tok)
	if err != nil {
		t.Fatalf("dial %s: %v", via, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (ts *testServer) tryDial(via string, tok []byte) (*Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := Options{Token: tok, Name: "test"}
	switch via {
	case "unix-v1":
		opts.maxVersion = 1
	case "unix-v2":
		opts.maxVersion = 2
	}
	if isUnix(via) {
		return DialUnix(ctx, ts.sock, opts)
	}
	return DialQUIC(ctx, ts.quic, QUICOptions{Options: opts, Fingerprint: ts.fp})
}

var waitFor = testkit.WaitFor

func vals(words ...uint64) *abi.Values {
	v := &abi.Values{}
	for _, w := range words {
		v.Word(w)
	}
	return v
}

func wantCode(t *testing.T, err error, want abi.Result) {
	t.Helper()
	if got := abi.ResultOf(err); got != want {
		t.Fatalf("got %v (%v), want %v", got, err, want)
	}
}
