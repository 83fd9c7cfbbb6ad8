// Package clock is how Kerf's logic packages tell the time: one Clock
// interface, the system clock, and a fake clock that tests move by hand.
//
// It owns no timers and must not sleep: code that takes a Clock reads the
// time and nothing else, so a test that moves a Fake decides everything
// that code sees. It imports nothing of Kerf's.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time.
type Clock interface {
	Now() time.Time
}

// System is the wall clock.
type System struct{}

// Now implements Clock.
func (System) Now() time.Time { return time.Now() }

// Start is where a Fake made with a zero start begins: a fixed instant, so
// that tests print the same times on every run.
var Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Fake is a Clock that moves only when told to. It is safe for concurrent
// use.
type Fake struct {
	mu  sync.Mutex
	now time.Time
}

var (
	_ Clock = System{}
	_ Clock = (*Fake)(nil)
)

// NewFake returns a Fake showing start, or Start when start is zero.
func NewFake(start time.Time) *Fake {
	if start.IsZero() {
		start = Start
	}
	return &Fake{now: start}
}

// Now implements Clock.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and returns the new time. A
// negative d moves it back, which tests of clock steps need.
func (c *Fake) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// AdvanceTo sets the clock to t, forward or back.
func (c *Fake) AdvanceTo(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
