package slicer

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// oneT4 is a slicer on one 16 GiB GPU, no reserve, with profile active.
func oneT4(t *testing.T, profile string, ctl Control) *Slicer {
	t.Helper()
	return newSlicer(t, Config{GPUs: gpus(1, "Tesla T4", 16*GiB), Reserve: noReserve, Profile: profile, Control: ctl})
}

// shape is a GPU's slices as "size[held]" parts of the GPU, free profile
// slices as their size, pending creations as "(size)".
func shape(g GPULayout) string {
	var parts []string
	for _, s := range g.Slices {
		p := pct(fraction(s.Size, g.Usable))
		switch {
		case s.Held():
			p += "*"
		case s.Memory == 0:
			p = "(" + pct(fraction(s.Target, g.Usable)) + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

// TestOnDemand: which slice a request gets. A free profile slice of the
// asked size is taken as it is; otherwise a slice of the asked size is
// carved from capacity no tenant holds, emptying the fewest of the
// profile's free slices; the tenant is charged what it asked.
func TestOnDemand(t *testing.T) {
	for _, tc := range []struct {
		name    string
		profile string
		pre     []Request
		req     Request
		want    error
		charge  float64
		carved  bool   // the slice is outside the profile
		shape   string // the GPU after the grant
	}{
		{"profile slice of the asked size", "mixed-2x25-5x10", nil, Request{Tenant: "a", N: 1, Fraction: 0.25}, nil, 0.25, false,
			"25%* 25% 10% 10% 10% 10% 10%"},
		{"half an idle mixed GPU", "mixed-2x25-5x10", nil, Request{Tenant: "a", N: 1, Fraction: 0.5}, nil, 0.5, true,
			"(25%) (25%) 10% 10% 10% 10% 10% 50%*"},
		{"a fifth of a mixed GPU", "mixed-2x25-5x10", nil, Request{Tenant: "a", N: 1, Fraction: 0.2}, nil, 0.2, true,
			"25% 25% 10% 10% 10% (10%) (10%) 20%*"},
		{"a quarter of uniform-20", "uniform-20", nil, Request{Tenant: "a", N: 1, Fraction: 0.25}, nil, 0.25, true,
			"5% 5% 5% 5% 5% 5% 5% 5% 5% 5% 5% 5% 5% 5% 5% (5%) (5%) (5%) (5%) (5%) 25%*"},
		{"a whole partitioned GPU", "mixed-2x25-5x10", nil, Request{Tenant: "a", N: 1}, nil, 1, true,
			"(25%) (25%) (10%) (10%) (10%) (10%) (10%) 100%*"},
		{"memory alone", "mixed-2x25-5x10", nil, Request{Tenant: "a", N: 1, Memory: 2 * GiB}, nil, 0.125, true,
			"25% 25% 10% 10% 10% (10%) (10%) 12.5%* "},
		{"into room others left", "mixed-2x25-5x10", []Request{{Tenant: "b", N: 1, Fraction: 0.65}}, Request{Tenant: "a", N: 1, Fraction: 0.35}, nil, 0.35, true,
			"(25%) (25%) (10%) (10%) (10%) (10%) (10%) 65%* 35%*"},
		{"more than is unheld", "mixed-2x25-5x10", []Request{{Tenant: "b", N: 1, Fraction: 0.65}}, Request{Tenant: "a", N: 1, Fraction: 0.5}, ErrNoCapacity, 0, false, ""},
		{"any slice takes the smallest", "mixed-2x25-5x10", nil, Request{Tenant: "a", N: 1, AnySlice: true}, nil, 0.1, false,
			"25% 25% 10%* 10% 10% 10% 10%"},
		{"any slice with none free", "whole", []Request{{Tenant: "b", N: 1, Fraction: 0.5}}, Request{Tenant: "a", N: 1, AnySlice: true}, ErrNoCapacity, 0, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := oneT4(t, tc.profile, nil)
			for _, r := range tc.pre {
				must[Lease](t)(s.TryAllocate(r))
			}
			l, err := s.TryAllocate(tc.req)
			if tc.want != nil || err != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("err %v, want %v", err, tc.want)
				}
				return
			}
			if math.Abs(l.Charge-tc.charge) > fitTolerance {
				t.Fatalf("charged %g, want %g", l.Charge, tc.charge)
			}
			g := s.Status().Layout.GPUs[0]
			if got := shape(g); strings.TrimSpace(got) != strings.TrimSpace(tc.shape) {
				t.Fatalf("gpu after the grant:\n got %s\nwant %s", got, tc.shape)
			}
			sl := sliceOf(s.Status().Layout, l.Slices[0])
			if sl.Orphan != tc.carved || sl.Grant != sl.Size {
				t.Fatalf("slice %+v: carved %v, want %v; grant should be its size", sl, sl.Orphan, tc.carved)
			}
			checkInvariants(t, s, nil)
		})
	}
}

