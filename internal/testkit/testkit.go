// Package testkit holds helpers shared by Kerf's tests. It is imported by
// _test.go files and the benchmarks (FreeAddr, SyncBuffer) only and holds no product
// logic.
package testkit

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// WaitTimeout bounds every WaitFor: generous, since CI shares two
// cores among race-built kerfd, workers and tenants.
const WaitTimeout = 30 * time.Second

// WaitFor polls cond until it holds, failing the test with what after
// WaitTimeout. Tests poll with a deadline instead of sleeping and hoping.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	WaitForWithin(t, WaitTimeout, what, cond)
}

// WaitForWithin is WaitFor with its own deadline, for what a protocol
// timer bounds (an idle connection's timeout, say).
func WaitForWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// SyncBuffer is a bytes.Buffer that a test may read while a program or
// goroutine writes it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ChromiumPath is Debian's Chromium, which browser tests drive headless.
const ChromiumPath = "/usr/bin/chromium"

// NeedChromium skips a browser test, saying why, where Chromium is missing.
func NeedChromium(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		t.Skipf("%s is missing (apt-get install -y chromium): skipping the browser test", ChromiumPath)
	}
}

// Chromium runs headless Chromium on url with extra flags (--dump-dom,
// --screenshot=FILE, --virtual-time-budget=MS) and returns its stdout. The
// flags keep it off the network and out of the user's profile.
func Chromium(t testing.TB, url string, flags ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir(), "--window-size=1200,800"}, flags...)
	args = append(args, url)
	cmd := exec.CommandContext(ctx, ChromiumPath, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", flags, err, stderr.String())
	}
	return string(out)
}

// FreePort is a loopback address whose port nothing listens on now, on
// TCP or UDP, below the kernel's ephemeral range (FreeAddr).
func FreePort(t testing.TB) string {
	t.Helper()
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// FreeAddr is a loopback address whose port nothing listens on now, on TCP
// or UDP, and that no other FreeAddr call on this machine has handed out
// while its caller lives (claimPort). The port lies below the kernel's ephemeral range, so no
// outgoing connection can take it as its source port in the meantime: a
// server that redials a peer not yet up could otherwise connect to
// itself through that port and keep it from the peer.
func FreeAddr() (string, error) {
	low := ephemeralLow()
	const first = 20000
	for range 200 {
		port := first + rand.IntN(low-first)
		if !claimPort(port) {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return addr, nil
	}
	return "", errors.New("no free port below the ephemeral range")
}

// claimed holds, for the life of the test binary, one abstract Unix
// socket per port FreeAddr handed out. The kernel frees them when the
// process exits, and no other process (another package's tests run
// alongside) or later call may claim the same port meanwhile, even
// before the server that was given it listens.
var claimed struct {
	sync.Mutex
	held []net.Listener
}

func claimPort(port int) bool {
	l, err := net.Listen("unix", "@kerf-testkit-port-"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	claimed.Lock()
	claimed.held = append(claimed.held, l)
	claimed.Unlock()
	return true
}

// ephemeralLow is the first port the kernel hands out for outgoing
// connections and listeners on port 0.
func ephemeralLow() int {
	const fallback = 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return fallback
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return fallback
	}
	low, err := strconv.Atoi(f[0])
	if err != nil || low <= 21000 {
		return fallback
	}
	return low
}
