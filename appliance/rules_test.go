package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/ingest"
	"github.com/kerf-edge/kerf/internal/testkit"
	"github.com/kerf-edge/kerf/pool"
	"github.com/kerf-edge/kerf/profiles"
	"github.com/kerf-edge/kerf/profiles/api"
	"github.com/kerf-edge/kerf/profiles/client"
	"github.com/kerf-edge/kerf/slicer"
)

// TestQuickStartRuleReslices follows the README's quick start from
// `kerf profiles apply uniform-20` on: the rule file it names goes in with
// `kerf rules put`, the load signal it publishes goes to the embedded MQTT
// broker, and `kerf smi` shows the node re-sliced by the rule.
func TestQuickStartRuleReslices(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	step := func(re string) []string {
		m := regexp.MustCompile(re).FindSubmatch(readme)
		if m == nil {
			t.Fatalf("README's quick start has no step matching %s", re)
		}
		out := make([]string, len(m)-1)
		for i := range out {
			out[i] = string(m[i+1])
		}
		return out
	}
	ruleFile := strings.TrimPrefix(step(`/bin/kerf rules put (\S+)`)[0], "$KERF/")
	pub := step(`mosquitto_pub -t (\S+) -m '([^']+)'`)
	step(`/bin/kerf profiles apply uniform-20`)

	a, c := startWithAPI(t, "", "KERF_INGEST__NODE=edge-1")
	kerf := func(args ...string) string {
		t.Helper()
		var out strings.Builder
		if err := client.RunCLI(context.Background(), c, args, &out); err != nil {
			t.Fatalf("kerf %s: %v", strings.Join(args, " "), err)
		}
		return out.String()
	}
	kerf("profiles", "apply", "uniform-20")
	if out := kerf("smi"); !strings.Contains(out, "20 slice(s)") {
		t.Fatalf("after uniform-20:\n%s", out)
	}
	testkit.WaitFor(t, "the embedded broker", func() bool { return a.ingest.Load() != nil })
	// The rule is in force when kerf rules put returns: a signal sent at
	// once counts.
	if out := kerf("rules", "put", filepath.Join("..", ruleFile)); !strings.Contains(out, "stored rule camera-queue (active)") {
		t.Fatalf("kerf rules put: %s", out)
	}
	if out := kerf("rules", "list"); !regexp.MustCompile(`camera-queue\s+api\s+active`).MatchString(out) {
		t.Fatalf("kerf rules list:\n%s", out)
	}
	cam := mqttClient(t, a.ingest.Load().Broker.MQTTAddr(), "cam-07", nil)
	publish(t, cam, strings.ReplaceAll(pub[0], "$(hostname)", "edge-1"), 0, false, pub[1])
	testkit.WaitFor(t, "kerf smi to show the rule's re-slice", func() bool {
		return strings.Contains(kerf("smi"), "7 slice(s)")
	})
	if p := a.node.sl.Status().Profile; p != "mixed-2x25-5x10" {
		t.Fatalf("profile %q", p)
	}
}

