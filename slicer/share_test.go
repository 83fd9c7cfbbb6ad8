package slicer

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/internal/clock"
)

// sim is a discrete-event simulation of one GPU shared by tenants in
// separate processes: each runs kernels back to back within its grants,
// with its own random kernel lengths and host-side gaps, so demand is
// continuous but unsynchronised. Time is a fake clock; nothing sleeps.
type sim struct {
	t       *testing.T
	clock   *clock.Fake
	arb     *Arbiter
	start   time.Time
	events  evq
	seq     int
	tenants []*simTenant
	window  time.Duration
	// grants out now, and the most out at once since peakFrom
	out, peak int
	peakFrom  time.Time
	// handover is how long a grant takes to reach its tenant, and a
	// report the arbiter (a slow control socket, a starved kerfd).
	handover time.Duration
}

type simTenant struct {
	name    string
	share   float64
	rng     *rand.Rand
	maxK    time.Duration // longest kernel
	gap     time.Duration // longest host gap between grants
	burst   time.Duration // if set: the GPU time it wants before a gap
	idle    [2]time.Duration
	used    map[int]time.Duration // GPU time per window
	grants  int
	renewed int
	asked   time.Time
	waited  time.Duration // total time from ask to grant
}

type event struct {
	at  time.Time
	seq int
	fn  func()
}

type evq []event

func (q evq) Len() int { return len(q) }
func (q evq) Less(i, j int) bool {
	return q[i].at.Before(q[j].at) || q[i].at.Equal(q[j].at) && q[i].seq < q[j].seq
}
func (q evq) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *evq) Push(x any)   { *q = append(*q, x.(event)) }
func (q *evq) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

func newSim(t *testing.T, cfg ArbiterConfig) *sim {
	c := clock.NewFake(time.Time{})
	cfg.Clock = c
	return &sim{t: t, clock: c, arb: NewArbiter(cfg), start: c.Now(), window: time.Second}
}

func (s *sim) at(d time.Time, fn func()) {
	s.seq++
	heap.Push(&s.events, event{d, s.seq, fn})
}

func (s *sim) add(name string, share float64, seed uint64, maxKernel time.Duration) *simTenant {
	tn := &simTenant{name: name, share: share, rng: rand.New(rand.NewPCG(seed, 7)), maxK: maxKernel, gap: 300 * time.Microsecond, used: map[int]time.Duration{}}
	s.tenants = append(s.tenants, tn)
	s.arb.SetShare(name, share)
	// Start at a random offset so tenants are not in step.
	s.at(s.start.Add(time.Duration(tn.rng.Int64N(int64(time.Millisecond)))), func() { s.ask(tn) })
	return tn
}

// ask asks for a grant, unless the tenant is in an idle spell.
func (s *sim) ask(tn *simTenant) {
	now := s.clock.Now()
	if from, to := s.start.Add(tn.idle[0]), s.start.Add(tn.idle[1]); tn.idle[1] > 0 && !now.Before(from) && now.Before(to) {
		s.at(to, func() { s.ask(tn) })
		return
	}
	tn.asked = now
	var h *simHold
	err := s.arb.AskYield(tn.name, 0, func(g Grant, err error) {
		if err != nil {
			s.t.Error(err)
			return
		}
		h = &simHold{g: g, budget: g.Budget}
		if s.handover > 0 {
			s.at(s.clock.Now().Add(s.handover), func() { s.hold(tn, h) })
			return
		}
		s.hold(tn, h)
	}, func(g Grant) {
		// Told to yield: what is left is g.Budget from now. Charge what
		// was used so far at once, as a worker does, so that the time
		// used on a solo grant is told apart from the rest.
		h.yielded = true
		h.budget = h.used + g.Budget
		if _, _, err := s.arb.Renew(h.g, h.used-h.reported); err != nil {
			s.t.Error(err)
		}
		h.reported = h.used
	})
	if err != nil {
		s.t.Fatal(err)
	}
}

