package slicer

import (
	"context"
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/internal/clock"
)

// mixedNode has two A100s (40 GiB) and two T4s (16 GiB), no reserve.
func mixedNode() []GPU {
	g := gpus(4, "NVIDIA A100-SXM4-40GB", 40*GiB)
	g[2].Model, g[2].Memory = "Tesla T4", 16*GiB
	g[3].Model, g[3].Memory = "Tesla T4", 16*GiB
	return g
}

func TestPlacement(t *testing.T) {
	for _, tc := range []struct {
		name    string
		profile string
		pre     []Request // granted first
		req     Request
		want    error
		gpus    []int
		size    uint64 // memory of each slice granted
	}{
		{"one fifth", "fifths", nil, Request{Tenant: "a", N: 1, Fraction: 0.2}, nil, []int{2}, 16 * GiB / 5 &^ (MiB - 1)},
		{"n distinct gpus", "fifths", nil, Request{Tenant: "a", N: 4, Fraction: 0.2}, nil, []int{0, 1, 2, 3}, 0},
		{"more gpus than the node", "fifths", nil, Request{Tenant: "a", N: 5, Fraction: 0.2}, ErrUnsatisfiable, nil, 0},
		{"model filter", "fifths", nil, Request{Tenant: "a", N: 2, Fraction: 0.2, Model: "a100"}, nil, []int{0, 1}, 8 * GiB},
		{"model filter too few", "fifths", nil, Request{Tenant: "a", N: 3, Model: "t4", Fraction: 0.1}, ErrUnsatisfiable, nil, 0},
		{"min memory filter", "fifths", nil, Request{Tenant: "a", N: 1, Fraction: 0.2, MinMemory: 32 * GiB}, nil, []int{0}, 8 * GiB},
		{"explicit memory is carved", "fifths", nil, Request{Tenant: "a", N: 1, Memory: 5 * GiB}, nil, []int{2}, 5 * GiB},
		{"memory bigger than every gpu", "fifths", nil, Request{Tenant: "a", N: 1, Memory: 41 * GiB}, ErrUnsatisfiable, nil, 0},
		{"best fit picks the small slice", "mixed-2x25-5x10", nil, Request{Tenant: "a", N: 1, Fraction: 0.1}, nil, []int{2}, 16 * GiB / 10 &^ (MiB - 1)},
		{"fraction between sizes is carved", "mixed-2x25-5x10", nil, Request{Tenant: "a", N: 1, Fraction: 0.2}, nil, []int{2}, 3276 * MiB},
		{"whole gpu in uniform-20", "fifths", nil, Request{Tenant: "a", N: 1}, nil, []int{2}, 16 * GiB},
		{"whole gpus, small first", "whole", nil, Request{Tenant: "a", N: 2}, nil, []int{2, 3}, 16 * GiB},
		{"whole gpus, big by filter", "whole", nil, Request{Tenant: "a", N: 2, MinMemory: 20 * GiB}, nil, []int{0, 1}, 40 * GiB},
		{"whole gpus all taken", "whole", []Request{{Tenant: "b", N: 4}}, Request{Tenant: "a", N: 1}, ErrNoCapacity, nil, 0},
		{"fullest gpu first", "fifths", []Request{{Tenant: "b", N: 1, Fraction: 0.2, Model: "a100", MinMemory: 40 * GiB}}, Request{Tenant: "a", N: 1, Fraction: 0.2, Model: "a100"}, nil, []int{0}, 8 * GiB},
		{"pinned to a gpu", "fifths", nil, Request{Tenant: "a", N: 1, Fraction: 0.2, GPUs: []int{3}}, nil, []int{3}, 16 * GiB / 5 &^ (MiB - 1)},
		{"pinned to too few gpus", "fifths", nil, Request{Tenant: "a", N: 2, Fraction: 0.2, GPUs: []int{3}}, ErrUnsatisfiable, nil, 0},
		{"no tenant", "fifths", nil, Request{N: 1}, ErrBadRequest, nil, 0},
		{"n zero", "fifths", nil, Request{Tenant: "a"}, ErrBadRequest, nil, 0},
		{"fraction over one", "fifths", nil, Request{Tenant: "a", N: 1, Fraction: 1.5}, ErrBadRequest, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSlicer(t, Config{GPUs: mixedNode(), Reserve: noReserve, Profile: tc.profile})
			for _, r := range tc.pre {
				must[Lease](t)(s.TryAllocate(r))
			}
			l, err := s.TryAllocate(tc.req)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("err %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(l.GPUs) != len(tc.gpus) {
				t.Fatalf("gpus %v, want %v", l.GPUs, tc.gpus)
			}
			seen := map[int]bool{}
			for _, g := range l.GPUs {
				seen[g] = true
			}
			for _, g := range tc.gpus {
				if !seen[g] {
					t.Fatalf("gpus %v, want %v", l.GPUs, tc.gpus)
				}
			}
			if tc.size != 0 {
				for _, id := range l.Slices {
					if sl := sliceOf(s.Status().Layout, id); sl.Memory != tc.size || sl.Tenant != "a" || sl.Lease != l.ID {
						t.Fatalf("slice %+v, want %d bytes held by a", sl, tc.size)
					}
				}
			}
		})
	}
}

