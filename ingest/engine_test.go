package ingest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/internal/clock"
)

// recorder is the Applier fake: it records calls and can fail on demand.
type recorder struct {
	mu    sync.Mutex
	calls []Decision
	fail  error
}

func (r *recorder) ApplyProfile(_ context.Context, t Target, profile string, d Decision) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, d)
	return r.fail
}

func (r *recorder) profiles() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, d := range r.calls {
		out = append(out, d.Profile+"/"+d.Reason)
	}
	return out
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

func f64(v float64) *float64 { return &v }

func gpu(n int) *int { return &n }

func baseRule() Rule {
	return Rule{
		Name:    "cams",
		Trigger: Trigger{Source: "plant/*/cam-*", Metric: "queue_depth", Aggregate: AggAvg, Window: Duration(10 * time.Second), Threshold: 10},
		Target:  Target{GPU: gpu(0), Profile: "7x10gb", IdleProfile: "1x80gb"},
	}
}

func sig(c clock.Clock, source string, v float64) Signal {
	now := c.Now()
	return Signal{Topic: Topic{Site: "plant", Node: "n1", Kind: KindLoad, Source: source}, Name: "urn:dev:" + source + ":queue_depth",
		Metric: "queue_depth", Value: v, Time: now, Arrived: now}
}

func TestWindowAggregates(t *testing.T) {
	s := &series{cap: 5, keep: time.Minute}
	t0 := testNow
	for i, v := range []float64{1, 2, 3, 10, 4} { // a counter with one reset
		s.add(t0.Add(time.Duration(i)*time.Second), v, t0)
	}
	now := t0.Add(4 * time.Second)
	check := func(agg string, want float64) {
		t.Helper()
		got, n, ok := s.aggregate(agg, now, time.Minute)
		if !ok || n != 5 || got != want {
			t.Errorf("%s = %v (n %d ok %v), want %v", agg, got, n, ok, want)
		}
	}
	check(AggAvg, 4)
	check(AggMax, 10)
	check(AggSum, 20)
	check(AggRate, (1+1+7+4)/4.0)
	// A short window sees only the newest samples.
	if v, n, _ := s.aggregate(AggAvg, now, 1500*time.Millisecond); n != 2 || v != 7 {
		t.Errorf("1.5s avg = %v over %d", v, n)
	}
	// Cap: the oldest go first; a late sample lands in order.
	s.add(t0.Add(10*time.Second), 5, t0)
	s.add(t0.Add(9*time.Second), 6, t0)
	if len(s.samples) != 5 || s.samples[0].v != 3 || s.samples[3].v != 6 || s.samples[4].v != 5 {
		t.Errorf("after cap: %+v", s.samples)
	}
	// Keep: samples older than keep before the newest go.
	s.add(t0.Add(2*time.Minute), 1, t0)
	if len(s.samples) != 1 {
		t.Errorf("after keep: %+v", s.samples)
	}
	if _, _, ok := s.aggregate(AggRate, t0.Add(2*time.Minute), time.Minute); ok {
		t.Error("rate from one sample")
	}
}

