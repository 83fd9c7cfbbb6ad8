package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"path"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kerf-edge/kerf/internal/clock"
)

// Applier carries out decisions; the slicer implements it. Calls are
// serialised and made with the engine's lock held, so it must not call back
// into the Engine.
type Applier interface {
	ApplyProfile(ctx context.Context, target Target, profile string, reason Decision) error
}

// Signal is one numeric record from one source.
type Signal struct {
	Topic   Topic
	Name    string // resolved SenML name
	Metric  string // SenML n (or Name when n was empty)
	Unit    string
	Value   float64
	Time    time.Time // record time, clamped to Arrived
	Arrived time.Time
}

// Decision reasons.
const (
	ReasonScaleUp          = "scale-up"
	ReasonScaleDown        = "scale-down"
	ReasonFallbackStale    = "fallback-stale"
	ReasonFallbackFailures = "fallback-failures"
)

// Decision is one profile change the engine asked for, with its inputs.
type Decision struct {
	Seq                 uint64    `json:"seq"`
	Time                time.Time `json:"time"`
	Rule                string    `json:"rule"`
	Metric              string    `json:"metric"` // the rule's metric glob
	Target              string    `json:"target"`
	Profile             string    `json:"profile"`
	Previous            string    `json:"previous,omitempty"`
	Reason              string    `json:"reason"`
	Aggregate           string    `json:"aggregate"`
	Value               float64   `json:"value"`
	Threshold           float64   `json:"threshold"`
	ActivationThreshold float64   `json:"activationThreshold"`
	// Inputs are the highest-valued live series (at most 16), or the stale
	// ones when none is live; LiveSeries and StaleSeries count them all.
	Inputs      []Input `json:"inputs"`
	LiveSeries  int     `json:"liveSeries"`
	StaleSeries int     `json:"staleSeries"`
}

// Input is one series as the decision saw it.
type Input struct {
	Source   string    `json:"source"`
	Metric   string    `json:"metric"`
	Value    float64   `json:"value"`
	Samples  int       `json:"samples"`
	LastSeen time.Time `json:"lastSeen"`
	Stale    bool      `json:"stale"`
}

// Event is a decision and what applying it gave.
type Event struct {
	Decision
	Applied bool   `json:"applied"`
	Error   string `json:"error,omitempty"`
}

// EngineStats are the engine's counters.
type EngineStats struct {
	Series       int // read by a rule and windowed, now
	UnreadSeries int // in the unread pool now
	// Unmatched counts signals no rule reads; SeriesDropped those refused
	// at MaxSeries (RefusedTableFull), RefusedPublisherCap and
	// RefusedUnreadPoolFull those refused for the other reasons.
	Signals, Unmatched, SeriesDropped, SeriesForgotten, Evaluations uint64
	RefusedPublisherCap, RefusedUnreadPoolFull, UnreadForgotten     uint64
	Decisions, Applied, ApplyErrors, Fallbacks                      uint64
	SuppressedStabilization, SuppressedDwell, SuppressedCooldown    uint64
}

type engineCounters struct {
	signals, unmatched, seriesDropped, seriesForgotten, evaluations, decisions, applied, applyErrors, fallbacks,
	supStab, supDwell, supCool, refusedPublisherCap, refusedUnreadPoolFull, unreadForgotten atomic.Uint64
}

// EngineOptions tune an Engine; zero values take defaults.
type EngineOptions struct {
	Clock clock.Clock // nil: the system clock
	Log   *slog.Logger
	// MaxSeries bounds the (source, metric) pairs that a rule reads and
	// the engine windows; default 65536.
	MaxSeries int
	// SeriesTTL: a series with no signal for this long is forgotten, so
	// devices gone for good do not hold places under MaxSeries. Never less
	// than a rule's window or staleAfter. Default 1h.
	SeriesTTL time.Duration
	// MaxSeriesPerPublisher bounds the series one publisher (Topic.Publisher)
	// holds, in the table and in the unread pool each; default 1024.
	MaxSeriesPerPublisher int
	// MaxUnreadSeries bounds the pool of series no rule reads, which are
	// counted but not windowed and never take a place under MaxSeries;
	// default 4096.
	MaxUnreadSeries int
	// UnreadTTL: a series in the unread pool is forgotten this long after
	// its last signal (at the next Tick, or when the pool is full); default 1m.
	UnreadTTL  time.Duration
	MaxSamples int           // per series; default 1024
	EventCap   int           // events kept for the API; default 256
	LogEvery   time.Duration // at most one refusal log line per this; default 5s
}

