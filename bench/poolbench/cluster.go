package poolbench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/internal/testkit"
	"github.com/kerf-edge/kerf/profiles/api"
	"github.com/kerf-edge/kerf/profiles/client"
	"github.com/kerf-edge/kerf/transport"
)

// ClusterOptions describe the kerfd processes Start runs.
type ClusterOptions struct {
	Kerfd string // the kerfd binary
	Dir   string // where each node gets a directory of its own
	Nodes int
	GPUs  int // emulated GPUs per node, 1 GiB each
	// Pool makes the nodes one pool; without it Nodes must be 1: a node
	// alone, the baseline.
	Pool         bool
	LeaseTimeout time.Duration // pool.lease_timeout (0: 1m)
	// MaxFractionPerTenant is slicer.max_fraction_per_tenant (0: kerfd's
	// default).
	MaxFractionPerTenant float64
}

// Cluster is a set of kerfd processes on loopback, each with its own
// state directory and ports, on the emulated GPU: a pool, or one node.
type Cluster struct {
	Nodes []*Node
	// Bundle is a tenant bundle ("bench") that every node accepts, naming
	// every member of the pool in order.
	Bundle string
}

// Node is one kerfd of a Cluster.
type Node struct {
	Name, Dir, Config   string
	QUIC, HTTP, Cluster string // its addresses; Cluster: its pool listener
	Fingerprint         string
	kerfd               string
	env                 []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    *testkit.SyncBuffer
}

