package clock

import (
	"sync"
	"testing"
	"time"
)

func TestFakeStartsWhereTold(t *testing.T) {
	if got := NewFake(time.Time{}).Now(); !got.Equal(Start) {
		t.Errorf("zero start: Now() = %v, want %v", got, Start)
	}
	at := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	if got := NewFake(at).Now(); !got.Equal(at) {
		t.Errorf("Now() = %v, want %v", got, at)
	}
}

func TestFakeMovesOnlyWhenTold(t *testing.T) {
	c := NewFake(time.Time{})
	first := c.Now()
	if second := c.Now(); !second.Equal(first) {
		t.Fatalf("the clock moved by itself: %v then %v", first, second)
	}
	if got := c.Advance(90 * time.Second); !got.Equal(Start.Add(90 * time.Second)) {
		t.Errorf("Advance returned %v", got)
	}
	if got := c.Now(); !got.Equal(Start.Add(90 * time.Second)) {
		t.Errorf("after Advance: Now() = %v", got)
	}
	c.Advance(-30 * time.Second)
	if got := c.Now(); !got.Equal(Start.Add(time.Minute)) {
		t.Errorf("after a step back: Now() = %v", got)
	}
	back := Start.Add(-time.Hour)
	c.AdvanceTo(back)
	if got := c.Now(); !got.Equal(back) {
		t.Errorf("after AdvanceTo: Now() = %v, want %v", got, back)
	}
}

// TestFakeConcurrent advances from many goroutines; with -race it also
// checks the clock's locking.
func TestFakeConcurrent(t *testing.T) {
	c := NewFake(time.Time{})
	const goroutines, steps = 8, 100
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range steps {
				c.Advance(time.Millisecond)
				_ = c.Now()
			}
		})
	}
	wg.Wait()
	if got, want := c.Now(), Start.Add(goroutines*steps*time.Millisecond); !got.Equal(want) {
		t.Errorf("Now() = %v, want %v", got, want)
	}
}

func TestSystemFollowsTheWallClock(t *testing.T) {
	before := time.Now()
	got := System{}.Now()
	if got.Before(before) || got.After(time.Now()) {
		t.Errorf("System.Now() = %v, outside [%v, now]", got, before)
	}
}