type state int

const (
	stateUnknown state = iota
	stateUp
	stateDown
	stateFallback
)

// aggCache is one series' aggregate for one rule, valid until the series
// changes (Engine.add invalidates it) or its oldest in-window sample ages
// out. Evaluation scans these, not the series, every time.
type aggCache struct {
	val       float64
	n         int
	ok, stale bool
	at, until int64 // Unix nanoseconds: cheaper to compare than time.Time
}

// invalidAggCache is a cache entry to refresh at the next evaluation.
var invalidAggCache = aggCache{until: math.MinInt64}

// live reports whether the cached aggregate takes part in the rule.
func (c *aggCache) live() bool { return c.ok && !c.stale }

func (c *aggCache) refresh(se *series, tr *Trigger, now time.Time) {
	*c = aggCache{at: now.UnixNano(), stale: se.stale(now, tr.StaleAfter.D()), until: math.MaxInt64}
	if c.stale {
		return
	}
	var until time.Time
	c.val, c.n, c.ok, until = se.aggregateUntil(tr.Aggregate, now, tr.Window.D())
	if tr.StaleAfter > 0 {
		if d := se.lastSeen.Add(tr.StaleAfter.D() + 1); d.Before(until) {
			until = d // stale is "more than staleAfter": 1ns past it
		}
	}
	if !until.Equal(farFuture) {
		c.until = until.UnixNano()
	}
}

var reasons = [...]string{stateUp: ReasonScaleUp, stateDown: ReasonScaleDown, stateFallback: ReasonFallbackStale}

type ruleState struct {
	rule         Rule
	series       []*series
	state        state
	profile      string
	pending      state
	pendingSince time.Time
	lastApplied  time.Time
	lastAttempt  time.Time
	failures     int
	lastErr      string // the last apply error, logged once until it changes
	started      time.Time
	dirty        bool       // has signals not yet evaluated
	watch        bool       // a watch: read through Reading, never evaluated
	cache        []aggCache // per series, parallel to series
	// The latest evaluation's reading, and the latest decision.
	value     float64
	live      int
	evaluated bool
	last      *Event
}

// Engine keeps the windows and evaluates rules. Safe for concurrent use.
type Engine struct {
	applier Applier
	clock   clock.Clock
	log     *slog.Logger
	opts    EngineOptions
	c       engineCounters

	mu    sync.Mutex
	rules []*ruleState
	// watches are triggers read per source for others to act on
	// (Reading); the engine windows their series but never evaluates them.
	watches []*ruleState
	series  map[string]*series // read by a rule; source key + "\x00" + metric
	unread  *unreadPool        // read by no rule; same keys
	// publishers counts each publisher's series; an entry goes with its
	// last series.
	publishers map[string]*publisherSeries
	keep       time.Duration
	// refusal log: the last line's time and the refusals since.
	lastRefusalLog   time.Time
	refusalsUnlogged int
	// lastSweep is when forgetQuiet last looked for quiet series.
	lastSweep time.Time
	seq       uint64

	evMu   sync.Mutex
	events []Event // ring
	evNext int
	evFull bool
}

