package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/internal/testkit"
)

// kerfdTokens runs kerfd tokens ARGS on member n, against its state
// directory while it serves, as an operator on that machine would.
func (p *poolNode) kerfdTokens(t *testing.T, sub string, args ...string) {
	t.Helper()
	cmd := p.command(t, "kerfd", append([]string{"tokens", sub, "--config", p.Config}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kerfd tokens %s %s on %s: %v\n%s", sub, strings.Join(args, " "), p.Name, err, out)
	}
}

// holdWith runs kerf run -p 0.25 -- sleep with bundle in e, holding its
// lease until the test ends; a failed test logs its output.
func holdWith(t *testing.T, e *env, bundle string) {
	t.Helper()
	holder := exec.Command(filepath.Join(binaries(t), "kerf"), "run", "--token", bundle, "-p", "0.25", "--timeout", "30s", "--", "sleep", "600")
	holder.Dir, holder.Env = e.dir, e.vars
	out := &testkit.SyncBuffer{}
	holder.Stdout, holder.Stderr = out, out
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { holder.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-holder.Process.Pid, syscall.SIGKILL)
		<-done
		if t.Failed() {
			t.Logf("the holder's output:\n%s", out.String())
		}
	})
}

// A member publishes the tokens of its token file into the pool: its
// default tenant's, issued before it served in the pool, and one issued
// offline with kerfd tokens issue while it serves authenticate at the
// other members; revoked offline there, the token's session on another
// member ends and it is refused there. A token revoked through the pool
// while the member was down, and still live in its file, is not brought
// back when it returns: the member takes the revocation.
func TestPoolPublishesOwnTokens(t *testing.T) {
	nodes := startPool(t, 3, "10m")
	a, b, c := nodes[0], nodes[1], nodes[2]
	for _, n := range nodes {
		waitFor(t, "the pool formed, as "+n.Name+" sees it", func() bool { return poolFormed(n.kerf(t, "pool", "status"), nodes) })
	}
	tenant := newEnv(t)

	// Node a's default token, issued at its first start.
	defaultAtC := memberBundle(t, filepath.Join(a.env.home, ".config", "kerf", "bundle.json"), c)
	waitFor(t, "node a's default token authenticating at node c", func() bool { return authenticates(t, tenant, defaultAtC) })

	// A token issued offline on node a while it serves.
	issued := filepath.Join(t.TempDir(), "ofl.json")
	a.kerfdTokens(t, "issue", "--out", issued, "ofl")
	atB, atC := memberBundle(t, issued, b), memberBundle(t, issued, c)
	waitFor(t, "ofl's token, issued offline at node a, authenticating at node b", func() bool { return authenticates(t, tenant, atB) })
	waitFor(t, "ofl's token authenticating at node c", func() bool { return authenticates(t, tenant, atC) })
	ofl, err := auth.ReadBundle(issued)
	if err != nil {
		t.Fatal(err)
	}
	if log := a.Log(); !strings.Contains(log, `msg="published this member's own tokens to the pool" tenant=ofl issued=1`) || strings.Contains(log, ofl.Token) {
		t.Fatalf("node a's log does not say it published ofl's token, or names a token:\n%s", log)
	}

	// Revoked offline on node a: its session on node b ends.
	holdWith(t, tenant, atB)
	waitFor(t, "ofl's lease on node b", func() bool { return strings.Contains(b.Log(), `msg="lease granted" tenant=ofl`) })
	a.kerfdTokens(t, "revoke", "ofl")
	waitFor(t, "ofl's session on node b ended by the revocation offline at node a", func() bool {
		return strings.Contains(b.Log(), `msg="closed sessions of revoked tenant" tenant=ofl`)
	})
	waitFor(t, "ofl's token refused at node b", func() bool {
		r := tenant.run(t, "kerf", "info", "--token", atB)
		return r.code != 0 && strings.Contains(r.stderr, "revoked")
	})
	waitFor(t, "ofl's token refused at node c", func() bool { return !authenticates(t, tenant, atC) })

	// A token of node a's, revoked through node b while node a is down,
	// stays revoked when node a comes back with it live in its file.
	late := filepath.Join(t.TempDir(), "late.json")
	a.kerfdTokens(t, "issue", "--out", late, "late")
	lateAtA, lateAtC := memberBundle(t, late, a), memberBundle(t, late, c)
	waitFor(t, "late's token authenticating at node c", func() bool { return authenticates(t, tenant, lateAtC) })
	a.kill(t)
	waitFor(t, "late's token revoked through node b with node a down", func() bool {
		return b.kerf(t, "tokens", "revoke", "late").code == 0
	})
	waitFor(t, "late's token refused at node c", func() bool { return !authenticates(t, tenant, lateAtC) })
	a.start(t)
	waitFor(t, "the pool formed again, as "+a.Name+" sees it", func() bool { return poolFormed(a.kerf(t, "pool", "status"), nodes) })
	waitFor(t, "late's token refused at node a, back in the pool", func() bool {
		r := tenant.run(t, "kerf", "info", "--token", lateAtA)
		return r.code != 0 && strings.Contains(r.stderr, "revoked")
	})
	if strings.Contains(a.Log(), `own tokens to the pool" tenant=late`) {
		t.Errorf("node a published late's token revoked in the pool:\n%s", a.Log())
	}
	if authenticates(t, tenant, lateAtC) {
		t.Errorf("late's token revoked in the pool authenticates at %s again", c.Name)
	}
}