// TestReleaseRestoresProfile: carved slices merge back on release, and the
// GPU returns to the active profile's slices as capacity frees.
func TestReleaseRestoresProfile(t *testing.T) {
	s := oneT4(t, "mixed-2x25-5x10", nil)
	fresh := shape(s.Status().Layout.GPUs[0])
	a := must[Lease](t)(s.TryAllocate(Request{Tenant: "a", N: 1, Fraction: 0.5}))
	b := must[Lease](t)(s.TryAllocate(Request{Tenant: "b", N: 1, Fraction: 0.3}))
	c := must[Lease](t)(s.TryAllocate(Request{Tenant: "c", N: 1, Fraction: 0.1}))
	if _, err := s.TryAllocate(Request{Tenant: "d", N: 1, Fraction: 0.2}); !errors.Is(err, ErrNoCapacity) {
		t.Fatalf("a full GPU: %v", err)
	}
	must[struct{}](t)(struct{}{}, s.Release(a.ID))
	if got := shape(s.Status().Layout.GPUs[0]); got != "25% 25% 10%* 10% (10%) (10%) (10%) 30%*" {
		t.Fatalf("after releasing the half: %s", got)
	}
	must[struct{}](t)(struct{}{}, s.Release(b.ID))
	must[struct{}](t)(struct{}{}, s.Release(c.ID))
	st := s.Status()
	if got := shape(st.Layout.GPUs[0]); got != fresh || len(st.Pending) != 0 {
		t.Fatalf("after releasing everything: %s, want %s; pending %+v", got, fresh, st.Pending)
	}
}

// TestGrantSurvivesReslices: a tenant granted 25% keeps at least 25%
// through re-slices to smaller profiles, and is back in a profile slice
// when one of its size returns. Only Force shrinks it, and its charge.
func TestGrantSurvivesReslices(t *testing.T) {
	ctl := newControl()
	s := oneT4(t, "mixed-2x25-5x10", ctl)
	l := must[Lease](t)(s.TryAllocate(Request{Tenant: "a", N: 1, Fraction: 0.25}))
	id := l.Slices[0]
	quarter := sliceOf(s.Status().Layout, id).Size
	for _, p := range []string{"uniform-20", "uniform-10", "whole", "uniform-20", "mixed-2x25-5x10"} {
		must[*Plan](t)(s.ApplyProfile(p, ApplyOptions{}))
		sl := sliceOf(s.Status().Layout, id)
		want := quarter
		if p == "whole" {
			want = Size{16 * GiB, 1} // a profile slice covering the grant: it grows
		}
		if sl.Size != want || sl.Grant != quarter || sl.Tenant != "a" {
			t.Fatalf("after %s: %+v, want size %+v and grant %+v", p, sl, want, quarter)
		}
		if sl.Orphan != (p == "uniform-20" || p == "uniform-10") {
			t.Fatalf("after %s: orphan %v", p, sl.Orphan)
		}
		if c := s.Status().Leases[0].Charge; math.Abs(c-0.25) > fitTolerance {
			t.Fatalf("after %s: charged %g", p, c)
		}
	}
	// Forced: it shrinks to the profile's 10% (its worker uses less) and
	// so does what it is charged.
	must[*Plan](t)(s.ApplyProfile("uniform-10", ApplyOptions{Force: true}))
	sl := sliceOf(s.Status().Layout, id)
	if sl.Size.Share != 0.1 || sl.Grant != sl.Size || ctl.limit[id] != sl.Memory {
		t.Fatalf("forced: %+v, control limit %d", sl, ctl.limit[id])
	}
	if c := s.Status().Leases[0].Charge; math.Abs(c-0.1) > fitTolerance {
		t.Fatalf("forced: charged %g", c)
	}
}

// TestRefusalSaysWhatFits: a refusal names the free capacity, the free
// slices and the most that would fit; the tenant learns how much others
// hold, the operator who holds it.
func TestRefusalSaysWhatFits(t *testing.T) {
	s := oneT4(t, "mixed-2x25-5x10", nil)
	must[Lease](t)(s.TryAllocate(Request{Tenant: "bob", N: 1, Fraction: 0.4}))
	must[Lease](t)(s.TryAllocate(Request{Tenant: "carol", N: 1, Fraction: 0.25}))
	must[Lease](t)(s.TryAllocate(Request{Tenant: "alice", N: 1, Fraction: 0.1}))
	_, err := s.TryAllocate(Request{Tenant: "alice", N: 1, Fraction: 0.5})
	var r *Refusal
	if !errors.As(err, &r) || !errors.Is(err, ErrNoCapacity) {
		t.Fatalf("err %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"1 slice of 50% of a GPU asked for", "gpu 0: 25% free", "free slices 25%,",
		"you hold 10%", "other tenants hold 65%", "ask for at most 25% of a GPU per slice", "or wait"} {
		if !strings.Contains(msg, want) {
			t.Errorf("tenant's message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "bob") || strings.Contains(msg, "carol") {
		t.Errorf("tenant's message names others: %s", msg)
	}
	if d := r.Detail(); !strings.Contains(d, "bob holds 40%") || !strings.Contains(d, "carol holds 25%") {
		t.Errorf("operator's detail: %s", d)
	}
	_, err = s.TryAllocate(Request{Tenant: "alice", N: 1, Memory: 17 * GiB})
	if !errors.Is(err, ErrUnsatisfiable) || !strings.Contains(err.Error(), "ask for at most 16.00 GiB per slice") {
		t.Fatalf("too big for the GPU: %v", err)
	}
}