// NewEngine validates rules and returns an engine that sends decisions to a.
func NewEngine(rules []Rule, a Applier, o EngineOptions) (*Engine, error) {
	rules, err := ValidateRules(rules)
	if err != nil {
		return nil, err
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.MaxSeries <= 0 {
		o.MaxSeries = 65536
	}
	if o.SeriesTTL <= 0 {
		o.SeriesTTL = time.Hour
	}
	if o.MaxSamples <= 0 {
		o.MaxSamples = 1024
	}
	if o.EventCap <= 0 {
		o.EventCap = 256
	}
	if o.MaxSeriesPerPublisher <= 0 {
		o.MaxSeriesPerPublisher = 1024
	}
	if o.MaxUnreadSeries <= 0 {
		o.MaxUnreadSeries = 4096
	}
	if o.UnreadTTL <= 0 {
		o.UnreadTTL = time.Minute
	}
	if o.LogEvery <= 0 {
		o.LogEvery = 5 * time.Second
	}
	e := &Engine{applier: a, clock: o.Clock, log: o.Log, opts: o, series: map[string]*series{},
		unread: newUnreadPool(o.MaxUnreadSeries, o.UnreadTTL), publishers: map[string]*publisherSeries{},
		events: make([]Event, o.EventCap), keep: time.Minute}
	now := o.Clock.Now()
	for _, r := range rules {
		e.rules = append(e.rules, &ruleState{rule: r, started: now})
		e.keep = max(e.keep, r.Trigger.Window.D())
	}
	return e, nil
}

// Rules returns the validated rules, defaults filled in.
func (e *Engine) Rules() []Rule {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Rule, len(e.rules))
	for i, rs := range e.rules {
		out[i] = rs.rule
	}
	return out
}

// SetRules replaces the rules (the REST API will call it). A rule that keeps
// its name and target keeps its state: the applied profile, the dwell and
// cooldown clocks and the failure count. On error nothing changes.
func (e *Engine) SetRules(rules []Rule) error {
	rules, err := ValidateRules(rules)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	old := map[string]*ruleState{}
	for _, rs := range e.rules {
		old[rs.rule.Name+"\x00"+rs.rule.Target.ID()] = rs
	}
	now := e.clock.Now()
	next := make([]*ruleState, 0, len(rules))
	keep := time.Minute
	for _, r := range rules {
		rs := &ruleState{rule: r, started: now}
		if o := old[r.Name+"\x00"+r.Target.ID()]; o != nil {
			rs.state, rs.profile, rs.lastApplied, rs.lastAttempt, rs.failures, rs.lastErr, rs.started =
				o.state, o.profile, o.lastApplied, o.lastAttempt, o.failures, o.lastErr, o.started
		}
		next = append(next, rs)
		keep = max(keep, r.Trigger.Window.D())
	}
	e.rules = next
	e.reattach(keep)
	return nil
}

// reattach recomputes which rules and watches read each series, after
// either set changed; keep is the longest window of the rules. A series
// read by none now leaves the table.
func (e *Engine) reattach(keep time.Duration) {
	for _, ws := range e.watches {
		ws.series, ws.cache = nil, nil
		keep = max(keep, ws.rule.Trigger.Window.D())
	}
	for _, rs := range e.rules {
		keep = max(keep, rs.rule.Trigger.Window.D())
	}
	e.keep = keep
	for key, se := range e.series {
		se.readers, se.keep = nil, keep
		e.attach(se)
		if len(se.readers) == 0 { // read by no rule now: its next signal goes to the pool
			delete(e.series, key)
			e.publisherSeries(se.publisher).read--
			e.dropPublisher(se.publisher)
			e.c.seriesForgotten.Add(1)
		}
	}
	// Series no rule read may be read now: each comes back with its next signal.
	e.unread.clear(e.forgetUnread)
}

// attach makes se known to every rule and watch that reads it.
func (e *Engine) attach(se *series) {
	for _, rs := range e.readers() {
		if rs.matches(se.source, se.metric, se.name) {
			rs.series = append(rs.series, se)
			se.readers = append(se.readers, seriesReader{rs, len(rs.cache)})
			rs.cache = append(rs.cache, invalidAggCache)
		}
	}
}

func (rs *ruleState) matches(source, metric, name string) bool {
	if ok, _ := path.Match(rs.rule.Trigger.Source, source); !ok {
		return false
	}
	if ok, _ := path.Match(rs.rule.Trigger.Metric, metric); ok {
		return true
	}
	ok, _ := path.Match(rs.rule.Trigger.Metric, name)
	return ok
}

