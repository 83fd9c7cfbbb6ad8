// Package launcher is `kerf run`: it reserves slices for a program (a
// lease on the appliance), runs the program with Kerf's libcuda.so.1 and
// libnvidia-ml.so.1 in front of any other, forwards signals to it, exits
// with its status, and releases the slices however the program ends.
//
// It owns the tenant side of allocation (retry with bounded exponential
// backoff and a time limit, as the FAQ describes) and the environment the
// shim reads. It does not forward CUDA calls: the shim does.
package launcher

import (
	"cmp"
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
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/internal/kerfenv"
	"github.com/kerf-edge/kerf/transport"
)

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
	ShimDir   string // directory holding libcuda.so.1 and libnvidia-ml.so.1 (a link to it)
	// Environ is the program's environment before the shim's variables;
	// nil: this process's.
	Environ []string

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
	lease, lf, err := Open(ctx, opts, transport.SessionName("kerf run", argv[0]))
	if err != nil {
		return 0, err
	}
	defer lease.Close()
	env := lf.environ()
	if opts.Memory != 0 {
		// --memory is what the program gets, even in a larger slice.
		env = append(env, kerfenv.Memory+"="+strconv.FormatUint(opts.Memory, 10))
	}
	return runChild(command(opts, argv, env))
}

// Open reserves the slices opts asks for, retrying while the appliance is
// full, and describes the lease as a lease file would. name tells kerfd
// who holds it.
func Open(ctx context.Context, opts Options, name string) (*transport.LeaseHolder, LeaseFile, error) {
	var lf LeaseFile
	if opts.GPUs < 1 {
		return nil, lf, fmt.Errorf("-n %d: want at least one GPU", opts.GPUs)
	}
	if opts.Fraction < 0 || opts.Fraction > 1 || opts.Fraction != 0 && opts.Memory != 0 {
		return nil, lf, errors.New("give either -p FRACTION in (0, 1] or --memory BYTES")
	}
	d, err := resolve(opts)
	if err != nil {
		return nil, lf, err
	}
	req := transport.AllocRequest{Count: opts.GPUs, Fraction: opts.Fraction, Memory: opts.Memory, MinMemory: opts.MinMemory, Model: opts.Model, Device: -1}
	o := transport.Options{Token: []byte(d.bundle.Token), Name: name}
	var at target
	lease, err := acquire(ctx, opts, func(ctx context.Context) (*transport.LeaseHolder, error) {
		l, t, err := d.open(ctx, o, req)
		at = t
		return l, err
	})
	if err != nil {
		return nil, lf, err
	}
	server := opts.Server
	if at != d.targets[0] {
		server = at.addr // another member of the pool: its sessions go there
	}
	lf = LeaseFile{Lease: lease.ID, Bundle: d.bundlePath, Via: at.via, Server: server, Holder: os.Getpid()}
	for _, s := range lease.Slices {
		lf.Devices = append(lf.Devices, s.Device)
		lf.Memory = append(lf.Memory, s.Memory)
	}
	return lease, lf, nil
}

// dialing is where and how a tenant reaches the appliance: its targets,
// tried in turn (more than one when the bundle names a pool).
type dialing struct {
	bundlePath string
	bundle     auth.Bundle
	via        string // the first target's
	quicAddr   string
	targets    []target
}

// target is one node a tenant may ask for slices.
type target struct {
	via  string // "unix" or "quic"
	addr string // the QUIC address
	fp   string // its certificate's fingerprint
	node string // its name in the pool, when the bundle says
}

func (t target) String() string {
	where := t.addr
	if t.via == "unix" {
		where = "the local socket"
	}
	if t.node != "" {
		return t.node + " (" + where + ")"
	}
	return where
}

// resolve reads the bundle and settles the path (Route) and the targets:
// the node Route picks, then, unless --server names one, every other
// member of the pool the bundle names, in its order.
func resolve(opts Options) (dialing, error) {
	var d dialing
	var err error
	if d.bundlePath, err = filepath.Abs(opts.Bundle); err != nil {
		return d, err
	}
	if d.bundle, err = auth.ReadBundle(d.bundlePath); err != nil {
		return d, err
	}
	if d.via, err = Route(d.bundle, opts.Server, opts.Via); err != nil {
		return d, err
	}
	d.quicAddr = d.bundle.QUIC
	if opts.Server != "" {
		d.quicAddr = opts.Server
	}
	first := target{via: d.via, addr: d.quicAddr, fp: cmp.Or(d.bundle.FingerprintOf(d.quicAddr), d.bundle.Fingerprint)}
	d.targets = []target{first}
	if opts.Server != "" || opts.Via == "unix" {
		return d, nil
	}
	for _, m := range d.bundle.Pool {
		if m.QUIC == d.quicAddr { // the first target's node
			d.targets[0].node = m.Node
			continue
		}
		if m.QUIC != "" {
			d.targets = append(d.targets, target{via: "quic", addr: m.QUIC, fp: m.Fingerprint, node: m.Node})
		}
	}
	return d, nil
}

