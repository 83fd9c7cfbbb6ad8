package poolbench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DemoOptions configure Demo.
type DemoOptions struct {
	Kerfd, Kerf string // the binaries
	ShimDir     string // holding Kerf's libcuda.so.1
	// Spin is the argv of a program that works the GPU for the number of
	// seconds appended to it and then prints "ok" (intercept/testdata/spin.c);
	// Short, of one that runs briefly (intercept/testdata/vadd.c).
	Spin, Short []string
	Dir         string
	Out         io.Writer
}

// Demo starts a pool of three kerfd on loopback, one emulated GPU each,
// runs a tenant on every member through kerf run, kills one member with
// SIGKILL and shows the pool going on: the members left place new work,
// their tenants finish without an error, the dead member's tenant gets
// the CUDA error for a lost device, and its leases leave the ledger
// after pool.lease_timeout.
func Demo(ctx context.Context, o DemoOptions) error {
	out := o.Out
	step := func(format string, a ...any) { fmt.Fprintf(out, "\n== "+format+"\n", a...) }
	const leaseTimeout = 10 * time.Second
	step("starting three kerfd on loopback, one emulated 1 GiB GPU each, as one pool (lease_timeout %v)", leaseTimeout)
	c, err := StartCluster(ctx, ClusterOptions{Kerfd: o.Kerfd, Dir: o.Dir, Nodes: 3, GPUs: 1, Pool: true, LeaseTimeout: leaseTimeout,
		MaxFractionPerTenant: 1}) // the tenants are one: "bench"
	if err != nil {
		return err
	}
	defer c.Close()
	a := c.Nodes[0]
	if err := o.status(ctx, a, out); err != nil {
		return err
	}

	// Each tenant asks node-a first (the bundle names the pool, node-a
	// first); node-a places each on the first member with room: 0.6 of a
	// GPU leaves room for one tenant per member.
	step("three tenants, each kerf run -p 0.6 of a program that works the GPU for 30 s; the bundle names all three members")
	var tenants []*tenant
	for i := range c.Nodes {
		before := c.grants()
		t, err := o.startTenant(ctx, fmt.Sprintf("tenant-%d", i+1), c.Bundle, "0.6", append(o.Spin, "30"))
		if err != nil {
			return err
		}
		if err := t.waitFor(ctx, "spinning"); err != nil {
			return err
		}
		t.node = c.grantedSince(before)
		fmt.Fprintf(out, "%s runs on %s\n", t.name, t.node)
		tenants = append(tenants, t)
	}
	defer func() {
		for _, t := range tenants {
			t.kill()
		}
	}()
	if err := o.status(ctx, a, out); err != nil {
		return err
	}

	victim := a
	step("SIGKILL of %s", victim.Name)
	killed := time.Now()
	victim.Kill()
	b := c.Nodes[1]
	if err := poll(ctx, time.Minute, victim.Name+" down", func() (bool, error) {
		st, err := b.PoolStatus(ctx)
		if err != nil {
			return false, nil
		}
		for _, m := range st.Members {
			if m.Name == victim.Name {
				return !m.Live, nil
			}
		}
		return false, nil
	}); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s sees %s down %.1f s after the SIGKILL\n", b.Name, victim.Name, time.Since(killed).Seconds())
	if err := o.status(ctx, b, out); err != nil {
		return err
	}

	step("a new tenant: kerf run -p 0.3 of a short program, the bundle naming %s first", victim.Name)
	start, before := time.Now(), c.grants()
	t, err := o.startTenant(ctx, "tenant-4", c.Bundle, "0.3", o.Short)
	if err != nil {
		return err
	}
	t.wait()
	fmt.Fprintf(out, "tenant-4 ran on %s, %.1f s after the SIGKILL (kerf run took %.1f s, passing over %s): %s\n",
		c.grantedSince(before), time.Since(killed).Seconds(), time.Since(start).Seconds(), victim.Name, t.summary())

	step("%s's lease leaves the ledger once it has been out of the pool for lease_timeout (%v)", victim.Name, leaseTimeout)
	if err := poll(ctx, time.Minute, victim.Name+"'s leases reclaimed", func() (bool, error) {
		st, err := b.PoolStatus(ctx)
		if err != nil {
			return false, nil
		}
		for _, m := range st.Members {
			if m.Name == victim.Name {
				return m.Leases == 0, nil
			}
		}
		return false, nil
	}); err != nil {
		return err
	}
	fmt.Fprintf(out, "reclaimed %.1f s after the SIGKILL\n", time.Since(killed).Seconds())
	if err := o.status(ctx, b, out); err != nil {
		return err
	}

	// A killed process sends nothing: its tenant, over QUIC, learns of the
	// loss when its connection's idle timeout passes.
	step("%s's tenant, over QUIC, finds its node gone once the connection's idle timeout passes", victim.Name)
	for _, t := range tenants {
		if t.node == victim.Name {
			t.wait()
			fmt.Fprintf(out, "%s (on %s) ended %.1f s after the SIGKILL: %s\n", t.name, t.node, time.Since(killed).Seconds(), t.summary())
		}
	}

	step("the tenants on the members left finish their 30 s")
	for _, t := range tenants {
		if t.node != victim.Name {
			t.wait()
			fmt.Fprintf(out, "%s (on %s): %s\n", t.name, t.node, t.summary())
		}
	}
	return nil
}