// Observe adds a signal to its window and evaluates the rules that read it.
func (e *Engine) Observe(ctx context.Context, s Signal) {
	e.mu.Lock()
	defer e.mu.Unlock()
	se := e.add(s)
	if se == nil {
		return
	}
	now := e.clock.Now()
	for _, r := range se.readers {
		if r.rs.watch {
			continue
		}
		r.rs.dirty = false
		e.evaluate(ctx, r.rs, now)
	}
}

// Add adds a signal to its window and marks the rules that read it for the
// next EvaluateDirty, so a burst of signals costs one evaluation per rule.
func (e *Engine) Add(s Signal) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if se := e.add(s); se != nil {
		for _, r := range se.readers {
			r.rs.dirty = true
		}
	}
}

// EvaluateDirty evaluates the rules that have had signals since last time.
func (e *Engine) EvaluateDirty(ctx context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock.Now()
	for _, rs := range e.rules {
		if rs.dirty {
			rs.dirty = false
			e.evaluate(ctx, rs, now)
		}
	}
}

// dirty reports whether some rule waits for EvaluateDirty.
func (e *Engine) dirty() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, rs := range e.rules {
		if rs.dirty {
			return true
		}
	}
	return false
}

// add windows s and returns its series, or nil when no rule reads it or it
// was refused.
func (e *Engine) add(s Signal) *series {
	e.c.signals.Add(1)
	src := s.Topic.Key()
	key := src + "\x00" + s.Metric
	se, ok := e.series[key]
	if !ok {
		if se = e.admit(s, src, key); se == nil {
			return nil
		}
	}
	t := s.Time
	if t.IsZero() || t.After(s.Arrived) {
		t = s.Arrived
	}
	se.add(t, s.Value, s.Arrived)
	se.invalidate()
	return se
}

// SetOffline marks every series of a source stale at once (its status topic
// said offline, or its Will fired).
func (e *Engine) SetOffline(ctx context.Context, t Topic) {
	e.mu.Lock()
	defer e.mu.Unlock()
	src := t.Key()
	for _, se := range e.series {
		if se.source == src {
			se.offline = true
			se.invalidate()
		}
	}
	now := e.clock.Now()
	for _, rs := range e.rules {
		e.evaluate(ctx, rs, now)
	}
}

// Tick evaluates every rule; staleness and stabilization move on it.
func (e *Engine) Tick(ctx context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock.Now()
	e.unread.expire(now, e.forgetUnread)
	e.forgetQuiet(now)
	for _, rs := range e.rules {
		e.evaluate(ctx, rs, now)
	}
}

// forgetQuiet drops, at most once a minute, the series that have had no
// signal for SeriesTTL. Such a series is stale to every rule and has no
// sample in any window, so no aggregate changes; a rule left with no series
// falls back as one whose series are all stale does.
func (e *Engine) forgetQuiet(now time.Time) {
	if now.Sub(e.lastSweep) < time.Minute {
		return
	}
	e.lastSweep = now
	ttl := max(e.opts.SeriesTTL, e.keep)
	for _, rs := range e.readers() {
		ttl = max(ttl, rs.rule.Trigger.StaleAfter.D())
	}
	for key, se := range e.series {
		if now.Sub(se.lastSeen) <= ttl {
			continue
		}
		delete(e.series, key)
		for _, r := range se.readers {
			r.rs.removeSeries(r.idx)
		}
		e.publisherSeries(se.publisher).read--
		e.dropPublisher(se.publisher)
		e.c.seriesForgotten.Add(1)
	}
}

// removeSeries takes series i out of the rule, moving the last into its
// place.
func (rs *ruleState) removeSeries(i int) {
	last := len(rs.series) - 1
	if i != last {
		moved := rs.series[last]
		rs.series[i], rs.cache[i] = moved, rs.cache[last]
		for k := range moved.readers {
			if moved.readers[k].rs == rs {
				moved.readers[k].idx = i
			}
		}
	}
	rs.series[last] = nil
	rs.series, rs.cache = rs.series[:last], rs.cache[:last]
}