// startWithAPI runs kerfd on the emulated GPU with the config file conf
// (if not empty) and env on top, every listener on a free loopback port,
// and returns it with an API client holding the admin token.
func startWithAPI(t *testing.T, conf string, env ...string) (*Appliance, *client.Client) {
	t.Helper()
	dir := t.TempDir()
	file := ""
	if conf != "" {
		file = filepath.Join(dir, "kerfd.yaml")
		if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := LoadConfig(file, append([]string{
		"KERF_STATE_DIR=" + dir, "KERF_LISTEN__QUIC=127.0.0.1:0", "KERF_LISTEN__HTTP=127.0.0.1:0",
		"KERF_GPU__BACKEND=emulated", "KERF_GPU__EMULATED__MEMORY=1GiB",
		"KERF_INGEST__BROKER__EMBEDDED__NATS_LISTEN=127.0.0.1:0", "KERF_INGEST__BROKER__EMBEDDED__MQTT_LISTEN=127.0.0.1:0",
	}, env...))
	if err != nil {
		t.Fatal(err)
	}
	a := start(t, cfg)
	tok, err := a.api.RotateAdminToken()
	if err != nil {
		t.Fatal(err)
	}
	return a, client.New("http://"+a.HTTPAddr(), tok)
}

// TestRuleChecksOnTheAPI: kerfd's rule check refuses, with the field at
// fault, a rule that conflicts with a config rule or names a profile that
// is not stored; config rules are listed read-only and cannot be deleted.
func TestRuleChecksOnTheAPI(t *testing.T) {
	a, c := startWithAPI(t, `
ingest:
  rules:
    - name: cams
      trigger: {source: "*/*/cam-*", metric: queue_depth, threshold: 10}
      target: {gpu: 0, profile: uniform-10, idleProfile: uniform-20}
`, "KERF_GPU__EMULATED__DEVICES=2", "KERF_INGEST__SITE=s", "KERF_INGEST__NODE=n")
	ctx := context.Background()
	rule := func(name, target string) api.Rule {
		return api.Rule{Name: name, Rule: json.RawMessage(`{"trigger":{"source":"*/*/mic-*","metric":"db","threshold":70},"target":` + target + `}`)}
	}
	for _, tc := range []struct {
		name   string
		rule   api.Rule
		status int
		want   string
	}{
		{"same GPU as a config rule", rule("mics", `{"gpu":0,"profile":"whole","idleProfile":"uniform-20"}`), 422,
			`rule.target: gpu/0 is already driven by rule "cams" (config file)`},
		{"the node over a GPU rule", rule("mics", `{"profile":"whole","idleProfile":"uniform-20"}`), 422,
			`rule.target: node overlaps gpu/0`},
		{"no such profile", rule("mics", `{"gpu":1,"profile":"7x10gb","idleProfile":"uniform-20"}`), 422,
			`rule.target.profile: "7x10gb": no such profile`},
		{"no such GPU", rule("mics", `{"gpu":2,"profile":"whole","idleProfile":"uniform-20"}`), 422,
			`rule.target.gpu: 2: this node has 2 GPU(s), 0 to 1`},
		{"a config rule's name", rule("cams", `{"gpu":1,"profile":"whole","idleProfile":"uniform-20"}`), 409, "read-only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, call := range []func(context.Context, api.Rule) error{
				func(ctx context.Context, r api.Rule) error { _, err := c.PutRule(ctx, r); return err },
				c.ValidateRule,
			} {
				var p *api.Problem
				if err := call(ctx, tc.rule); !errors.As(err, &p) || p.Status != tc.status || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%v, want %d and %q", err, tc.status, tc.want)
				}
			}
		})
	}
	var p *api.Problem
	if err := c.DeleteRule(ctx, "cams"); !errors.As(err, &p) || p.Status != 409 {
		t.Errorf("delete a config rule: %v", err)
	}
	// A profile stored through the API is one a rule may name; the policy
	// hands it to the slicer when the rule applies it.
	halves := []api.SliceSpec{{MemoryFraction: 0.5, ComputeShare: 0.5}, {MemoryFraction: 0.5, ComputeShare: 0.5}}
	half := api.Profile{Name: "halves", GPUs: []api.GPUProfile{{GPU: 0, Slices: halves}, {GPU: 1, Slices: halves}}}
	if _, err := c.PutProfile(ctx, half); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRule(ctx, rule("mics", `{"gpu":1,"profile":"halves","idleProfile":"uniform-20"}`)); err != nil {
		t.Fatalf("a rule that fits: %v", err)
	}
	testkit.WaitFor(t, "both rules in force", func() bool {
		rs, err := c.Rules(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(rs) == 2 && rs[0].Name == "cams" && rs[0].Source == api.RuleSourceConfig && rs[0].ReadOnly &&
			rs[0].State == api.RuleStateActive && rs[1].Name == "mics" && rs[1].State == api.RuleStateActive
	})
	mic := mqttClient(t, a.ingest.Load().Broker.MQTTAddr(), "mic-1", nil)
	publish(t, mic, "edge/v1/s/n/load/mic-1", 1, false, `[{"n":"db","v":80}]`)
	testkit.WaitFor(t, "GPU 1 re-cut to the stored profile", func() bool {
		return strings.HasSuffix(a.node.sl.Status().Profile, ";gpu1=halves")
	})
}

