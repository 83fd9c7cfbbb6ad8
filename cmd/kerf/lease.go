package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/intercept/launcher"
	"github.com/kerf-edge/kerf/internal/cli"
	"github.com/kerf-edge/kerf/internal/kerfenv"
	"github.com/kerf-edge/kerf/internal/units"
)

// The tenant's lease commands: request, release, list-gpus, and the
// holder `kerf request` starts (lease-hold, not for people).

// holdCmd is the hidden command of the process holding a requested lease.
const holdCmd = "lease-hold"

// leaseFlags defines on fs the flags of a lease request (kerf run, kerf
// request) and returns what turns them, once parsed, into launcher
// options.
func leaseFlags(fs *cli.Command) func() (launcher.Options, error) {
	n := fs.Int("n", 1, "slices, each on a distinct GPU")
	p := fs.Float64("p", 0, "fraction of a GPU per slice, in (0, 1]")
	memory := fs.String("memory", "", "memory per slice instead of -p, with a unit (512MiB, 4GiB)")
	server := fs.String("server", "", "appliance QUIC address (default: the token bundle's)")
	token := fs.String("token", "", "token bundle (default: $"+kerfenv.Bundle+", else "+bundlePlaces()+")")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to retry while the appliance is full")
	via := fs.String("via", "", "unix or quic (default: unix when the appliance is this machine)")
	model := fs.String("model", "", "only GPUs of this model")
	minMem := fs.String("min-memory", "", "only GPUs with at least this much memory, with a unit")
	return func() (launcher.Options, error) {
		o := launcher.Options{GPUs: *n, Fraction: *p, Server: *server, Via: *via, Timeout: *timeout, Model: *model}
		var err error
		if *memory != "" {
			if o.Memory, err = units.ParseBytes(*memory); err != nil {
				return o, cli.Usagef(fs.Name(), "--memory: %v", err)
			}
		}
		if *minMem != "" {
			if o.MinMemory, err = units.ParseBytes(*minMem); err != nil {
				return o, cli.Usagef(fs.Name(), "--min-memory: %v", err)
			}
		}
		o.Bundle, err = auth.FindBundle(*token)
		return o, err
	}
}

// requestFlags parses the flags of kerf request (and of its holder).
func requestFlags(name string, args []string) (launcher.Options, error) {
	fs := newCommand(name)
	options := leaseFlags(fs)
	if err := fs.Parse(args); err != nil {
		return launcher.Options{}, err
	}
	if fs.NArg() > 0 {
		return launcher.Options{}, cli.Usagef(fs.Name(), "unexpected argument %q", fs.Arg(0))
	}
	return options()
}

// heldMsg is what the holder tells `kerf request` once, on descriptor 3.
type heldMsg struct {
	Lease launcher.LeaseFile `json:"lease"`
	File  string             `json:"file"`
	Error string             `json:"error,omitempty"`
}

// requestCmd starts a holder for the lease and prints how to use it: an
// export line on stdout, the rest on stderr.
func requestCmd(args []string) error {
	stdout, stderr := io.Writer(os.Stdout), io.Writer(os.Stderr)
	if _, err := requestFlags("request", args); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	hold := exec.Command(self, append([]string{holdCmd}, args...)...)
	hold.ExtraFiles = []*os.File{w}
	// Its own session: the terminal's signals are not for it.
	hold.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := hold.Start(); err != nil {
		w.Close()
		return err
	}
	w.Close()
	go hold.Wait() // reaped if it ends while this process runs
	var m heldMsg
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return fmt.Errorf("the lease's holder ended without a lease: %w", err)
	}
	if m.Error != "" {
		return errors.New(m.Error)
	}
	lf := m.Lease
	var slices []string
	for i, d := range lf.Devices {
		slices = append(slices, fmt.Sprintf("device %d (%s)", d, units.FormatBytes(lf.Memory[i])))
	}
	fmt.Fprintf(stdout, "export %s=%s\n", kerfenv.Lease, lf.Lease)
	fmt.Fprintf(stderr, "kerf: lease %s holds %s; held by process %d, file %s\n", lf.Lease, strings.Join(slices, ", "), lf.Holder, m.File)
	fmt.Fprintf(stderr, "kerf: run in it with `kerf run --lease %s -- CMD`; end it with `kerf release %s`\n", lf.Lease, lf.Lease)
	return nil
}

// leaseHoldCmd is the holder: it holds the lease until kerf release stops
// it or the appliance ends the lease.
func leaseHoldCmd(args []string) error {
	report := os.NewFile(3, "request")
	tell := func(m heldMsg) {
		if report != nil {
			json.NewEncoder(report).Encode(m)
			report.Close()
			report = nil
		}
	}
	o, err := requestFlags(holdCmd, args)
	if err != nil {
		tell(heldMsg{Error: err.Error()})
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	err = launcher.Hold(ctx, o, func(lf launcher.LeaseFile, path string) error {
		tell(heldMsg{Lease: lf, File: path})
		return nil
	})
	if err != nil {
		tell(heldMsg{Error: err.Error()})
	}
	return err
}

// releaseCmd ends held leases.
func releaseCmd(args []string) error {
	fs := newCommand("release")
	all := fs.Bool("all", false, "every lease held here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var refs []string
	switch {
	case *all:
		held, err := launcher.Leases()
		if err != nil {
			return err
		}
		for _, lf := range held {
			refs = append(refs, lf.Lease)
		}
	case fs.NArg() == 1:
		refs = []string{fs.Arg(0)}
	case fs.NArg() == 0 && os.Getenv(kerfenv.Lease) != "":
		refs = []string{os.Getenv(kerfenv.Lease)}
	default:
		return cli.Usagef(fs.Name(), "name a lease (or set %s, or --all)", kerfenv.Lease)
	}
	var errs []error
	for _, ref := range refs {
		lf, err := launcher.Release(ref)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(os.Stderr, "kerf: released lease %s\n", lf.Lease)
	}
	return errors.Join(errs...)
}

// listGPUsCmd shows what the token's tenant may use.
func listGPUsCmd(args []string) error {
	stdout := os.Stdout
	fs := newCommand("list-gpus")
	token, via, server := endpointFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef(fs.Name(), "unexpected argument %q", fs.Arg(0))
	}
	bundle, err := auth.FindBundle(*token)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := launcher.ListGPUs(ctx, launcher.Options{Bundle: bundle, Via: *via, Server: *server})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GPU\tNAME\tMEMORY\tSLICES\tFREE SLICES\tFREE\tLARGEST FREE")
	for _, g := range c.GPUs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%.0f%%\t%.0f%% (%s)\n", g.Device, g.Name, units.FormatBytes(g.Memory), g.Slices, g.FreeSlices,
			100*g.FreeFraction, 100*g.LargestFree, units.FormatBytes(g.LargestFreeMemory))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	limit, idle, mem := "no GPU limit", "never reclaimed when idle", "no memory cap"
	if c.MaxGPUs > 0 {
		limit = fmt.Sprintf("a limit of %g GPUs", c.MaxGPUs)
	}
	if c.IdleTimeout > 0 {
		idle = fmt.Sprintf("reclaimed after %v idle", c.IdleTimeout)
	}
	if c.MaxMemory > 0 {
		mem = "a memory cap of " + units.FormatBytes(c.MaxMemory)
	}
	_, err = fmt.Fprintf(stdout, "holding %.2f GPUs, %s; leases %s; %s\n", c.HeldGPUs, limit, idle, mem)
	return err
}