// StartCluster writes the nodes' configs and state, starts them, and
// returns once every node serves and, for a pool, every member sees all
// of them live with a quorum and every member's inventory.
func StartCluster(ctx context.Context, o ClusterOptions) (*Cluster, error) {
	if !o.Pool && o.Nodes != 1 {
		return nil, errors.New("nodes that are not a pool: want one")
	}
	if o.LeaseTimeout == 0 {
		o.LeaseTimeout = time.Minute
	}
	c := &Cluster{}
	ports := func(n int) ([]string, error) {
		out := make([]string, n)
		for i := range out {
			a, err := testkit.FreeAddr()
			if err != nil {
				return nil, err
			}
			out[i] = a
		}
		return out, nil
	}
	listeners, err := ports(o.Nodes)
	if err != nil {
		return nil, err
	}
	for i := range o.Nodes {
		p, err := ports(4)
		if err != nil {
			return nil, err
		}
		n := &Node{Name: fmt.Sprintf("node-%c", 'a'+i), QUIC: p[0], HTTP: p[1], Cluster: listeners[i], kerfd: o.Kerfd}
		n.Dir = filepath.Join(o.Dir, n.Name)
		n.Config = filepath.Join(n.Dir, "kerfd.yaml")
		n.env = append(os.Environ(), "HOME="+n.Dir, "XDG_CONFIG_HOME="+filepath.Join(n.Dir, "config"))
		cfg := fmt.Sprintf(`state_dir: %s
listen: {quic: %q, http: %q}
gpu: {backend: emulated, emulated: {devices: %d, memory: 1GiB}}
tenants: {isolation: inprocess}
ingest:
  node: %s
  broker: {embedded: {nats_listen: %q, mqtt_listen: %q}}
`, n.stateDir(), n.QUIC, n.HTTP, max(o.GPUs, 1), n.Name, p[2], p[3])
		if o.MaxFractionPerTenant > 0 {
			cfg += fmt.Sprintf("slicer: {max_fraction_per_tenant: %g}\n", o.MaxFractionPerTenant)
		}
		if o.Pool {
			var peers []string
			for j, l := range listeners {
				if j != i {
					peers = append(peers, fmt.Sprintf("%q", l))
				}
			}
			cfg += fmt.Sprintf(`pool:
  listen: %q
  peers: [%s]
  secret: "kerf-bench-pool-secret"
  lease_timeout: %s
  reservation_ttl: 1m
`, n.Cluster, strings.Join(peers, ", "), o.LeaseTimeout)
		}
		if err := os.MkdirAll(n.stateDir(), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(n.Config, []byte(cfg), 0o600); err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
	}
	if err := c.initState(ctx); err != nil {
		return nil, err
	}
	for _, n := range c.Nodes {
		if err := n.Start(ctx); err != nil {
			c.Close()
			return nil, err
		}
	}
	if o.Pool {
		if err := c.WaitFormed(ctx, c.Nodes); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func (n *Node) stateDir() string { return filepath.Join(n.Dir, "state") }

// initState gives each node its identity, and every node the first
// node's token store (tenants and tokens are each node's own), with the
// tenant "bench" in it; the bundle names every member.
func (c *Cluster) initState(ctx context.Context) error {
	first := c.Nodes[0]
	bundle := filepath.Join(first.Dir, "bench.json")
	if out, err := first.kerfdCmd(ctx, "init", "--config", first.Config).CombinedOutput(); err != nil {
		return fmt.Errorf("kerfd init on %s: %v\n%s", first.Name, err, out)
	}
	if out, err := first.kerfdCmd(ctx, "tokens", "issue", "--config", first.Config, "--out", bundle, "bench").CombinedOutput(); err != nil {
		return fmt.Errorf("kerfd tokens issue: %v\n%s", err, out)
	}
	tokens, err := os.ReadFile(filepath.Join(first.stateDir(), "tokens.json"))
	if err != nil {
		return err
	}
	b, err := auth.ReadBundle(bundle)
	if err != nil {
		return err
	}
	// The tenant reaches the nodes over QUIC, every member in order: the
	// first has not served yet, so its bundle names it alone.
	b.Socket, b.Pool = "", nil
	for _, n := range c.Nodes {
		if n != first {
			if err := os.WriteFile(filepath.Join(n.stateDir(), "tokens.json"), tokens, 0o600); err != nil {
				return err
			}
			if out, err := n.kerfdCmd(ctx, "init", "--config", n.Config).CombinedOutput(); err != nil {
				return fmt.Errorf("kerfd init on %s: %v\n%s", n.Name, err, out)
			}
		}
		_, fp, err := transport.LoadOrCreateCert(n.stateDir())
		if err != nil {
			return err
		}
		n.Fingerprint = fp.String()
		if len(c.Nodes) > 1 {
			b.Pool = append(b.Pool, auth.PoolMember{Node: n.Name, QUIC: n.QUIC, Fingerprint: n.Fingerprint})
		}
	}
	b.QUIC, b.Fingerprint = first.QUIC, first.Fingerprint
	c.Bundle = bundle
	return auth.WriteBundle(bundle, b)
}

func (n *Node) kerfdCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, n.kerfd, args...)
	cmd.Dir, cmd.Env = n.Dir, n.env
	return cmd
}

// Start starts the node's kerfd (again, after Kill) and waits until it
// serves.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	n.log = &testkit.SyncBuffer{}
	cmd := exec.Command(n.kerfd, "--config", n.Config)
	cmd.Dir, cmd.Env = n.Dir, n.env
	cmd.Stdout, cmd.Stderr = n.log, n.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // not left running if the benchmark dies
	if err := cmd.Start(); err != nil {
		n.mu.Unlock()
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	n.cmd, n.exited = cmd, exited
	n.mu.Unlock()
	return poll(ctx, 30*time.Second, n.Name+" to serve", func() (bool, error) {
		select {
		case <-exited:
			return false, fmt.Errorf("%s exited:\n%s", n.Name, n.Log())
		default:
		}
		return strings.Contains(n.Log(), "kerfd ready"), nil
	})
}

// Log is what the node's kerfd has written since it last started.
func (n *Node) Log() string {
	n.mu.Lock()
	log := n.log
	n.mu.Unlock()
	return log.String()
}

// Kill ends the node's kerfd with SIGKILL: no shutdown of any kind.
func (n *Node) Kill() {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-exited
}

// stop ends the node's kerfd with SIGINT, then SIGKILL after 20 s.
func (n *Node) stop() {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}

// Client is an operator API client of the node.
func (n *Node) Client() (*client.Client, error) {
	tok, err := os.ReadFile(filepath.Join(n.stateDir(), "admin-token"))
	if err != nil {
		return nil, err
	}
	return client.New("http://"+n.HTTP, strings.TrimSpace(string(tok))), nil
}

// PoolStatus is the pool as the node sees it.
func (n *Node) PoolStatus(ctx context.Context) (api.PoolStatus, error) {
	c, err := n.Client()
	if err != nil {
		return api.PoolStatus{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.Pool(ctx)
}

// WaitFormed waits until every node of nodes sees each of them live, a
// quorum, and each one's inventory.
func (c *Cluster) WaitFormed(ctx context.Context, nodes []*Node) error {
	for _, n := range nodes {
		err := poll(ctx, time.Minute, "the pool formed, as "+n.Name+" sees it", func() (bool, error) {
			st, err := n.PoolStatus(ctx)
			if err != nil || !st.Quorum || st.Problem != "" {
				return false, nil
			}
			live := 0
			for _, m := range st.Members {
				for _, want := range nodes {
					if m.Name == want.Name && m.Live && len(m.GPUs) > 0 {
						live++
					}
				}
			}
			return live == len(nodes), nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Close stops every node.
func (c *Cluster) Close() {
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.stop() }()
	}
	wg.Wait()
}

// poll calls cond every 20 ms until it holds, fails, or within passes.
func poll(ctx context.Context, within time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(within)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", within, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