// TestResolveSkipsWhatCannotBeInForce: a stored rule that cannot be in
// force (its profile is gone, it clashes with a config rule, its document
// is bad) is skipped with the reason, the rest stay in force, and the same
// inputs give the same fingerprint, so syncRules logs nothing new.
func TestResolveSkipsWhatCannotBeInForce(t *testing.T) {
	var ic IngestConfig
	ic.Enabled = true
	ic.Rules = []ingest.Rule{{Name: "cams", Trigger: ingest.Trigger{Source: "*", Metric: "q", Threshold: 1},
		Target: ingest.Target{GPU: new(0), Profile: "uniform-10", IdleProfile: "uniform-20"}}}
	pr := newPolicyRules(ic, 8, ruleHome{node: "node-a"})
	doc := func(name, target string) api.Rule {
		return api.Rule{Name: name, Rule: json.RawMessage(`{"trigger":{"source":"*","metric":"m","threshold":5},"target":` + target + `}`)}
	}
	stored := []api.Rule{
		doc("a-gone", `{"gpu":1,"profile":"burst","idleProfile":"uniform-20"}`),
		doc("b-clash", `{"profile":"whole","idleProfile":"uniform-20"}`),
		doc("c-bad", `{"gpu":2,"profile":"whole"}`),
		doc("cams", `{"gpu":3,"profile":"whole","idleProfile":"uniform-20"}`),
		doc("d-fine", `{"gpu":4,"profile":"whole","idleProfile":"uniform-20"}`),
	}
	profileNames := []string{"uniform-10", "uniform-20", "whole"}
	rules, status := pr.resolve(stored, profileNames)
	var names []string
	for _, r := range rules {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{"cams", "d-fine"}) {
		t.Errorf("in force: %v", names)
	}
	for key, want := range map[string]string{
		"api/a-gone":  `target.profile: "burst": no such profile`,
		"api/b-clash": `target: node overlaps gpu/0 (each would undo the other's re-slices), driven by rule "cams" (config file)`,
		"api/c-bad":   "target.idleProfile: empty",
		"api/cams":    `its name is taken by rule "cams" (config file)`,
	} {
		if st := status[key]; st.state != api.RuleStateSkipped || !strings.Contains(st.reason, want) {
			t.Errorf("%s: %+v, want skipped for %q", key, st, want)
		}
	}
	if status["config/cams"].state != api.RuleStateActive || status["api/d-fine"].state != api.RuleStateActive {
		t.Errorf("status %+v", status)
	}
	again, status2 := pr.resolve(stored, profileNames)
	if statusKey(rules, status) != statusKey(again, status2) {
		t.Error("the same inputs gave another fingerprint")
	}
	// Once the profile exists, the rule that named it comes into force.
	rules, status = pr.resolve(stored, append(profileNames, "burst"))
	if len(rules) != 3 || status["api/a-gone"].state != api.RuleStateActive {
		t.Errorf("after the profile was stored: %d rules, %+v", len(rules), status["api/a-gone"])
	}
}

// TestDocumentedRulesValidate: every rule in the docs' YAML blocks and
// docs/examples loads as kerfd would load it (the config file, or kerf
// rules put), passes the rule checks and names built-in profiles.
func TestDocumentedRulesValidate(t *testing.T) {
	builtin := func(p string) bool {
		return slices.ContainsFunc(slicer.Builtin(), func(b slicer.Profile) bool { return b.Name == p })
	}
	check := func(where string, rules []ingest.Rule) {
		t.Helper()
		if len(rules) == 0 {
			t.Errorf("%s: no rules", where)
		}
		if _, err := ingest.ValidateRules(rules); err != nil {
			t.Errorf("%s: %v", where, err)
		}
		for _, r := range rules {
			if err := ingest.CheckProfiles(r, builtin); err != nil {
				t.Errorf("%s: rule %s: %v", where, r.Name, err)
			}
		}
	}
	n := 0
	block := regexp.MustCompile("(?s)```yaml\n(.*?)```")
	for _, doc := range []string{"../docs/ingest.md", "../docs/operations.md"} {
		md, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range block.FindAllSubmatch(md, -1) {
			if !bytes.Contains(m[1], []byte("trigger:")) {
				continue
			}
			n++
			where := fmt.Sprintf("%s, YAML block %d", filepath.Base(doc), i+1)
			if bytes.Contains(m[1], []byte("ingest:")) { // a config file
				conf := filepath.Join(t.TempDir(), "kerfd.yaml")
				os.WriteFile(conf, m[1], 0o600)
				cfg, err := LoadConfig(conf, []string{"KERF_STATE_DIR=" + t.TempDir()})
				if err != nil {
					t.Errorf("%s: %v", where, err)
					continue
				}
				check(where, cfg.Ingest.Rules)
				continue
			}
			check(where, []ingest.Rule{putRule(t, where, m[1])})
		}
	}
	examples, _ := filepath.Glob("../docs/examples/*.yaml")
	for _, f := range examples {
		n++
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		check(f, []ingest.Rule{putRule(t, f, b)})
	}
	if n < 3 {
		t.Fatalf("only %d rule examples found", n)
	}
}

// putRule reads a rule as kerf rules put sends it and kerfd decodes it.
func putRule(t *testing.T, where string, b []byte) ingest.Rule {
	t.Helper()
	doc, err := client.ParseRule(b)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	r, err := decodeRule(doc.Name, doc.Rule)
	if err != nil {
		t.Errorf("%s: %v", where, err)
	}
	return r
}

