package ingest

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"time"
)

// Duration is a time.Duration written as "30s" in YAML and JSON.
type Duration time.Duration

// UnmarshalText parses Go duration syntax.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q: want a duration such as 30s or 2m", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes Go duration syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D is d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Rule maps one load signal to profiles for one target, in KEDA/HPA terms.
type Rule struct {
	Name     string   `json:"name" yaml:"name" koanf:"name"`
	Trigger  Trigger  `json:"trigger" yaml:"trigger" koanf:"trigger"`
	Target   Target   `json:"target" yaml:"target" koanf:"target"`
	Behavior Behavior `json:"behavior" yaml:"behavior" koanf:"behavior"`
	Fallback Fallback `json:"fallback" yaml:"fallback" koanf:"fallback"`
}

// Trigger selects series and says when they call for the target's profile.
type Trigger struct {
	// Source is a glob over site/node/source, e.g. "plant-1/*/cam-*".
	Source string `json:"source" yaml:"source" koanf:"source"`
	// Metric is a glob over the record's n (or its full resolved name).
	Metric    string   `json:"metric" yaml:"metric" koanf:"metric"`
	Aggregate string   `json:"aggregate,omitempty" yaml:"aggregate,omitempty" koanf:"aggregate"` // avg (default), max, sum, rate
	Window    Duration `json:"window,omitempty" yaml:"window,omitempty" koanf:"window"`          // default 1m
	// Threshold: at or above it the rule wants Target.Profile.
	Threshold float64 `json:"threshold" yaml:"threshold" koanf:"threshold"`
	// ActivationThreshold: below it the rule wants Target.IdleProfile; between
	// the two the current profile stays. Defaults to Threshold.
	ActivationThreshold *float64 `json:"activationThreshold,omitempty" yaml:"activationThreshold,omitempty" koanf:"activationthreshold"`
	// StaleAfter: a series with no signal for this long is ignored; when all
	// are, the fallback applies. 0: never stale.
	StaleAfter Duration `json:"staleAfter,omitempty" yaml:"staleAfter,omitempty" koanf:"staleafter"`
}

// Target is one GPU of a node, or the whole node when GPU is nil. Node
// and Site say which nodes the rule is for: the node of that name in the
// pool (pool.node), or every node of that site (ingest.site); neither,
// every node that has the rule. A node puts in force only the rules for
// it.
type Target struct {
	Node        string `json:"node,omitempty" yaml:"node,omitempty" koanf:"node"`
	Site        string `json:"site,omitempty" yaml:"site,omitempty" koanf:"site"`
	GPU         *int   `json:"gpu,omitempty" yaml:"gpu,omitempty" koanf:"gpu"`
	Profile     string `json:"profile" yaml:"profile" koanf:"profile"`
	IdleProfile string `json:"idleProfile" yaml:"idleProfile" koanf:"idleprofile"`
}

// ID names the target on the node it is for: "gpu/N" or "node".
func (t Target) ID() string {
	if t.GPU == nil {
		return "node"
	}
	return "gpu/" + strconv.Itoa(*t.GPU)
}

// For reports whether the target is for the node called node in site.
func (t Target) For(node, site string) bool {
	return (t.Node == "" || t.Node == node) && (t.Site == "" || t.Site == site)
}

// Elsewhere says why the target is not for the node called node in
// site; "" when it is.
func (t Target) Elsewhere(node, site string) string {
	switch {
	case t.Node != "" && t.Node != node:
		return fmt.Sprintf("for node %s, not this node (%s)", t.Node, node)
	case t.Site != "" && site == "":
		return fmt.Sprintf("for site %s; this node is in no site (ingest.site is empty)", t.Site)
	case t.Site != "" && t.Site != site:
		return fmt.Sprintf("for site %s; this node is in site %s", t.Site, site)
	}
	return ""
}

// apart reports whether no node can be the node of both a and b: they
// name different nodes, or different sites, or a node that siteOf places
// in another site than the other names (siteOf may be nil, or answer ""
// for a node it does not know).
func apart(a, b Target, siteOf func(node string) string) bool {
	if a.Node != "" && b.Node != "" && a.Node != b.Node || a.Site != "" && b.Site != "" && a.Site != b.Site {
		return true
	}
	if siteOf == nil {
		return false
	}
	for _, x := range [][2]Target{{a, b}, {b, a}} {
		if x[0].Node != "" && x[1].Site != "" {
			if s := siteOf(x[0].Node); s != "" && s != x[1].Site {
				return true
			}
		}
	}
	return false
}