// simHold is a grant being spent: budget and used count from its issue.
type simHold struct {
	g                      Grant
	budget, used, reported time.Duration
	renewing, yielded      bool
}

// hold starts spending a grant.
func (s *sim) hold(tn *simTenant, h *simHold) {
	s.out++
	if !s.clock.Now().Before(s.peakFrom) {
		s.peak = max(s.peak, s.out)
	}
	tn.grants++
	tn.waited += s.clock.Now().Sub(tn.asked)
	s.kernel(tn, h)
}

// kernel runs one kernel of the grant (the last may overrun), renews the
// grant ahead once half of it is spent, as a worker does, and reports
// when the budget is spent.
func (s *sim) kernel(tn *simTenant, h *simHold) {
	if h.used >= h.budget || tn.burst > 0 && h.used >= tn.burst {
		s.out--
		report := func() {
			if err := s.arb.Report(h.g, h.used-h.reported); err != nil {
				s.t.Fatal(err)
			}
		}
		if s.handover > 0 {
			s.at(s.clock.Now().Add(s.handover), report)
		} else {
			report()
		}
		gap := time.Duration(tn.rng.Int64N(int64(tn.gap)))
		s.at(s.clock.Now().Add(s.handover+gap), func() { s.ask(tn) })
		return
	}
	if !h.renewing && !h.yielded && 2*h.used >= h.budget {
		// The arbiter takes it at once (before any later report, as
		// on a socket); the answer comes back a round trip later, with
		// kernels running meanwhile.
		h.renewing = true
		base := h.used
		g, ok, err := s.arb.Renew(h.g, h.used-h.reported)
		if err != nil {
			s.t.Fatal(err)
		}
		h.reported = h.used
		s.at(s.clock.Now().Add(renewTrip), func() {
			h.renewing = false
			if ok && !h.yielded {
				h.budget = base + g.Budget
				tn.renewed++
			}
		})
	}
	now := s.clock.Now()
	k := time.Duration(tn.rng.Int64N(int64(tn.maxK))) + 10*time.Microsecond
	s.account(tn, now, k)
	h.used += k
	s.at(now.Add(k), func() { s.kernel(tn, h) })
}

// renewTrip is the simulated round trip of a renewal.
const renewTrip = 50 * time.Microsecond

// account adds a kernel of length d starting at from, split by windows.
func (s *sim) account(tn *simTenant, from time.Time, d time.Duration) {
	for d > 0 {
		off := from.Sub(s.start)
		w := int(off / s.window)
		left := min(d, s.window*time.Duration(w+1)-off)
		tn.used[w] += left
		from, d = from.Add(left), d-left
	}
}

func (s *sim) runFor(d time.Duration) {
	end := s.start.Add(d)
	for s.events.Len() > 0 {
		if s.events[0].at.After(end) {
			return // left for a later runFor
		}
		e := heap.Pop(&s.events).(event)
		s.clock.AdvanceTo(e.at)
		e.fn()
	}
}

// shares returns each tenant's part of the GPU time used in window w,
// and the GPU's utilisation.
func (s *sim) shares(w int) (map[string]float64, float64) {
	var total time.Duration
	for _, tn := range s.tenants {
		total += tn.used[w]
	}
	out := map[string]float64{}
	for _, tn := range s.tenants {
		out[tn.name] = float64(tn.used[w]) / float64(total)
	}
	return out, float64(total) / float64(s.window)
}