// TestRulesTargetNodesAndSites: a node puts in force the rules for it
// (its name, its site, or no node or site), skips the others saying for
// which node or site they are, and refuses, naming the field, a rule for
// a node or site the pool does not have or a GPU its node lacks. Rules
// for different nodes do not conflict.
func TestRulesTargetNodesAndSites(t *testing.T) {
	var ic IngestConfig
	ic.Enabled = true
	members := []pool.Node{{Name: "node-a", Site: "plant-1", GPUs: make([]pool.GPU, 2)}, {Name: "node-b", Site: "plant-2", GPUs: make([]pool.GPU, 1)}}
	pr := newPolicyRules(ic, 2, ruleHome{node: "node-a", site: "plant-1", members: func() []pool.Node { return members }})
	doc := func(name, target string) api.Rule {
		return api.Rule{Name: name, Rule: json.RawMessage(`{"trigger":{"source":"*","metric":"m","threshold":5},"target":` + target + `}`)}
	}
	stored := []api.Rule{
		doc("a-gpu0", `{"node":"node-a","gpu":0,"profile":"whole","idleProfile":"uniform-20"}`),
		doc("b-gpu0", `{"node":"node-b","gpu":0,"profile":"whole","idleProfile":"uniform-20"}`),
		doc("plant-2", `{"site":"plant-2","profile":"whole","idleProfile":"uniform-20"}`),
		doc("any-gpu1", `{"gpu":1,"profile":"whole","idleProfile":"uniform-20"}`),
		doc("plant-1", `{"site":"plant-1","profile":"whole","idleProfile":"uniform-20"}`),
	}
	profileNames := []string{"uniform-20", "whole"}
	rules, status := pr.resolve(stored, profileNames)
	var names []string
	for _, r := range rules {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{"a-gpu0", "any-gpu1"}) {
		t.Errorf("in force on node-a: %v", names)
	}
	for key, want := range map[string]string{
		"api/b-gpu0":  "for node node-b, not this node (node-a)",
		"api/plant-2": "for site plant-2; this node is in site plant-1",
		"api/plant-1": `target: node overlaps gpu/0 (each would undo the other's re-slices), driven by rule "a-gpu0"`,
	} {
		if st := status[key]; st.state != api.RuleStateSkipped || st.reason != want {
			t.Errorf("%s: %+v, want skipped for %q", key, st, want)
		}
	}
	// Node b, in site plant-2, puts in force its own and its site's.
	prB := newPolicyRules(ic, 1, ruleHome{node: "node-b", site: "plant-2", members: func() []pool.Node { return members }})
	rules, _ = prB.resolve(stored[:3], profileNames)
	names = nil
	for _, r := range rules {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{"b-gpu0"}) { // plant-2 overlaps b-gpu0 on node b
		t.Errorf("in force on node-b: %v", names)
	}

	for _, tc := range []struct {
		name, target, field, want string
	}{
		{"another node's GPU", `{"node":"node-b","gpu":0,"profile":"whole","idleProfile":"uniform-20"}`, "", ""},
		{"no such member", `{"node":"node-x","profile":"whole","idleProfile":"uniform-20"}`, "target.node", `"node-x": no member of the pool (node-a, node-b)`},
		{"a GPU the member lacks", `{"node":"node-b","gpu":1,"profile":"whole","idleProfile":"uniform-20"}`, "target.gpu", "1: node node-b has 1 GPU(s)"},
		{"a GPU this node lacks", `{"node":"node-a","gpu":2,"profile":"whole","idleProfile":"uniform-20"}`, "target.gpu", "2: this node has 2 GPU(s), 0 to 1"},
		{"no such site", `{"site":"plant-9","profile":"whole","idleProfile":"uniform-20"}`, "target.site", `"plant-9": no member of the pool is there (sites: plant-1, plant-2)`},
		{"a site and a GPU", `{"site":"plant-2","gpu":0,"profile":"whole","idleProfile":"uniform-20"}`, "target.gpu", "0: a GPU is one node's"},
		{"a bad node name", `{"node":"node b","profile":"whole","idleProfile":"uniform-20"}`, "target.node", `"node b": character ' ' not allowed`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := pr.ValidateRule(doc("new", tc.target), stored[:1], profileNames)
			if tc.field == "" {
				if err != nil {
					t.Errorf("ValidateRule: %v", err)
				}
				return
			}
			var ve *profiles.ValidationError
			if !errors.As(err, &ve) || !slices.ContainsFunc(ve.Fields, func(f api.FieldError) bool {
				return f.Field == tc.field && strings.HasPrefix(f.Message, tc.want)
			}) {
				t.Errorf("ValidateRule: %v, want %s: %s", err, tc.field, tc.want)
			}
		})
	}
	// Outside a pool, a rule for another node is refused.
	alone := newPolicyRules(ic, 1, ruleHome{node: "node-a"})
	if err := alone.ValidateRule(doc("new", `{"node":"node-b","profile":"whole","idleProfile":"uniform-20"}`), nil, profileNames); err == nil ||
		!strings.Contains(err.Error(), "node-b") {
		t.Errorf("a rule for another node outside a pool: %v", err)
	}
}
