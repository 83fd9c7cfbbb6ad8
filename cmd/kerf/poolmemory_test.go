package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// In a pool whose members' GPUs differ in memory and model, kerf run by
// memory, least GPU memory or model lands on a member whose GPU fits,
// asked of the first member in the bundle (which is too small), and runs
// the emulated GPU's vadd there; a request the first member fits stays
// there. kerf pool place by memory or model places alike.
func TestPoolPlacesByMemory(t *testing.T) {
	nodes := startPoolOf(t, "10m", "memory: 1GiB", "memory: 4GiB", "memory: 8GiB, name: Kerf big GPU")
	a, b, c := nodes[0], nodes[1], nodes[2]
	for _, n := range nodes {
		waitFor(t, "the pool formed, as "+n.Name+" sees it", func() bool { return poolFormed(n.kerf(t, "pool", "status"), nodes) })
	}
	bundle := poolBundle(t, nodes, "pat")
	prog := filepath.Join(t.TempDir(), "vadd")
	src := "../../intercept/testdata"
	if out, err := exec.Command("gcc", "-I../../abi/include", "-I"+src, "-o", prog, src+"/vadd.c", "-L"+binaries(t), "-l:libcuda.so.1").CombinedOutput(); err != nil {
		t.Skipf("gcc: %v\n%s", err, out)
	}
	ptx, _ := filepath.Abs("../../gpu/emu/kernels/vadd.ptx")
	tenant := newEnv(t)
	granted := func(n *poolNode) int { return strings.Count(n.Log(), `msg="lease granted" tenant=pat`) }
	redirected := func(to *poolNode) int {
		return strings.Count(a.Log(), `msg="allocation redirected" tenant=pat node=`+to.Name)
	}
	for i, tc := range []struct {
		name  string
		flags []string
		on    *poolNode
	}{
		{"memory the first member has", []string{"--memory", "256MiB"}, a},
		{"more memory than the first member's GPU", []string{"--memory", "1536MiB"}, b},
		{"a GPU with at least 6 GiB", []string{"--min-memory", "6GiB", "-p", "0.25"}, c},
		{"a GPU model", []string{"--model", "big", "--memory", "256MiB"}, c},
	} {
		before := map[*poolNode]int{a: granted(a), b: granted(b), c: granted(c)}
		args := append([]string{"run", "--token", bundle, "--timeout", "60s", "--shim", binaries(t)}, tc.flags...)
		r := tenant.run(t, "kerf", append(args, "--", prog, ptx)...)
		if r.code != 0 || !strings.Contains(r.stdout, "vadd ok") {
			t.Fatalf("%s: exit %d\n%s\n%s", tc.name, r.code, r.stdout, r.stderr)
		}
		for _, n := range nodes {
			want := before[n]
			if n == tc.on {
				want++
			}
			if granted(n) != want {
				t.Errorf("%s (run %d): %s granted %d lease(s) to pat, want %d; %s's log:\n%s", tc.name, i, n.Name, granted(n), want, a.Name, a.Log())
			}
		}
		if tc.on != a && redirected(tc.on) == 0 {
			t.Errorf("%s: %s did not send the run to %s", tc.name, a.Name, tc.on.Name)
		}
		waitFor(t, "the run's lease out of the ledger", func() bool {
			r := append(poolRows(a.kerf(t, "pool", "status").stdout)[tc.on.Name], "", "", "", "", "")
			return r[4] == "0" // LEASES
		})
	}
	// The operator's placement takes the same: asked of the first member,
	// it reserves on the member whose GPU fits.
	for _, tc := range []struct {
		flags []string
		on    *poolNode
	}{
		{[]string{"--memory", "1536MiB"}, b},
		{[]string{"--model", "big", "-p", "0.1"}, c},
		{[]string{"--memory", "256MiB"}, a},
	} {
		r := a.kerf(t, append(append([]string{"pool", "place"}, tc.flags...), "op")...)
		if r.code != 0 || !strings.Contains(r.stdout, "for op on "+tc.on.Name+",") {
			t.Errorf("kerf pool place %v: exit %d, want on %s\n%s%s", tc.flags, r.code, tc.on.Name, r.stdout, r.stderr)
		}
	}
	if r := a.kerf(t, "pool", "place", "--memory", "9GiB", "op"); r.code == 0 || !strings.Contains(r.stderr, "node-a no GPU that fits") {
		t.Errorf("kerf pool place of more memory than any GPU: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