// TestShareAccuracy: continuous, unsynchronised demand gets shares within
// ±5% (relative) of the targets in every 1 s window.
func TestShareAccuracy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		shares []float64
		maxK   []time.Duration
	}{
		{"30/70", []float64{0.3, 0.7}, []time.Duration{time.Millisecond, 300 * time.Microsecond}},
		{"4-tenant mix", []float64{0.1, 0.2, 0.3, 0.4}, []time.Duration{800 * time.Microsecond, 200 * time.Microsecond, time.Millisecond, 500 * time.Microsecond}},
		{"2x25 + 5x10", []float64{0.25, 0.25, 0.1, 0.1, 0.1, 0.1, 0.1}, []time.Duration{time.Millisecond, 100 * time.Microsecond, 500 * time.Microsecond, time.Millisecond, 200 * time.Microsecond, 700 * time.Microsecond, 300 * time.Microsecond}},
		{"shares under 100%", []float64{0.2, 0.2}, []time.Duration{time.Millisecond, 100 * time.Microsecond}},
	} {
		for _, mode := range []struct {
			name string
			cfg  ArbiterConfig
		}{{"one slot", ArbiterConfig{}}, {"overlap below 75%", ArbiterConfig{OverlapBelow: 0.75}}} {
			t.Run(tc.name+"/"+mode.name, func(t *testing.T) { shareAccuracy(t, mode.cfg, tc.shares, tc.maxK) })
		}
	}
}

// shareAccuracy runs tenants of the given shares and longest kernels with
// continuous demand for 4 s, 3 seeds, and checks every 1 s window.
func shareAccuracy(t *testing.T, cfg ArbiterConfig, shares []float64, maxK []time.Duration) {
	t.Helper()
	const windows = 4
	worst := 0.0
	for seed := range uint64(3) {
		s := newSim(t, cfg)
		var sum float64
		for i, sh := range shares {
			s.add(fmt.Sprintf("t%d", i), sh, seed*100+uint64(i+1), maxK[i])
			sum += sh
		}
		s.runFor(windows * time.Second)
		for w := range windows {
			got, util := s.shares(w)
			if util < 0.95 {
				t.Errorf("seed %d window %d: GPU busy %.1f%%", seed, w, util*100)
			}
			for i, sh := range shares {
				want := sh / sum
				dev := (got[fmt.Sprintf("t%d", i)] - want) / want
				worst = max(worst, math.Abs(dev))
				if math.Abs(dev) > 0.05 {
					t.Errorf("seed %d window %d: t%d got %.2f%%, want %.2f%% ± 5%%", seed, w, i, got[fmt.Sprintf("t%d", i)]*100, want*100)
				}
			}
		}
	}
	t.Logf("worst deviation from target over 3 seeds × %d 1-s windows: %.2f%% (relative)", windows, worst*100)
}

// TestShareWorkConserving: while the 70% tenant idles, the 30% tenant
// gets the whole GPU; when it comes back, 30/70 resumes at once (idling
// banked no credit).
func TestShareWorkConserving(t *testing.T) {
	s := newSim(t, ArbiterConfig{})
	a := s.add("a", 0.3, 1, time.Millisecond)
	b := s.add("b", 0.7, 2, 500*time.Microsecond)
	b.idle = [2]time.Duration{2 * time.Second, 3 * time.Second}
	s.runFor(5 * time.Second)
	for w, want := range []float64{0.3, 0.3, 1, 0.3, 0.3} {
		got, util := s.shares(w)
		// Alone, a is limited only by its own host gaps between grants.
		if util < 0.9 {
			t.Errorf("window %d: GPU busy %.1f%%", w, util*100)
		}
		if d := math.Abs(got["a"]-want) / want; d > 0.05 {
			t.Errorf("window %d: a got %.2f%%, want %.0f%% ± 5%%", w, got["a"]*100, want*100)
		}
	}
	if a.grants == 0 || b.grants == 0 {
		t.Fatal("a tenant never ran")
	}
}