// Behavior damps changes.
type Behavior struct {
	ScaleUp   Stabilization `json:"scaleUp" yaml:"scaleUp" koanf:"scaleup"`
	ScaleDown Stabilization `json:"scaleDown" yaml:"scaleDown" koanf:"scaledown"`
	// Tolerance widens the band: up needs value > threshold*(1+tolerance),
	// down needs value < activationThreshold*(1-tolerance). 0..1.
	Tolerance float64 `json:"tolerance,omitempty" yaml:"tolerance,omitempty" koanf:"tolerance"`
	// MinDwell: a profile applied to the target stays at least this long.
	MinDwell Duration `json:"minDwell,omitempty" yaml:"minDwell,omitempty" koanf:"mindwell"`
	// Cooldown: at least this long between two apply attempts of the rule.
	Cooldown Duration `json:"cooldown,omitempty" yaml:"cooldown,omitempty" koanf:"cooldown"`
}

// Stabilization: a direction is taken only once every evaluation in the
// window has asked for it.
type Stabilization struct {
	StabilizationWindow Duration `json:"stabilizationWindow,omitempty" yaml:"stabilizationWindow,omitempty" koanf:"stabilizationwindow"`
}

// Fallback is the profile for when the rule cannot trust its inputs.
type Fallback struct {
	Profile string `json:"profile,omitempty" yaml:"profile,omitempty" koanf:"profile"`
	// FailureThreshold consecutive apply errors switch to Profile (default 3).
	FailureThreshold int `json:"failureThreshold,omitempty" yaml:"failureThreshold,omitempty" koanf:"failurethreshold"`
}

// FieldError is one invalid field.
type FieldError struct {
	Field, Msg string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// ValidateRules checks rules and returns them with defaults filled in. The
// error joins one FieldError per problem, named like rules[2].trigger.window.
// Besides each rule's own fields (ValidateRule), names must be unique and
// no two rules may drive overlapping targets (Conflict).
func ValidateRules(rules []Rule) ([]Rule, error) {
	var errs []error
	out := make([]Rule, len(rules))
	names := map[string]int{}
	for i, r := range rules {
		prefix := fmt.Sprintf("rules[%d].", i)
		v, err := ValidateRule(r)
		for _, fe := range FieldErrors(err) {
			errs = append(errs, &FieldError{prefix + fe.Field, fe.Msg})
		}
		if j, dup := names[r.Name]; dup && r.Name != "" {
			errs = append(errs, &FieldError{prefix + "name", fmt.Sprintf("%q already used by rules[%d]", r.Name, j)})
		} else {
			names[r.Name] = i
		}
		for j := range i {
			if why := Conflict(r, rules[j], nil); why != "" {
				errs = append(errs, &FieldError{prefix + "target", fmt.Sprintf("%s rules[%d]", why, j)})
				break
			}
		}
		out[i] = v
	}
	return out, errors.Join(errs...)
}

// FieldErrors lists the FieldErrors joined in err, as ValidateRules,
// ValidateRule and CheckProfiles return them.
func FieldErrors(err error) []*FieldError {
	var out []*FieldError
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, FieldErrors(e)...)
		}
	} else if fe, ok := err.(*FieldError); ok {
		out = append(out, fe)
	}
	return out
}

// Conflict says why rules a and b cannot be in force together: their
// targets overlap. One rule drives a GPU, and a rule for the whole node
// rules out rules for single GPUs, since each would undo the other's
// re-slices. Rules for different nodes or sites never overlap; a rule for
// a node and one for a site overlap unless siteOf (nil: none) places the
// node in another site. The reason ends naming b; the caller appends how
// it calls b (rules[1], rule "cams"). "" when they can.
func Conflict(a, b Rule, siteOf func(node string) string) (reason string) {
	switch {
	case apart(a.Target, b.Target, siteOf):
		return ""
	case a.Target.ID() == b.Target.ID():
		return fmt.Sprintf("%s is already driven by", a.Target.ID())
	case a.Target.GPU == nil || b.Target.GPU == nil:
		return fmt.Sprintf("%s overlaps %s (each would undo the other's re-slices), driven by", a.Target.ID(), b.Target.ID())
	}
	return ""
}

