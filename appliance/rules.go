package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kerf-edge/kerf/ingest"
	"github.com/kerf-edge/kerf/pool"
	"github.com/kerf-edge/kerf/profiles"
	"github.com/kerf-edge/kerf/profiles/api"
)

// Policy rules come from the config file and from the REST API. The API
// stores rule documents; kerfd checks each as an ingest rule, against the
// other rules and the stored profiles, when it is written, and keeps the
// engine's rule set in step with the config's plus the stored ones,
// skipping (and saying why) any that cannot be in force.

// policyRules is kerfd's rule set as the API sees it: it checks rules
// written through the API, lists the config file's, and reports what the
// last sync put in force.
type policyRules struct {
	config  []ingest.Rule
	docs    []api.Rule // config, as API documents
	enabled bool       // ingest.enabled: without it no rule is in force
	gpus    int        // the node's GPUs: a rule's target.gpu is below
	home    ruleHome   // where this node is: a rule's target.node, target.site

	mu    sync.Mutex
	state map[string]ruleStatus // by ruleKey, as of the last sync

	engine atomic.Pointer[ingest.Engine] // set once syncRules runs

	// resync asks a running syncRules to sync now.
	resync resync
}

// ruleStatus is one rule as the last sync left it.
type ruleStatus struct {
	doc    string // compact JSON of the document it was judged on
	state  api.RuleState
	reason string
}

var _ profiles.RuleValidator = (*policyRules)(nil)

// ruleHome is where this node is, for rules that target a node or a
// site: its name and site, and the pool's node inventory (nil outside a
// pool), which knows the other members' GPUs and sites.
type ruleHome struct {
	node, site string
	members    func() []pool.Node
}

// member is the inventory entry of the member called name.
func (h ruleHome) member(name string) (pool.Node, bool) {
	if h.members == nil {
		return pool.Node{}, false
	}
	for _, m := range h.members() {
		if m.Name == name {
			return m, true
		}
	}
	return pool.Node{}, false
}

// siteOf is the site of node, "" when not known.
func (h ruleHome) siteOf(node string) string {
	if node == h.node {
		return h.site
	}
	m, _ := h.member(node)
	return m.Site
}

// checkTarget checks a target that is not this node's against the pool:
// the node it names is a member, with the GPU it names; the site it names
// is a member's. Outside a pool, a rule for another node or site is
// refused.
func (h ruleHome) checkTarget(t ingest.Target) error {
	if h.members == nil {
		if t.Node != "" {
			return &ingest.FieldError{Field: "target.node", Msg: fmt.Sprintf("%q: this node is %s, and in no pool", t.Node, h.node)}
		}
		return &ingest.FieldError{Field: "target.site", Msg: fmt.Sprintf("%q: this node is in site %q, and in no pool", t.Site, h.site)}
	}
	ms := h.members()
	var names, sites []string
	for _, m := range ms {
		names = append(names, m.Name)
		if m.Site != "" && !slices.Contains(sites, m.Site) {
			sites = append(sites, m.Site)
		}
	}
	if t.Node != "" {
		m, ok := h.member(t.Node)
		if !ok {
			return &ingest.FieldError{Field: "target.node", Msg: fmt.Sprintf("%q: no member of the pool (%s)", t.Node, strings.Join(names, ", "))}
		}
		if g := t.GPU; g != nil && *g >= len(m.GPUs) {
			return &ingest.FieldError{Field: "target.gpu", Msg: fmt.Sprintf("%d: node %s has %d GPU(s)", *g, m.Name, len(m.GPUs))}
		}
		return nil
	}
	if t.Site != "" && !slices.Contains(sites, t.Site) {
		if len(sites) == 0 {
			return &ingest.FieldError{Field: "target.site", Msg: fmt.Sprintf("%q: no member of the pool has a site (ingest.site)", t.Site)}
		}
		slices.Sort(sites)
		return &ingest.FieldError{Field: "target.site", Msg: fmt.Sprintf("%q: no member of the pool is there (sites: %s)", t.Site, strings.Join(sites, ", "))}
	}
	return nil
}