// TestTenantLimitFAQ: a 2.5-GPU limit allows 1 + 0.75 + 0.75, then a
// fourth request fails, as Bitfusion's FAQ describes.
func TestTenantLimitFAQ(t *testing.T) {
	faq := Profile{Name: "faq", Slices: []SliceSpec{{Fraction: 0.75}, {Fraction: 0.25}},
		PerGPU: map[int][]SliceSpec{0: {{Fraction: 1}}}}
	s := newSlicer(t, Config{GPUs: gpus(4, "A100", 40*GiB), Reserve: noReserve, Profiles: []Profile{faq}, Profile: "faq",
		DefaultPolicy: Policy{MaxGPUs: 2.5}})
	for i, r := range []Request{{Tenant: "a", N: 1}, {Tenant: "a", N: 1, Fraction: 0.75}, {Tenant: "a", N: 1, Fraction: 0.75}} {
		l, err := s.TryAllocate(r)
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		if want := []float64{1, 0.75, 0.75}[i]; l.Charge < want-fitTolerance || l.Charge > want+fitTolerance {
			t.Fatalf("request %d charged %g, want %g", i+1, l.Charge, want)
		}
	}
	_, err := s.TryAllocate(Request{Tenant: "a", N: 1, Fraction: 0.25})
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "2.50 of its 2.50") {
		t.Fatalf("fourth request: %v", err)
	}
	// Another tenant is not affected; a per-tenant policy overrides.
	must[Lease](t)(s.TryAllocate(Request{Tenant: "b", N: 1, Fraction: 0.25}))
	s.SetPolicy("a", Policy{MaxGPUs: 3})
	must[Lease](t)(s.TryAllocate(Request{Tenant: "a", N: 1, Fraction: 0.25}))
	// A request between the profile's sizes is cut to its size and
	// charged what it asked.
	s.SetPolicy("c", Policy{MaxGPUs: 0.5})
	if l, err := s.TryAllocate(Request{Tenant: "c", N: 1, Fraction: 0.3}); err != nil || math.Abs(l.Charge-0.3) > fitTolerance {
		t.Fatalf("carved slice: %+v, %v", l, err)
	}
	if _, err := s.TryAllocate(Request{Tenant: "c", N: 1, Fraction: 0.3}); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "ask for at most 0.20 GPUs") {
		t.Fatalf("past the limit: %v", err)
	}
}