func (e *Engine) evaluate(ctx context.Context, rs *ruleState, now time.Time) {
	e.c.evaluations.Add(1)
	r := &rs.rule
	tr := &r.Trigger
	// First pass, run on every coalesced batch over every series: no
	// allocation, aggregates combined as they come.
	nowNs := now.UnixNano()
	stale, live := 0, 0
	var value float64
	for i := range rs.cache {
		c := &rs.cache[i]
		if nowNs >= c.until || nowNs < c.at {
			c.refresh(rs.series[i], tr, now)
		}
		switch {
		case c.stale:
			stale++
		case c.ok:
			value = combineNext(tr.Aggregate, value, c.val, live)
			live++
		}
	}
	if tr.Aggregate == AggAvg && live > 0 {
		value /= float64(live)
	}
	rs.value, rs.live, rs.evaluated = value, live, true
	var desired state
	switch {
	case live > 0:
		tol := r.Behavior.Tolerance
		switch {
		case value >= tr.Threshold+math.Abs(tr.Threshold)*tol:
			desired = stateUp
		case value < *tr.ActivationThreshold-math.Abs(*tr.ActivationThreshold)*tol:
			desired = stateDown
		default:
			desired = rs.state // in the band: hold
		}
	case r.Fallback.Profile != "" && tr.StaleAfter > 0 && (stale == len(rs.series) && stale > 0 ||
		len(rs.series) == 0 && now.Sub(rs.started) > tr.StaleAfter.D()):
		desired = stateFallback
	default:
		desired = rs.state
	}
	reason := reasons[desired]
	if rs.failures >= r.Fallback.FailureThreshold && r.Fallback.Profile != "" && rs.state != stateFallback {
		desired, reason = stateFallback, ReasonFallbackFailures
	}
	if desired == stateUnknown || desired == rs.state {
		rs.pending = stateUnknown
		return
	}
	if desired != stateFallback {
		if rs.pending != desired {
			rs.pending, rs.pendingSince = desired, now
		}
		win := r.Behavior.ScaleUp.StabilizationWindow.D()
		if desired == stateDown {
			win = r.Behavior.ScaleDown.StabilizationWindow.D()
		}
		if now.Sub(rs.pendingSince) < win {
			e.c.supStab.Add(1)
			return
		}
		if !rs.lastApplied.IsZero() && now.Sub(rs.lastApplied) < r.Behavior.MinDwell.D() {
			e.c.supDwell.Add(1)
			return
		}
	}
	cool := r.Behavior.Cooldown.D()
	if rs.failures > 0 {
		cool = max(cool, failureBackoff) // a failing slicer is not retried on every signal
	}
	if !rs.lastAttempt.IsZero() && now.Sub(rs.lastAttempt) < cool {
		e.c.supCool.Add(1)
		return
	}
	profile := [...]string{stateUp: r.Target.Profile, stateDown: r.Target.IdleProfile, stateFallback: r.Fallback.Profile}[desired]
	e.seq++
	inputs, live, nstale := rs.inputs(now)
	d := Decision{Seq: e.seq, Time: now, Rule: r.Name, Metric: tr.Metric, Target: r.Target.ID(), Profile: profile, Previous: rs.profile,
		Reason: reason, Aggregate: tr.Aggregate, Value: value, Threshold: tr.Threshold,
		ActivationThreshold: *tr.ActivationThreshold, Inputs: inputs, LiveSeries: live, StaleSeries: nstale}
	e.c.decisions.Add(1)
	if desired == stateFallback {
		e.c.fallbacks.Add(1)
	}
	rs.lastAttempt = now
	err := e.applier.ApplyProfile(ctx, r.Target, profile, d)
	ev := Event{Decision: d, Applied: err == nil}
	attrs := []any{"seq", d.Seq, "rule", d.Rule, "target", d.Target, "profile", profile, "previous", d.Previous,
		"reason", reason, "aggregate", tr.Aggregate, "value", value, "threshold", tr.Threshold,
		"activation_threshold", d.ActivationThreshold, "live_series", live, "stale_series", nstale,
		"inputs", fmt.Sprint(inputs)}
	if err != nil {
		e.c.applyErrors.Add(1)
		rs.failures++
		ev.Error = err.Error()
		// A rule that cannot apply retries every failureBackoff: its
		// error is a warning once, then again only when it changes.
		level := slog.LevelWarn
		if ev.Error == rs.lastErr {
			level = slog.LevelDebug
		}
		rs.lastErr = ev.Error
		e.log.Log(ctx, level, "ingest: decision failed", append(attrs, "err", err, "failures", rs.failures)...)
	} else {
		e.c.applied.Add(1)
		rs.failures, rs.lastErr = 0, ""
		rs.state, rs.profile, rs.lastApplied, rs.pending = desired, profile, now, stateUnknown
		e.log.Info("ingest: decision", attrs...)
	}
	rs.last = &ev
	e.record(ev)
}