func newPolicyRules(ic IngestConfig, gpus int, home ruleHome) *policyRules {
	pr := &policyRules{config: ic.Rules, enabled: ic.Enabled, gpus: gpus, home: home, state: map[string]ruleStatus{}, resync: make(resync)}
	for _, r := range ic.Rules {
		doc, _ := json.Marshal(r)
		pr.docs = append(pr.docs, api.Rule{Name: r.Name, Rule: doc})
	}
	return pr
}

// ConfigRules implements profiles.RuleValidator.
func (pr *policyRules) ConfigRules() []api.Rule { return slices.Clone(pr.docs) }

// RuleState implements profiles.RuleValidator.
func (pr *policyRules) RuleState(r api.Rule) (api.RuleState, string) {
	if !pr.enabled {
		return api.RuleStateSkipped, "load signals are off (ingest.enabled: false)"
	}
	pr.mu.Lock()
	st, ok := pr.state[ruleKey(r.Source, r.Name)]
	pr.mu.Unlock()
	if !ok || st.doc != compactJSON(r.Rule) {
		return api.RuleStatePending, ""
	}
	return st.state, st.reason
}

// RuleActivity implements profiles.RuleValidator, from the engine.
func (pr *policyRules) RuleActivity(r api.Rule) (profiles.RuleActivity, bool) {
	eng := pr.engine.Load()
	if eng == nil {
		return profiles.RuleActivity{}, false
	}
	st, ok := eng.RuleStatus(r.Name)
	if !ok {
		return profiles.RuleActivity{}, false
	}
	act := profiles.RuleActivity{Phase: api.RulePhase(st.Phase), Why: st.Why}
	if ev := st.Last; ev != nil {
		act.LastDecisionTime = ev.Time.UTC()
		act.LastDecision = fmt.Sprintf("%s: %s to %s, as %s", ev.Reason, ev.Profile, ev.Target, reading(ev.Decision))
		if ev.Error != "" {
			act.LastDecision = fmt.Sprintf("%s: %s to %s failed (%s), as %s", ev.Reason, ev.Profile, ev.Target, ev.Error, reading(ev.Decision))
		}
	}
	return act, true
}

// ValidateRule implements profiles.RuleValidator: the rule on its own,
// then the profiles it names, then the rules it would join.
func (pr *policyRules) ValidateRule(r api.Rule, others []api.Rule, profileNames []string) error {
	ir, err := decodeRule(r.Name, r.Rule)
	if err != nil {
		return err
	}
	ve := &profiles.ValidationError{}
	addFields(ve, pr.checkNode(ir, profileNames))
	for _, o := range others {
		or, err := decodeRule(o.Name, o.Rule)
		if err != nil {
			continue // not in force: nothing to conflict with
		}
		if why := ingest.Conflict(ir, or, pr.home.siteOf); why != "" {
			ve.Fields = append(ve.Fields, api.FieldError{Field: "target", Message: fmt.Sprintf("%s %s", why, pr.describe(o.Name))})
		}
	}
	if len(ve.Fields) > 0 {
		return ve
	}
	return nil
}

// checkNode checks what r names: its GPU, on this node or the member it
// targets, and its profiles.
func (pr *policyRules) checkNode(r ingest.Rule, profileNames []string) error {
	var target error
	if !r.Target.For(pr.home.node, pr.home.site) {
		target = pr.home.checkTarget(r.Target)
	} else if g := r.Target.GPU; g != nil && *g >= pr.gpus {
		target = &ingest.FieldError{Field: "target.gpu", Msg: fmt.Sprintf("%d: this node has %d GPU(s), 0 to %d", *g, pr.gpus, pr.gpus-1)}
	}
	return errors.Join(target, ingest.CheckProfiles(r, func(p string) bool { return slices.Contains(profileNames, p) }))
}

// describe names a rule for messages: rule "cams" (config file).
func (pr *policyRules) describe(name string) string {
	for _, r := range pr.config {
		if r.Name == name {
			return fmt.Sprintf("rule %q (config file)", name)
		}
	}
	return fmt.Sprintf("rule %q", name)
}