func TestIdleReclaim(t *testing.T) {
	c := clock.NewFake(time.Time{})
	s := newSlicer(t, Config{Reserve: noReserve, Clock: c, DefaultPolicy: Policy{IdleTimeout: 10 * time.Minute}})
	s.SetPolicy("patient", Policy{})
	busy := must[Lease](t)(s.TryAllocate(Request{Tenant: "busy", N: 1, Fraction: 0.2}))
	idle := must[Lease](t)(s.TryAllocate(Request{Tenant: "idle", N: 2, Fraction: 0.2}))
	forever := must[Lease](t)(s.TryAllocate(Request{Tenant: "patient", N: 1, Fraction: 0.2}))
	for i := 1; i <= 20; i++ {
		c.Advance(time.Minute)
		if err := s.Report(busy.ID, busy.Slices[0], Usage{Calls: uint64(i)}); err != nil {
			t.Fatal(err)
		}
		// The idle tenant's worker still reports, with no new calls.
		if err := s.Report(idle.ID, idle.Slices[0], Usage{Calls: 7}); i <= 10 && err != nil {
			t.Fatal(err)
		}
		r := s.Reclaim()
		switch {
		// Its first report (minute 1) was its last activity.
		case i == 11 && (len(r) != 1 || r[0].Lease.ID != idle.ID || r[0].IdleFor != 10*time.Minute):
			t.Fatalf("minute %d: reclaimed %+v", i, r)
		case i != 11 && len(r) != 0:
			t.Fatalf("minute %d: reclaimed %+v", i, r)
		}
	}
	for name, err := range map[string]error{
		"touch":  s.Touch(idle.ID),
		"report": s.Report(idle.ID, idle.Slices[0], Usage{Calls: 8}),
	} {
		if !errors.Is(err, ErrReclaimed) || !strings.Contains(err.Error(), "idle for 10m0s") {
			t.Errorf("%s after reclaim: %v", name, err)
		}
	}
	// Its slices stay held while its sessions end, until Release.
	for _, id := range idle.Slices {
		if sl := sliceOf(s.Status().Layout, id); !sl.Held() {
			t.Fatalf("reclaimed slice freed before its release: %+v", sl)
		}
	}
	if st := s.Status(); len(st.Reclaimed) != 1 || len(st.Leases) != 3 {
		t.Fatalf("status before the release: %+v", st)
	}
	if err := s.Release(idle.ID); err != nil {
		t.Fatalf("releasing a reclaimed lease: %v", err)
	}
	if err := s.Release(idle.ID); !errors.Is(err, ErrReclaimed) || !strings.Contains(err.Error(), "idle for 10m0s") {
		t.Errorf("second release after reclaim: %v", err)
	}
	for _, id := range idle.Slices {
		if sl := sliceOf(s.Status().Layout, id); sl.Held() {
			t.Fatalf("reclaimed slice still held after its release: %+v", sl)
		}
	}
	if err := s.Touch(forever.ID); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); len(st.Reclaimed) != 1 || len(st.Leases) != 2 {
		t.Fatalf("status: %+v", st)
	}
	if err := s.Touch("l999"); !errors.Is(err, ErrUnknownLease) {
		t.Fatalf("unknown lease: %v", err)
	}
}

// waitQueued waits until n requests are queued.
func waitQueued(t *testing.T, s *Slicer, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); len(s.Status().Queue) != n; runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatalf("queue never reached %d", n)
		}
	}
}

func TestQueueFIFO(t *testing.T) {
	s := newSlicer(t, Config{GPUs: gpus(2, "A100", 40*GiB), Reserve: noReserve, Profile: "whole"})
	full := must[Lease](t)(s.TryAllocate(Request{Tenant: "x", N: 2}))
	type got struct {
		who string
		l   Lease
		err error
	}
	out := make(chan got, 4)
	ctxC, cancelC := context.WithCancel(context.Background())
	defer cancelC()
	start := func(ctx context.Context, who string, n int) {
		go func() {
			l, err := s.Allocate(ctx, Request{Tenant: who, N: n})
			out <- got{who, l, err}
		}()
	}
	// a wants both GPUs, b one, c one: a is first, so b and c wait even
	// when one GPU frees.
	start(context.Background(), "a", 2)
	waitQueued(t, s, 1)
	start(context.Background(), "b", 1)
	waitQueued(t, s, 2)
	start(ctxC, "c", 1)
	waitQueued(t, s, 3)
	if _, err := s.TryAllocate(Request{Tenant: "d", N: 1}); !errors.Is(err, ErrNoCapacity) || !strings.Contains(err.Error(), "3 requests queued") {
		t.Fatalf("try with a queue: %v", err)
	}
	if q := s.Status().Queue; q[0].Request.Tenant != "a" || q[2].Request.Tenant != "c" {
		t.Fatalf("queue order %+v", q)
	}
	must[struct{}](t)(struct{}{}, s.Release(full.ID))
	a := <-out
	if a.who != "a" || a.err != nil || len(a.l.GPUs) != 2 {
		t.Fatalf("first out %+v", a)
	}
	// c gives up; b still waits, then gets a GPU when a leaves.
	cancelC()
	if c := <-out; c.who != "c" || !errors.Is(c.err, context.Canceled) || !errors.Is(c.err, ErrNoCapacity) {
		t.Fatalf("cancelled waiter: %+v", c)
	}
	waitQueued(t, s, 1)
	must[struct{}](t)(struct{}{}, s.Release(a.l.ID))
	if b := <-out; b.who != "b" || b.err != nil {
		t.Fatalf("b: %+v", b)
	}
	if st := s.Status(); len(st.Queue) != 0 || len(st.Leases) != 1 {
		t.Fatalf("status %+v", st)
	}
}