// TestShareSoloIsCheap: a tenant alone on the GPU holds one grant, never
// renewed, instead of asking again every quantum; when a second tenant
// arrives the holder yields and 30/70 holds from the next window: the GPU
// time it used alone is not held against it.
func TestShareSoloIsCheap(t *testing.T) {
	s := newSim(t, ArbiterConfig{})
	a := s.add("a", 0.3, 1, time.Millisecond)
	b := s.add("b", 0.7, 2, 500*time.Microsecond)
	b.idle = [2]time.Duration{0, 2 * time.Second}
	s.runFor(2 * time.Second)
	if a.grants != 1 || a.renewed != 0 {
		t.Errorf("alone for 2 s: %d grants, %d renewals; want 1 grant, never renewed", a.grants, a.renewed)
	}
	for w := range 2 {
		if got, util := s.shares(w); util < 0.99 || got["a"] != 1 {
			t.Errorf("window %d: a alone got %.2f%% of a GPU busy %.1f%%", w, got["a"]*100, util*100)
		}
	}
	s.runFor(5 * time.Second)
	for w := 3; w < 5; w++ {
		got, util := s.shares(w)
		if util < 0.95 {
			t.Errorf("window %d: GPU busy %.1f%%", w, util*100)
		}
		if d := math.Abs(got["a"]-0.3) / 0.3; d > 0.05 {
			t.Errorf("window %d: a got %.2f%%, want 30%% ± 5%%", w, got["a"]*100)
		}
	}
	if b.grants == 0 {
		t.Fatal("the arriving tenant never ran")
	}
}

// TestShareLowDemand: a tenant that wants less than its share gets all
// it wants with short waits, and the others split the rest by share.
func TestShareLowDemand(t *testing.T) {
	s := newSim(t, ArbiterConfig{})
	a := s.add("a", 0.25, 1, time.Millisecond)
	b := s.add("b", 0.25, 2, 300*time.Microsecond)
	c := s.add("c", 0.5, 3, 500*time.Microsecond)
	c.gap = 20 * time.Millisecond
	s.runFor(3 * time.Second)
	for w := range 3 {
		got, util := s.shares(w)
		if util < 0.95 {
			t.Errorf("window %d: GPU busy %.1f%%", w, util*100)
		}
		if d := math.Abs(got["a"]-got["b"]) / got["b"]; d > 0.05 || got["c"] > 0.45 {
			t.Errorf("window %d: shares %v", w, got)
		}
	}
	if avg := c.waited / time.Duration(c.grants); avg > 2*time.Millisecond {
		t.Errorf("low-demand tenant waited %v per grant", avg)
	}
	t.Logf("grants a %d b %d c %d; c waited %v per grant", a.grants, b.grants, c.grants, c.waited/time.Duration(c.grants))
}

// TestShareOverlapSlowHandover: where hand-overs are slow, two tenants
// that both want the whole GPU leave it idle between grants, so the GPU
// time charged is low although demand is continuous. The time they wait
// counts as demand, so grants do not overlap and 30/70 holds in every 1 s
// window.
func TestShareOverlapSlowHandover(t *testing.T) {
	s := newSim(t, ArbiterConfig{OverlapBelow: 0.75})
	s.handover = 2 * time.Millisecond
	s.add("a", 0.3, 1, time.Millisecond)
	s.add("b", 0.7, 2, 300*time.Microsecond)
	s.runFor(5 * time.Second)
	for w := range 4 {
		got, util := s.shares(w)
		if d := math.Abs(got["a"]-0.3) / 0.3; d > 0.05 {
			t.Errorf("window %d: a got %.2f%% of a GPU busy %.1f%%, want 30%% ± 5%%", w, got["a"]*100, util*100)
		}
	}
	s.peakFrom = s.start.Add(time.Second)
	s.peak = 0
	s.runFor(6 * time.Second)
	if s.peak > 1 {
		t.Errorf("%d grants out at once under continuous demand", s.peak)
	}
}

