package ingest

import (
	"math"
	"sort"
	"time"
)

// Aggregates a trigger can ask for.
const (
	AggAvg  = "avg"
	AggMax  = "max"
	AggSum  = "sum"
	AggRate = "rate"
)

type sample struct {
	t time.Time
	v float64
}

// series is one (source, metric) window: samples ordered by time, at most
// cap of them and none older than keep before the newest.
type series struct {
	key, source, metric string
	name                string // resolved SenML name when first seen
	publisher           string // Topic.Publisher of its first signal
	samples             []sample
	lastSeen            time.Time // arrival time of the newest signal
	offline             bool      // the source's status said offline
	cap                 int
	keep                time.Duration
	readers             []seriesReader // rules that read this series
}

// seriesReader is a rule reading a series, and the series' index in the
// rule's series and cache.
type seriesReader struct {
	rs  *ruleState
	idx int
}

// invalidate makes every reader's cached aggregate stale.
func (s *series) invalidate() {
	for _, r := range s.readers {
		r.rs.cache[r.idx] = invalidAggCache
	}
}

func (s *series) add(t time.Time, v float64, arrived time.Time) {
	i := len(s.samples)
	if i > 0 && t.Before(s.samples[i-1].t) { // late: insert in order
		i = sort.Search(len(s.samples), func(j int) bool { return s.samples[j].t.After(t) })
	}
	s.samples = append(s.samples, sample{})
	copy(s.samples[i+1:], s.samples[i:])
	s.samples[i] = sample{t, v}
	s.lastSeen = arrived
	s.offline = false
	s.trim()
}

func (s *series) trim() {
	n := len(s.samples)
	if n == 0 {
		return
	}
	cut := 0
	if n > s.cap {
		cut = n - s.cap
	}
	oldest := s.samples[n-1].t.Add(-s.keep)
	for cut < n && s.samples[cut].t.Before(oldest) {
		cut++
	}
	if cut > 0 {
		// Copy down so the backing array does not grow without bound.
		s.samples = append(s.samples[:0], s.samples[cut:]...)
	}
}

// stale reports whether no signal arrived within after (0: never stale).
func (s *series) stale(now time.Time, after time.Duration) bool {
	if s.offline {
		return true
	}
	return after > 0 && now.Sub(s.lastSeen) > after
}

// aggregate computes agg over samples in (now-window, now]; ok is false when
// the window holds too few samples (rate needs two). Without new samples the
// result holds until the oldest sample in the window leaves it.
func (s *series) aggregate(agg string, now time.Time, window time.Duration) (v float64, n int, ok bool) {
	v, n, ok, _ = s.aggregateUntil(agg, now, window)
	return v, n, ok
}

// farFuture is a validity bound for a window with nothing left to expire.
var farFuture = time.Unix(1<<40, 0)

func (s *series) aggregateUntil(agg string, now time.Time, window time.Duration) (v float64, n int, ok bool, until time.Time) {
	from := now.Add(-window)
	i := sort.Search(len(s.samples), func(j int) bool { return s.samples[j].t.After(from) })
	in := s.samples[i:]
	until = farFuture
	for len(in) > 0 && in[len(in)-1].t.After(now) {
		in = in[:len(in)-1]
		until = now // a sample from the future will enter; recompute next time
	}
	n = len(in)
	if n == 0 {
		return 0, 0, false, until
	}
	if u := in[0].t.Add(window); u.Before(until) {
		until = u
	}
	switch agg {
	case AggAvg, AggSum:
		var sum float64
		for _, x := range in {
			sum += x.v
		}
		if agg == AggAvg {
			return sum / float64(n), n, true, until
		}
		return sum, n, true, until
	case AggMax:
		m := math.Inf(-1)
		for _, x := range in {
			m = math.Max(m, x.v)
		}
		return m, n, true, until
	case AggRate:
		// Per-second increase of a counter; a decrease is a reset.
		if n < 2 {
			return 0, n, false, until
		}
		var inc float64
		for j := 1; j < n; j++ {
			if d := in[j].v - in[j-1].v; d >= 0 {
				inc += d
			} else {
				inc += in[j].v
			}
		}
		dt := in[n-1].t.Sub(in[0].t).Seconds()
		if dt <= 0 {
			return 0, n, false, until
		}
		return inc / dt, n, true, until
	}
	return 0, 0, false, until
}
