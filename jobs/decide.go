package jobs

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/kerf-edge/kerf/ingest"
)

// States of a job, as the API shows them.
const (
	StateArmed       = "armed"       // no source calls for it; waiting for one
	StateStabilising = "stabilising" // a source crossed a threshold; waiting out the stabilisation window
	StateFiring      = "firing"      // sources call for instances, and they run
	StateCoolingDown = "cooling-down"
	StateBackingOff  = "backing-off" // instances crashed; starts wait
	StateWaiting     = "waiting"     // wants instances that the node cannot hold now
	StateOff         = "off"         // load signals are off: only min instances run
)

// sourceState is what a job remembers of one source between ticks.
type sourceState struct {
	want         int       // instances wanted, as last settled
	pending      bool      // hot and want disagree: a change waits out its window
	pendingSince time.Time // since when
	cooldown     time.Time // no new instance for this source before
	seen         time.Time // last tick the source was read
}

// plan is one tick's outcome for a job: instances to start per source
// ("" for those min keeps), instances to stop, and the state and reason
// to show.
type plan struct {
	start  []string
	stop   []stopOrder
	state  string
	reason string
}

type stopOrder struct {
	inst *instance
	why  string
}

// forgetSourceAfter: a source read by no tick for this long is forgotten.
const forgetSourceAfter = 10 * time.Minute

// decide plans one tick of job js at now from reading r (nil when load
// signals are off). It changes only js's source states; the runner carries
// out the plan.
func (js *jobState) decide(r *ingest.Reading, now time.Time) plan {
	j := &js.def
	stabilising := js.settleSources(r, now)
	want := js.allot()
	p := plan{stop: js.planStops(want, now)}
	var blocked, blockedWhy string
	p.start, blocked, blockedWhy = js.planStarts(want, now)
	switch {
	case r == nil && j.Concurrency.Min == 0:
		p.state, p.reason = StateOff, "load signals are off (ingest.enabled: false)"
	case blocked != "":
		p.state, p.reason = blocked, blockedWhy
	case stabilising != "":
		p.state, p.reason = StateStabilising, stabilising
	case len(want) > 0 && sum(want) > js.wantMin():
		p.state, p.reason = StateFiring, js.firingReason(want)
	default:
		p.state, p.reason = StateArmed, js.armedReason(r)
	}
	return p
}

// settleSources brings every source's want up to date with r; it returns
// why one waits out a stabilisation window, if one does. A source r no
// longer reads (its series were forgotten) wants nothing, and is
// forgotten after forgetSourceAfter once nothing runs for it.
func (js *jobState) settleSources(r *ingest.Reading, now time.Time) (stabilising string) {
	for _, sr := range readings(r) {
		ss := js.source(sr.Source)
		ss.seen = now
		if why := ss.settle(&js.def, sr, now); why != "" && stabilising == "" {
			stabilising = why
		}
	}
	for src, ss := range js.sources {
		switch {
		case !ss.seen.Before(now):
		case now.Sub(ss.seen) > forgetSourceAfter && js.runningFor(src) == 0:
			delete(js.sources, src)
		default:
			ss.want, ss.pending = 0, false
		}
	}
	return stabilising
}

// planStops lists the instances to stop: those past the time limit, then
// the newest of each source's beyond what it wants.
func (js *jobState) planStops(want map[string]int, now time.Time) []stopOrder {
	var stops []stopOrder
	if limit := js.def.TimeLimit.D(); limit > 0 {
		for _, in := range js.running {
			if in.stopping.IsZero() && now.Sub(in.started) >= limit {
				stops = append(stops, stopOrder{in, fmt.Sprintf("time limit %v reached", limit)})
			}
		}
	}
	counts := js.runningBySource()
	for _, s := range stops {
		counts[s.inst.source]--
	}
	for src, n := range counts {
		for extra := n - want[src]; extra > 0; extra-- {
			in := js.newestRunning(src, stops)
			if in == nil {
				break
			}
			why := "the signal fell away"
			if src == "" {
				why = "above concurrency.min"
			} else if want[src] > 0 {
				why = fmt.Sprintf("source %s wants %d instance(s)", src, want[src])
			}
			stops = append(stops, stopOrder{in, why})
		}
	}
	return stops
}

