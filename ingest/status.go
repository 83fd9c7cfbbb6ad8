package ingest

import (
	"fmt"
	"math"
	"time"
)

// Phases of a rule in force, as RuleStatus reports them.
const (
	// PhaseArmed: the rule watches its signals and waits for a threshold.
	PhaseArmed = "armed"
	// PhaseStabilising: past a threshold, waiting out the stabilization
	// window before it acts.
	PhaseStabilising = "stabilising"
	// PhaseFiring: the rule's profile (or its fallback) is applied.
	PhaseFiring = "firing"
	// PhaseCoolingDown: the rule acted and waits out its cooldown or dwell
	// before it may act again.
	PhaseCoolingDown = "cooling down"
)

// RuleStatus is where a rule in force stands.
type RuleStatus struct {
	Name  string
	Phase string
	// Why says the phase in words: the reading against the thresholds, and
	// what the rule waits for.
	Why string
	// Last is the latest decision and its outcome; nil before the first.
	Last *Event
}

// RuleStatus reports the rule called name, if it is in force.
func (e *Engine) RuleStatus(name string) (RuleStatus, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock.Now()
	for _, rs := range e.rules {
		if rs.rule.Name == name {
			return rs.status(now), true
		}
	}
	return RuleStatus{}, false
}

func (rs *ruleState) status(now time.Time) RuleStatus {
	r := &rs.rule
	tr := &r.Trigger
	st := RuleStatus{Name: r.Name, Last: rs.last}
	reading := rs.readingWords()
	switch {
	case rs.pending == stateUp || rs.pending == stateDown:
		win := r.Behavior.ScaleUp.StabilizationWindow.D()
		to, edge := r.Target.Profile, fmt.Sprintf("≥ %g", tr.Threshold)
		if rs.pending == stateDown {
			win = r.Behavior.ScaleDown.StabilizationWindow.D()
			to, edge = r.Target.IdleProfile, fmt.Sprintf("< %g", *tr.ActivationThreshold)
		}
		held := now.Sub(rs.pendingSince).Round(time.Second)
		st.Phase = PhaseStabilising
		st.Why = fmt.Sprintf("%s, %s for %s of %s before %s", reading, edge, held, win, to)
		if held >= win {
			st.Phase = PhaseCoolingDown
			st.Why = fmt.Sprintf("%s; %s waits for the cooldown or dwell to end", reading, to)
		}
	case !rs.lastAttempt.IsZero() && now.Sub(rs.lastAttempt) < r.Behavior.Cooldown.D():
		st.Phase = PhaseCoolingDown
		st.Why = fmt.Sprintf("%s; acted %s ago, cooldown %s", reading, now.Sub(rs.lastAttempt).Round(time.Second), r.Behavior.Cooldown.D())
	case rs.state == stateUp || rs.state == stateFallback:
		st.Phase = PhaseFiring
		st.Why = fmt.Sprintf("%s; %s applied to %s since %s", reading, rs.profile, r.Target.ID(), rs.lastApplied.UTC().Format(time.TimeOnly))
		if rs.state == stateUp {
			st.Why += fmt.Sprintf(", back to %s below %g", r.Target.IdleProfile, *tr.ActivationThreshold)
		}
	default:
		st.Phase = PhaseArmed
		st.Why = fmt.Sprintf("%s; %s at ≥ %g", reading, r.Target.Profile, tr.Threshold)
	}
	return st
}

// readingWords is the rule's latest value in words: "max of queue = 85 over 3
// series".
func (rs *ruleState) readingWords() string {
	tr := &rs.rule.Trigger
	switch {
	case !rs.evaluated:
		return "no reading yet"
	case rs.live == 0:
		return fmt.Sprintf("no live series of %s", tr.Metric)
	}
	v := rs.value
	if math.Abs(v) >= 100 {
		v = math.Round(v*10) / 10
	}
	return fmt.Sprintf("%s of %s = %.4g over %d series", tr.Aggregate, tr.Metric, v, rs.live)
}
