package main

import (
	"regexp"
	"strings"
	"testing"
)

// smiMember is the line kerf smi writes for member name in its pool
// section, and the lines under it up to the next member's.
func smiMember(out, name string) string {
	_, pool, _ := strings.Cut(out, "\npool ")
	return regexp.MustCompile(`(?ms)^` + regexp.QuoteMeta(name) + ` \(.*?(^node-|\z)`).FindString(pool)
}

// kerf smi on a member of a pool of three, whose GPUs differ, shows
// every member with its GPUs and slices; a member killed is shown down,
// with what it last published.
func TestPoolSmi(t *testing.T) {
	nodes := startPoolOf(t, "10m", "memory: 1GiB", "memory: 2GiB", "memory: 4GiB, name: Kerf big GPU")
	a, b, c := nodes[0], nodes[1], nodes[2]
	waitFor(t, "the pool formed", func() bool { return poolFormed(a.kerf(t, "pool", "status"), nodes) })
	hold(t, b, "0.25")

	var out string
	waitFor(t, "kerf smi shows every member, node b's slice held", func() bool {
		r := a.kerf(t, "smi")
		out = r.stdout
		return r.code == 0 && strings.Contains(smiMember(out, b.Name), "1 held")
	})
	if !strings.HasPrefix(out, "GPU 0  ") || !strings.Contains(out, "\npool kerf: 3 of 3 members live, quorum\n") {
		t.Errorf("kerf smi: this node's GPUs, then the pool:\n%s", out)
	}
	for _, m := range []struct {
		n          *poolNode
		state, gpu string
	}{
		{a, "up, this node", `GPU 0  Kerf Emulated GPU +1\.0 GiB, `},
		{b, "up", `GPU 0  Kerf Emulated GPU +2\.0 GiB, `},
		{c, "up", `GPU 0  Kerf big GPU \(Emulated\) +4\.0 GiB, `},
	} {
		s := smiMember(out, m.n.Name)
		if !strings.HasPrefix(s, m.n.Name+" ("+m.state+"): 1 GPU(s)") || !regexp.MustCompile(m.gpu).MatchString(s) {
			t.Errorf("kerf smi's %s, want %q and %q:\n%s", m.n.Name, m.state, m.gpu, s)
		}
	}
	if s := smiMember(out, b.Name); !strings.Contains(s, "0.25 GPU leased in 1 lease(s)") || !regexp.MustCompile(`\n    default +512\.0 MiB  share  25%`).MatchString(s) {
		t.Errorf("kerf smi's %s lacks the held slice and its lease:\n%s", b.Name, s)
	}

	c.kill(t)
	waitFor(t, "kerf smi shows node c down", func() bool {
		r := a.kerf(t, "smi")
		out = r.stdout
		return r.code == 0 && strings.HasPrefix(smiMember(out, c.Name), c.Name+" (DOWN, last seen ")
	})
	if s := smiMember(out, c.Name); !strings.Contains(out, "2 of 3 members live, quorum") || !strings.Contains(s, "Kerf big GPU") {
		t.Errorf("kerf smi with node c down:\n%s", out)
	}
}
