package profiles

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/kerf-edge/kerf/profiles/api"
)

// fakeNode is an in-memory Node: one emulated 16 GiB GPU with one tenant
// slice unless a test changes it.
type fakeNode struct {
	mu      sync.Mutex
	gpus    []api.GPU
	slices  []api.Slice
	tenants []api.Tenant
	applied []string
	evicted []string
}

func newFakeNode() *fakeNode {
	return &fakeNode{
		gpus: []api.GPU{{Index: 0, Name: "Kerf emulated GPU", MemoryBytes: 16 << 30, SMs: 8, Emulated: true},
			{Index: 1, Name: "NVIDIA A100", MemoryBytes: 40 << 30, SMs: 108, Sampled: true, UtilizationRatio: 0.5, TemperatureCelsius: 61, PowerWatts: 250}},
		slices: []api.Slice{{Tenant: "alice", GPU: 0, MemoryUsedBytes: 3 << 30, MemoryLimitBytes: 8 << 30,
			ShareTarget: 0.5, ShareAchieved: 0.42}},
		tenants: []api.Tenant{{Name: "alice", Sessions: 1, MemoryLimitBytes: 8 << 30, MemoryUsedBytes: 3 << 30,
			Calls: 1234, Errors: 2, BytesIn: 1 << 20, BytesOut: 2 << 20}},
	}
}

func (n *fakeNode) GPUs() []api.GPU {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]api.GPU(nil), n.gpus...)
}

func (n *fakeNode) Slices() []api.Slice {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]api.Slice(nil), n.slices...)
}

func (n *fakeNode) Tenants() []api.Tenant {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]api.Tenant(nil), n.tenants...)
}

func (n *fakeNode) Validate(p api.Profile) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	v := &ValidationError{}
	for i, g := range p.GPUs {
		if g.GPU >= len(n.gpus) {
			v.add(fmt.Sprintf("gpus[%d].gpu", i), "no GPU %d on this node", g.GPU)
			continue
		}
		var sum uint64
		for _, s := range g.Slices {
			sum += s.MemoryBytes
		}
		if sum > n.gpus[g.GPU].MemoryBytes {
			v.add(fmt.Sprintf("gpus[%d].slices", i), "%d bytes do not fit", sum)
		}
	}
	return v.orNil()
}

func (n *fakeNode) plan(p api.Profile) api.Plan {
	pl := api.Plan{Profile: p.Name}
	for _, g := range p.GPUs {
		for _, s := range g.Slices {
			mem := s.MemoryBytes
			if mem == 0 {
				mem = uint64(s.MemoryFraction * float64(n.gpus[g.GPU].MemoryBytes))
			}
			pl.Steps = append(pl.Steps, api.PlanStep{GPU: g.GPU, Tenant: s.Tenant, Action: "create", ToMemoryBytes: mem, ToShare: s.ComputeShare})
		}
	}
	return pl
}

func (n *fakeNode) Plan(_ context.Context, p api.Profile, _ ApplyOptions) (api.Plan, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.plan(p), nil
}

func (n *fakeNode) Apply(_ context.Context, p api.Profile, opts ApplyOptions) (api.Plan, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	pl := n.plan(p)
	name := p.Name
	if opts.Force {
		name += " (forced)"
	}
	n.applied = append(n.applied, name)
	n.slices = nil
	for _, st := range pl.Steps {
		n.slices = append(n.slices, api.Slice{Tenant: st.Tenant, GPU: st.GPU, MemoryLimitBytes: st.ToMemoryBytes, ShareTarget: st.ToShare})
	}
	return pl, nil
}

// DeleteProfile refuses the profile applied last, as the node runs it.
func (n *fakeNode) DeleteProfile(name string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if k := len(n.applied); k > 0 && strings.TrimSuffix(n.applied[k-1], " (forced)") == name {
		return fmt.Errorf("profile %q is active: %w", name, ErrInUse)
	}
	return nil
}

func (n *fakeNode) Evict(_ context.Context, tenant string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, t := range n.tenants {
		if t.Name == tenant {
			n.tenants = append(n.tenants[:i], n.tenants[i+1:]...)
			n.evicted = append(n.evicted, tenant)
			return nil
		}
	}
	return fmt.Errorf("tenant %q: %w", tenant, ErrNotFound)
}

type fakeIngest struct{}

func (fakeIngest) IngestStats() []IngestStat {
	return []IngestStat{{Source: "mqtt", Messages: 10, Bytes: 800, Dropped: 1, Series: 3, SeriesRefused: 2, SeriesForgotten: 5,
		UnreadSeries: 7, Refused: map[string]uint64{"table_full": 2, "publisher_cap": 4}}}
}

// ruleCheck accepts rules whose "when" is a string, whose "profile", if
// any, is stored, and whose "target", if any, no other rule has. Its
// config rules are listed read-only; every rule is active but those in
// skipped.
type ruleCheck struct {
	config  []api.Rule
	skipped map[string]string
}

func (rc ruleCheck) ValidateRule(r api.Rule, others []api.Rule, profiles []string) error {
	var doc map[string]any
	if err := json.Unmarshal(r.Rule, &doc); err != nil {
		return err
	}
	ve := &ValidationError{}
	if _, ok := doc["when"].(string); !ok {
		ve.add("when", "want a string")
	}
	if p, ok := doc["profile"].(string); ok && !slices.Contains(profiles, p) {
		ve.add("profile", "%q: no such profile", p)
	}
	for _, o := range others {
		var od map[string]any
		json.Unmarshal(o.Rule, &od)
		if doc["target"] != nil && od["target"] == doc["target"] {
			ve.add("target", "already driven by rule %q", o.Name)
		}
	}
	return ve.orNil()
}

func (rc ruleCheck) ConfigRules() []api.Rule { return slices.Clone(rc.config) }

func (ruleCheck) RulesChanged() {}

func (rc ruleCheck) RuleState(r api.Rule) (api.RuleState, string) {
	if why, ok := rc.skipped[r.Name]; ok {
		return api.RuleStateSkipped, why
	}
	return api.RuleStateActive, ""
}

// RuleActivity: every rule in force is armed, with its threshold read
// from the document.
func (rc ruleCheck) RuleActivity(r api.Rule) (RuleActivity, bool) {
	if _, ok := rc.skipped[r.Name]; ok {
		return RuleActivity{}, false
	}
	var doc struct {
		Trigger struct {
			Metric    string  `json:"metric"`
			Threshold float64 `json:"threshold"`
		} `json:"trigger"`
	}
	json.Unmarshal(r.Rule, &doc)
	return RuleActivity{Phase: api.RulePhaseArmed, Why: fmt.Sprintf("max of %s below %g", doc.Trigger.Metric, doc.Trigger.Threshold)}, true
}
