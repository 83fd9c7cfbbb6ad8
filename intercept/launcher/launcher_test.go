package launcher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/gpu/hostmem"
	"github.com/kerf-edge/kerf/internal/testkit"
	"github.com/kerf-edge/kerf/transport"
)

// capacity is an allocator with a fixed number of whole-GPU slices on
// one device, enough to exercise waiting and release.
type capacity struct {
	mu     sync.Mutex
	free   int
	leases map[string]bool
	n      int
}

func (c *capacity) Allocate(_ auth.Tenant, req transport.AllocRequest) (transport.Lease, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if req.Count > 1 || c.free == 0 {
		return transport.Lease{}, abi.Errorf(abi.ErrOutOfMemory, "no capacity")
	}
	c.free--
	c.n++
	id := fmt.Sprintf("l%d", c.n)
	c.leases[id] = true
	return transport.Lease{ID: id, Slices: []transport.LeaseSlice{{Device: 0, Memory: 1 << 20}}}, nil
}

func (c *capacity) Lease(_ auth.Tenant, id string) (transport.Lease, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.leases[id] {
		return transport.Lease{}, errors.New("no such lease")
	}
	return transport.Lease{ID: id, Slices: []transport.LeaseSlice{{Device: 0, Memory: 1 << 20}}}, nil
}

func (c *capacity) Release(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.leases, id)
	c.free++
}

func (c *capacity) live() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.leases)
}