// attemptTimeout bounds one attempt on one node; memberTimeout on one
// member of a pool, so that a member that is down (its QUIC handshake
// unanswered) costs no more before the next is tried.
const (
	attemptTimeout = 15 * time.Second
	memberTimeout  = 5 * time.Second
)

// open asks the targets in turn for a lease until one answers: a node
// that cannot be reached is passed over, and a node that answers decides
// (a grant, a refusal, or a redirect to the member where the pool
// reserved the slices, followed at once). It returns the lease and the
// target that granted it.
func (d dialing) open(ctx context.Context, o transport.Options, req transport.AllocRequest) (*transport.LeaseHolder, target, error) {
	var unreachable []error
	bound := attemptTimeout
	if len(d.targets) > 1 {
		bound = memberTimeout
	}
	for _, t := range d.targets {
		l, err := t.open(ctx, bound, d.bundle, o, req)
		var rd *transport.Redirect
		if errors.As(err, &rd) {
			return d.follow(ctx, t, rd, o)
		}
		if answered(err) {
			return l, t, err
		}
		unreachable = append(unreachable, fmt.Errorf("%v: %w", t, err))
		if ctx.Err() != nil {
			break
		}
	}
	if len(unreachable) == 1 {
		return nil, target{}, errors.Unwrap(unreachable[0])
	}
	return nil, target{}, fmt.Errorf("no member of the pool answered: %w", errors.Join(unreachable...))
}

// follow takes up the reservation rd that from redirected to. A member
// that does not grant it (gone since, or the reservation expired) is a
// refusal the tenant retries.
func (d dialing) follow(ctx context.Context, from target, rd *transport.Redirect, o transport.Options) (*transport.LeaseHolder, target, error) {
	fp := d.bundle.FingerprintOf(rd.Addr)
	if fp == "" {
		return nil, target{}, fmt.Errorf("%v placed the slices on %s at %s, which the token bundle does not name: add it to the bundle's pool", from, rd.Node, rd.Addr)
	}
	t := target{via: "quic", addr: rd.Addr, fp: fp, node: rd.Node}
	l, err := t.open(ctx, memberTimeout, d.bundle, o, transport.AllocRequest{Reservation: rd.Reservation, Device: -1})
	if err != nil && abi.ResultOf(err) != abi.ErrNotPermitted {
		return nil, t, abi.Errorf(abi.ErrOutOfMemory, "the pool reserved the slices on %v, which did not grant them: %s", t, abi.Message(err))
	}
	return l, t, err
}

// answered reports whether err came from a node that answered (nil, a
// refusal with a CUDA result, a redirect), not from failing to reach it.
func answered(err error) bool {
	var ae *abi.Error
	return err == nil || errors.As(err, &ae)
}

// open asks t for a lease, within bound.
func (t target) open(ctx context.Context, bound time.Duration, b auth.Bundle, o transport.Options, req transport.AllocRequest) (*transport.LeaseHolder, error) {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	if t.via == "unix" {
		return transport.OpenLeaseUnix(ctx, b.Socket, o, req)
	}
	fp, err := transport.ParseFingerprint(t.fp)
	if err != nil {
		return nil, err
	}
	return transport.OpenLeaseQUIC(ctx, t.addr, transport.QUICOptions{Options: o, Fingerprint: fp}, req)
}

// command is argv with the shim first on its library path and env added.
func command(opts Options, argv, env []string) *exec.Cmd {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = opts.Stdin, opts.Stdout, opts.Stderr
	base := opts.Environ
	if base == nil {
		base = os.Environ()
	}
	cmd.Env = append(append(slices.Clip(base), env...), "LD_LIBRARY_PATH="+prependPath(opts.ShimDir, os.Getenv("LD_LIBRARY_PATH")))
	return cmd
}

// acquire opens a lease, retrying while the appliance (or its pool) has
// no capacity,
// with bounded exponential backoff, until opts.Timeout. While it waits it
// says so on opts.Stderr, through a progress line.
func acquire(ctx context.Context, opts Options, open func(context.Context) (*transport.LeaseHolder, error)) (*transport.LeaseHolder, error) {
	start := time.Now()
	deadline := start.Add(opts.Timeout)
	wait := MinBackoff
	progress := newProgress(opts.Stderr)
	defer progress.done()
	for attempt := 1; ; attempt++ {
		l, err := open(ctx)
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
// dialling QUIC until it times out; a bundle naming a pool goes on to its
// other members instead.
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
	if via == "quic" && b.Socket != "" && isLoopback(b.QUIC) && len(b.Pool) == 0 {
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
	return exitCode(err)
}

// exitCode is the exit code of a program that Wait returned err for: its
// own, or 128+n when signal n ended it.
func exitCode(err error) (int, error) {
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
// ../lib/kerf from it (the image's layout); libnvidia-ml.so.1 lies beside
// it.
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
