package slicer

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/internal/clock"
)

// oneGPU is a slicer on one 10 GiB GPU, no reserve, uniform-20.
func oneGPU(t *testing.T, ctl Control) (*Slicer, *clock.Fake) {
	c := clock.NewFake(time.Time{})
	return newSlicer(t, Config{GPUs: gpus(1, "T4", 10*GiB), Reserve: noReserve, Control: ctl, Clock: c}), c
}

func countOps(steps []Step) map[string]int {
	m := map[string]int{}
	for _, s := range steps {
		m[s.Op]++
	}
	return m
}

func TestPlanFreshAndIdempotent(t *testing.T) {
	s, _ := oneGPU(t, nil)
	st := s.Status()
	if n := len(st.Layout.GPUs[0].Slices); n != 5 || len(st.Pending) != 0 {
		t.Fatalf("fifths: %d slices, pending %v", n, st.Pending)
	}
	p := must[*Plan](t)(s.Plan("fifths", ApplyOptions{}))
	if ops := countOps(p.Steps); ops["keep"] != 5 || len(ops) != 1 {
		t.Fatalf("same profile again: %v", ops)
	}
	p = must[*Plan](t)(s.Plan("uniform-10", ApplyOptions{}))
	if ops := countOps(p.Steps); ops["remove"] != 5 || ops["create"] != 10 || len(p.Pending) != 0 {
		t.Fatalf("to uniform-10: %v pending %v", ops, p.Pending)
	}
}

