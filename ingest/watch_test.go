package ingest

import (
	"context"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/internal/clock"
)

// A watch reads its series per source; rules and watches share the series
// table, and replacing either set keeps the other reading.
func TestWatchReadsPerSource(t *testing.T) {
	clk := clock.NewFake(testNow)
	rec := &recorder{}
	e, err := NewEngine([]Rule{baseRule()}, rec, EngineOptions{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	tr := Trigger{Source: "plant/*/cam-*", Metric: "queue_depth", Aggregate: AggMax, Window: Duration(10 * time.Second), Threshold: 5}
	if err := e.SetWatches([]Watch{{Name: "infer", Trigger: tr}}); err != nil {
		t.Fatal(err)
	}
	if err := e.SetWatches([]Watch{{Name: "a", Trigger: Trigger{}}}); err == nil {
		t.Fatal("a watch with an empty trigger was accepted")
	}
	ctx := context.Background()
	e.Observe(ctx, sig(clk, "cam-1", 3))
	e.Observe(ctx, sig(clk, "cam-1", 7))
	e.Observe(ctx, sig(clk, "cam-2", 12))
	check := func(want map[string]float64) {
		t.Helper()
		r, ok := e.Reading("infer")
		if !ok {
			t.Fatal("no reading")
		}
		got := map[string]float64{}
		for _, s := range r.Sources {
			if !s.Stale {
				got[s.Source] = s.Value
			}
		}
		if len(got) != len(want) {
			t.Fatalf("reading %+v, want %v", r.Sources, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("reading %+v, want %v", r.Sources, want)
			}
		}
	}
	check(map[string]float64{"plant/n1/cam-1": 7, "plant/n1/cam-2": 12})
	// Replacing the rules keeps the watch's series, and the reverse.
	if err := e.SetRules(nil); err != nil {
		t.Fatal(err)
	}
	check(map[string]float64{"plant/n1/cam-1": 7, "plant/n1/cam-2": 12})
	if err := e.SetRules([]Rule{baseRule()}); err != nil {
		t.Fatal(err)
	}
	if err := e.SetWatches([]Watch{{Name: "infer", Trigger: tr}}); err != nil {
		t.Fatal(err)
	}
	check(map[string]float64{"plant/n1/cam-1": 7, "plant/n1/cam-2": 12})
	// The rule reads the same series: the sources' averages 5 and 16
	// average 10.5, at its threshold.
	e.Observe(ctx, sig(clk, "cam-2", 20))
	if p := rec.profiles(); p[len(p)-1] != "7x10gb/scale-up" {
		t.Fatalf("the rule's decisions after SetWatches: %v", p)
	}
	// Out of the window, a source reads stale.
	clk.Advance(11 * time.Second)
	check(map[string]float64{})
	if _, ok := e.Reading("nope"); ok {
		t.Fatal("a reading of no watch")
	}
	if err := e.SetWatches(nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.Reading("infer"); ok {
		t.Fatal("a removed watch still reads")
	}
}