// inputs lists what a decision saw: the maxInputs series with the highest
// values (or, when none is live, the stale ones), and the counts.
func (rs *ruleState) inputs(now time.Time) (in []Input, live, stale int) {
	tr := &rs.rule.Trigger
	for _, se := range rs.series {
		if se.stale(now, tr.StaleAfter.D()) {
			stale++
		}
	}
	// The cache is fresh: evaluate refreshed it for now.
	var order []int // live series, largest aggregate first
	for i := range rs.cache {
		if rs.cache[i].live() {
			order = append(order, i)
		}
	}
	if len(order) == 0 {
		for _, se := range rs.series[:min(len(rs.series), maxInputs)] {
			in = append(in, Input{Source: se.source, Metric: se.metric, LastSeen: se.lastSeen, Stale: se.stale(now, tr.StaleAfter.D())})
		}
		return in, 0, stale
	}
	sort.SliceStable(order, func(a, b int) bool { return rs.cache[order[a]].val > rs.cache[order[b]].val })
	for _, i := range order[:min(len(order), maxInputs)] {
		se, c := rs.series[i], &rs.cache[i]
		in = append(in, Input{Source: se.source, Metric: se.metric, Value: c.val, Samples: c.n, LastSeen: se.lastSeen})
	}
	return in, len(order), stale
}

// failureBackoff is the least time between attempts after a failed one.
const failureBackoff = time.Second

// maxInputs bounds the inputs a decision carries.
const maxInputs = 16

// combine merges per-series aggregates: avg of averages, max of maxima, sum
// of sums, sum of rates.
// combineNext folds the n-th live series' aggregate v into acc: the max, or
// the sum (avg divides by the count afterwards).
func combineNext(agg string, acc, v float64, n int) float64 {
	switch {
	case n == 0:
		return v
	case agg == AggMax:
		return max(acc, v)
	}
	return acc + v
}

func (e *Engine) record(ev Event) {
	e.evMu.Lock()
	defer e.evMu.Unlock()
	e.events[e.evNext] = ev
	e.evNext = (e.evNext + 1) % len(e.events)
	if e.evNext == 0 {
		e.evFull = true
	}
}

// Events returns the kept events, oldest first.
func (e *Engine) Events() []Event {
	e.evMu.Lock()
	defer e.evMu.Unlock()
	if !e.evFull {
		return append([]Event(nil), e.events[:e.evNext]...)
	}
	return append(append([]Event(nil), e.events[e.evNext:]...), e.events[:e.evNext]...)
}

// Stats returns the counters.
func (e *Engine) Stats() EngineStats {
	c := &e.c
	e.mu.Lock()
	series, unread := len(e.series), len(e.unread.m)
	e.mu.Unlock()
	return EngineStats{Series: series, UnreadSeries: unread, Signals: c.signals.Load(), Unmatched: c.unmatched.Load(),
		SeriesDropped: c.seriesDropped.Load(), SeriesForgotten: c.seriesForgotten.Load(),
		RefusedPublisherCap: c.refusedPublisherCap.Load(), RefusedUnreadPoolFull: c.refusedUnreadPoolFull.Load(),
		UnreadForgotten: c.unreadForgotten.Load(),
		Evaluations:     c.evaluations.Load(), Decisions: c.decisions.Load(), Applied: c.applied.Load(),
		ApplyErrors: c.applyErrors.Load(), Fallbacks: c.fallbacks.Load(), SuppressedStabilization: c.supStab.Load(),
		SuppressedDwell: c.supDwell.Load(), SuppressedCooldown: c.supCool.Load()}
}
