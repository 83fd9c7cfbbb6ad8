package ingest

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/internal/clock"
)

func TestConflict(t *testing.T) {
	node := baseRule()
	node.Target.GPU = nil
	for _, tc := range []struct {
		name string
		a, b *int
		want string
	}{
		{"same GPU", gpu(0), gpu(0), "gpu/0 is already driven by"},
		{"other GPUs", gpu(0), gpu(1), ""},
		{"node and GPU", nil, gpu(1), "node overlaps gpu/1"},
		{"GPU and node", gpu(2), nil, "gpu/2 overlaps node"},
		{"node twice", nil, nil, "node is already driven by"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := baseRule(), baseRule()
			a.Target.GPU, b.Target.GPU = tc.a, tc.b
			got := Conflict(a, b, nil)
			if tc.want == "" && got != "" || !strings.HasPrefix(got, tc.want) {
				t.Errorf("Conflict = %q, want %q", got, tc.want)
			}
		})
	}
	_, err := ValidateRules([]Rule{baseRule(), node})
	if err == nil || !strings.Contains(err.Error(), "rules[1].target: node overlaps gpu/0 (each would undo the other's re-slices), driven by rules[0]") {
		t.Errorf("ValidateRules: %v", err)
	}
}

func TestValidateRuleNamesFieldsRelative(t *testing.T) {
	r := baseRule()
	r.Trigger.Aggregate = "median"
	_, err := ValidateRule(r)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "trigger.aggregate" {
		t.Fatalf("ValidateRule: %v", err)
	}
}

func TestCheckProfiles(t *testing.T) {
	r := baseRule()
	r.Fallback.Profile = "safe"
	known := map[string]bool{"7x10gb": true}
	err := CheckProfiles(r, func(p string) bool { return known[p] })
	for _, want := range []string{`target.idleProfile: "1x80gb": no such profile`, `fallback.profile: "safe": no such profile`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "target.profile") {
		t.Errorf("a known profile refused: %v", err)
	}
	known["1x80gb"], known["safe"] = true, true
	if err := CheckProfiles(r, func(p string) bool { return known[p] }); err != nil {
		t.Errorf("all known: %v", err)
	}
}

// levelCounter counts log records by level and message.
type levelCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (h *levelCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *levelCounter) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n[r.Level.String()+" "+r.Message]++
	return nil
}
func (h *levelCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *levelCounter) WithGroup(string) slog.Handler      { return h }

func (h *levelCounter) count(key string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[key]
}

// A rule whose profile cannot be applied is retried every second; its
// error is a warning once, and again only when it changes.
func TestApplyErrorLoggedOncePerChange(t *testing.T) {
	clk := clock.NewFake(testNow)
	rec := &recorder{fail: errors.New("unknown profile")}
	logs := &levelCounter{n: map[string]int{}}
	e, err := NewEngine([]Rule{baseRule()}, rec, EngineOptions{Clock: clk, Log: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 10 {
		e.Observe(ctx, sig(clk, "cam-1", 20))
		clk.Advance(time.Second)
	}
	if rec.count() < 5 {
		t.Fatalf("only %d attempts", rec.count())
	}
	if n := logs.count("WARN ingest: decision failed"); n != 1 {
		t.Errorf("%d warnings for one unchanging error", n)
	}
	rec.mu.Lock()
	rec.fail = errors.New("slice busy")
	rec.mu.Unlock()
	e.Observe(ctx, sig(clk, "cam-1", 20))
	clk.Advance(time.Second)
	e.Observe(ctx, sig(clk, "cam-1", 20))
	if n := logs.count("WARN ingest: decision failed"); n != 2 {
		t.Errorf("%d warnings after the error changed, want 2", n)
	}
	rec.mu.Lock()
	rec.fail = nil
	rec.mu.Unlock()
	clk.Advance(time.Second)
	e.Observe(ctx, sig(clk, "cam-1", 20))
	if n := logs.count("INFO ingest: decision"); n != 1 {
		t.Errorf("%d decisions logged after recovery, want 1", n)
	}
}

// Rules for different nodes or sites never overlap, whatever their GPUs;
// a rule for a node and one for a site overlap unless the node is known
// to be elsewhere.
func TestConflictAcrossNodes(t *testing.T) {
	sites := map[string]string{"node-a": "plant-1", "node-b": "plant-2"}
	siteOf := func(n string) string { return sites[n] }
	target := func(node, site string, g *int) Rule {
		r := baseRule()
		r.Target.Node, r.Target.Site, r.Target.GPU = node, site, g
		return r
	}
	for _, tc := range []struct {
		name string
		a, b Rule
		want string
	}{
		{"two nodes, same GPU", target("node-a", "", gpu(0)), target("node-b", "", gpu(0)), ""},
		{"one node, same GPU", target("node-a", "", gpu(0)), target("node-a", "", gpu(0)), "gpu/0 is already driven by"},
		{"a node and any node", target("node-a", "", nil), target("", "", gpu(1)), "node overlaps gpu/1"},
		{"two sites", target("", "plant-1", nil), target("", "plant-2", nil), ""},
		{"one site", target("", "plant-1", nil), target("", "plant-1", nil), "node is already driven by"},
		{"a node in another site", target("node-b", "", nil), target("", "plant-1", nil), ""},
		{"a site and a node in it", target("", "plant-1", nil), target("node-a", "", gpu(0)), "node overlaps gpu/0"},
		{"a site and an unknown node", target("", "plant-1", nil), target("node-x", "", nil), "node is already driven by"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Conflict(tc.a, tc.b, siteOf)
			if tc.want == "" && got != "" || !strings.HasPrefix(got, tc.want) {
				t.Errorf("Conflict = %q, want %q", got, tc.want)
			}
		})
	}
	a, b := target("node-a", "", nil), target("node-b", "", nil)
	b.Name = "cams-b"
	if _, err := ValidateRules([]Rule{a, b}); err != nil {
		t.Errorf("ValidateRules of rules for two nodes: %v", err)
	}
}

// A bad target names its field.
func TestValidateRuleTargets(t *testing.T) {
	for _, tc := range []struct {
		name       string
		node, site string
		gpu        *int
		want       string // "": valid
	}{
		{"node", "rack1-a.example", "", gpu(1), ""},
		{"site", "", "plant-1", nil, ""},
		{"bad node", "rack 1", "", nil, `target.node: "rack 1": character ' ' not allowed`},
		{"long node", strings.Repeat("n", 65), "", nil, "target.node: "},
		{"bad site", "", "plant/1", nil, `target.site: "plant/1": character '/' not allowed`},
		{"node and site", "node-a", "plant-1", nil, `target.site: "plant-1": leave out when target.node names the node`},
		{"site and GPU", "", "plant-1", gpu(0), "target.gpu: 0: a GPU is one node's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := baseRule()
			r.Target.Node, r.Target.Site, r.Target.GPU = tc.node, tc.site, tc.gpu
			_, err := ValidateRule(r)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("ValidateRule: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("ValidateRule: %v, want %q", err, tc.want)
			}
		})
	}
}
