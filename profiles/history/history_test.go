package history

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

var t0 = time.Unix(1_800_000_000, 0)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func TestWindowEvictsOldValues(t *testing.T) {
	s := New(Options{Window: time.Minute, Step: 10 * time.Second})
	for sec := 0; sec < 120; sec += 10 {
		s.Add("a", at(sec), float64(sec))
	}
	p := s.Points("a", at(115))
	if want := []float64{60, 70, 80, 90, 100, 110}; !slices.Equal(p.V, want) {
		t.Fatalf("values %v, want %v", p.V, want)
	}
	if p.T[0] != float64(at(60).Unix()) || p.T[5] != float64(at(110).Unix()) {
		t.Fatalf("times %v", p.T)
	}
	// Later, the window has moved on: fewer values, none after a gap.
	if p := s.Points("a", at(145)); !slices.Equal(p.V, []float64{90, 100, 110}) {
		t.Fatalf("after 30s: %v", p.V)
	}
	if p := s.Points("a", at(300)); len(p.V) != 0 {
		t.Fatalf("after the window: %v", p.V)
	}
	// A value before the window is ignored; one after a long gap clears
	// the ring.
	s.Add("a", at(0), 999)
	s.Add("a", at(400), 4)
	if p := s.Points("a", at(400)); !slices.Equal(p.V, []float64{4}) {
		t.Fatalf("after a gap: %v", p.V)
	}
}

func TestModesCombineAStep(t *testing.T) {
	for _, c := range []struct {
		mode Mode
		want float64
	}{{Last, 2}, {Max, 7}, {Sum, 12}} {
		t.Run(fmt.Sprint(c.mode), func(t *testing.T) {
			s := New(Options{Window: time.Minute, Step: 10 * time.Second, Mode: c.mode})
			for i, v := range []float64{3, 7, 2} {
				s.Add("k", at(20).Add(time.Duration(i)*time.Second), v)
			}
			if p := s.Points("k", at(30)); !slices.Equal(p.V, []float64{c.want}) {
				t.Fatalf("got %v, want %v", p.V, c.want)
			}
		})
	}
}

func TestMaxSeriesBound(t *testing.T) {
	s := New(Options{Window: time.Minute, Step: 10 * time.Second, MaxSeries: 3})
	for i := range 5 {
		s.Add(fmt.Sprint("k", i), at(0), 1)
	}
	if s.Len() != 3 || s.Refused() != 2 {
		t.Fatalf("len %d refused %d, want 3 and 2", s.Len(), s.Refused())
	}
	// Once the old series have left the window, a new one takes a place.
	s.Add("late", at(120), 1)
	if s.Len() != 1 || s.Refused() != 2 {
		t.Fatalf("after the window: len %d refused %d", s.Len(), s.Refused())
	}
	s.Sweep(at(500))
	if s.Len() != 0 {
		t.Fatalf("after Sweep: %d series", s.Len())
	}
}

func TestKeysSearchAndPage(t *testing.T) {
	s := New(Options{})
	for _, k := range []string{"site/n/cam-2 queue", "site/n/cam-1 queue", "site/n/door temp", "Cam-9 x"} {
		s.Add(k, at(0), 1)
	}
	total, keys := s.Keys("cam", 0, 10)
	if want := []string{"Cam-9 x", "site/n/cam-1 queue", "site/n/cam-2 queue"}; total != 3 || !slices.Equal(keys, want) {
		t.Fatalf("cam: %d %v, want prefix first then substring %v", total, keys, want)
	}
	total, keys = s.Keys("", 1, 2)
	if total != 4 || len(keys) != 2 || keys[0] != "site/n/cam-1 queue" {
		t.Fatalf("page: %d %v", total, keys)
	}
	if total, keys = s.Keys("", 9, 2); total != 4 || len(keys) != 0 {
		t.Fatalf("past the end: %d %v", total, keys)
	}
}