// status prints kerf pool status as n answers it.
func (o DemoOptions) status(ctx context.Context, n *Node, out io.Writer) error {
	tok, err := os.ReadFile(filepath.Join(n.stateDir(), "admin-token"))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "$ kerf pool status    # asked of %s\n", n.Name)
	cmd := exec.CommandContext(ctx, o.Kerf, "pool", "status")
	cmd.Env = append(os.Environ(), "KERF_API=http://"+n.HTTP, "KERF_ADMIN_TOKEN="+strings.TrimSpace(string(tok)))
	cmd.Stdout, cmd.Stderr = out, out
	return cmd.Run()
}

// grants counts the leases each member's kerfd has granted the tenant
// "bench".
func (c *Cluster) grants() map[string]int {
	out := map[string]int{}
	for _, n := range c.Nodes {
		out[n.Name] = strings.Count(n.Log(), `msg="lease granted" tenant=bench `)
	}
	return out
}

// grantedSince is the member that granted a lease since before (counts
// of grants), "" if none did.
func (c *Cluster) grantedSince(before map[string]int) string {
	for n, k := range c.grants() {
		if k > before[n] {
			return n
		}
	}
	return ""
}

// tenant is a kerf run under way.
type tenant struct {
	name, node string
	cmd        *exec.Cmd
	out        *syncBuffer
	done       chan struct{}
	err        error
}

// startTenant runs kerf run -p fraction of argv with bundle.
func (o DemoOptions) startTenant(ctx context.Context, name, bundle, fraction string, argv []string) (*tenant, error) {
	args := append([]string{"run", "--token", bundle, "-p", fraction, "--timeout", "60s", "--shim", o.ShimDir, "--"}, argv...)
	t := &tenant{name: name, out: &syncBuffer{}, done: make(chan struct{})}
	t.cmd = exec.CommandContext(ctx, o.Kerf, args...)
	t.cmd.Stdout, t.cmd.Stderr = t.out, t.out
	t.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := t.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { t.err = t.cmd.Wait(); close(t.done) }()
	return t, nil
}

func (t *tenant) waitFor(ctx context.Context, line string) error {
	return poll(ctx, time.Minute, t.name+" to start", func() (bool, error) {
		select {
		case <-t.done:
			return false, fmt.Errorf("%s ended: %v\n%s", t.name, t.err, t.out.String())
		default:
		}
		return strings.Contains(t.out.String(), line), nil
	})
}

func (t *tenant) wait() { <-t.done }

func (t *tenant) kill() {
	syscall.Kill(-t.cmd.Process.Pid, syscall.SIGKILL)
	<-t.done
}

// summary is how the tenant ended: its exit and its last line.
func (t *tenant) summary() string {
	lines := strings.Split(strings.TrimSpace(t.out.String()), "\n")
	last := lines[len(lines)-1]
	if t.err != nil {
		return fmt.Sprintf("%v; %s", t.err, last)
	}
	return "exit 0; " + last
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
