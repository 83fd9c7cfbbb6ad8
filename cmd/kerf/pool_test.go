package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/internal/testkit"
)

// poolNode is one kerfd of a pool on loopback: its own state directory,
// ports, home (where kerf finds its bundle and admin token) and config.
type poolNode struct {
	name, config string
	env          *env
	cmd          *exec.Cmd
	exited       chan struct{} // closed when cmd has exited
	log          *testkit.SyncBuffer
}

// startPool writes the configs of n members, each with one emulated GPU,
// and starts them all.
func startPool(t *testing.T, n int) []*poolNode {
	t.Helper()
	cluster := make([]string, n)
	for i := range cluster {
		cluster[i] = freePort(t)
	}
	nodes := make([]*poolNode, n)
	for i := range nodes {
		var peers []string
		for j, c := range cluster {
			if j != i {
				peers = append(peers, fmt.Sprintf("%q", c))
			}
		}
		name := fmt.Sprintf("node-%c", 'a'+i)
		e := newEnv(t)
		http := freePort(t)
		dir := t.TempDir()
		config := fmt.Sprintf(`state_dir: %s
listen: {quic: %q, http: %q}
gpu: {backend: emulated, emulated: {devices: 1, memory: 1GiB}}
tenants: {isolation: inprocess}
ingest:
  node: %s
  broker: {embedded: {nats_listen: %q, mqtt_listen: %q}}
pool:
  listen: %q
  peers: [%s]
  secret: "pool-secret-for-the-test"
  lease_timeout: 10m
  reservation_ttl: 10m
`, filepath.Join(dir, "state"), freePort(t), http, name, freePort(t), freePort(t), cluster[i], strings.Join(peers, ", "))
		path := filepath.Join(dir, "kerfd.yaml")
		if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		nodes[i] = &poolNode{name: name, config: path, env: e.with("KERF_API=http://" + http)}
	}
	for _, p := range nodes {
		p.start(t)
	}
	return nodes
}

// start starts the node's kerfd and waits until it serves.
func (p *poolNode) start(t *testing.T) {
	t.Helper()
	p.log = &testkit.SyncBuffer{}
	p.cmd = exec.Command(filepath.Join(binaries(t), "kerfd"), "--config", p.config)
	p.cmd.Dir, p.cmd.Env = p.env.dir, p.env.vars
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd, log := p.cmd, p.log
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	p.exited = exited
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Signal(syscall.SIGQUIT) // a goroutine dump into its log
			<-exited
			t.Errorf("%s did not stop within 20s of SIGINT:\n%s", p.name, log.String())
		}
		if t.Failed() {
			t.Logf("%s's log:\n%s", p.name, log.String())
		}
	})
	waitFor(t, p.name+" ready", func() bool { return strings.Contains(p.log.String(), "kerfd ready") })
}

// kill ends the node's kerfd with SIGKILL: no shutdown of any kind.
func (p *poolNode) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.exited
}

// kerf runs the command line against the node.
func (p *poolNode) kerf(t *testing.T, args ...string) result {
	t.Helper()
	return p.env.run(t, "kerf", args...)
}

// A pool of three kerfd on loopback forms, lists its members, admits a
// node's own lease and places across nodes by compare-and-set (of two
// placements racing for the last room, one wins), refuses placements
// naming the live member once two of three are killed while a running
// session goes on, and places again when one comes back.
func TestPoolOfThree(t *testing.T) {
	nodes := startPool(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]

	var st result
	waitFor(t, "the pool formed, every member's inventory published", func() bool {
		st = a.kerf(t, "pool", "status")
		return st.code == 0 && strings.Contains(st.stdout, "3 of 3 members live") &&
			strings.Count(st.stdout, "  up") == 3 && !strings.Contains(st.stdout, "problem:") &&
			strings.Count(st.stdout, "  1     ") >= 3 // GPUS
	})
	for _, n := range nodes {
		if !strings.Contains(st.stdout, n.name) {
			t.Errorf("pool status lacks %s:\n%s", n.name, st.stdout)
		}
	}
	if !strings.Contains(st.stdout, "state in 3 replicas") {
		t.Errorf("pool status:\n%s", st.stdout)
	}

	t.Log("formed")
	// A session on node a: its lease is admitted by the ledger.
	holder := exec.Command(filepath.Join(binaries(t), "kerf"), "run", "-p", "0.25", "--timeout", "30s", "--", "sleep", "600")
	holder.Dir, holder.Env = a.env.dir, a.env.vars
	holderOut := &testkit.SyncBuffer{}
	holder.Stdout, holder.Stderr = holderOut, holderOut
	// Its program (sleep) is killed with it, by process group.
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- holder.Wait() }()
	endHolder := func() { syscall.Kill(-holder.Process.Pid, syscall.SIGKILL) }
	t.Cleanup(func() { endHolder(); <-exited })
	waitFor(t, "node a's lease in the ledger", func() bool {
		st = b.kerf(t, "pool", "status")
		return strings.Contains(st.stdout, "0.25 GPU  1")
	})

	t.Log("session admitted")
	// Fill the pool but one GPU: node a 0.25 + 0.75, node b 1.
	for _, p := range []string{"1", "0.75"} {
		if r := a.kerf(t, "pool", "place", "-p", p, "filler"); r.code != 0 {
			t.Fatalf("place %s: exit %d\n%s%s", p, r.code, r.stdout, r.stderr)
		}
	}
	// Two members place the last GPU at once.
	var wg sync.WaitGroup
	race := make([]result, 2)
	for i, n := range []*poolNode{b, c} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			race[i] = n.kerf(t, "pool", "place", "-p", "1", fmt.Sprintf("racer-%d", i))
		}()
	}
	wg.Wait()
	won := 0
	for _, r := range race {
		switch {
		case r.code == 0 && strings.Contains(r.stdout, "on "+c.name):
			won++
		case r.code == 1 && strings.Contains(r.stderr, "no capacity in the pool"):
		default:
			t.Errorf("racing placement: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	}
	if won != 1 {
		t.Fatalf("%d of two placements racing for the last GPU won, want exactly one:\n%+v", won, race)
	}

	t.Log("race done")
	// Two of three die.
	b.kill(t)
	c.kill(t)
	var r result
	waitFor(t, "placements refused without quorum", func() bool {
		r = a.kerf(t, "pool", "place", "-p", "0.1", "late")
		return r.code == 1 && strings.Contains(r.stderr, "no quorum: 1 of 3 members live ("+a.name+")")
	})
	st = a.kerf(t, "pool", "status")
	if st.code != 0 || !strings.Contains(st.stdout, "NO QUORUM") || strings.Count(st.stdout, "DOWN") != 2 {
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
		return r.code == 0 && strings.Contains(r.stdout, "on "+a.name)
	})

	t.Log("placement resumed")
	// The member still down leaves; the quorum is counted without it.
	if r := a.kerf(t, "pool", "leave", b.name); r.code != 1 || !strings.Contains(r.stderr, "member is live") {
		t.Errorf("leave of a live member: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := a.kerf(t, "pool", "leave", c.name); r.code != 0 {
		t.Fatalf("leave %s: exit %d\n%s%s", c.name, r.code, r.stdout, r.stderr)
	}
	waitFor(t, "a pool of two", func() bool {
		st = a.kerf(t, "pool", "status")
		return strings.Contains(st.stdout, "2 of 2 members live") && !strings.Contains(st.stdout, c.name)
	})
}