// server runs a local kerf server with slots slices and returns a bundle.
func server(t *testing.T, slots int) (*capacity, string) {
	t.Helper()
	dir := t.TempDir()
	tokens, _ := auth.OpenTokenStore("")
	tok, _ := tokens.Issue("t", 0)
	alloc := &capacity{free: slots, leases: map[string]bool{}}
	srv := &transport.Server{Backend: hostmem.New(1 << 30), Auth: tokens, Allocator: alloc, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	sock := filepath.Join(dir, "kerf.sock")
	ln, err := transport.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.ServeUnix(ctx, ln); srv.Wait(); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	bundle := filepath.Join(dir, "b.json")
	if err := auth.WriteBundle(bundle, auth.Bundle{Token: tok, Socket: sock}); err != nil {
		t.Fatal(err)
	}
	return alloc, bundle
}

func opts(bundle string, out io.Writer) Options {
	return Options{GPUs: 1, Fraction: 0.5, Bundle: bundle, Timeout: 2 * time.Second, ShimDir: "/kerf/shim", Stdout: out, Stderr: io.Discard}
}

var waitFor = testkit.WaitFor

func TestRunPassesEnvironmentAndExitCode(t *testing.T) {
	alloc, bundle := server(t, 1)
	var out bytes.Buffer
	code, err := Run(context.Background(), opts(bundle, &out), []string{"sh", "-c", `echo "$KERF_LEASE|$KERF_DEVICES|$KERF_VIA|$LD_LIBRARY_PATH"; exit 7`})
	if err != nil || code != 7 {
		t.Fatalf("code %d, %v", code, err)
	}
	if got := strings.TrimSpace(out.String()); !strings.HasPrefix(got, "l1|0|unix|/kerf/shim") {
		t.Fatalf("child saw %q", got)
	}
	waitFor(t, "the lease to be released", func() bool { return alloc.live() == 0 })
}

func TestKilledProgramStillReleases(t *testing.T) {
	alloc, bundle := server(t, 1)
	code, err := Run(context.Background(), opts(bundle, new(bytes.Buffer)), []string{"sh", "-c", "kill -KILL $$"})
	if err != nil || code != 128+int(syscall.SIGKILL) {
		t.Fatalf("code %d, %v", code, err)
	}
	waitFor(t, "the lease to be released", func() bool { return alloc.live() == 0 })
}

func TestSignalsAreForwarded(t *testing.T) {
	_, bundle := server(t, 1)
	var out testkit.SyncBuffer
	type result struct {
		code int
		err  error
	}
	res := make(chan result, 1)
	go func() {
		code, err := Run(context.Background(), opts(bundle, &out), []string{"sh", "-c", `trap 'exit 42' USR1; echo ready; while :; do sleep 0.01; done`})
		res <- result{code, err}
	}()
	waitFor(t, "the program to start", func() bool { return strings.Contains(out.String(), "ready") })
	syscall.Kill(syscall.Getpid(), syscall.SIGUSR1)
	select {
	case r := <-res:
		if r.err != nil || r.code != 42 {
			t.Fatalf("code %d, %v", r.code, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("signal not forwarded")
	}
}

func TestNoCapacityRetriesThenGivesUp(t *testing.T) {
	alloc, bundle := server(t, 0)
	o := opts(bundle, new(bytes.Buffer))
	o.Timeout = 700 * time.Millisecond
	start := time.Now()
	_, err := Run(context.Background(), o, []string{"true"})
	if !errors.Is(err, ErrNoCapacity) || !strings.Contains(err.Error(), "attempts") {
		t.Fatalf("err = %v", err)
	}
	if el := time.Since(start); el < o.Timeout {
		t.Fatalf("gave up after %v, before the %v limit", el, o.Timeout)
	}
	// Capacity that frees while it waits is taken.
	go func() {
		time.Sleep(300 * time.Millisecond)
		alloc.mu.Lock()
		alloc.free++
		alloc.mu.Unlock()
	}()
	o.Timeout = 10 * time.Second
	if code, err := Run(context.Background(), o, []string{"true"}); err != nil || code != 0 {
		t.Fatalf("after capacity freed: %d, %v", code, err)
	}
}

func TestBadRequests(t *testing.T) {
	_, bundle := server(t, 1)
	for _, o := range []Options{
		{GPUs: 0, Bundle: bundle},
		{GPUs: 1, Fraction: 1.5, Bundle: bundle},
		{GPUs: 1, Fraction: 0.5, Memory: 1, Bundle: bundle},
		{GPUs: 1, Bundle: filepath.Join(t.TempDir(), "missing.json")},
	} {
		if _, err := Run(context.Background(), o, []string{"true"}); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

// A bundle of this machine whose socket is missing means kerfd is not
// running: Route says so rather than dialling QUIC.
func TestRoute(t *testing.T) {
	dir := t.TempDir()
	present := filepath.Join(dir, "kerf.sock")
	if err := os.WriteFile(present, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "gone.sock")
	for _, tc := range []struct {
		name        string
		b           auth.Bundle
		server, via string
		want, err   string
	}{
		{"socket here", auth.Bundle{QUIC: "127.0.0.1:7443", Socket: present}, "", "", "unix", ""},
		{"local, socket missing", auth.Bundle{QUIC: "127.0.0.1:7443", Socket: missing}, "", "", "", "kerfd is not running at " + missing + " (socket missing)"},
		{"local in a pool, socket missing", auth.Bundle{QUIC: "127.0.0.1:7443", Socket: missing, Pool: []auth.PoolMember{{QUIC: "127.0.0.1:7444"}}}, "", "", "quic", ""},
		{"remote, socket missing", auth.Bundle{QUIC: "10.0.0.9:7443", Socket: missing}, "", "", "quic", ""},
		{"--server", auth.Bundle{QUIC: "127.0.0.1:7443", Socket: missing}, "10.0.0.9:7443", "", "quic", ""},
		{"--via unix, socket missing", auth.Bundle{Socket: missing}, "", "unix", "", "kerfd is not running"},
		{"--via quic", auth.Bundle{QUIC: "127.0.0.1:7443", Socket: missing}, "", "quic", "quic", ""},
		{"--via bad", auth.Bundle{}, "", "tcp", "", "want unix or quic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Route(tc.b, tc.server, tc.via)
			if got != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Route = %q, %v; want %q, %q", got, err, tc.want, tc.err)
			}
		})
	}
}

// A bundle naming a pool gives its own node first, then every other
// member in the bundle's order; --server and --via unix name one node.
func TestPoolTargets(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "kerf.sock")
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	b := auth.Bundle{Tenant: "t", Token: "kerf_x", QUIC: "10.0.0.12:7443", Fingerprint: "fb",
		Pool: []auth.PoolMember{{Node: "a", QUIC: "10.0.0.11:7443", Fingerprint: "fa"}, {Node: "b", QUIC: "10.0.0.12:7443", Fingerprint: "fb"}, {Node: "c", QUIC: "10.0.0.13:7443", Fingerprint: "fc"}}}
	path := filepath.Join(dir, "bundle.json")
	local := b
	local.Socket = sock
	localPath := filepath.Join(dir, "local.json")
	for p, bb := range map[string]auth.Bundle{path: b, localPath: local} {
		if err := auth.WriteBundle(p, bb); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"pool", Options{Bundle: path}, "b (10.0.0.12:7443) fb, a (10.0.0.11:7443) fa, c (10.0.0.13:7443) fc"},
		{"socket here", Options{Bundle: localPath}, "b (the local socket) fb, a (10.0.0.11:7443) fa, c (10.0.0.13:7443) fc"},
		{"--server a member", Options{Bundle: path, Server: "10.0.0.13:7443"}, "10.0.0.13:7443 fc"},
		{"--server elsewhere", Options{Bundle: path, Server: "10.0.0.99:7443"}, "10.0.0.99:7443 fb"},
		{"--via unix", Options{Bundle: localPath, Via: "unix"}, "the local socket fb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := resolve(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, tg := range d.targets {
				got = append(got, fmt.Sprintf("%v %s", tg, tg.fp))
			}
			if strings.Join(got, ", ") != tc.want {
				t.Fatalf("targets %q, want %q", strings.Join(got, ", "), tc.want)
			}
		})
	}
}
