package profiles

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/internal/testkit"
	"github.com/kerf-edge/kerf/profiles/api"
)

// contractHistory checks /v1/history: signals searched and paged, and the
// node's slices, layouts and tenants sampled as the counters move.
func contractHistory(t *testing.T, e *env, cov covered) {
	t.Helper()
	a := e.admin
	now := time.Now()
	for i := range 30 {
		e.srv.ObserveSignal(fmt.Sprintf("plant/n1/cam-%02d", i), "queue", now, float64(i))
	}
	e.srv.ObserveSignal("plant/n1/door", "temp", now.Add(-time.Second), 20)
	e.srv.ObserveSignal("plant/n1/door", "temp", now, 25)

	var sh api.SignalHistory
	e.call(cov, "GET /v1/history/signals", "/v1/history/signals?q=cam-1&limit=4", a, nil).json(t, &sh)
	if sh.Total != 10 || len(sh.Series) != 4 || sh.Series[0].Source != "plant/n1/cam-10" || sh.Series[0].Metric != "queue" {
		t.Fatalf("search cam-1: %+v", sh)
	}
	e.do("GET", "/v1/history/signals?q=cam-1&limit=4&offset=8", a, nil).json(t, &sh)
	if sh.Total != 10 || len(sh.Series) != 2 || sh.Series[1].Source != "plant/n1/cam-19" || sh.Offset != 8 {
		t.Fatalf("page 3: %+v", sh)
	}
	e.do("GET", "/v1/history/signals?q=DOOR", a, nil).json(t, &sh)
	if len(sh.Series) != 1 || len(sh.Series[0].Points.V) == 0 || sh.Series[0].Points.V[len(sh.Series[0].Points.V)-1] != 25 || sh.WindowSeconds != 300 {
		t.Fatalf("door: %+v", sh)
	}
	problemOf(t, e.do("GET", "/v1/history/signals?limit=201", a, nil), 422)

	// The node's counters move: rates appear.
	fresh := newFakeNode()
	e.node.mu.Lock()
	e.node.slices, e.node.tenants = fresh.slices, fresh.tenants
	e.node.slices[0].ID = "s0"
	e.node.mu.Unlock()
	bump := func() {
		e.node.mu.Lock()
		defer e.node.mu.Unlock()
		e.node.slices[0].GPUSeconds += 0.05
		e.node.tenants[0].Calls += 100
		e.node.tenants[0].GPUSeconds += 0.05
	}
	var gh api.GPUHistory
	s0 := func() api.SliceHistory {
		for _, g := range gh.GPUs {
			for _, s := range g.Slices {
				if s.ID == "s0" {
					return s
				}
			}
		}
		return api.SliceHistory{}
	}
	testkit.WaitFor(t, "GPU time in the slice's history", func() bool {
		bump()
		e.call(cov, "GET /v1/history/gpus", "/v1/history/gpus", a, nil).json(t, &gh)
		v := s0().GPUTime.V
		return len(v) > 0 && v[len(v)-1] > 0
	})
	g := gh.GPUs[0]
	if s := s0(); s.Tenant != "alice" || len(s.MemoryUsedBytes.V) == 0 || s.MemoryUsedBytes.V[len(s.MemoryUsedBytes.V)-1] != 3<<30 {
		t.Fatalf("slice history %+v", s)
	}
	if len(g.Layouts) == 0 || g.Layouts[len(g.Layouts)-1].Slices[0].MemoryLimitBytes != 8<<30 {
		t.Fatalf("layouts %+v", g.Layouts)
	}
	var th api.TenantHistory
	testkit.WaitFor(t, "the tenant's call rate", func() bool {
		bump()
		e.call(cov, "GET /v1/history/tenants", "/v1/history/tenants", a, nil).json(t, &th)
		if len(th.Tenants) != 1 {
			return false
		}
		c, g := th.Tenants[0].Calls.V, th.Tenants[0].GPUTime.V
		return len(c) > 0 && c[len(c)-1] > 0 && len(g) > 0 && g[len(g)-1] > 0
	})
	if th.Tenants[0].Name != "alice" || th.StepSeconds != 0.1 {
		t.Fatalf("tenant history %+v", th)
	}
}

func TestRuleResliceIsOneEvent(t *testing.T) {
	e := newEnv(t)
	e.srv.RecordRuleReslice(RuleReslice{Rule: "cams", Metric: "queue", Why: "max of queue = 85 ≥ threshold 80", Reason: "scale-up",
		Target: "gpu 0", Profile: "uniform-10", Previous: "whole", Duration: 12 * time.Millisecond})
	e.srv.RecordRuleReslice(RuleReslice{Rule: "cams", Metric: "queue", Why: "max of queue = 1 < activation threshold 5", Reason: "scale-down",
		Target: "node", Profile: "whole", Err: errors.New("slices held")})
	var evs []api.Event
	e.do("GET", "/v1/events?kind=reslice", e.admin, nil).json(t, &evs)
	if len(evs) != 2 {
		t.Fatalf("%d events, want one per re-slice: %+v", len(evs), evs)
	}
	for i, want := range []string{
		"rule cams, max of queue = 85 ≥ threshold 80: scale-up, re-sliced gpu 0 to uniform-10 (was whole) in 12ms",
		"rule cams, max of queue = 1 < activation threshold 5: scale-down, re-slicing node to whole failed: slices held",
	} {
		if ev := evs[i]; ev.Summary != want || ev.Rule != "cams" || ev.Metric != "queue" || ev.Actor != "policy" {
			t.Errorf("event %d: %+v, want summary %q", i, ev, want)
		}
	}
	var pol []api.Event
	e.do("GET", "/v1/events?kind=policy", e.admin, nil).json(t, &pol)
	if len(pol) != 0 {
		t.Errorf("a re-slice also logged as a policy event: %+v", pol)
	}
}

func TestAPISummaryNamesWhatWasTouched(t *testing.T) {
	for _, c := range []struct {
		method, path string
		status       int
		detail, want string
	}{
		{"PUT", "/v1/rules/cams", 200, "", "admin: put rule cams → 200 OK"},
		{"DELETE", "/v1/profiles/two", 204, "", "admin: delete profile two → 204 No Content"},
		{"POST", "/v1/profiles/two/apply", 422, "no room", "admin: apply profile two → 422 Unprocessable Entity (no room)"},
		{"POST", "/v1/profiles", 201, "", "admin: create a profile → 201 Created"},
		{"PUT", "/v1/tenants/alice/policy", 200, "", "admin: put policy of tenant alice → 200 OK"},
		{"POST", "/v1/tenants/alice/evict", 204, "", "admin: evict tenant alice → 204 No Content"},
	} {
		if got := apiSummary("admin", c.method, c.path, c.status, c.detail); got != c.want {
			t.Errorf("%s %s: %q, want %q", c.method, c.path, got, c.want)
		}
	}
}
