package ingest

import (
	"fmt"
	"sort"
	"time"
)

// Watch is a trigger that the engine windows but does not act on: a
// consumer (kerfd's triggered jobs) reads it per source with Reading and
// decides for itself. Its series count under the same bounds as the
// rules'.
type Watch struct {
	Name    string
	Trigger Trigger // validated as a rule's trigger is
}

// SourceReading is one source's aggregate for a watch: its series'
// aggregates combined as a rule combines series.
type SourceReading struct {
	Source   string    `json:"source"`
	Value    float64   `json:"value"`
	Samples  int       `json:"samples"`
	LastSeen time.Time `json:"lastSeen"`
	// Stale: no series of the source has samples in the window, or every
	// one is stale (or offline); Value is then 0.
	Stale bool `json:"stale"`
}

// Reading is a watch's state now: each source it reads, by source.
type Reading struct {
	Time    time.Time
	Sources []SourceReading
}

// SetWatches replaces the watches. A watch keeps no state of its own
// beyond its series, which are kept when a watch of the same name and
// trigger reads them still. On error nothing changes.
func (e *Engine) SetWatches(ws []Watch) error {
	next := make([]*ruleState, 0, len(ws))
	names := map[string]bool{}
	for i, w := range ws {
		r, err := ValidateRule(Rule{Name: w.Name, Trigger: w.Trigger, Target: Target{Profile: "-", IdleProfile: "-"}})
		if err != nil {
			return fmt.Errorf("watches[%d]: %w", i, err)
		}
		if names[w.Name] {
			return fmt.Errorf("watches[%d]: name %q used twice", i, w.Name)
		}
		names[w.Name] = true
		next = append(next, &ruleState{rule: r, watch: true, started: e.clock.Now()})
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.watches = next
	e.reattach(time.Minute)
	return nil
}

// Reading returns the named watch's reading now; false when there is no
// such watch. Sources are in name order.
func (e *Engine) Reading(name string) (Reading, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock.Now()
	for _, ws := range e.watches {
		if ws.rule.Name == name {
			return ws.reading(now), true
		}
	}
	return Reading{}, false
}

// reading combines the watch's series per source.
func (ws *ruleState) reading(now time.Time) Reading {
	tr := &ws.rule.Trigger
	nowNs := now.UnixNano()
	type acc struct {
		SourceReading
		live int
	}
	by := map[string]*acc{}
	for i, se := range ws.series {
		c := &ws.cache[i]
		if nowNs >= c.until || nowNs < c.at {
			c.refresh(se, tr, now)
		}
		a := by[se.source]
		if a == nil {
			a = &acc{SourceReading: SourceReading{Source: se.source}}
			by[se.source] = a
		}
		if se.lastSeen.After(a.LastSeen) {
			a.LastSeen = se.lastSeen
		}
		if c.live() {
			a.Value = combineNext(tr.Aggregate, a.Value, c.val, a.live)
			a.Samples += c.n
			a.live++
		}
	}
	out := Reading{Time: now, Sources: make([]SourceReading, 0, len(by))}
	for _, a := range by {
		if tr.Aggregate == AggAvg && a.live > 0 {
			a.Value /= float64(a.live)
		}
		a.Stale = a.live == 0
		out.Sources = append(out.Sources, a.SourceReading)
	}
	sort.Slice(out.Sources, func(i, j int) bool { return out.Sources[i].Source < out.Sources[j].Source })
	return out
}

// readers are the rules and the watches.
func (e *Engine) readers() []*ruleState {
	if len(e.watches) == 0 {
		return e.rules
	}
	return append(append(make([]*ruleState, 0, len(e.rules)+len(e.watches)), e.rules...), e.watches...)
}