// TestQueueWokenByReslice: a waiter is served when a re-slice takes a
// held slice back to its grant and so frees capacity.
func TestQueueWokenByReslice(t *testing.T) {
	s := newSlicer(t, Config{GPUs: gpus(1, "A100", 40*GiB), Reserve: noReserve})
	// x asks for 20% and takes a profile slice; "whole" grows it to the
	// GPU, above its grant.
	must[Lease](t)(s.TryAllocate(Request{Tenant: "x", N: 1, Fraction: 0.2}))
	must[*Plan](t)(s.ApplyProfile("whole", ApplyOptions{}))
	outA, outB := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := s.Allocate(context.Background(), Request{Tenant: "a", N: 1, Fraction: 0.5})
		outA <- err
	}()
	waitQueued(t, s, 1)
	go func() {
		_, err := s.Allocate(context.Background(), Request{Tenant: "b", N: 1, Fraction: 0.9})
		outB <- err
	}()
	waitQueued(t, s, 2)
	// Back to fifths: x shrinks to its 20%; a gets half the GPU, b waits.
	must[*Plan](t)(s.ApplyProfile("fifths", ApplyOptions{}))
	if err := <-outA; err != nil {
		t.Fatalf("a: %v", err)
	}
	if q := s.Status().Queue; len(q) != 1 || q[0].Request.Tenant != "b" {
		t.Fatalf("queue %+v", q)
	}
}

func TestAllocateGrantedAsContextEnds(t *testing.T) {
	s := newSlicer(t, Config{GPUs: gpus(1, "A100", 40*GiB), Reserve: noReserve, Profile: "whole"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Capacity now: granted despite the ended context (no wait needed).
	l := must[Lease](t)(s.Allocate(ctx, Request{Tenant: "a", N: 1}))
	if _, err := s.Allocate(ctx, Request{Tenant: "b", N: 1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("queued with an ended context: %v", err)
	}
	must[struct{}](t)(struct{}{}, s.Release(l.ID))
	if st := s.Status(); len(st.Queue) != 0 || len(st.Leases) != 0 {
		t.Fatalf("status %+v", st)
	}
}

// TestQueuedRequestHitsLimit: a queued request is checked against the
// tenant's limit again when its turn comes.
func TestQueuedRequestHitsLimit(t *testing.T) {
	s := newSlicer(t, Config{GPUs: gpus(2, "A100", 40*GiB), Reserve: noReserve, Profile: "whole", DefaultPolicy: Policy{MaxGPUs: 1}})
	x := must[Lease](t)(s.TryAllocate(Request{Tenant: "x", N: 1}))
	must[Lease](t)(s.TryAllocate(Request{Tenant: "y", N: 1}))
	out := make(chan error, 1)
	go func() {
		_, err := s.Allocate(context.Background(), Request{Tenant: "x", N: 1})
		out <- err
	}()
	// x holds 1 of its 1 GPU: refused at once, without queueing.
	if err := <-out; !errors.Is(err, ErrLimit) {
		t.Fatalf("over the limit: %v", err)
	}
	s.SetPolicy("x", Policy{MaxGPUs: 2})
	go func() {
		_, err := s.Allocate(context.Background(), Request{Tenant: "x", N: 1})
		out <- err
	}()
	waitQueued(t, s, 1)
	s.SetPolicy("x", Policy{MaxGPUs: 1}) // lowered while waiting
	must[struct{}](t)(struct{}{}, s.Release(must[Lease](t)(s.lookupLease("y")).ID))
	if err := <-out; !errors.Is(err, ErrLimit) {
		t.Fatalf("limit lowered while queued: %v", err)
	}
	must[struct{}](t)(struct{}{}, s.Release(x.ID))
}

// lookupLease finds a tenant's live lease (tests only).
func (s *Slicer) lookupLease(tenant string) (Lease, error) {
	for _, l := range s.Status().Leases {
		if l.Tenant == tenant {
			return l, nil
		}
	}
	return Lease{}, ErrUnknownLease
}