func TestValidateRules(t *testing.T) {
	r := baseRule()
	out, err := ValidateRules([]Rule{r})
	if err != nil {
		t.Fatal(err)
	}
	if *out[0].Trigger.ActivationThreshold != 10 || out[0].Fallback.FailureThreshold != 3 {
		t.Errorf("defaults: %+v", out[0])
	}
	b := Rule{Name: "cams", Trigger: Trigger{Source: "[", Aggregate: "median", Window: -1, Threshold: 1, ActivationThreshold: f64(2)},
		Target: Target{GPU: gpu(0)}, Behavior: Behavior{Tolerance: 2, MinDwell: -1}, Fallback: Fallback{FailureThreshold: -1}}
	_, err = ValidateRules([]Rule{r, b, {Name: "x"}})
	for _, want := range []string{
		`rules[1].name: "cams" already used by rules[0]`, "rules[1].trigger.source: \"[\"", "rules[1].trigger.metric: empty",
		`rules[1].trigger.aggregate: "median": want avg, max, sum or rate`, "rules[1].trigger.window", "rules[1].trigger.activationThreshold: 2 exceeds threshold 1",
		"rules[1].target.profile: empty", "rules[1].target.idleProfile", "rules[1].target: gpu/0 is already driven by rules[0]",
		"rules[1].behavior.tolerance", "rules[1].behavior.minDwell", "rules[1].fallback.failureThreshold", "rules[2].trigger.source: empty",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestEngineScaleUpDownWithInputs(t *testing.T) {
	clk := clock.NewFake(testNow)
	rec := &recorder{}
	r := baseRule()
	r.Trigger.ActivationThreshold = f64(4)
	e, err := NewEngine([]Rule{r}, rec, EngineOptions{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e.Observe(ctx, sig(clk, "cam-1", 12))
	e.Observe(ctx, sig(clk, "other", 100)) // not matched
	clk.Advance(time.Second)
	e.Observe(ctx, sig(clk, "cam-2", 6)) // avg of averages: (12+6)/2 = 9, in band: hold
	clk.Advance(11 * time.Second)        // both windows empty
	e.Observe(ctx, sig(clk, "cam-1", 2)) // cam-2 has no samples in window; 2 < 4
	got := rec.profiles()
	if strings.Join(got, ",") != "7x10gb/scale-up,1x80gb/scale-down" {
		t.Fatalf("decisions %v", got)
	}
	d := rec.calls[0]
	if d.Value != 12 || d.Threshold != 10 || len(d.Inputs) != 1 || d.Inputs[0].Source != "plant/n1/cam-1" || d.Target != "gpu/0" {
		t.Errorf("decision %+v", d)
	}
	if ev := e.Events(); len(ev) != 2 || !ev[1].Applied || ev[1].Previous != "7x10gb" {
		t.Errorf("events %+v", ev)
	}
	if st := e.Stats(); st.Decisions != 2 || st.Applied != 2 || st.Unmatched != 1 || st.Signals != 4 {
		t.Errorf("stats %+v", st)
	}
}

// An oscillating load around the threshold re-slices at most as often as
// dwell and cooldown allow.
func TestEngineHysteresisOscillation(t *testing.T) {
	clk := clock.NewFake(testNow)
	rec := &recorder{}
	r := baseRule()
	r.Trigger.Aggregate = AggMax
	r.Trigger.Window = Duration(time.Second)
	r.Behavior.MinDwell = Duration(2 * time.Minute)
	r.Behavior.Cooldown = Duration(30 * time.Second)
	e, _ := NewEngine([]Rule{r}, rec, EngineOptions{Clock: clk})
	ctx := context.Background()
	const dur = 10 * time.Minute
	for el := time.Duration(0); el < dur; el += 2 * time.Second {
		v := 9.0
		if (el/(2*time.Second))%2 == 0 {
			v = 11
		}
		e.Observe(ctx, sig(clk, "cam-1", v))
		e.Tick(ctx)
		clk.Advance(2 * time.Second)
	}
	n := rec.count()
	if limit := int(dur/(2*time.Minute)) + 1; n > limit || n < 2 {
		t.Errorf("%d re-slices in %v; dwell allows at most %d", n, dur, limit)
	}
	for i := 1; i < n; i++ {
		if gap := rec.calls[i].Time.Sub(rec.calls[i-1].Time); gap < 2*time.Minute {
			t.Errorf("decisions %d and %d only %v apart", i-1, i, gap)
		}
	}
	if st := e.Stats(); st.SuppressedDwell == 0 {
		t.Errorf("no dwell suppression: %+v", st)
	}

	// With a band (activation 5) and tolerance the same load never moves.
	rec2 := &recorder{}
	r.Trigger.ActivationThreshold = f64(5)
	r.Trigger.Threshold = 10
	r.Behavior = Behavior{Tolerance: 0.15}
	e2, _ := NewEngine([]Rule{r}, rec2, EngineOptions{Clock: clk})
	for i := 0; i < 100; i++ {
		e2.Observe(ctx, sig(clk, "cam-1", 9+2*float64(i%2)))
		clk.Advance(2 * time.Second)
	}
	if rec2.count() != 0 {
		t.Errorf("band+tolerance: %v", rec2.profiles())
	}
}

func TestEngineStabilization(t *testing.T) {
	clk := clock.NewFake(testNow)
	rec := &recorder{}
	r := baseRule()
	r.Trigger.Window = Duration(time.Second)
	r.Behavior.ScaleUp.StabilizationWindow = Duration(10 * time.Second)
	e, _ := NewEngine([]Rule{r}, rec, EngineOptions{Clock: clk})
	ctx := context.Background()
	// A spike shorter than the window does nothing.
	for i := 0; i < 5; i++ {
		e.Observe(ctx, sig(clk, "cam-1", 20))
		clk.Advance(time.Second)
	}
	e.Observe(ctx, sig(clk, "cam-1", 1))
	clk.Advance(time.Second)
	if rec.count() != 1 || rec.calls[0].Reason != ReasonScaleDown {
		t.Fatalf("spike: %v", rec.profiles())
	}
	// Sustained load does, once the window has passed.
	for i := 0; i < 11; i++ {
		e.Observe(ctx, sig(clk, "cam-1", 20))
		clk.Advance(time.Second)
	}
	if got := rec.profiles(); len(got) != 2 || got[1] != "7x10gb/scale-up" || rec.calls[1].Time.Sub(testNow) < 16*time.Second {
		t.Fatalf("sustained: %v", got)
	}
}

func TestEngineStaleFallback(t *testing.T) {
	clk := clock.NewFake(testNow)
	rec := &recorder{}
	r := baseRule()
	r.Trigger.StaleAfter = Duration(5 * time.Second)
	r.Fallback.Profile = "2x40gb"
	e, _ := NewEngine([]Rule{r}, rec, EngineOptions{Clock: clk})
	ctx := context.Background()
	e.Observe(ctx, sig(clk, "cam-1", 20))
	clk.Advance(6 * time.Second)
	e.Tick(ctx)
	e.Tick(ctx) // once only
	if got := strings.Join(rec.profiles(), ","); got != "7x10gb/scale-up,2x40gb/fallback-stale" {
		t.Fatalf("stale: %s", got)
	}
	clk.Advance(5 * time.Second)         // the old sample leaves the window
	e.Observe(ctx, sig(clk, "cam-1", 1)) // fresh data ends the fallback
	if got := rec.profiles(); got[len(got)-1] != "1x80gb/scale-down" {
		t.Fatalf("recovery: %v", got)
	}
	// An offline status makes the source stale at once.
	e.SetOffline(ctx, Topic{Site: "plant", Node: "n1", Source: "cam-1"})
	if got := rec.profiles(); got[len(got)-1] != "2x40gb/fallback-stale" {
		t.Fatalf("offline: %v", got)
	}
	// A rule that never hears anything falls back after staleAfter.
	rec2 := &recorder{}
	e2, _ := NewEngine([]Rule{r}, rec2, EngineOptions{Clock: clk})
	e2.Tick(ctx)
	clk.Advance(6 * time.Second)
	e2.Tick(ctx)
	if got := rec2.profiles(); len(got) != 1 || got[0] != "2x40gb/fallback-stale" {
		t.Fatalf("silent: %v", got)
	}
	if st := e2.Stats(); st.Fallbacks != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestEngineFailureFallback(t *testing.T) {
	clk := clock.NewFake(testNow)
	rec := &recorder{fail: errors.New("slicer busy")}
	r := baseRule()
	r.Behavior.Cooldown = Duration(time.Second)
	r.Fallback = Fallback{Profile: "2x40gb", FailureThreshold: 2}
	e, _ := NewEngine([]Rule{r}, rec, EngineOptions{Clock: clk, EventCap: 3})
	ctx := context.Background()
	for i := 0; i < 6; i++ {
		e.Observe(ctx, sig(clk, "cam-1", 20))
		e.Observe(ctx, sig(clk, "cam-1", 20)) // within cooldown: suppressed
		clk.Advance(time.Second)
	}
	got := rec.profiles()
	if len(got) != 6 || got[0] != "7x10gb/scale-up" || got[1] != "7x10gb/scale-up" || got[2] != "2x40gb/fallback-failures" {
		t.Fatalf("failures: %v", got)
	}
	ev := e.Events()
	if len(ev) != 3 || ev[2].Seq != 6 || ev[0].Seq != 4 || ev[2].Applied || ev[2].Error != "slicer busy" {
		t.Errorf("events ring: %+v", ev)
	}
	rec.mu.Lock()
	rec.fail = nil
	rec.mu.Unlock()
	e.Observe(ctx, sig(clk, "cam-1", 20))
	clk.Advance(time.Second)
	e.Observe(ctx, sig(clk, "cam-1", 20))
	if got := rec.profiles(); got[len(got)-2] != "2x40gb/fallback-failures" || got[len(got)-1] != "7x10gb/scale-up" {
		t.Fatalf("after recovery: %v", got)
	}
	if st := e.Stats(); st.ApplyErrors != 6 || st.SuppressedCooldown == 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestEngineSeriesCap(t *testing.T) {
	clk := clock.NewFake(testNow)
	e, _ := NewEngine([]Rule{baseRule()}, &recorder{}, EngineOptions{Clock: clk, MaxSeries: 3})
	for i := 0; i < 10; i++ {
		e.Observe(context.Background(), sig(clk, "cam-"+string(rune('a'+i)), 1))
	}
	if st := e.Stats(); st.SeriesDropped != 7 || len(e.series) != 3 {
		t.Errorf("stats %+v", st)
	}
}

// Series quiet for SeriesTTL are forgotten, which frees their places under
// MaxSeries; the rest keep their aggregates.
func TestEngineForgetsQuietSeries(t *testing.T) {
	clk := clock.NewFake(testNow)
	r := baseRule()
	r.Trigger.Aggregate = AggMax
	e, _ := NewEngine([]Rule{r}, &recorder{}, EngineOptions{Clock: clk, MaxSeries: 3, SeriesTTL: 5 * time.Minute})
	ctx := context.Background()
	for _, src := range []string{"cam-a", "cam-b", "cam-c"} {
		e.Observe(ctx, sig(clk, src, 1))
	}
	e.Tick(ctx) // the first sweep: nothing is quiet yet
	clk.Advance(4 * time.Minute)
	e.Observe(ctx, sig(clk, "cam-b", 7)) // b stays
	clk.Advance(2 * time.Minute)
	e.Tick(ctx)
	if st := e.Stats(); st.SeriesForgotten != 2 || st.Series != 1 {
		t.Fatalf("after 6 quiet minutes: stats %+v", st)
	}
	for _, src := range []string{"cam-d", "cam-e"} {
		e.Observe(ctx, sig(clk, src, 3))
	}
	if st := e.Stats(); st.SeriesDropped != 0 || st.Series != 3 {
		t.Fatalf("new devices after the sweep: stats %+v", st)
	}
	rs := e.rules[0]
	for i, se := range rs.series {
		if len(se.readers) != 1 || se.readers[0].idx != i || se.readers[0].rs != rs {
			t.Fatalf("series %d (%s): readers %+v", i, se.source, se.readers)
		}
	}
}

// The per-series aggregate cache never serves a value that a fresh
// computation would not give, while sources come, go quiet, go offline and
// are forgotten.
func TestEngineCacheExact(t *testing.T) {
	clk := clock.NewFake(testNow)
	for _, agg := range []string{AggAvg, AggMax, AggSum, AggRate} {
		r := baseRule()
		r.Trigger.Aggregate = agg
		r.Trigger.Window = Duration(5 * time.Second)
		r.Trigger.StaleAfter = Duration(2 * time.Second)
		e, _ := NewEngine([]Rule{r}, &recorder{}, EngineOptions{Clock: clk, MaxSamples: 8, SeriesTTL: time.Minute})
		rng := rand.New(rand.NewPCG(1, 2))
		ctx := context.Background()
		for step := 0; step < 3000; step++ {
			switch rng.IntN(3) {
			case 0:
				s := sig(clk, fmt.Sprintf("cam-%d", rng.IntN(40)), float64(rng.IntN(20)))
				s.Time = s.Time.Add(-time.Duration(rng.IntN(3000)) * time.Millisecond) // some arrive late
				e.Observe(ctx, s)
			case 1:
				clk.Advance(time.Duration(rng.IntN(1500)) * time.Millisecond)
			case 2:
				if rng.IntN(20) == 0 {
					e.SetOffline(ctx, Topic{Site: "plant", Node: "n1", Source: fmt.Sprintf("cam-%d", rng.IntN(40))})
				}
			}
			e.Tick(ctx)
			rs := e.rules[0]
			now := clk.Now()
			for i, se := range rs.series {
				v, n, ok := se.aggregate(agg, now, r.Trigger.Window.D())
				stale := se.stale(now, r.Trigger.StaleAfter.D())
				if c := rs.cache[i]; c.stale != stale || !stale && (c.ok != ok || ok && (c.val != v || c.n != n)) {
					t.Fatalf("%s step %d series %s: cache %+v, fresh %v %d %v", agg, step, se.source, c, v, n, ok)
				}
			}
		}
		if e.Stats().SeriesForgotten == 0 {
			t.Errorf("%s: no series was forgotten", agg)
		}
	}
}

func TestEngineSetRules(t *testing.T) {
	clk := clock.NewFake(testNow)
	rec := &recorder{}
	r := baseRule()
	r.Behavior.MinDwell = Duration(time.Minute)
	e, _ := NewEngine([]Rule{r}, rec, EngineOptions{Clock: clk})
	ctx := context.Background()
	e.Observe(ctx, sig(clk, "cam-1", 20))
	bad := r
	bad.Trigger.Aggregate = "p95"
	if err := e.SetRules([]Rule{bad}); err == nil || !strings.Contains(err.Error(), "rules[0].trigger.aggregate") {
		t.Fatalf("bad rules: %v", err)
	}
	// Same name and target: dwell still runs from the first decision, and
	// the existing series is read under the new threshold.
	r.Trigger.Threshold, r.Trigger.ActivationThreshold = 30, nil
	if err := e.SetRules([]Rule{r}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Second)
	e.Tick(ctx)
	if rec.count() != 1 {
		t.Fatalf("dwell not kept: %v", rec.profiles())
	}
	clk.Advance(time.Minute)
	e.Observe(ctx, sig(clk, "cam-1", 20))
	if got := rec.profiles(); len(got) != 2 || got[1] != "1x80gb/scale-down" || e.Rules()[0].Trigger.Threshold != 30 {
		t.Fatalf("after dwell: %v", got)
	}
}