func TestMakePlanIsPure(t *testing.T) {
	s, _ := oneGPU(t, nil)
	l := must[Lease](t)(s.TryAllocate(Request{Tenant: "a", N: 1, Fraction: 0.2}))
	if err := s.Report(l.ID, l.Slices[0], Usage{MemUsed: 1800 * MiB}); err != nil {
		t.Fatal(err)
	}
	cur := s.Status().Layout
	before := cur.Clone()
	for _, p := range Builtin() {
		if _, err := MakePlan(cur, p, ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(cur, before) {
		t.Fatal("MakePlan changed its input")
	}
	if s.Status().Generation != must[*Plan](t)(s.Plan("uniform-10", ApplyOptions{})).Base {
		t.Fatal("Plan changed the slicer")
	}
}

// TestPlanLive covers a held 2 GiB slice (uniform-20 on 10 GiB) moving to
// other profiles at various uses.
func TestPlanLive(t *testing.T) {
	for _, tc := range []struct {
		name    string
		profile Profile
		used    uint64
		force   bool
		wantTo  Size   // the held slice after apply
		pending string // kinds pending, sorted by appearance
	}{
		{"no shrink below the grant", Builtin()[1], 512 * MiB, false, Size{2 * GiB, 0.2}, "orphan create"},
		{"forced shrink under use completes", Builtin()[1], 512 * MiB, true, Size{1024 * MiB, 0.1}, ""},
		{"forced shrink stops at use", Builtin()[1], 1536 * MiB, true, Size{1536 * MiB, 0.1}, "shrink create"},
		{"grow to 25%", Builtin()[2], 1536 * MiB, false, Size{2560 * MiB, 0.25}, ""},
		{"whole GPU", Builtin()[3], 0, false, Size{10 * GiB, 1}, ""},
		{"explicit keep", Profile{Name: "two", Slices: []SliceSpec{{Memory: 2 * GiB, Share: 0.2}, {Memory: 8 * GiB, Share: 0.8}}}, 0, false, Size{2 * GiB, 0.2}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctl := newControl()
			s, _ := oneGPU(t, ctl)
			if err := s.AddProfile(tc.profile); err != nil {
				t.Fatal(err)
			}
			l := must[Lease](t)(s.TryAllocate(Request{Tenant: "a", N: 1, Fraction: 0.2}))
			id := l.Slices[0]
			must[struct{}](t)(struct{}{}, s.Report(l.ID, id, Usage{MemUsed: tc.used}))
			ctl.real[id] = tc.used
			opts := ApplyOptions{Force: tc.force}
			plan := must[*Plan](t)(s.Plan(tc.profile.Name, opts))
			done := must[*Plan](t)(s.Apply(plan, opts))
			if !reflect.DeepEqual(plan.Steps, done.Steps) {
				t.Errorf("applied steps differ from the plan:\n plan %+v\n done %+v", plan.Steps, done.Steps)
			}
			got := sliceOf(s.Status().Layout, id)
			if got == nil || got.Size != tc.wantTo || got.Tenant != "a" {
				t.Fatalf("held slice %+v, want size %+v", got, tc.wantTo)
			}
			if ctl.limit[id] != tc.wantTo.Memory && tc.wantTo.Memory != 2*GiB {
				t.Errorf("control limit %d, want %d", ctl.limit[id], tc.wantTo.Memory)
			}
			var kinds []string
			for _, p := range s.Status().Pending {
				kinds = append(kinds, p.Kind)
			}
			if k := strings.Join(dedup(kinds), " "); k != tc.pending {
				t.Fatalf("pending %q, want %q: %+v", k, tc.pending, s.Status().Pending)
			}
			var mem uint64
			var share float64
			for _, sl := range s.Status().Layout.GPUs[0].Slices {
				mem += sl.Memory
				share += sl.Share
			}
			if mem > 10*GiB || share > 1+eps {
				t.Fatalf("over-committed: %d bytes, share %g", mem, share)
			}
		})
	}
}

func dedup(s []string) []string {
	var out []string
	for i, x := range s {
		if i == 0 || s[i-1] != x {
			out = append(out, x)
		}
	}
	return out
}

// TestPendingShrinkCompletes: a shrink held up by use finishes as the
// tenant frees memory, the new slices appear and become allocatable.
func TestPendingShrinkCompletes(t *testing.T) {
	ctl := newControl()
	s, _ := oneGPU(t, ctl)
	// Fill the GPU: 5 tenants using 1.5 GiB of their 2 GiB each.
	var leases []Lease
	for _, tn := range []string{"a", "b", "c", "d", "e"} {
		l := must[Lease](t)(s.TryAllocate(Request{Tenant: tn, N: 1, Fraction: 0.2}))
		must[struct{}](t)(struct{}{}, s.Report(l.ID, l.Slices[0], Usage{MemUsed: 1536 * MiB, Calls: 1}))
		ctl.real[l.Slices[0]] = 1536 * MiB
		leases = append(leases, l)
	}
	// 5 × 1.5 GiB in use leaves room for 2 of the 5 new 1 GiB slices.
	done := must[*Plan](t)(s.ApplyProfile("uniform-10", ApplyOptions{Force: true}))
	if got := pendingKinds(done.Pending); got != "shrink×5 create×3" {
		t.Fatalf("pending %s: %+v", got, done.Pending)
	}
	if calls := ctl.take(); len(calls) != 10 || !strings.HasPrefix(calls[0], "mem ") {
		t.Fatalf("control calls %v", calls)
	}
	// A report of lower use than the worker really has: the shrink is
	// refused by the worker and stays pending, with the reason.
	a := leases[0]
	ctl.real[a.Slices[0]] = 1800 * MiB
	must[struct{}](t)(struct{}{}, s.Report(a.ID, a.Slices[0], Usage{MemUsed: 512 * MiB, Calls: 2}))
	if sl := sliceOf(s.Status().Layout, a.Slices[0]); sl.Memory != 1536*MiB || sl.Err == "" {
		t.Fatalf("refused shrink: %+v", sl)
	}
	if p := s.Status().Pending[0]; !strings.Contains(p.Reason, "last control error") {
		t.Fatalf("pending reason %q", p.Reason)
	}
	ctl.real[a.Slices[0]] = 512 * MiB
	must[struct{}](t)(struct{}{}, s.Report(a.ID, a.Slices[0], Usage{MemUsed: 512 * MiB, Calls: 3}))
	if sl := sliceOf(s.Status().Layout, a.Slices[0]); sl.Memory != 1024*MiB || sl.Err != "" {
		t.Fatalf("completed shrink: %+v", sl)
	}
	// 1 GiB of room now: one more slice is cut.
	if got := pendingKinds(s.Status().Pending); got != "shrink×4 create×2" {
		t.Fatalf("pending %s after one shrink", got)
	}
	b := leases[1]
	ctl.real[b.Slices[0]] = 0
	must[struct{}](t)(struct{}{}, s.Report(b.ID, b.Slices[0], Usage{}))
	if got := pendingKinds(s.Status().Pending); got != "shrink×3 create×2" {
		t.Fatalf("pending %s after two shrinks", got)
	}
	l := must[Lease](t)(s.TryAllocate(Request{Tenant: "f", N: 1, Fraction: 0.1}))
	// Releasing the rest settles everything.
	for _, x := range append(leases, l) {
		must[struct{}](t)(struct{}{}, s.Release(x.ID))
	}
	st := s.Status()
	if len(st.Pending) != 0 || len(st.Layout.GPUs[0].Slices) != 10 {
		t.Fatalf("after release: pending %+v, %d slices", st.Pending, len(st.Layout.GPUs[0].Slices))
	}
}

func TestApplyRejectPending(t *testing.T) {
	ctl := newControl()
	s, _ := oneGPU(t, ctl)
	l := must[Lease](t)(s.TryAllocate(Request{Tenant: "a", N: 1, Fraction: 0.2}))
	must[struct{}](t)(struct{}{}, s.Report(l.ID, l.Slices[0], Usage{MemUsed: 1900 * MiB}))
	gen := s.Status().Generation
	_, err := s.ApplyProfile("uniform-10", ApplyOptions{RejectPending: true, Force: true})
	var pe *PlanError
	if !errors.As(err, &pe) || !errors.Is(err, ErrPending) || !strings.Contains(err.Error(), "a uses 1.86 GiB") {
		t.Fatalf("err %v", err)
	}
	if st := s.Status(); st.Generation != gen || st.Profile != "fifths" || len(ctl.take()) != 0 {
		t.Fatalf("rejected plan changed state: %+v", st)
	}
	// The same plan passes once the tenant frees memory.
	must[struct{}](t)(struct{}{}, s.Report(l.ID, l.Slices[0], Usage{MemUsed: 100 * MiB}))
	if _, err := s.ApplyProfile("uniform-10", ApplyOptions{RejectPending: true, Force: true}); err != nil {
		t.Fatal(err)
	}
}

func TestApplyStaleAndUnknown(t *testing.T) {
	s, _ := oneGPU(t, nil)
	p := must[*Plan](t)(s.Plan("uniform-10", ApplyOptions{}))
	must[Lease](t)(s.TryAllocate(Request{Tenant: "a", N: 1, Fraction: 0.2}))
	if _, err := s.Apply(p, ApplyOptions{}); !errors.Is(err, ErrStalePlan) {
		t.Fatalf("stale plan: %v", err)
	}
	if _, err := s.Plan("nope", ApplyOptions{}); !errors.Is(err, ErrUnknownProfile) {
		t.Fatalf("unknown profile: %v", err)
	}
	if err := s.AddProfile(Profile{Name: "bad", Slices: []SliceSpec{{Fraction: 0.7}, {Fraction: 0.7}}}); !errors.Is(err, ErrInvalidProfile) {
		t.Fatalf("bad profile: %v", err)
	}
	var names []string
	for _, p := range s.Profiles() {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, " "); got != "fifths mixed-2x25-5x10 uniform-10 uniform-20 whole" {
		t.Fatalf("profiles %s", got)
	}
}

// TestOrphans: more live slices than the new profile has room for stay
// as orphans, and the profile's slices appear once they are released.
func TestOrphans(t *testing.T) {
	ctl := newControl()
	s, _ := oneGPU(t, ctl)
	var ls []Lease
	for _, tn := range []string{"a", "b", "c"} {
		ls = append(ls, must[Lease](t)(s.TryAllocate(Request{Tenant: tn, N: 1, Fraction: 0.2})))
	}
	done := must[*Plan](t)(s.ApplyProfile("whole", ApplyOptions{}))
	ops := countOps(done.Steps)
	if ops["orphan"] != 2 || ops["resize"] != 1 || ops["remove"] != 2 {
		t.Fatalf("ops %v", ops)
	}
	var kinds []string
	for _, p := range done.Pending {
		kinds = append(kinds, p.Kind)
	}
	if strings.Join(kinds, " ") != "grow orphan orphan" {
		t.Fatalf("pending %v", done.Pending)
	}
	for _, l := range ls[1:] {
		must[struct{}](t)(struct{}{}, s.Release(l.ID))
	}
	st := s.Status()
	if len(st.Pending) != 0 || len(st.Layout.GPUs[0].Slices) != 1 || st.Layout.GPUs[0].Slices[0].Memory != 10*GiB {
		t.Fatalf("after release: %+v", st)
	}
}

// pendingKinds summarises pending work as "kind×n ..." in order.
func pendingKinds(ps []Pending) string {
	var out []string
	n := 0
	for i, p := range ps {
		n++
		if i == len(ps)-1 || ps[i+1].Kind != p.Kind {
			out = append(out, fmt.Sprintf("%s×%d", p.Kind, n))
			n = 0
		}
	}
	return strings.Join(out, " ")
}

// TestApplyResizesHeldSliceThroughControl: re-slicing under a live lease
// sends the held slice's new memory limit and compute share to Control.
func TestApplyResizesHeldSliceThroughControl(t *testing.T) {
	ctl := newControl()
	s, _ := oneGPU(t, ctl)
	l := must[Lease](t)(s.TryAllocate(Request{Tenant: "a", N: 1, Fraction: 0.2}))
	must[*Plan](t)(s.ApplyProfile("mixed-2x25-5x10", ApplyOptions{}))
	id := l.Slices[0]
	if ctl.limit[id] != 2560*MiB || ctl.share[id] != 0.25 {
		t.Fatalf("slice %s: limit %d MiB, share %g; want 2560 MiB, 0.25 (calls %v)", id, ctl.limit[id]/MiB, ctl.share[id], ctl.take())
	}
}
