package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/bench/poolbench"
	"github.com/kerf-edge/kerf/internal/testkit"
)

// poolNode is one kerfd of a pool on loopback, run by the benchmarks'
// harness (poolbench.Node): its own state directory, ports, home (where
// kerf finds its bundle and admin token) and config.
type poolNode struct {
	*poolbench.Node
	env   *env
	netns string // the network namespace it runs in; "": this process's
}

// startPool writes the configs of n members, each with one emulated GPU
// and the pool's lease_timeout leaseTimeout, and starts them all.
func startPool(t *testing.T, n int, leaseTimeout string) []*poolNode {
	t.Helper()
	gpus := make([]string, n)
	for i := range gpus {
		gpus[i] = "memory: 1GiB"
	}
	return startPoolOf(t, leaseTimeout, gpus...)
}

// startPoolOf is startPool with a member for each of gpus, the settings
// of its one emulated GPU (gpu.emulated, such as "memory: 2GiB").
func startPoolOf(t *testing.T, leaseTimeout string, gpus ...string) []*poolNode {
	t.Helper()
	timeout, err := time.ParseDuration(leaseTimeout)
	if err != nil {
		t.Fatal(err)
	}
	n := len(gpus)
	cluster := make([]string, n)
	for i := range cluster {
		cluster[i] = testkit.FreePort(t)
	}
	nodes := make([]*poolNode, n)
	for i := range nodes {
		var peers []string
		for j, c := range cluster {
			if j != i {
				peers = append(peers, c)
			}
		}
		e := newEnv(t)
		s := poolbench.NodeSpec{Name: fmt.Sprintf("node-%c", 'a'+i), Dir: t.TempDir(), QUIC: testkit.FreePort(t), HTTP: testkit.FreePort(t),
			NATS: testkit.FreePort(t), MQTT: testkit.FreePort(t), Cluster: cluster[i], Peers: peers, GPU: "devices: 1, " + gpus[i],
			LeaseTimeout: timeout, ReservationTTL: 10 * time.Minute}
		nodes[i] = newPoolNode(t, s, e.with("KERF_API=http://"+s.HTTP), "")
	}
	for _, p := range nodes {
		p.start(t)
	}
	return nodes
}

// newPoolNode is the member s describes, run in e and, unless "", the
// network namespace netns.
func newPoolNode(t *testing.T, s poolbench.NodeSpec, e *env, netns string) *poolNode {
	t.Helper()
	s.Env, s.WorkDir = e.vars, e.dir
	if netns != "" {
		s.Wrap = []string{"ip", "netns", "exec", netns}
	}
	n, err := poolbench.NewNode(filepath.Join(binaries(t), "kerfd"), s)
	if err != nil {
		t.Fatal(err)
	}
	return &poolNode{Node: n, env: e, netns: netns}
}

// start starts the node's kerfd and waits until it serves; it is stopped
// when the test ends.
func (p *poolNode) start(t *testing.T) {
	t.Helper()
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(20 * time.Second); err != nil {
			t.Errorf("%v:\n%s", err, p.Log())
		}
		if t.Failed() {
			t.Logf("%s's log:\n%s", p.Name, p.Log())
		}
	})
}

// kill ends the node's kerfd with SIGKILL: no shutdown of any kind.
func (p *poolNode) kill(t *testing.T) {
	t.Helper()
	p.Kill()
}

// kerf runs the command line against the node.
func (p *poolNode) kerf(t *testing.T, args ...string) result {
	t.Helper()
	if p.netns == "" {
		return p.env.run(t, "kerf", args...)
	}
	cmd := p.command(t, "kerf", args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	bound := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	bound.Stop()
	r := result{stdout: out.String(), stderr: errb.String()}
	if x, ok := err.(*exec.ExitError); ok {
		r.code = x.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

// command runs bin (kerf or kerfd) in the node's environment and network
// namespace (ip netns exec runs bin in its own process).
func (p *poolNode) command(t *testing.T, bin string, args ...string) *exec.Cmd {
	t.Helper()
	path := filepath.Join(binaries(t), bin)
	cmd := exec.Command(path, args...)
	if p.netns != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", p.netns, path}, args...)...)
	}
	cmd.Dir, cmd.Env = p.env.dir, p.env.vars
	return cmd
}

// poolRows reads kerf pool status's table: each member's columns after
// its name (tabwriter pads columns with two spaces or more).
func poolRows(out string) map[string][]string {
	rows := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		cols := regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1)
		if len(cols) > 1 && strings.HasPrefix(cols[0], "node-") {
			rows[cols[0]] = cols[1:]
		}
	}
	return rows
}

// poolFormed reports whether st, kerf pool status of a member, shows
// every one of nodes up with its one GPU in the inventory, and a quorum
// with no problem.
func poolFormed(st result, nodes []*poolNode) bool {
	if st.code != 0 || !strings.Contains(st.stdout, fmt.Sprintf("%d of %d members live", len(nodes), len(nodes))) ||
		strings.Contains(st.stdout, "problem:") {
		return false
	}
	rows := poolRows(st.stdout)
	for _, n := range nodes {
		if r := rows[n.Name]; len(r) < 3 || !strings.HasPrefix(r[0], "up") || r[1] != "1" { // STATE, GPUS
			return false
		}
	}
	return true
}

