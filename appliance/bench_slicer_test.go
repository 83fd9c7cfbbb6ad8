package appliance

import (
	"testing"
	"time"
)

// A round is classed by when it started, so a long round that merely
// overlaps a transition's window does not count as slowed by it.
func TestSplitRoundsClassesByStart(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	windows := [][2]time.Time{{at(1000), at(1350)}, {at(2250), at(2600)}}
	rounds := []roundSample{
		{at(0), 20 * time.Millisecond},    // steady
		{at(900), 200 * time.Millisecond}, // overlaps the first window but started before it: steady
		{at(1000), 30 * time.Millisecond}, // at the window's start: during
		{at(1349), 40 * time.Millisecond}, // during
		{at(1350), 50 * time.Millisecond}, // at the window's end: steady
		{at(2300), 60 * time.Millisecond}, // second window: during
		{at(3000), 70 * time.Millisecond}, // steady
	}
	steady, during := splitRounds(rounds, windows)
	want := func(got []time.Duration, ms ...int) {
		t.Helper()
		if len(got) != len(ms) {
			t.Fatalf("got %v, want %v ms", got, ms)
		}
		for i, m := range ms {
			if got[i] != time.Duration(m)*time.Millisecond {
				t.Fatalf("got %v, want %v ms", got, ms)
			}
		}
	}
	want(steady, 20, 200, 50, 70)
	want(during, 30, 40, 60)
}
