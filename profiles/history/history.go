// Package history keeps the recent values of many series in bounded
// memory, for the operator's page: each series is a ring of fixed steps
// covering a window, one float32 per step, so a series costs the same
// whatever its rate, and the number of series is capped.
//
// It owns only the rings: what is recorded, and when, is its callers'.
// It must not grow with the rate of what it records, nor keep a value
// older than its window.
package history

import (
	"math"
	"sort"
	"strings"
	"sync"
	"time"
)

// Mode says how values that fall in the same step combine.
type Mode int

const (
	// Last keeps the step's latest value.
	Last Mode = iota
	// Max keeps the step's largest value, so a short peak stays visible.
	Max
	// Sum adds the step's values.
	Sum
)

// Options size a Set; zero values take defaults.
type Options struct {
	Window    time.Duration // default 15m
	Step      time.Duration // default 5s; at most Window
	MaxSeries int           // default 20000
	Mode      Mode
}

// Set is a bounded set of series keyed by name. Safe for concurrent use.
type Set struct {
	step  int64 // ns
	steps int64 // ring length
	max   int
	mode  Mode

	mu      sync.Mutex
	series  map[string]*ring
	refused uint64
	swept   int64 // the step of the last sweep for room
}

// ring holds one value per step; NaN marks a step with none.
type ring struct {
	vals   []float32
	newest int64 // the step number (UnixNano/step) of the newest slot
}

// New returns an empty Set.
func New(o Options) *Set {
	if o.Window <= 0 {
		o.Window = 15 * time.Minute
	}
	if o.Step <= 0 {
		o.Step = 5 * time.Second
	}
	o.Step = min(o.Step, o.Window)
	if o.MaxSeries <= 0 {
		o.MaxSeries = 20000
	}
	return &Set{step: int64(o.Step), steps: int64(o.Window / o.Step), max: o.MaxSeries, mode: o.Mode, series: map[string]*ring{}}
}

// Window is the span the Set keeps.
func (s *Set) Window() time.Duration { return time.Duration(s.step * s.steps) }

// Step is the resolution.
func (s *Set) Step() time.Duration { return time.Duration(s.step) }

// Add records v for key at t. A new series past MaxSeries is refused
// (and counted) once series that have nothing left in the window are
// dropped; a value older than the window is ignored.
func (s *Set) Add(key string, t time.Time, v float64) {
	n := t.UnixNano() / s.step
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.series[key]
	if r == nil {
		if len(s.series) >= s.max && n > s.swept {
			s.swept = n // at most one sweep a step: refusals stay cheap
			s.sweep(n)
		}
		if len(s.series) >= s.max {
			s.refused++
			return
		}
		r = &ring{vals: make([]float32, s.steps), newest: n}
		for i := range r.vals {
			r.vals[i] = float32(math.NaN())
		}
		s.series[key] = r
	}
	if n <= r.newest-s.steps {
		return // before the window
	}
	if n > r.newest {
		for k := r.newest + 1; k <= n && k <= r.newest+s.steps; k++ {
			r.vals[k%s.steps] = float32(math.NaN())
		}
		r.newest = n
	}
	slot := &r.vals[n%s.steps]
	old := float64(*slot)
	switch {
	case math.IsNaN(old) || s.mode == Last:
		*slot = float32(v)
	case s.mode == Max:
		*slot = float32(max(old, v))
	default:
		*slot = float32(old + v)
	}
}

// sweep drops the series with no value in the window that ends at step n.
func (s *Set) sweep(n int64) {
	for k, r := range s.series {
		if r.newest <= n-s.steps {
			delete(s.series, k)
		}
	}
}

// Sweep drops the series that have nothing left in the window ending now.
func (s *Set) Sweep(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now.UnixNano() / s.step)
}

// Len is the number of series kept.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.series)
}

// Refused counts the new series refused at MaxSeries.
func (s *Set) Refused() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// Points are a series' values in time order: T in Unix seconds (each
// step's start), V the values.
type Points struct {
	T []float64
	V []float64
}

// Points returns key's values within the window that ends now, oldest
// first; none for an unknown key.
func (s *Set) Points(key string, now time.Time) Points {
	n := now.UnixNano() / s.step
	s.mu.Lock()
	defer s.mu.Unlock()
	var p Points
	r := s.series[key]
	if r == nil {
		return p
	}
	for k := max(n-s.steps+1, r.newest-s.steps+1); k <= min(n, r.newest); k++ {
		v := r.vals[k%s.steps]
		if math.IsNaN(float64(v)) {
			continue
		}
		p.T = append(p.T, float64(k*s.step)/1e9)
		p.V = append(p.V, float64(v))
	}
	return p
}

// Keys returns the number of keys that match and, of those in order,
// limit from offset. A key matches when it contains q; keys that start
// with q come first. Matching ignores case; "" matches every key.
func (s *Set) Keys(q string, offset, limit int) (int, []string) {
	q = strings.ToLower(q)
	s.mu.Lock()
	var prefixed, within []string
	for k := range s.series {
		lk := strings.ToLower(k)
		switch {
		case strings.HasPrefix(lk, q):
			prefixed = append(prefixed, k)
		case strings.Contains(lk, q):
			within = append(within, k)
		}
	}
	s.mu.Unlock()
	sort.Strings(prefixed)
	sort.Strings(within)
	all := append(prefixed, within...)
	offset = min(max(offset, 0), len(all))
	end := len(all)
	if limit >= 0 {
		end = min(end, offset+limit)
	}
	return len(all), all[offset:end]
}