// hold runs kerf run -p fraction -- sleep on node n, holding a lease
// until endHolder or the test's end. exited gets its exit.
func hold(t *testing.T, n *poolNode, fraction string) (out *testkit.SyncBuffer, exited chan error, endHolder func()) {
	t.Helper()
	holder := exec.Command(filepath.Join(binaries(t), "kerf"), "run", "-p", fraction, "--timeout", "30s", "--", "sleep", "600")
	holder.Dir, holder.Env = n.env.dir, n.env.vars
	out = &testkit.SyncBuffer{}
	holder.Stdout, holder.Stderr = out, out
	// Its program (sleep) is killed with it, by process group.
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	exited = make(chan error, 1)
	go func() { exited <- holder.Wait(); close(exited) }()
	endHolder = func() { syscall.Kill(-holder.Process.Pid, syscall.SIGKILL) }
	t.Cleanup(func() { endHolder(); <-exited }) // closed once it has exited
	return out, exited, endHolder
}

// A pool of three kerfd on loopback forms, lists its members, admits
// nodes' own leases and places across nodes by compare-and-set (of two
// placements racing for the last room, one wins), refuses placements
// naming the live member once two of three are killed while a running
// session goes on, and places again when one comes back.
func TestPoolOfThree(t *testing.T) {
	nodes := startPool(t, 3, "10m")
	a, b, c := nodes[0], nodes[1], nodes[2]

	var st result
	waitFor(t, "the pool formed, every member's inventory published", func() bool {
		st = a.kerf(t, "pool", "status")
		return poolFormed(st, nodes)
	})
	if !strings.Contains(st.stdout, "state in 3 replicas") {
		t.Errorf("pool status:\n%s", st.stdout)
	}

	t.Log("formed")
	// A session on node a and one on node b: each node numbers its own
	// leases (both are l1), and the ledger admits both.
	holderOut, exited, endHolder := hold(t, a, "0.25")
	hold(t, b, "0.25")
	waitFor(t, "node a's and node b's leases in the ledger", func() bool {
		st = c.kerf(t, "pool", "status")
		rows := poolRows(st.stdout)
		for _, n := range []*poolNode{a, b} {
			if r := rows[n.Name]; len(r) < 5 || r[3] != "0.25 GPU" || r[4] != "1" { // LEASED, LEASES
				return false
			}
		}
		return true
	})

	t.Log("sessions admitted")
	// Fill the pool but 0.75 of node b's GPU: node a 0.25 + 0.75, node c 1.
	for _, p := range []string{"1", "0.75"} {
		if r := a.kerf(t, "pool", "place", "-p", p, "filler"); r.code != 0 {
			t.Fatalf("place %s: exit %d\n%s%s", p, r.code, r.stdout, r.stderr)
		}
	}
	// Two members place the last room at once.
	var wg sync.WaitGroup
	race := make([]result, 2)
	for i, n := range []*poolNode{b, c} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			race[i] = n.kerf(t, "pool", "place", "-p", "0.75", fmt.Sprintf("racer-%d", i))
		}()
	}
	wg.Wait()
	won := 0
	for _, r := range race {
		switch {
		case r.code == 0 && strings.Contains(r.stdout, "on "+b.Name):
			won++
		case r.code == 1 && strings.Contains(r.stderr, "no capacity in the pool"):
		default:
			t.Errorf("racing placement: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	}
	if won != 1 {
		t.Fatalf("%d of two placements racing for the last room won, want exactly one:\n%+v", won, race)
	}

	t.Log("race done")
	// Two of three die.
	b.kill(t)
	c.kill(t)
	var r result
	waitFor(t, "placements refused without quorum", func() bool {
		r = a.kerf(t, "pool", "place", "-p", "0.1", "late")
		return r.code == 1 && strings.Contains(r.stderr, "no quorum: 1 of 3 members live ("+a.Name+")")
	})
	st = a.kerf(t, "pool", "status")
	rows := poolRows(st.stdout)
	state := func(n *poolNode) string { return append(rows[n.Name], "")[0] }
	if st.code != 0 || !strings.Contains(st.stdout, "NO QUORUM") || state(b) != "DOWN" || state(c) != "DOWN" || state(a) != "up (this node)" {
		t.Errorf("pool status without quorum: exit %d\n%s%s", st.code, st.stdout, st.stderr)
	}
	select {
	case err := <-exited:
		t.Fatalf("the running session ended when two members died: %v\n%s", err, holderOut.String())
	default:
	}
	run := a.kerf(t, "run", "-p", "0.1", "--timeout", "1s", "--", "true")
	if run.code == 0 || !strings.Contains(run.stderr, "no quorum") {
		t.Errorf("kerf run without quorum: exit %d, want a refusal naming the quorum\n%s", run.code, run.stderr)
	}

	t.Log("refused without quorum")
	// One comes back: placement resumes with no repair. The session on
	// node a ends, and its release reaches the ledger once it can: its
	// room is placed again.
	b.start(t)
	select {
	case err := <-exited:
		t.Fatalf("the running session ended: %v\n%s", err, holderOut.String())
	default:
	}
	endHolder()
	waitFor(t, "placement after quorum returned", func() bool {
		r = a.kerf(t, "pool", "place", "-p", "0.25", "late")
		return r.code == 0 && strings.Contains(r.stdout, "on "+a.Name)
	})

	t.Log("placement resumed")
	// The member still down leaves; the quorum is counted without it.
	// Right after a member returns, JetStream may elect its leader again:
	// a leave, which needs it, is refused (503) until it has.
	leave := func(n *poolNode) result {
		var r result
		waitFor(t, "an answer to leave "+n.Name+" other than no quorum or no meta leader", func() bool {
			r = a.kerf(t, "pool", "leave", n.Name)
			return !strings.Contains(r.stderr, "no quorum") && !strings.Contains(r.stderr, "no meta leader")
		})
		return r
	}
	if r := leave(b); r.code != 1 || !strings.Contains(r.stderr, "member is live") {
		t.Errorf("leave of a live member: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := leave(c); r.code != 0 {
		t.Fatalf("leave %s: exit %d\n%s%s", c.Name, r.code, r.stdout, r.stderr)
	}
	defer func() {
		if t.Failed() {
			t.Logf("the last pool status of %s:\n%s%s", a.Name, st.stdout, st.stderr)
		}
	}()
	waitFor(t, "a pool of two", func() bool {
		st = a.kerf(t, "pool", "status")
		return strings.Contains(st.stdout, "2 of 2 members live") && !strings.Contains(st.stdout, c.Name)
	})
}

// leaseRows reads the lease table of kerf pool status: each lease's
// columns after its ID.
func leaseRows(out string) map[string][]string {
	rows := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		cols := regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1)
		if len(cols) > 1 && strings.HasPrefix(cols[0], "pool-") {
			rows[cols[0]] = cols[1:]
		}
	}
	return rows
}

// A power cut: every member is killed while placements go on from all
// of them, then all restart. No placement, token or profile that was
// acknowledged is lost, and no GPU is granted more than it has.
func TestPoolPowerCut(t *testing.T) {
	nodes := startPool(t, 3, "10m")
	// Each member places: each must have its buckets and every member's
	// inventory.
	for _, n := range nodes {
		waitFor(t, "the pool formed, as "+n.Name+" sees it", func() bool { return poolFormed(n.kerf(t, "pool", "status"), nodes) })
	}
	// Room for thirty tenths of a GPU (three members of one GPU each). Ask
	// for tenths from every member in turn, at most forty times, and cut
	// the power as soon as the third is acknowledged, while the next are
	// under way.
	placed := regexp.MustCompile(`(?m)^reserved (pool-\S+) for \S+ on (\S+), GPUs \[0\]`)
	ackedNode := map[string]string{} // lease ID: node
	tried := 0
	var mu sync.Mutex
	three, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for i := range 40 {
			r := nodes[i%3].kerf(t, "pool", "place", "-p", "0.1", fmt.Sprintf("t%d", i))
			m := placed.FindStringSubmatch(r.stdout)
			mu.Lock()
			tried++
			if r.code != 0 || m == nil {
				mu.Unlock()
				continue
			}
			ackedNode[m[1]] = m[2]
			if len(ackedNode) == 3 {
				close(three)
			}
			mu.Unlock()
		}
	}()
	select {
	case <-three:
	case <-done:
		t.Fatalf("forty placements ended with fewer than three acknowledged: %v", ackedNode)
	}
	// A token issued through one member and a profile stored through
	// another, while placements go on, acknowledged just before the cut.
	issued := filepath.Join(t.TempDir(), "pat.json")
	if r := nodes[1].kerf(t, "tokens", "issue", "--out", issued, "pat"); r.code != 0 {
		t.Fatalf("issue: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	pf := filepath.Join(t.TempDir(), "halves.json")
	os.WriteFile(pf, []byte(`{"name": "halves", "gpus": [{"gpu": 0, "slices": [{"memoryFraction": 0.5, "computeShare": 0.5}, {"memoryFraction": 0.5, "computeShare": 0.5}]}]}`), 0o600)
	if r := nodes[2].kerf(t, "profiles", "put", pf); r.code != 0 {
		t.Fatalf("profiles put: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, n := range nodes {
		n.kill(t)
	}
	<-done
	for _, n := range nodes {
		n.start(t)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, n := range nodes {
		var st result
		waitFor(t, "the pool back with its ledger, as "+n.Name+" sees it", func() bool {
			st = n.kerf(t, "pool", "status")
			return poolFormed(st, nodes) && len(leaseRows(st.stdout)) >= len(ackedNode)
		})
		leases := leaseRows(st.stdout)
		for id, node := range ackedNode {
			if r, ok := leases[id]; !ok || len(r) < 2 || r[1] != node { // TENANT, ON
				t.Errorf("acknowledged placement %s on %s: in the ledger after the power cut as %v, as %s sees it\n%s", id, node, r, n.Name, st.stdout)
			}
		}
		perNode := map[string]int{}
		for _, r := range leases {
			if len(r) > 1 {
				perNode[r[1]]++
			}
		}
		for node, k := range perNode {
			if k > 10 {
				t.Errorf("%d tenths of %s's one GPU granted, as %s sees it:\n%s", k, node, n.Name, st.stdout)
			}
		}
		if n == nodes[0] {
			t.Logf("%d placements tried, %d acknowledged before the cut, %d in the ledger after", tried, len(ackedNode), len(leases))
		}
		tenant := newEnv(t)
		at := memberBundle(t, issued, n)
		waitFor(t, "the token issued before the cut, authenticating at "+n.Name, func() bool { return authenticates(t, tenant, at) })
		waitFor(t, "the profile stored before the cut, at "+n.Name, func() bool { return n.kerf(t, "profiles", "show", "halves").code == 0 })
	}
	// The pool places again.
	if r := nodes[2].kerf(t, "pool", "place", "-p", "0.1", "after"); r.code != 0 || !placed.MatchString(r.stdout) {
		t.Errorf("place after the restart: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// A member killed by SIGKILL: a session on another member goes on, new
// placements go to the members left, and the dead member's leases leave
// the ledger once it has been out of the pool for pool.lease_timeout.
func TestPoolNodeDeath(t *testing.T) {
	const timeout = 3 * time.Second
	nodes := startPool(t, 3, timeout.String())
	a, b, c := nodes[0], nodes[1], nodes[2]
	for _, n := range nodes {
		waitFor(t, "the pool formed, as "+n.Name+" sees it", func() bool { return poolFormed(n.kerf(t, "pool", "status"), nodes) })
	}
	hold(t, a, "0.25")
	_, exited, _ := hold(t, b, "0.25")
	leases := func(st result, n *poolNode) (state, count string) {
		r := append(poolRows(st.stdout)[n.Name], "", "", "", "", "")
		return r[0], r[4] // STATE, LEASES
	}
	waitFor(t, "node a's and node b's leases in the ledger", func() bool {
		st := c.kerf(t, "pool", "status")
		_, na := leases(st, a)
		_, nb := leases(st, b)
		return na == "1" && nb == "1"
	})
	a.kill(t)
	killed := time.Now()
	// Node a's lease stays in the ledger for now, leaving 0.75 of its GPU
	// in the ledger, and node a is first by name: 0.75 goes to node b all
	// the same, as node a is not live.
	waitFor(t, "node a down, as node c sees it", func() bool {
		state, _ := leases(c.kerf(t, "pool", "status"), a)
		return state == "DOWN"
	})
	var r result
	waitFor(t, "a placement on the members left", func() bool {
		r = c.kerf(t, "pool", "place", "-p", "0.75", "after")
		return r.code == 0
	})
	if r.code != 0 || !strings.Contains(r.stdout, "on "+b.Name) {
		t.Fatalf("placement after %s died: exit %d, want it on %s\n%s%s", a.Name, r.code, b.Name, r.stdout, r.stderr)
	}
	var st result
	waitFor(t, "node a's lease reclaimed", func() bool {
		st = c.kerf(t, "pool", "status")
		state, n := leases(st, a)
		return state == "DOWN" && n == "0"
	})
	reclaimed := time.Since(killed)
	// Node a was last seen at most one round (a second) before it died.
	if reclaimed < timeout-time.Second {
		t.Errorf("node a's lease reclaimed %v after it died, before lease_timeout %v:\n%s", reclaimed, timeout, st.stdout)
	}
	if _, n := leases(st, b); n != "2" {
		t.Errorf("node b's leases after node a's were reclaimed: %s, want its session's and the placement's\n%s", n, st.stdout)
	}
	select {
	case err := <-exited:
		t.Errorf("the session on node b ended when node a died: %v", err)
	default:
	}
	t.Logf("node a's lease reclaimed %v after it died (lease_timeout %v)", reclaimed.Round(10*time.Millisecond), timeout)
}

// defaultBundle is the bundle the node's kerfd wrote for its default
// tenant: its QUIC address and certificate fingerprint.
func (p *poolNode) defaultBundle(t *testing.T) auth.Bundle {
	t.Helper()
	b, err := auth.ReadBundle(filepath.Join(p.env.home, ".config", "kerf", "bundle.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// poolBundle issues a token for tenant through the first node's API and
// waits until every member lists it (the pool's state carries it there).
// The bundle written must name every member, the issuing one first, each
// with its QUIC address and fingerprint; poolBundle returns it without
// its socket: the tenant runs elsewhere.
func poolBundle(t *testing.T, nodes []*poolNode, tenant string) string {
	t.Helper()
	issued := filepath.Join(t.TempDir(), "issued.json")
	if r := nodes[0].kerf(t, "tokens", "issue", "--out", issued, tenant); r.code != 0 {
		t.Fatalf("issue: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, n := range nodes[1:] {
		waitFor(t, tenant+"'s token at "+n.Name, func() bool {
			r := n.kerf(t, "tokens", "list")
			return r.code == 0 && strings.Contains(r.stdout, tenant+" ")
		})
	}
	b, err := auth.ReadBundle(issued)
	if err != nil {
		t.Fatal(err)
	}
	var want []auth.PoolMember
	for _, n := range nodes {
		d := n.defaultBundle(t)
		want = append(want, auth.PoolMember{Node: n.Name, QUIC: d.QUIC, Fingerprint: d.Fingerprint})
	}
	if !slices.Equal(b.Pool, want) || b.QUIC != want[0].QUIC || b.Fingerprint != want[0].Fingerprint {
		t.Fatalf("the bundle issued at %s names %s %s and the pool %+v, want %s %s and %+v", nodes[0].Name, b.QUIC, b.Fingerprint, b.Pool, want[0].QUIC, want[0].Fingerprint, want)
	}
	b.Socket = ""
	path := filepath.Join(t.TempDir(), tenant+".json")
	if err := auth.WriteBundle(path, b); err != nil {
		t.Fatal(err)
	}
	return path
}

// offlineBundle issues a token with kerfd tokens issue on the first node,
// from its state directory while it serves, until the bundle names every
// member, as the one issued through its API does: the member remembers
// the others for it.
func offlineBundle(t *testing.T, nodes []*poolNode) {
	t.Helper()
	var want []auth.PoolMember
	for _, n := range nodes {
		d := n.defaultBundle(t)
		want = append(want, auth.PoolMember{Node: n.Name, QUIC: d.QUIC, Fingerprint: d.Fingerprint})
	}
	path := filepath.Join(t.TempDir(), "offline.json")
	var b auth.Bundle
	waitFor(t, "a bundle issued offline that names the pool", func() bool {
		cmd := nodes[0].command(t, "kerfd", "tokens", "issue", "--config", nodes[0].Config, "--out", path, "offline")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kerfd tokens issue: %v\n%s", err, out)
		}
		var err error
		if b, err = auth.ReadBundle(path); err != nil {
			t.Fatal(err)
		}
		return slices.Equal(b.Pool, want)
	})
	if b.QUIC != want[0].QUIC || b.Fingerprint != want[0].Fingerprint {
		t.Fatalf("the bundle issued offline at %s names %s %s, want %s %s", nodes[0].Name, b.QUIC, b.Fingerprint, want[0].QUIC, want[0].Fingerprint)
	}
}

// A tenant whose bundle, issued through one member, names the pool
// reaches the first member that answers; that member places the request
// in the pool and, when the room is on another member, redirects the
// tenant there, where its program runs. The issuing member, killed, is
// passed over.
func TestPoolPlacesTenants(t *testing.T) {
	nodes := startPool(t, 3, "10m")
	a, b, c := nodes[0], nodes[1], nodes[2]
	for _, n := range nodes {
		waitFor(t, "the pool formed, as "+n.Name+" sees it", func() bool { return poolFormed(n.kerf(t, "pool", "status"), nodes) })
	}
	bundle := poolBundle(t, nodes, "pat")
	offlineBundle(t, nodes)
	prog := filepath.Join(t.TempDir(), "vadd")
	src := "../../intercept/testdata"
	if out, err := exec.Command("gcc", "-I../../abi/include", "-I"+src, "-o", prog, src+"/vadd.c", "-L"+binaries(t), "-l:libcuda.so.1").CombinedOutput(); err != nil {
		t.Skipf("gcc: %v\n%s", err, out)
	}
	ptx, _ := filepath.Abs("../../gpu/emu/kernels/vadd.ptx")
	tenant := newEnv(t)
	run := func(what string) {
		t.Helper()
		r := tenant.run(t, "kerf", "run", "--token", bundle, "-p", "0.5", "--timeout", "60s", "--shim", binaries(t), "--", prog, ptx)
		if r.code != 0 || !strings.Contains(r.stdout, "vadd ok") {
			t.Fatalf("%s: exit %d\n%s\n%s", what, r.code, r.stdout, r.stderr)
		}
	}
	granted := func(n *poolNode) int { return strings.Count(n.Log(), `msg="lease granted" tenant=pat`) }

	// Node a, first in the bundle, is full: it sends the tenant to node
	// b, the first member by name with room.
	if r := a.kerf(t, "pool", "place", "-p", "1", "filler-a"); r.code != 0 || !strings.Contains(r.stdout, "on "+a.Name) {
		t.Fatalf("place on %s: exit %d\n%s%s", a.Name, r.code, r.stdout, r.stderr)
	}
	run("a run placed by a full member")
	if !strings.Contains(a.Log(), `msg="allocation redirected" tenant=pat node=node-b`) || granted(a) != 0 || granted(b) != 1 || granted(c) != 0 {
		t.Fatalf("the run did not go from %s to %s: leases granted a %d, b %d, c %d; %s's log:\n%s", a.Name, b.Name, granted(a), granted(b), granted(c), a.Name, a.Log())
	}
	// Node b writes the run's release within a tenth of a second, and
	// node c reads b's leases once a second: c's view is past the release
	// once it has shown no lease on b for longer than two of its reads.
	var clear time.Time
	waitFor(t, "the run's lease out of the ledger", func() bool {
		r := append(poolRows(c.kerf(t, "pool", "status").stdout)[b.Name], "", "", "", "", "")
		if r[4] != "0" { // LEASES
			clear = time.Time{}
			return false
		}
		if clear.IsZero() {
			clear = time.Now()
		}
		return time.Since(clear) > 2*time.Second
	})

	// Node a dies; node b is filled. The tenant passes node a over, node b
	// answers and sends it to node c.
	a.kill(t)
	var r result
	waitFor(t, "a placement on node b with node a down", func() bool {
		r = c.kerf(t, "pool", "place", "-p", "1", "filler-b")
		return r.code == 0
	})
	if !strings.Contains(r.stdout, "on "+b.Name) {
		t.Fatalf("filler-b placed elsewhere than %s:\n%s", b.Name, r.stdout)
	}
	start := time.Now()
	run("a run with the first member down")
	t.Logf("run with %s down and %s full took %v", a.Name, b.Name, time.Since(start).Round(10*time.Millisecond))
	if !strings.Contains(b.Log(), `msg="allocation redirected" tenant=pat node=node-c`) || granted(b) != 1 || granted(c) != 1 {
		t.Fatalf("the run did not go from %s to %s: leases granted b %d, c %d; %s's log:\n%s", b.Name, c.Name, granted(b), granted(c), b.Name, b.Log())
	}
}

// memberBundle rewrites the bundle at path to name member n alone, over
// QUIC, and returns the new bundle's path.
func memberBundle(t *testing.T, path string, n *poolNode) string {
	t.Helper()
	b, err := auth.ReadBundle(path)
	if err != nil {
		t.Fatal(err)
	}
	d := n.defaultBundle(t)
	b.Socket, b.QUIC, b.Fingerprint, b.Pool = "", d.QUIC, d.Fingerprint, nil
	out := filepath.Join(t.TempDir(), b.Tenant+"-"+n.Name+".json")
	if err := auth.WriteBundle(out, b); err != nil {
		t.Fatal(err)
	}
	return out
}

// authenticates reports whether kerf info with bundle is answered.
func authenticates(t *testing.T, e *env, bundle string) bool {
	t.Helper()
	return e.run(t, "kerf", "info", "--token", bundle).code == 0
}

// Tenants, tokens and profiles are the pool's: a token issued through
// one member authenticates at another, a revocation through a third ends
// the tenant's session on the second, a tenant's policy, a profile and a
// rule set through one hold at another, and a rule deleted through one
// goes at the others. Without quorum, such writes are refused naming the live
// members, while what was applied keeps serving; with the quorum back, a
// token issued through a restarted member authenticates at the member
// that stayed up.
func TestPoolSharesTenants(t *testing.T) {
	nodes := startPool(t, 3, "10m")
	a, b, c := nodes[0], nodes[1], nodes[2]
	for _, n := range nodes {
		waitFor(t, "the pool formed, as "+n.Name+" sees it", func() bool { return poolFormed(n.kerf(t, "pool", "status"), nodes) })
	}
	issued := filepath.Join(t.TempDir(), "pat.json")
	if r := a.kerf(t, "tokens", "issue", "--out", issued, "pat"); r.code != 0 {
		t.Fatalf("issue at %s: exit %d\n%s%s", a.Name, r.code, r.stdout, r.stderr)
	}
	tenant := newEnv(t)
	atB := memberBundle(t, issued, b)
	waitFor(t, "pat's token, issued at node a, authenticating at node b", func() bool { return authenticates(t, tenant, atB) })
	waitFor(t, "pat's token listed at node c", func() bool {
		r := c.kerf(t, "tokens", "list")
		return r.code == 0 && strings.Contains(r.stdout, "pat ")
	})

	// A session of pat on node b; revoked through node c, it ends.
	holder := exec.Command(filepath.Join(binaries(t), "kerf"), "run", "--token", atB, "-p", "0.25", "--timeout", "30s", "--", "sleep", "600")
	holder.Dir, holder.Env = tenant.dir, tenant.vars
	holderOut := &testkit.SyncBuffer{}
	holder.Stdout, holder.Stderr = holderOut, holderOut
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	holderDone := make(chan struct{})
	go func() { holder.Wait(); close(holderDone) }()
	t.Cleanup(func() { syscall.Kill(-holder.Process.Pid, syscall.SIGKILL); <-holderDone })
	waitFor(t, "pat's lease on node b", func() bool { return strings.Contains(b.Log(), `msg="lease granted" tenant=pat`) })
	if r := c.kerf(t, "tokens", "revoke", "pat"); r.code != 0 {
		t.Fatalf("revoke at %s: exit %d\n%s%s", c.Name, r.code, r.stdout, r.stderr)
	}
	waitFor(t, "pat's session on node b ended by the revocation at node c", func() bool {
		return strings.Contains(b.Log(), `msg="closed sessions of revoked tenant" tenant=pat`)
	})
	if authenticates(t, tenant, atB) {
		t.Errorf("pat's revoked token still authenticates at %s", b.Name)
	}
	atA := memberBundle(t, issued, a)
	waitFor(t, "pat's token refused at node a too", func() bool {
		r := tenant.run(t, "kerf", "info", "--token", atA)
		return r.code != 0 && strings.Contains(r.stderr, "revoked")
	})

	// A tenant's policy set through node a holds at node c.
	if r := a.kerf(t, "tenants", "policy", "pat", "--gpus", "0.75", "--idle", "10m"); r.code != 0 {
		t.Fatalf("tenants policy at %s: exit %d\n%s%s", a.Name, r.code, r.stdout, r.stderr)
	}
	waitFor(t, "pat's policy set at node a, at node c", func() bool {
		r := c.kerf(t, "tenants", "policy", "pat")
		return r.code == 0 && strings.Contains(r.stdout, "its own policy") && strings.Contains(r.stdout, "0.75 GPUs") && strings.Contains(r.stdout, "10m0s")
	})

	// A profile stored through node a is listed by node c.
	pf := filepath.Join(t.TempDir(), "halves.json")
	os.WriteFile(pf, []byte(`{"name": "halves", "gpus": [{"gpu": 0, "slices": [{"memoryFraction": 0.5, "computeShare": 0.5}, {"memoryFraction": 0.5, "computeShare": 0.5}]}]}`), 0o600)
	if r := a.kerf(t, "profiles", "put", pf); r.code != 0 {
		t.Fatalf("profiles put at %s: exit %d\n%s%s", a.Name, r.code, r.stdout, r.stderr)
	}
	waitFor(t, "the profile stored at node a, at node c", func() bool {
		r := c.kerf(t, "profiles", "show", "halves")
		return r.code == 0 && strings.Contains(r.stdout, `"computeShare": 0.5`)
	})

	// A rule stored through node a is in force at node c; deleted
	// through node b, it goes at node c too.
	rule, _ := filepath.Abs("../../docs/examples/camera-queue.yaml")
	if r := a.kerf(t, "rules", "put", rule); r.code != 0 {
		t.Fatalf("rules put at %s: exit %d\n%s%s", a.Name, r.code, r.stdout, r.stderr)
	}
	inForce := regexp.MustCompile(`camera-queue\s+api\s+active`)
	waitFor(t, "the rule stored at node a, in force at node c", func() bool { return inForce.MatchString(c.kerf(t, "rules", "list").stdout) })
	if r := b.kerf(t, "rules", "delete", "camera-queue"); r.code != 0 {
		t.Fatalf("rules delete at %s: exit %d\n%s%s", b.Name, r.code, r.stdout, r.stderr)
	}
	waitFor(t, "the rule deleted at node b, gone at node c", func() bool {
		r := c.kerf(t, "rules", "list")
		return r.code == 0 && !strings.Contains(r.stdout, "camera-queue")
	})

	// Without quorum: a token is refused, and what was applied serves.
	bob := filepath.Join(t.TempDir(), "bob.json")
	if r := a.kerf(t, "tokens", "issue", "--out", bob, "bob"); r.code != 0 {
		t.Fatalf("issue bob: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	bobAtC := memberBundle(t, bob, c)
	waitFor(t, "bob's token at node c", func() bool { return authenticates(t, tenant, bobAtC) })
	a.kill(t)
	b.kill(t)
	var r result
	waitFor(t, "a token refused without quorum", func() bool {
		r = c.kerf(t, "tokens", "issue", "--out", filepath.Join(t.TempDir(), "late.json"), "late")
		return r.code != 0 && strings.Contains(r.stderr, "no quorum: 1 of 3 members live ("+c.Name+")")
	})
	if r := c.kerf(t, "profiles", "put", pf); r.code == 0 || !strings.Contains(r.stderr, "no quorum") {
		t.Errorf("profiles put without quorum: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// A session needs its slice admitted to the ledger, which is refused
	// without quorum, but only once its token was accepted.
	if r := tenant.run(t, "kerf", "info", "--token", bobAtC); strings.Contains(r.stderr, "authentication failed") || r.code != 0 && !strings.Contains(r.stderr, "no quorum") {
		t.Errorf("bob's token at %s without quorum: exit %d, want it accepted\n%s%s", c.Name, r.code, r.stdout, r.stderr)
	}
	if r := c.kerf(t, "profiles", "show", "halves"); r.code != 0 {
		t.Errorf("profiles show without quorum: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// The quorum back, a token issued through node a authenticates at
	// node c, which watched the state through the quorum's loss.
	a.start(t)
	b.start(t)
	waitFor(t, "the pool formed again, as "+c.Name+" sees it", func() bool { return poolFormed(c.kerf(t, "pool", "status"), nodes) })
	late := filepath.Join(t.TempDir(), "late.json")
	waitFor(t, "a token issued through node a with the quorum back", func() bool {
		return a.kerf(t, "tokens", "issue", "--out", late, "late").code == 0
	})
	lateAtC := memberBundle(t, late, c)
	waitFor(t, "late's token, issued at node a, authenticating at node c", func() bool { return authenticates(t, tenant, lateAtC) })
}

// buildTenant compiles the C program intercept/testdata/NAME.c against
// the shim, skipping the test without gcc.
func buildTenant(t *testing.T, name string) string {
	t.Helper()
	prog := filepath.Join(t.TempDir(), name)
	src := "../../intercept/testdata"
	if out, err := exec.Command("gcc", "-I../../abi/include", "-I"+src, "-o", prog, src+"/"+name+".c", "-L"+binaries(t), "-l:libcuda.so.1").CombinedOutput(); err != nil {
		t.Skipf("gcc: %v\n%s", err, out)
	}
	return prog
}

// spinner is a kerf run of intercept/testdata/spin.c on one member.
type spinner struct {
	out    *testkit.SyncBuffer
	exited chan error
}

// spin runs kerf run -p 0.25 --via via of prog for secs on node n (its
// own default tenant, which the pool places on n itself) and waits until
// the program works the GPU.
func spin(t *testing.T, n *poolNode, via, prog string, secs int) *spinner {
	t.Helper()
	cmd := exec.Command(filepath.Join(binaries(t), "kerf"), "run", "-p", "0.25", "--via", via, "--timeout", "60s", "--shim", binaries(t), "--", prog, fmt.Sprint(secs))
	cmd.Dir, cmd.Env = n.env.dir, n.env.vars
	s := &spinner{out: &testkit.SyncBuffer{}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	waitFor(t, "the tenant on "+n.Name+" working the GPU", func() bool {
		select {
		case err := <-s.exited:
			t.Fatalf("the tenant on %s ended before it worked the GPU: %v\n%s", n.Name, err, s.out.String())
		default:
		}
		return strings.Contains(s.out.String(), "spinning")
	})
	return s
}

// A member killed by SIGKILL while tenants work the GPU on each of the
// three, over the local socket and over QUIC: the tenants on the other
// two finish with no error, and the dead member's get
// CUDA_ERROR_DEVICE_UNAVAILABLE: at once on the socket, over QUIC once
// the connection's idle timeout passes (a killed process sends nothing).
func TestPoolKillWhileTenantsRun(t *testing.T) {
	nodes := startPool(t, 3, "10m")
	for _, n := range nodes {
		waitFor(t, "the pool formed, as "+n.Name+" sees it", func() bool { return poolFormed(n.kerf(t, "pool", "status"), nodes) })
	}
	prog := buildTenant(t, "spin")
	const secs = 25
	type tenant struct {
		node *poolNode
		via  string
		s    *spinner
	}
	tenants := []*tenant{{node: nodes[0], via: "unix"}, {node: nodes[0], via: "quic"}, {node: nodes[1], via: "quic"}, {node: nodes[2], via: "unix"}}
	for _, tn := range tenants {
		before := strings.Count(tn.node.Log(), `msg="lease granted" tenant=default`)
		tn.s = spin(t, tn.node, tn.via, prog, secs)
		if g := strings.Count(tn.node.Log(), `msg="lease granted" tenant=default`); g != before+1 {
			t.Fatalf("%s granted %d leases to its tenant, want %d:\n%s", tn.node.Name, g, before+1, tn.node.Log())
		}
	}
	for _, tn := range tenants {
		select {
		case err := <-tn.s.exited:
			t.Fatalf("the tenant on %s (%s) ended before the kill (%v): raise secs\n%s", tn.node.Name, tn.via, err, tn.s.out.String())
		default:
		}
	}
	killed := time.Now()
	nodes[0].kill(t)
	for _, tn := range tenants[:2] {
		select {
		case err := <-tn.s.exited:
			if err == nil || !strings.Contains(tn.s.out.String(), "CUDA_ERROR_DEVICE_UNAVAILABLE") {
				t.Errorf("the dead member's tenant (%s): %v, want a failure with CUDA_ERROR_DEVICE_UNAVAILABLE\n%s", tn.via, err, tn.s.out.String())
			}
			t.Logf("the dead member's tenant (%s) ended %v after the kill", tn.via, time.Since(killed).Round(time.Millisecond))
		case <-time.After(testkit.WaitTimeout):
			t.Errorf("the dead member's tenant (%s) still runs %v after the kill:\n%s", tn.via, testkit.WaitTimeout, tn.s.out.String())
		}
	}
	for _, tn := range tenants[2:] {
		select {
		case err := <-tn.s.exited:
			if err != nil || !strings.Contains(tn.s.out.String(), "spin ok") {
				t.Errorf("the tenant on %s (%s), a member left: %v, want its %d s without an error\n%s", tn.node.Name, tn.via, err, secs, tn.s.out.String())
			}
		case <-time.After(secs*time.Second + testkit.WaitTimeout):
			t.Errorf("the tenant on %s (%s) has not ended %d s after it started:\n%s", tn.node.Name, tn.via, secs, tn.s.out.String())
		}
	}
}
