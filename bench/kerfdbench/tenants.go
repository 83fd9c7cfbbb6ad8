package kerfdbench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kerf-edge/kerf/transport"
)

// SlicerTenantsSpec tells the tenants of `kerf bench slicer` where kerfd
// is and who they are.
type SlicerTenantsSpec struct {
	UnixPath string   `json:"unix_path"`
	Names    []string `json:"names"`
	Tokens   []string `json:"tokens"`
}

// SlicerTenantsReport is what the tenants measured: every round's start
// and duration, and the calls, errors and wrong results.
type SlicerTenantsReport struct {
	Calls      uint64  `json:"calls"`
	Errors     uint64  `json:"errors"`
	Mismatches uint64  `json:"mismatches"`
	FirstError string  `json:"first_error,omitempty"`
	Starts     []int64 `json:"starts_unix_ns"`
	Durations  []int64 `json:"durations_ns"`
}

func (r *SlicerTenantsReport) rounds() []roundSample {
	out := make([]roundSample, len(r.Starts))
	for i := range r.Starts {
		out[i] = roundSample{time.Unix(0, r.Starts[i]), time.Duration(r.Durations[i])}
	}
	return out
}

// runTenantLoops connects the tenants, calls ready, and runs their loops
// until ctx ends.
func runTenantLoops(ctx context.Context, spec SlicerTenantsSpec, ready func()) (SlicerTenantsReport, error) {
	var rep SlicerTenantsReport
	var loops []*tenantLoop
	for i, name := range spec.Names {
		c, err := transport.DialUnix(ctx, spec.UnixPath, transport.Options{Token: []byte(spec.Tokens[i]), Name: name})
		if err != nil {
			return rep, fmt.Errorf("tenant %s: %w", name, err)
		}
		defer c.Close()
		l, err := newTenantLoop(c, 4096+i)
		if err != nil {
			return rep, fmt.Errorf("tenant %s: %w", name, err)
		}
		loops = append(loops, l)
	}
	ready()
	var calls, errs, bad atomic.Uint64
	var firstErr atomic.Value
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, l := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(l.n), 1))
			for ctx.Err() == nil {
				t0 := time.Now()
				ok, err := l.round(rng)
				d := time.Since(t0)
				calls.Add(5)
				switch {
				case err != nil:
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					return
				case !ok:
					bad.Add(1)
				}
				mu.Lock()
				rep.Starts, rep.Durations = append(rep.Starts, t0.UnixNano()), append(rep.Durations, int64(d))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	rep.Calls, rep.Errors, rep.Mismatches = calls.Load(), errs.Load(), bad.Load()
	if v, ok := firstErr.Load().(string); ok {
		rep.FirstError = v
	}
	return rep, nil
}

// RunSlicerTenants is the tenants' process of `kerf bench slicer`: it
// reads a SlicerTenantsSpec line from in, writes "ready" once every
// tenant is connected, runs the loops until in is closed, then writes its
// SlicerTenantsReport.
func RunSlicerTenants(ctx context.Context, in io.Reader, out io.Writer) error {
	br := bufio.NewReader(in)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("reading the spec: %w", err)
	}
	var spec SlicerTenantsSpec
	if err := json.Unmarshal(line, &spec); err != nil {
		return fmt.Errorf("reading the spec: %w", err)
	}
	if len(spec.Names) != len(spec.Tokens) {
		return errors.New("the spec has names and tokens of different lengths")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		io.Copy(io.Discard, br) // until the parent closes our stdin
		cancel()
	}()
	rep, err := runTenantLoops(ctx, spec, func() { fmt.Fprintln(out, "ready") })
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(rep)
}

// tenantGroup is the running tenants of a benchmark.
type tenantGroup struct {
	stop  func() (SlicerTenantsReport, error) // ends the loops, returns the report
	abort func()                              // ends them if stop was not called
}

// startTenants starts the tenants in their own process (cmd) or, with no
// cmd, in goroutines, and returns once every one is connected.
func startTenants(ctx context.Context, cmd []string, spec SlicerTenantsSpec) (*tenantGroup, error) {
	if len(cmd) == 0 {
		return startTenantsInProcess(ctx, spec)
	}
	c := exec.CommandContext(ctx, cmd[0], cmd[1:]...)
	c.Stderr = os.Stderr
	stdin, err := c.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := c.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("starting the tenants: %w", err)
	}
	abort := func() { stdin.Close(); c.Process.Kill(); c.Wait() }
	if err := json.NewEncoder(stdin).Encode(spec); err != nil {
		abort()
		return nil, fmt.Errorf("starting the tenants: %w", err)
	}
	br := bufio.NewReader(stdout)
	if line, err := br.ReadString('\n'); err != nil || line != "ready\n" {
		abort()
		return nil, fmt.Errorf("the tenants did not start (%q, %v)", line, err)
	}
	stopped := false
	g := &tenantGroup{abort: func() {
		if !stopped {
			abort()
		}
	}}
	g.stop = func() (SlicerTenantsReport, error) {
		stopped = true
		var rep SlicerTenantsReport
		stdin.Close()
		derr := json.NewDecoder(br).Decode(&rep)
		if err := c.Wait(); err != nil {
			return rep, fmt.Errorf("the tenants' process: %w", err)
		}
		if derr != nil {
			return rep, fmt.Errorf("the tenants' report: %w", derr)
		}
		return rep, nil
	}
	return g, nil
}

func startTenantsInProcess(ctx context.Context, spec SlicerTenantsSpec) (*tenantGroup, error) {
	ctx, cancel := context.WithCancel(ctx)
	ready := make(chan struct{})
	type result struct {
		rep SlicerTenantsReport
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := runTenantLoops(ctx, spec, func() { close(ready) })
		done <- result{rep, err}
	}()
	select {
	case <-ready:
	case r := <-done:
		cancel()
		return nil, r.err
	}
	g := &tenantGroup{abort: cancel}
	g.stop = func() (SlicerTenantsReport, error) {
		cancel()
		r := <-done
		return r.rep, r.err
	}
	return g, nil
}
