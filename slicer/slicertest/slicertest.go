// Package slicertest holds test helpers for compute shares: a gate that
// spends a slicer.Arbiter's grants as a worker does, and each tenant's
// part of the GPU time per window. It is imported by _test.go files only
// and holds no product logic; kerfd's own gate is appliance's.
package slicertest

import (
	"sync"
	"time"

	"github.com/kerf-edge/kerf/slicer"
)

// Gate is a gpu.Gate that spends grants of an Arbiter, as a worker does:
// a grant covers launches until their measured time spends it (cut short
// when the arbiter says others wait), then goes back with what they used.
// It keeps every charge with the time it was made.
type Gate struct {
	ar     *slicer.Arbiter
	client string

	// rep orders a grant's charges: the one made when told to yield
	// reaches the arbiter before the grant goes back.
	rep      sync.Mutex
	mu       sync.Mutex
	g        slicer.Grant
	held     bool
	used     time.Duration // charged to the grant held
	charged0 time.Duration // of used, what was charged when told to yield
	entered  int
	done     int
	charged  time.Duration
	log      []Charge
}

// Charge is a launch's measured time, charged to the gate At.
type Charge struct {
	At time.Time
	D  time.Duration
}

// NewGate returns a gate for client, which must have a share in ar.
func NewGate(ar *slicer.Arbiter, client string) *Gate {
	return &Gate{ar: ar, client: client}
}

// Enter implements gpu.Gate.
func (q *Gate) Enter() func(time.Duration) {
	q.mu.Lock()
	q.entered++
	if q.held && q.used < q.g.Budget {
		q.mu.Unlock()
		return q.charge
	}
	q.mu.Unlock()
	q.rep.Lock()
	q.mu.Lock()
	spent, used, held := q.g, q.used-q.charged0, q.held
	// Launches still in flight are charged to the next grant.
	q.held, q.used, q.charged0 = false, 0, 0
	q.mu.Unlock()
	if held {
		q.ar.Report(spent, used)
	}
	q.rep.Unlock()
	got := make(chan struct{}, 1)
	err := q.ar.AskYield(q.client, 0, func(g slicer.Grant, err error) {
		if err == nil {
			// Taken up here, before a yield for it can come.
			q.mu.Lock()
			q.g, q.held = g, true
			q.mu.Unlock()
			got <- struct{}{}
		}
	}, func(g slicer.Grant) {
		// Others wait: what is left is g.Budget from now. What was used
		// so far is charged at once, as a worker does, so that time used
		// alone on a solo grant is told apart from the rest.
		q.rep.Lock()
		defer q.rep.Unlock()
		q.mu.Lock()
		if !q.held || q.g.ID != g.ID {
			q.mu.Unlock()
			return
		}
		q.g.Budget = min(q.g.Budget, q.used+g.Budget)
		held, used := q.g, q.used-q.charged0
		q.charged0 = q.used
		q.mu.Unlock()
		q.ar.Renew(held, used)
	})
	if err == nil {
		<-got
	}
	return q.charge
}

func (q *Gate) charge(d time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.used += d
	q.done++
	q.charged += d
	q.log = append(q.log, Charge{time.Now(), d})
}

// Counts returns how many launches entered the gate, how many were
// charged, and the time charged.
func (q *Gate) Counts() (entered, done int, charged time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.entered, q.done, q.charged
}

// Charges returns every charge so far, oldest first.
func (q *Gate) Charges() []Charge {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]Charge(nil), q.log...)
}

// Windows returns each tenant's part of the GPU time charged (logs: one
// per tenant) in every whole window of width from skip after all tenants
// were first charged to end. A window in which nothing was charged has
// NaN parts.
func Windows(logs [][]Charge, skip, width time.Duration, end time.Time) [][]float64 {
	var start time.Time
	for _, l := range logs {
		if len(l) == 0 {
			return nil
		}
		if l[0].At.After(start) {
			start = l[0].At
		}
	}
	var out [][]float64
	for from := start.Add(skip); !from.Add(width).After(end); from = from.Add(width) {
		to := from.Add(width)
		used := make([]time.Duration, len(logs))
		var total time.Duration
		for i, l := range logs {
			for _, c := range l {
				if !c.At.Before(from) && c.At.Before(to) {
					used[i] += c.D
				}
			}
			total += used[i]
		}
		parts := make([]float64, len(logs))
		for i := range used {
			parts[i] = float64(used[i]) / float64(total)
		}
		out = append(out, parts)
	}
	return out
}
