package launcher

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/kerf-edge/kerf/internal/kerfenv"
	"github.com/kerf-edge/kerf/transport"
)

// Process is a program started in a lease of its own for a supervisor
// that waits for it and signals it itself (kerfd's triggered jobs). Unlike
// Run, Start forwards no signals: the program runs in a process group of
// its own, which Signal reaches whole.
type Process struct {
	Lease LeaseFile
	cmd   *exec.Cmd
	lease *transport.LeaseHolder
}

// Start reserves the slices opts asks for (waiting for capacity no longer
// than opts.Timeout), then starts argv in them with opts.Environ (nil:
// this process's environment) plus what the shim needs, in dir. name tells
// kerfd who holds the lease.
func Start(ctx context.Context, opts Options, argv []string, dir, name string) (*Process, error) {
	if len(argv) == 0 {
		return nil, errors.New("no command to run")
	}
	lease, lf, err := Open(ctx, opts, name)
	if err != nil {
		return nil, err
	}
	env := lf.environ()
	if opts.Memory != 0 {
		env = append(env, kerfenv.Memory+"="+strconv.FormatUint(opts.Memory, 10))
	}
	cmd := command(opts, argv, env)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A child the program leaves behind may hold its output open: Wait
	// gives up on the output this long after the program exits.
	cmd.WaitDelay = outputWaitDelay
	if err := cmd.Start(); err != nil {
		lease.Close()
		return nil, err
	}
	return &Process{Lease: lf, cmd: cmd, lease: lease}, nil
}

// outputWaitDelay bounds how long Wait copies output after the program
// exits.
const outputWaitDelay = 5 * time.Second

// Pid is the program's process ID (and its process group's).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the program's process group.
func (p *Process) Signal(sig syscall.Signal) error { return syscall.Kill(-p.cmd.Process.Pid, sig) }

// LeaseDone is closed when kerfd ends the lease (revocation, eviction).
func (p *Process) LeaseDone() <-chan struct{} { return p.lease.Done() }

// Wait waits for the program, then releases its lease (the slices are
// free once kerfd has ended the sessions still in it). It returns the exit
// code as Run does: the program's own, or 128+n when signal n ended it.
func (p *Process) Wait() (int, error) {
	defer p.lease.Close()
	return exitCode(p.cmd.Wait())
}
