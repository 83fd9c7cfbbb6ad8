package poolbench

import (
	"cmp"
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

// Node is one kerfd of a Cluster, or of a test's pool (NewNode).
type Node struct {
	Name, Dir, Config   string
	QUIC, HTTP, Cluster string // its addresses; Cluster: its pool listener
	Fingerprint         string
	kerfd               string
	env                 []string
	workDir             string
	wrap                []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    *testkit.SyncBuffer
}

// NodeSpec describes one kerfd on the emulated GPU, alone or a member of
// a pool, as NewNode configures it.
type NodeSpec struct {
	Name string
	Dir  string // its configuration goes here, its state in state/
	// Its listeners: tenants' QUIC, the operator API, the embedded
	// broker's NATS and MQTT, and the pool's routes ("": not in a pool).
	QUIC, HTTP, NATS, MQTT, Cluster string
	Peers                           []string // the other members' pool listeners
	// GPU is its gpu.emulated settings ("": one GPU of 1 GiB).
	GPU string
	// CertFile, KeyFile and CAFile are the pool routes' TLS ("": none).
	CertFile, KeyFile, CAFile string
	// LeaseTimeout and ReservationTTL are the pool's (0: a minute).
	LeaseTimeout, ReservationTTL time.Duration
	// MaxFractionPerTenant is slicer.max_fraction_per_tenant (0: kerfd's
	// default).
	MaxFractionPerTenant float64
	// Env and WorkDir are kerfd's environment and working directory
	// (nil, "": this process's environment with HOME in Dir; Dir).
	Env     []string
	WorkDir string
	// Wrap is a command kerfd runs under, such as ip netns exec NS.
	Wrap []string
}

// poolSecret is the secret of the pools NewNode configures.
const poolSecret = "kerf-bench-pool-secret"

// NewNode writes the configuration of the node s describes, and makes
// its state directory; Start runs it.
func NewNode(kerfd string, s NodeSpec) (*Node, error) {
	n := &Node{Name: s.Name, Dir: s.Dir, Config: filepath.Join(s.Dir, "kerfd.yaml"), QUIC: s.QUIC, HTTP: s.HTTP, Cluster: s.Cluster,
		kerfd: kerfd, env: s.Env, workDir: s.WorkDir, wrap: s.Wrap}
	if n.env == nil {
		n.env = append(os.Environ(), "HOME="+n.Dir, "XDG_CONFIG_HOME="+filepath.Join(n.Dir, "config"))
	}
	if n.workDir == "" {
		n.workDir = n.Dir
	}
	gpu := s.GPU
	if gpu == "" {
		gpu = "devices: 1, memory: 1GiB"
	}
	cfg := fmt.Sprintf(`state_dir: %s
listen: {quic: %q, http: %q}
gpu: {backend: emulated, emulated: {%s}}
tenants: {isolation: inprocess}
ingest:
  node: %s
  broker: {embedded: {nats_listen: %q, mqtt_listen: %q}}
`, n.stateDir(), s.QUIC, s.HTTP, gpu, s.Name, s.NATS, s.MQTT)
	if s.MaxFractionPerTenant > 0 {
		cfg += fmt.Sprintf("slicer: {max_fraction_per_tenant: %g}\n", s.MaxFractionPerTenant)
	}
	if s.Cluster != "" {
		var peers []string
		for _, p := range s.Peers {
			peers = append(peers, fmt.Sprintf("%q", p))
		}
		orMinute := func(d time.Duration) time.Duration { return cmp.Or(d, time.Minute) }
		cfg += fmt.Sprintf(`pool:
  listen: %q
  peers: [%s]
  secret: %q
  lease_timeout: %s
  reservation_ttl: %s
`, s.Cluster, strings.Join(peers, ", "), poolSecret, orMinute(s.LeaseTimeout), orMinute(s.ReservationTTL))
		if s.CertFile != "" {
			cfg += fmt.Sprintf("  tls: {cert_file: %q, key_file: %q, ca_file: %q}\n", s.CertFile, s.KeyFile, s.CAFile)
		}
	}
	if err := os.MkdirAll(n.stateDir(), 0o700); err != nil {
		return nil, err
	}
	return n, os.WriteFile(n.Config, []byte(cfg), 0o600)
}

// StartCluster writes the nodes' configs and state, starts them, and
// returns once every node serves and, for a pool, every member sees all
// of them live with a quorum and every member's inventory.
func StartCluster(ctx context.Context, o ClusterOptions) (*Cluster, error) {
	if !o.Pool && o.Nodes != 1 {
		return nil, errors.New("nodes that are not a pool: want one")
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
		name := fmt.Sprintf("node-%c", 'a'+i)
		s := NodeSpec{Name: name, Dir: filepath.Join(o.Dir, name), QUIC: p[0], HTTP: p[1], NATS: p[2], MQTT: p[3],
			GPU: fmt.Sprintf("devices: %d, memory: 1GiB", max(o.GPUs, 1)), LeaseTimeout: o.LeaseTimeout, MaxFractionPerTenant: o.MaxFractionPerTenant}
		if o.Pool {
			s.Cluster = listeners[i]
			for j, l := range listeners {
				if j != i {
					s.Peers = append(s.Peers, l)
				}
			}
		}
		n, err := NewNode(o.Kerfd, s)
		if err != nil {
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
	cmd.Dir, cmd.Env = n.workDir, n.env
	return cmd
}

// startWithin bounds how long a kerfd may take to serve once started.
const startWithin = time.Minute

// Start starts the node's kerfd (again, after Kill) and waits until it
// serves.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	n.log = &testkit.SyncBuffer{}
	argv := append(append(append([]string(nil), n.wrap...), n.kerfd), "--config", n.Config)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = n.workDir, n.env
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
	return poll(ctx, startWithin, n.Name+" to serve", func() (bool, error) {
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

// Stop ends the node's kerfd with SIGINT. One still running after grace
// is sent SIGQUIT (a dump of its goroutines into its log), then SIGKILL
// after as long again, and Stop says so.
func (n *Node) Stop(grace time.Duration) error {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-exited:
		return nil
	case <-time.After(grace):
	}
	cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-exited:
	case <-time.After(grace):
		cmd.Process.Kill()
		<-exited
	}
	return fmt.Errorf("%s did not stop within %v of SIGINT", n.Name, grace)
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
		go func() { defer wg.Done(); n.Stop(20 * time.Second) }()
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