// decodeRule reads a stored rule document strictly and checks its own
// fields; errors name the fields as a *profiles.ValidationError.
func decodeRule(name string, doc json.RawMessage) (ingest.Rule, error) {
	var r ingest.Rule
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("rule %s: %w", name, err)
	}
	if r.Name == "" {
		r.Name = name
	}
	ve := &profiles.ValidationError{}
	if r.Name != name {
		ve.Fields = append(ve.Fields, api.FieldError{Field: "name", Message: fmt.Sprintf("%q differs from the rule's name %q", r.Name, name)})
	}
	_, err := ingest.ValidateRule(r)
	addFields(ve, err)
	if len(ve.Fields) > 0 {
		return r, ve
	}
	return r, nil
}

// addFields adds the ingest.FieldErrors joined in err to ve.
func addFields(ve *profiles.ValidationError, err error) {
	for _, fe := range ingest.FieldErrors(err) {
		ve.Fields = append(ve.Fields, api.FieldError{Field: fe.Field, Message: fe.Msg})
	}
}

func compactJSON(doc []byte) string {
	var b bytes.Buffer
	if json.Compact(&b, doc) != nil {
		return string(doc)
	}
	return b.String()
}

// ruleKey keys a rule's status: its source and name ("config/cams"), as
// a stored rule may share a config rule's name.
func ruleKey(source api.RuleSource, name string) string { return string(source) + "/" + name }

// resolve is the rule set to put in force: the config's rules, then the
// stored ones by name, each kept only if its name is free, it is for
// this node (target.node, target.site), it names a GPU of the node and
// stored profiles, and it conflicts with none kept before it; and every
// rule's status, by ruleKey.
func (pr *policyRules) resolve(stored []api.Rule, profileNames []string) ([]ingest.Rule, map[string]ruleStatus) {
	var in []ingest.Rule
	status := map[string]ruleStatus{}
	named := map[string]bool{}
	consider := func(source api.RuleSource, doc api.Rule, r ingest.Rule, err error) {
		if err == nil && named[doc.Name] {
			err = fmt.Errorf("its name is taken by %s", pr.describe(doc.Name))
		}
		named[doc.Name] = true
		if why := r.Target.Elsewhere(pr.home.node, pr.home.site); err == nil && why != "" {
			err = errors.New(why)
		}
		if err == nil {
			err = pr.checkNode(r, profileNames)
		}
		for i := 0; err == nil && i < len(in); i++ {
			if why := ingest.Conflict(r, in[i], nil); why != "" {
				err = fmt.Errorf("target: %s %s", why, pr.describe(in[i].Name))
			}
		}
		st := ruleStatus{doc: compactJSON(doc.Rule), state: api.RuleStateActive}
		if err != nil {
			st.state, st.reason = api.RuleStateSkipped, strings.ReplaceAll(err.Error(), "\n", "; ")
		} else {
			in = append(in, r)
		}
		status[ruleKey(source, doc.Name)] = st
	}
	for i, r := range pr.config {
		consider(api.RuleSourceConfig, pr.docs[i], r, nil)
	}
	for _, doc := range stored {
		r, err := decodeRule(doc.Name, doc.Rule)
		consider(api.RuleSourceAPI, doc, r, err)
	}
	return in, status
}

// statusKey is a fingerprint of a sync's outcome, to tell when it changed.
func statusKey(rules []ingest.Rule, status map[string]ruleStatus) string {
	b, _ := json.Marshal(rules)
	lines := []string{string(b)}
	for k, st := range status {
		lines = append(lines, fmt.Sprintf("%s\x00%s\x00%s\x00%s", k, st.state, st.reason, st.doc))
	}
	slices.Sort(lines[1:])
	return strings.Join(lines, "\n")
}

// rulesPoll paces how often the rules are read again (a rule written
// through the API is put in force at once, by RulesChanged).
const rulesPoll = time.Second

// RulesChanged implements profiles.RuleValidator: it has a running
// syncRules sync now and waits for it, for a second at most.
func (pr *policyRules) RulesChanged() {
	if pr.enabled {
		pr.resync.request()
	}
}

