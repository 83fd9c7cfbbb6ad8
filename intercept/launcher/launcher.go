// Package launcher is `kerf run`: it reserves slices for a program (a
// lease on the appliance), runs the program with Kerf's libcuda.so.1 in
// front of any other, forwards signals to it, exits with its status, and
// releases the slices however the program ends.
//
// It owns the tenant side of allocation (retry with bounded exponential
// backoff and a time limit, as the FAQ describes) and the environment the
// shim reads. It does not forward CUDA calls: the shim does.
package launcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/internal/kerfenv"
	"github.com/kerf-edge/kerf/transport"
)

// Environment the shim reads.
const ()

// Options configure a run.
type Options struct {
	GPUs      int     // slices on distinct GPUs (-n)
	Fraction  float64 // of a GPU per slice (-p)
	Memory    uint64  // bytes per slice (--memory), instead of Fraction
	Model     string  // GPU model filter
	MinMemory uint64  // GPU memory filter
	Bundle    string  // token bundle path (--token)
	Server    string  // QUIC address overriding the bundle's (--server)
	Via       string  // unix or quic; empty: unix when the socket is here
	Timeout   time.Duration
	ShimDir   string // directory holding libcuda.so.1

	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Backoff bounds: the first retry waits MinBackoff, each next one twice as
// long (with jitter), never more than MaxBackoff.
const (
	MinBackoff = 100 * time.Millisecond
	MaxBackoff = 5 * time.Second
)

// ErrNoCapacity reports that no lease could be had within the time limit.
var ErrNoCapacity = errors.New("no capacity")

// Run reserves the slices, runs argv and returns its exit code: the
// program's own, or 128+n when signal n ended it.
func Run(ctx context.Context, opts Options, argv []string) (int, error) {
	if len(argv) == 0 {
		return 0, errors.New("no command to run")
	}
	if opts.GPUs < 1 {
		return 0, fmt.Errorf("-n %d: want at least one GPU", opts.GPUs)
	}
	if opts.Fraction < 0 || opts.Fraction > 1 || opts.Fraction != 0 && opts.Memory != 0 {
		return 0, errors.New("give either -p FRACTION in (0, 1] or --memory BYTES")
	}
	bundlePath, err := filepath.Abs(opts.Bundle)
	if err != nil {
		return 0, err
	}
	b, err := auth.ReadBundle(bundlePath)
	if err != nil {
		return 0, err
	}
	via, err := Route(b, opts.Server, opts.Via)
	if err != nil {
		return 0, err
	}
	quicAddr := b.QUIC
	if opts.Server != "" {
		quicAddr = opts.Server
	}
	req := transport.AllocRequest{Count: opts.GPUs, Fraction: opts.Fraction, Memory: opts.Memory, MinMemory: opts.MinMemory, Model: opts.Model, Device: -1}
	lease, err := acquire(ctx, opts, func(ctx context.Context) (*transport.LeaseHolder, error) {
		o := transport.Options{Token: []byte(b.Token), Name: transport.SessionName("kerf run", argv[0])}
		if via == "unix" {
			return transport.OpenLeaseUnix(ctx, b.Socket, o, req)
		}
		fp, err := transport.ParseFingerprint(b.Fingerprint)
		if err != nil {
			return nil, err
		}
		return transport.OpenLeaseQUIC(ctx, quicAddr, transport.QUICOptions{Options: o, Fingerprint: fp}, req)
	})
	if err != nil {
		return 0, err
	}
	defer lease.Close()

	devs := make([]string, len(lease.Slices))
	for i, s := range lease.Slices {
		devs[i] = strconv.Itoa(s.Device)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = opts.Stdin, opts.Stdout, opts.Stderr
	cmd.Env = append(os.Environ(),
		kerfenv.Bundle+"="+bundlePath, kerfenv.Lease+"="+lease.ID, kerfenv.Devices+"="+strings.Join(devs, ","), kerfenv.Via+"="+via,
		"LD_LIBRARY_PATH="+prependPath(opts.ShimDir, os.Getenv("LD_LIBRARY_PATH")))
	if opts.Server != "" {
		cmd.Env = append(cmd.Env, kerfenv.Server+"="+opts.Server)
	}
	if opts.Memory != 0 {
		// --memory is what the program gets, even in a larger slice.
		cmd.Env = append(cmd.Env, kerfenv.Memory+"="+strconv.FormatUint(opts.Memory, 10))
	}
	return runChild(cmd)
}

// acquire opens a lease, retrying while the appliance has no capacity,
// with bounded exponential backoff, until opts.Timeout. While it waits it
// says so on opts.Stderr, through a progress line.
func acquire(ctx context.Context, opts Options, open func(context.Context) (*transport.LeaseHolder, error)) (*transport.LeaseHolder, error) {
	start := time.Now()
	deadline := start.Add(opts.Timeout)
	wait := MinBackoff
	progress := newProgress(opts.Stderr)
	defer progress.done()
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 15*time.Second)
		l, err := open(actx)
		cancel()
		if err == nil {
			return l, nil
		}
		if abi.ResultOf(err) != abi.ErrOutOfMemory {
			return nil, err // retrying cannot help
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("%w after %d attempts in %v: %s", ErrNoCapacity, attempt, opts.Timeout, abi.Message(err))
		}
		sleep := min(wait/2+rand.N(wait/2+1), left)
		progress.say(fmt.Sprintf("kerf run: the node is full, waiting (%v of %v, attempt %d): %s",
			time.Since(start).Round(time.Second), opts.Timeout, attempt, abi.Message(err)))
		select {
		case <-time.After(sleep):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		wait = min(2*wait, MaxBackoff)
	}
}

// Route is the path a tenant with bundle b takes: via when asked for
// ("unix" or "quic"), QUIC when server names an address, else the
// bundle's socket when it exists. When the bundle says kerfd runs on this
// machine (a socket, and a loopback QUIC address) but the socket is
// missing, kerfd is not running: Route says so at once, rather than
// dialling QUIC until it times out.
func Route(b auth.Bundle, server, via string) (string, error) {
	switch via {
	case "unix":
		if _, err := os.Stat(b.Socket); err != nil {
			return "", NotRunning(b.Socket)
		}
		return via, nil
	case "quic":
		return via, nil
	case "":
	default:
		return "", fmt.Errorf("--via %q: want unix or quic", via)
	}
	if server != "" {
		return "quic", nil
	}
	via = b.DefaultVia(nil)
	if via == "quic" && b.Socket != "" && isLoopback(b.QUIC) {
		return "", NotRunning(b.Socket)
	}
	return via, nil
}

// NotRunning is the error for a kerfd whose socket is missing.
func NotRunning(socket string) error {
	return fmt.Errorf("kerfd is not running at %s (socket missing); start it with `kerfd` or `make run`", socket)
}

// isLoopback reports whether a host:port names this machine's loopback
// (or names no host: kerfd's own).
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if addr == "" || err == nil && host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// forwarded are the signals passed on to the program.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}

func runChild(cmd *exec.Cmd) (int, error) {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exit):
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return exit.ExitCode(), nil
	}
	return 0, err
}

func prependPath(dir, list string) string {
	if list == "" {
		return dir
	}
	return dir + ":" + list
}

// DefaultShimDir finds libcuda.so.1 beside the running kerf binary, or in
// ../lib/kerf from it (the image's layout).
func DefaultShimDir() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	dir := filepath.Dir(exe)
	for _, d := range []string{dir, filepath.Join(dir, "..", "lib", "kerf")} {
		if _, err := os.Stat(filepath.Join(d, "libcuda.so.1")); err == nil {
			return d
		}
	}
	return dir
}