// CheckProfiles reports each profile r names (target.profile,
// target.idleProfile, fallback.profile) that exists does not know, one
// FieldError per field.
func CheckProfiles(r Rule, exists func(string) bool) error {
	var errs []error
	for _, f := range [][2]string{{"target.profile", r.Target.Profile}, {"target.idleProfile", r.Target.IdleProfile},
		{"fallback.profile", r.Fallback.Profile}} {
		if f[1] != "" && !exists(f[1]) {
			errs = append(errs, &FieldError{f[0], fmt.Sprintf("%q: no such profile", f[1])})
		}
	}
	return errors.Join(errs...)
}

// ValidateRule checks one rule's own fields and returns it with defaults
// filled in. The error joins one FieldError per problem, named relative to
// the rule: trigger.window.
func ValidateRule(r Rule) (Rule, error) {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &FieldError{field, fmt.Sprintf(format, a...)})
	}
	if r.Name == "" {
		bad("name", "empty")
	}
	tr := &r.Trigger
	if tr.Source == "" {
		bad("trigger.source", "empty: want a glob over site/node/source")
	} else if _, err := path.Match(tr.Source, ""); err != nil {
		bad("trigger.source", "%q: %v", tr.Source, err)
	}
	if tr.Metric == "" {
		bad("trigger.metric", "empty")
	} else if _, err := path.Match(tr.Metric, ""); err != nil {
		bad("trigger.metric", "%q: %v", tr.Metric, err)
	}
	switch tr.Aggregate {
	case "":
		tr.Aggregate = AggAvg
	case AggAvg, AggMax, AggSum, AggRate:
	default:
		bad("trigger.aggregate", "%q: want avg, max, sum or rate", tr.Aggregate)
	}
	if tr.Window == 0 {
		tr.Window = Duration(time.Minute)
	}
	if tr.Window < 0 {
		bad("trigger.window", "%v: must be positive", tr.Window.D())
	}
	if tr.StaleAfter < 0 {
		bad("trigger.staleAfter", "%v: must not be negative", tr.StaleAfter.D())
	}
	if tr.ActivationThreshold == nil {
		a := tr.Threshold
		tr.ActivationThreshold = &a
	} else if *tr.ActivationThreshold > tr.Threshold {
		bad("trigger.activationThreshold", "%v exceeds threshold %v", *tr.ActivationThreshold, tr.Threshold)
	}
	if r.Target.Profile == "" {
		bad("target.profile", "empty: want the profile for load at or above threshold")
	}
	if r.Target.IdleProfile == "" {
		bad("target.idleProfile", "empty: want the profile for load below activationThreshold")
	}
	if g := r.Target.GPU; g != nil && (*g < 0 || *g > 63) {
		bad("target.gpu", "%d: want 0..63, or leave out for the whole node", *g)
	}
	if n := r.Target.Node; n != "" {
		if err := validNodeName(n); err != nil {
			bad("target.node", "%v: want a member's name in the pool (pool.node), or leave out", err)
		}
	}
	if st := r.Target.Site; st != "" {
		if err := ValidSegment(st); err != nil {
			bad("target.site", "%v: want a site (ingest.site), or leave out", err)
		} else if r.Target.Node != "" {
			bad("target.site", "%q: leave out when target.node names the node", st)
		} else if r.Target.GPU != nil {
			bad("target.gpu", "%d: a GPU is one node's; with target.site leave it out, or name the node in target.node", *r.Target.GPU)
		}
	}
	b := r.Behavior
	if b.Tolerance < 0 || b.Tolerance >= 1 {
		bad("behavior.tolerance", "%v: want 0 to below 1", b.Tolerance)
	}
	for _, f := range []struct {
		name string
		d    Duration
	}{{"behavior.scaleUp.stabilizationWindow", b.ScaleUp.StabilizationWindow},
		{"behavior.scaleDown.stabilizationWindow", b.ScaleDown.StabilizationWindow},
		{"behavior.minDwell", b.MinDwell}, {"behavior.cooldown", b.Cooldown}} {
		if f.d < 0 {
			bad(f.name, "%v: must not be negative", f.d.D())
		}
	}
	if r.Fallback.FailureThreshold < 0 {
		bad("fallback.failureThreshold", "%d: must not be negative", r.Fallback.FailureThreshold)
	} else if r.Fallback.FailureThreshold == 0 {
		r.Fallback.FailureThreshold = 3
	}
	return r, errors.Join(errs...)
}

// validNodeName checks a node's name as a rule's target.node names it:
// 1 to 64 of A-Z a-z 0-9 . - _ (a host name is a node's default name).
func validNodeName(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("%q: want 1 to 64 characters", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%q: character %q not allowed (want A-Z a-z 0-9 . - _)", s, c)
		}
	}
	return nil
}