// TestShareOverlap: with OverlapBelow, tenants that each want the GPU now
// and then get grants at once, several out together, instead of waiting
// for a slot; once demand is continuous, grants go out one at a time
// again and shares hold (TestShareAccuracy runs that mode too).
func TestShareOverlap(t *testing.T) {
	waits := map[string]time.Duration{}
	for _, mode := range []struct {
		name string
		cfg  ArbiterConfig
	}{{"one slot", ArbiterConfig{}}, {"overlap", ArbiterConfig{OverlapBelow: 0.75}}} {
		s := newSim(t, mode.cfg)
		var tns []*simTenant
		for i := range 8 {
			tn := s.add(fmt.Sprintf("t%d", i), 0.125, uint64(i+1), 200*time.Microsecond)
			tn.gap, tn.burst = 40*time.Millisecond, time.Millisecond
			tns = append(tns, tn)
		}
		s.runFor(3 * time.Second)
		var waited time.Duration
		grants := 0
		for _, tn := range tns {
			waited += tn.waited
			grants += tn.grants
		}
		waits[mode.name] = waited / time.Duration(grants)
		t.Logf("%s: %d grants, %v waited per grant, at most %d out at once", mode.name, grants, waits[mode.name], s.peak)
		if mode.cfg.OverlapBelow > 0 && s.peak < 2 {
			t.Errorf("%s: at most %d grant out at once", mode.name, s.peak)
		}
	}
	if waits["overlap"] > waits["one slot"]/4 {
		t.Errorf("waits per grant: %v with overlap, %v with one slot", waits["overlap"], waits["one slot"])
	}

	// Continuous demand: one grant at a time once the load is measured.
	s := newSim(t, ArbiterConfig{OverlapBelow: 0.75})
	s.add("a", 0.3, 1, time.Millisecond)
	s.add("b", 0.7, 2, 300*time.Microsecond)
	s.peakFrom = s.start.Add(500 * time.Millisecond)
	s.runFor(3 * time.Second)
	if s.peak != 1 {
		t.Errorf("continuous demand: %d grants out at once", s.peak)
	}
}

// TestShareChange: a changed share takes effect from the next grants.
func TestShareChange(t *testing.T) {
	s := newSim(t, ArbiterConfig{})
	s.add("a", 0.5, 1, time.Millisecond)
	s.add("b", 0.5, 2, time.Millisecond)
	s.at(s.start.Add(2*time.Second), func() { s.arb.SetShare("a", 0.2); s.arb.SetShare("b", 0.8) })
	s.runFor(4 * time.Second)
	for w, want := range []float64{0.5, 0.5, 0.2, 0.2} {
		if got, _ := s.shares(w); math.Abs(got["a"]-want)/want > 0.05 {
			t.Errorf("window %d: a got %.2f%%, want %.0f%%", w, got["a"]*100, want*100)
		}
	}
}

func TestArbiterAPI(t *testing.T) {
	c := clock.NewFake(time.Time{})
	a := NewArbiter(ArbiterConfig{Clock: c, Quantum: 5 * time.Millisecond, Timeout: time.Second})
	ctx := context.Background()
	if _, err := a.Acquire(ctx, "nobody", 0); !errors.Is(err, ErrUnknownClient) {
		t.Fatalf("unknown client: %v", err)
	}
	a.SetShare("x", 0.5)
	a.SetShare("y", 0.5)
	g := must[Grant](t)(a.Acquire(ctx, "x", time.Millisecond))
	if g.Budget != time.Millisecond {
		t.Fatalf("budget %v for a 1 ms estimate", g.Budget)
	}
	if _, err := a.Acquire(ctx, "x", 0); !errors.Is(err, ErrBusy) {
		t.Fatalf("second acquire: %v", err)
	}
	// y waits for the slot; a cancelled wait withdraws.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := a.Acquire(cctx, "y", 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	// A grant never reported is taken back on Tick after its timeout,
	// charged its budget.
	got := make(chan Grant, 1)
	if err := a.Ask("y", 0, func(g Grant, err error) { got <- g }); err != nil {
		t.Fatal(err)
	}
	a.Tick()
	if len(got) != 0 {
		t.Fatal("granted before the timeout")
	}
	c.Advance(2 * time.Second)
	a.Tick()
	gy := <-got
	if err := a.Report(g, time.Millisecond); !errors.Is(err, ErrUnknownGrant) {
		t.Fatalf("report of an expired grant: %v", err)
	}
	// Removing the holder frees the slot for the next.
	if err := a.Ask("x", 0, func(g Grant, err error) { got <- g }); err != nil {
		t.Fatal(err)
	}
	a.Remove("y")
	if gx := <-got; gx.Client != "x" {
		t.Fatalf("after remove: %+v", gx)
	}
	if err := a.Report(gy, 0); !errors.Is(err, ErrUnknownGrant) {
		t.Fatalf("report after remove: %v", err)
	}
	st := a.Stats()
	if len(st) != 1 || st[0].Client != "x" || st[0].Used != time.Millisecond || !st[0].Holding {
		t.Fatalf("stats %+v", st)
	}
}

