package jobs

import (
	"context"
	"fmt"
	"os"
	"sort"
	"syscall"

	"github.com/kerf-edge/kerf/intercept/launcher"
)

// Launcher starts instances as `kerf run` does: a lease for the job's
// tenant, the program under the shim, over kerfd's Unix socket.
type Launcher struct {
	// ShimDir holds libcuda.so.1 and libnvidia-ml.so.1.
	ShimDir string
	// Bundle is the path of a token bundle of tenant, for the lease and
	// the shim.
	Bundle func(tenant string) (string, error)
	// Dir is the working directory of jobs that name none.
	Dir string
	// PATH is the programs' PATH; their environment is otherwise only
	// their job's env and the shim's variables.
	PATH string
}

var _ Starter = (*Launcher)(nil)

// Start implements Starter.
func (l *Launcher) Start(ctx context.Context, j Job, instance string, out Output) (Process, error) {
	bundle, err := l.Bundle(j.Tenant)
	if err != nil {
		return nil, fmt.Errorf("a token for tenant %s: %w", j.Tenant, err)
	}
	dir := j.Dir
	if dir == "" {
		dir = l.Dir
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	env := []string{"PATH=" + l.PATH, "KERF_JOB=" + j.Name, "KERF_JOB_INSTANCE=" + instance}
	keys := make([]string, 0, len(j.Env))
	for k := range j.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+j.Env[k])
	}
	stdout, stderr := out.Writer("stdout"), out.Writer("stderr")
	opts := launcher.Options{GPUs: j.Slice.GPUs, Fraction: j.Slice.Fraction, Memory: j.Slice.MemoryBytes(),
		Bundle: bundle, Via: "unix", ShimDir: l.ShimDir, Environ: env, Stdout: stdout, Stderr: stderr}
	p, err := launcher.Start(ctx, opts, append([]string{j.Command}, j.Args...), dir, "kerf job "+instance)
	if err != nil {
		return nil, err
	}
	var mem uint64
	for _, m := range p.Lease.Memory {
		mem += m
	}
	return &launched{p: p, memory: mem, stdout: stdout, stderr: stderr}, nil
}

// launched is a started instance and its output streams.
type launched struct {
	p              *launcher.Process
	memory         uint64
	stdout, stderr *LineWriter
}

func (l *launched) Signal(sig syscall.Signal) error { return l.p.Signal(sig) }
func (l *launched) Memory() uint64                  { return l.memory }

func (l *launched) Wait() (int, error) {
	code, err := l.p.Wait()
	l.stdout.Close()
	l.stderr.Close()
	return code, err
}
