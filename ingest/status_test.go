package ingest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/internal/clock"
)

// A rule goes armed → stabilising → firing → cooling down → firing, and
// says why in each.
func TestRuleStatusPhases(t *testing.T) {
	clk := clock.NewFake(testNow)
	rec := &recorder{}
	r := baseRule()
	r.Behavior.ScaleUp.StabilizationWindow = Duration(5 * time.Second)
	r.Behavior.Cooldown = Duration(30 * time.Second)
	e, err := NewEngine([]Rule{r}, rec, EngineOptions{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	phase := func(want, why string) {
		t.Helper()
		st, ok := e.RuleStatus("cams")
		if !ok || st.Phase != want || !strings.Contains(st.Why, why) {
			t.Fatalf("status %+v, want %s with %q", st, want, why)
		}
	}
	if _, ok := e.RuleStatus("nope"); ok {
		t.Fatal("a rule not in force has a status")
	}
	phase(PhaseArmed, "no reading yet")
	e.Observe(ctx, sig(clk, "cam-1", 3)) // below: the idle profile at once
	phase(PhaseCoolingDown, "acted 0s ago, cooldown 30s")
	clk.Advance(31 * time.Second)
	e.Observe(ctx, sig(clk, "cam-1", 3))
	phase(PhaseArmed, "avg of queue_depth = 3 over 1 series; 7x10gb at ≥ 10")
	e.Observe(ctx, sig(clk, "cam-1", 30)) // avg 16.5
	clk.Advance(2 * time.Second)
	phase(PhaseStabilising, "≥ 10 for 2s of 5s before 7x10gb")
	clk.Advance(4 * time.Second)
	e.Tick(ctx)
	if rec.count() != 2 {
		t.Fatalf("%d decisions, want 2", rec.count())
	}
	phase(PhaseCoolingDown, "cooldown 30s")
	if st, _ := e.RuleStatus("cams"); st.Last == nil || st.Last.Profile != "7x10gb" || st.Last.Metric != "queue_depth" {
		t.Fatalf("last decision %+v", st.Last)
	}
	clk.Advance(31 * time.Second)
	phase(PhaseFiring, "7x10gb applied to gpu/0")
}