// TestArbiterRenewYield: a holder alone gets the solo budget and renews
// in place; another's ask makes it yield once, with its budget cut to a
// fair one, and renewals are refused until the waiter has had its turn.
func TestArbiterRenewYield(t *testing.T) {
	c := clock.NewFake(time.Time{})
	a := NewArbiter(ArbiterConfig{Clock: c, Quantum: 2 * time.Millisecond, Solo: time.Second})
	a.SetShare("x", 0.5)
	a.SetShare("y", 0.5)
	var yields []Grant
	got := make(chan Grant, 2)
	if err := a.AskYield("x", 0, func(g Grant, err error) { got <- g }, func(g Grant) { yields = append(yields, g) }); err != nil {
		t.Fatal(err)
	}
	g := <-got
	if g.Budget != time.Second {
		t.Fatalf("alone: budget %v, want the solo 1s", g.Budget)
	}
	c.Advance(600 * time.Millisecond)
	r, ok, err := a.Renew(g, 600*time.Millisecond)
	if err != nil || !ok || r.ID != g.ID || r.Budget != time.Second || !r.Issued.Equal(c.Now()) {
		t.Fatalf("renew alone: %+v %v %v", r, ok, err)
	}
	if err := a.Ask("y", 0, func(g Grant, err error) { got <- g }); err != nil {
		t.Fatal(err)
	}
	if len(yields) != 1 || yields[0].ID != g.ID || yields[0].Budget > 4*time.Millisecond {
		t.Fatalf("yields %+v, want one with a fair budget", yields)
	}
	if _, ok, err := a.Renew(g, time.Millisecond); err != nil || ok {
		t.Fatalf("renew with y waiting: %v %v", ok, err)
	}
	if len(got) != 0 {
		t.Fatal("y granted while x holds the slot")
	}
	if err := a.Report(g, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if gy := <-got; gy.Client != "y" {
		t.Fatalf("after x reported: %+v", gy)
	}
	if len(yields) != 1 {
		t.Fatalf("%d yields, want 1", len(yields))
	}
	st := a.Stats()
	if st[0].Used != 602*time.Millisecond || st[0].Renewed != 1 {
		t.Fatalf("x's account %+v", st[0])
	}
}

// TestArbiterConcurrent: goroutines standing in for workers acquire and
// report; at most Slots grants are ever out.
func TestArbiterConcurrent(t *testing.T) {
	a := NewArbiter(ArbiterConfig{Clock: clock.NewFake(time.Time{}), Slots: 2})
	var mu sync.Mutex
	out, peak := 0, 0
	var wg sync.WaitGroup
	for i := range 6 {
		name := fmt.Sprintf("w%d", i)
		a.SetShare(name, 0.1*float64(i+1))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				g, err := a.Acquire(context.Background(), name, 0)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				out++
				peak = max(peak, out)
				out--
				mu.Unlock()
				if err := a.Report(g, g.Budget); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if peak > 2 {
		t.Fatalf("%d grants out at once with 2 slots", peak)
	}
	for _, st := range a.Stats() {
		if st.Grants != 200 || st.Waiting || st.Holding {
			t.Fatalf("stats %+v", st)
		}
	}
}
