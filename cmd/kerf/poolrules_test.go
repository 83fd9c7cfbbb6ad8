package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A policy rule written on a member of a pool may target another member
// or one of its GPUs: it is checked against the pool's inventory (the
// error names the field), stored, and listed as skipped on the member it
// is not for.
func TestPoolRuleTargets(t *testing.T) {
	nodes := startPool(t, 3, "10m")
	a, b := nodes[0], nodes[1]
	waitFor(t, "the pool formed", func() bool { return poolFormed(a.kerf(t, "pool", "status"), nodes) })
	put := func(target string) result {
		t.Helper()
		file := filepath.Join(t.TempDir(), "rule.yaml")
		rule := "name: b-cams\ntrigger: {source: '*', metric: q, threshold: 5}\ntarget: {" + target + ", profile: whole, idleProfile: uniform-20}\n"
		if err := os.WriteFile(file, []byte(rule), 0o600); err != nil {
			t.Fatal(err)
		}
		return a.kerf(t, "rules", "put", file)
	}
	for _, tc := range []struct{ target, want string }{
		{"node: node-x", `target.node: "node-x": no member of the pool (node-a, node-b, node-c)`},
		{"node: node-b, gpu: 1", "target.gpu: 1: node node-b has 1 GPU(s)"},
		{"site: plant-1", `target.site: "plant-1": no member of the pool is there (sites: default)`}, // ingest.site defaults to default
	} {
		if r := put(tc.target); r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("rule for {%s}: exit %d, want a refusal naming %q\n%s%s", tc.target, r.code, tc.want, r.stdout, r.stderr)
		}
	}
	if r := put("node: " + b.Name + ", gpu: 0"); r.code != 0 {
		t.Fatalf("rule for GPU 0 of %s: exit %d\n%s%s", b.Name, r.code, r.stdout, r.stderr)
	}
	waitFor(t, "the rule listed as for node b", func() bool {
		r := a.kerf(t, "rules", "list")
		return r.code == 0 && strings.Contains(r.stdout, "for node "+b.Name+", not this node ("+a.Name+")")
	})
}