// resync lets an API write wait until a sync loop has read it: the
// writer sends a channel, which the loop closes once that sync is done.
type resync chan chan struct{}

// request has the loop sync now and waits for it, for a second at most
// (no loop running, or one stuck).
func (r resync) request() {
	done := make(chan struct{})
	timeout := time.After(time.Second)
	select {
	case r <- done:
	case <-timeout:
		return
	}
	select {
	case <-done:
	case <-timeout:
	}
}

// next ends the sync that done asked for (if one did), then waits for
// the next: a tick, or a request, whose channel it returns. false: ctx
// ended.
func (r resync) next(ctx context.Context, tick <-chan time.Time, done chan struct{}) (chan struct{}, bool) {
	if done != nil {
		close(done)
	}
	select {
	case <-ctx.Done():
		return nil, false
	case <-tick:
		return nil, true
	case d := <-r:
		return d, true
	}
}

// syncRules keeps the engine's rules equal to the config's plus the
// API's, until ctx ends. It logs the rules in force and each skipped rule
// when they change, not at every poll.
func syncRules(ctx context.Context, pr *policyRules, store *profiles.Store, eng *ingest.Engine, log *slog.Logger) {
	pr.engine.Store(eng)
	var last string
	t := time.NewTicker(rulesPoll)
	defer t.Stop()
	var done chan struct{} // a RulesChanged waiting for this sync
	for {
		stored, err := store.Rules()
		var ps []api.Profile
		if err == nil {
			ps, err = store.Profiles()
		}
		if err != nil {
			log.Warn("reading policy rules", "err", err)
		} else {
			names := make([]string, len(ps))
			for i, p := range ps {
				names[i] = p.Name
			}
			rules, status := pr.resolve(stored, names)
			if key := statusKey(rules, status); key != last {
				last = key
				pr.applied(eng, rules, status, log)
			}
		}
		var more bool
		if done, more = pr.resync.next(ctx, t.C, done); !more {
			return
		}
	}
}

// applied puts rules in force and records every rule's status, logging
// once what changed.
func (pr *policyRules) applied(eng *ingest.Engine, rules []ingest.Rule, status map[string]ruleStatus, log *slog.Logger) {
	if err := eng.SetRules(rules); err != nil {
		// resolve admits only rules that pass ValidateRules together.
		log.Error("policy rules not applied", "err", err)
		for name, st := range status {
			st.state, st.reason = api.RuleStateSkipped, "the rule set was refused: "+err.Error()
			status[name] = st
		}
	} else {
		names := make([]string, len(rules))
		for i, r := range rules {
			names[i] = r.Name
		}
		log.Info("policy rules in force", "rules", len(rules), "names", strings.Join(names, ","))
	}
	pr.mu.Lock()
	prev := pr.state
	pr.state = status
	pr.mu.Unlock()
	for key, st := range status {
		if st.state == api.RuleStateSkipped && prev[key] != st {
			log.Warn("policy rule skipped", "rule", key, "reason", st.reason)
		}
	}
}

// ingestStats reports the load-signal pipeline's counters to the metrics,
// as node totals: a series per device would be thousands of series.
type ingestStats struct {
	running *atomic.Pointer[Ingest] // nil until Run starts load signals
}

var _ profiles.IngestStats = ingestStats{}

// IngestStats implements profiles.IngestStats.
func (s ingestStats) IngestStats() []profiles.IngestStat {
	in := s.running.Load()
	if in == nil {
		return nil
	}
	st, es := in.Pipeline.Stats(), in.Engine.Stats()
	return []profiles.IngestStat{{Source: "all", Messages: st.Messages, Bytes: st.Bytes, Dropped: st.Dropped + st.Rejected, Malformed: st.Malformed,
		Series: uint64(es.Series), SeriesRefused: es.SeriesDropped, SeriesForgotten: es.SeriesForgotten,
		UnreadSeries: uint64(es.UnreadSeries), Refused: map[string]uint64{ingest.RefusedTableFull: es.SeriesDropped,
			ingest.RefusedPublisherCap: es.RefusedPublisherCap, ingest.RefusedUnreadPoolFull: es.RefusedUnreadPoolFull}}}
}