// planStarts lists the sources to start an instance for, in the order
// allot gave, and the state and reason of what holds the others back.
func (js *jobState) planStarts(want map[string]int, now time.Time) (starts []string, blocked, why string) {
	for _, src := range js.order {
		for n := js.runningFor(src); n < want[src]; n++ {
			switch ss := js.sources[src]; {
			case now.Before(js.capacityWait):
				blocked, why = StateWaiting, fmt.Sprintf("the node had no room for an instance; next try at %s", js.capacityWait.Format(time.RFC3339))
			case now.Before(js.backoffUntil):
				blocked, why = StateBackingOff, fmt.Sprintf("%d crash(es) in a row; next start at %s", js.failures, js.backoffUntil.Format(time.RFC3339))
			case ss != nil && now.Before(ss.cooldown):
				blocked, why = StateCoolingDown, fmt.Sprintf("source %s may start again at %s", src, ss.cooldown.Format(time.RFC3339))
			default:
				starts = append(starts, src)
				continue
			}
			break
		}
	}
	return starts, blocked, why
}

func readings(r *ingest.Reading) []ingest.SourceReading {
	if r == nil {
		return nil
	}
	return r.Sources
}

// settle moves a source's wanted count towards what its reading asks for,
// through the stabilisation windows; it returns why it waits, if it does.
func (ss *sourceState) settle(j *Job, sr ingest.SourceReading, now time.Time) string {
	tr := &j.Trigger
	raw := ss.want
	switch {
	case sr.Stale:
		raw = 0
	case sr.Value >= tr.Threshold:
		raw = min(j.Concurrency.PerSource, max(1, int(math.Floor(sr.Value/tr.Threshold))))
	case sr.Value < *tr.ActivationThreshold:
		raw = 0
	}
	if (raw > 0) == (ss.want > 0) {
		ss.want, ss.pending = raw, false // a change of count while hot needs no window
		return ""
	}
	if !ss.pending {
		ss.pending, ss.pendingSince = true, now
	}
	win := j.Behavior.ScaleUp.StabilizationWindow.D()
	dir := "above threshold"
	if raw == 0 {
		win, dir = j.Behavior.ScaleDown.StabilizationWindow.D(), "below activation threshold"
	}
	if now.Sub(ss.pendingSince) < win {
		return fmt.Sprintf("source %s %s (%s %.4g) since %s; stabilisation window %v", sr.Source, dir, tr.Aggregate, sr.Value,
			ss.pendingSince.Format(time.RFC3339), win)
	}
	ss.want, ss.pending = raw, false
	return ""
}

// allot shares concurrency.max among the sources that want instances,
// the highest want first (sources in name order among equals), then tops
// up to concurrency.min with instances of no source (""). It sets js.order
// to the order starts follow.
func (js *jobState) allot() map[string]int {
	c := js.def.Concurrency
	srcs := make([]string, 0, len(js.sources))
	for src, ss := range js.sources {
		if ss.want > 0 {
			srcs = append(srcs, src)
		}
	}
	sort.Slice(srcs, func(a, b int) bool {
		wa, wb := js.sources[srcs[a]].want, js.sources[srcs[b]].want
		if wa != wb {
			return wa > wb
		}
		return srcs[a] < srcs[b]
	})
	want := map[string]int{}
	left := c.Max
	for _, src := range srcs {
		n := min(js.sources[src].want, left)
		if n > 0 {
			want[src] = n
			left -= n
		}
	}
	if sum(want) < c.Min {
		want[""] = c.Min - sum(want)
		srcs = append(srcs, "")
	}
	js.order = srcs
	return want
}

func (js *jobState) wantMin() int { return js.def.Concurrency.Min }

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func (js *jobState) source(src string) *sourceState {
	ss := js.sources[src]
	if ss == nil {
		ss = &sourceState{}
		js.sources[src] = ss
	}
	return ss
}

func (js *jobState) firingReason(want map[string]int) string {
	var hot []string
	for _, src := range js.order {
		if src != "" {
			hot = append(hot, fmt.Sprintf("%s wants %d", src, want[src]))
		}
	}
	const shown = 4
	more := ""
	if len(hot) > shown {
		hot, more = hot[:shown], fmt.Sprintf(" and %d more", len(hot)-shown)
	}
	return fmt.Sprintf("%s at or above threshold %v: %v%s", js.def.Trigger.Metric, js.def.Trigger.Threshold, hot, more)
}

func (js *jobState) armedReason(r *ingest.Reading) string {
	best, src := math.Inf(-1), ""
	for _, sr := range readings(r) {
		if !sr.Stale && sr.Value > best {
			best, src = sr.Value, sr.Source
		}
	}
	if src == "" {
		return fmt.Sprintf("no live series of %s", js.def.Trigger.Metric)
	}
	return fmt.Sprintf("highest %s %s is %.4g (source %s), threshold %v", js.def.Trigger.Aggregate, js.def.Trigger.Metric, best, src, js.def.Trigger.Threshold)
}
