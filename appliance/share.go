package appliance

import (
	"sync"
	"time"

	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/slicer"
)

// Compute shares are enforced by time: before a kernel runs, the tenant's
// worker needs a grant of GPU time from kerfd, which runs one
// slicer.Arbiter per GPU (weighted fair, work-conserving: a tenant alone
// gets every grant). A tenant alone on the GPU gets a solo grant
// (slicer.Unlimited): no renewal, no budget to spend, kept while idle, so
// its kernels never wait on kerfd. When another tenant asks, kerfd tells
// the holder to yield: the worker charges what it used alone at once, its
// budget is cut to its fair share, and it gives the grant back once that
// is spent or its stream is idle for gateIdle. Under contention a grant
// covers many kernels: the worker spends it locally and, once half of it
// is spent, asks for it to be renewed while its kernels keep running, so
// a busy stream never stalls on kerfd; while nobody else waits the renewal
// extends the grant in place, and a grant idle for gateHold goes back.
// Launches in flight count against the grant (each at the mean time of
// the last kernels) before they complete: where launches are queued ahead
// of the GPU, as on CUDA streams, a grant does not let in more than its
// budget covers. With slicer.share_overlap_below set, while demand on the
// GPU is below it every tenant that asks and is under its share gets a
// grant at once, beside the others', and a grant nobody waits for is held
// for gateHoldOverlap: an idle holder costs no one anything then, and one
// whose kernels are a round of host work apart keeps it.

// The messages that carry this are acquire, grant, renew, yield and used
// (control.go).

const (
	// gateWait bounds a wait for a grant; past it the kernel runs anyway,
	// so a fault in arbitration slows no tenant to a halt.
	gateWait = 2 * time.Second
	// gateIdle returns a grant others wait for once the worker's kernels
	// are done.
	gateIdle = 100 * time.Microsecond
	// gateHold returns a grant nobody waits for after this long unused.
	gateHold = 20 * time.Millisecond
	// gateHoldOverlap is gateHold where grants overlap.
	gateHoldOverlap = 250 * time.Millisecond
)

// shareGate is a worker's gpu.Gate.
type shareGate struct {
	send   func(ctlMsg) error
	hold   time.Duration // gateHold or gateHoldOverlap
	grants chan grantMsg // new grants from kerfd

	enter    sync.Mutex // one acquisition at a time
	mu       sync.Mutex
	cur      *heldGrant
	latest   uint64 // highest grant ID taken up: older ones are stale renewals
	asking   bool
	inflight int           // kernels entered and not yet done
	mean     time.Duration // a kernel's recent mean time: what one in flight counts
	debt     time.Duration // GPU time of kernels done while no grant was held
	early    yieldMsg      // a yield that came before its grant was taken up
	idle     *time.Timer
	wake     chan struct{} // closed when a kernel is done or kerfd answers
}

// heldGrant is the grant being spent; its durations count from its issue.
type heldGrant struct {
	id       uint64
	budget   time.Duration // what may be used
	used     time.Duration // what kernels took
	reported time.Duration // what renewals already charged
	renewing bool
	yielded  bool
	solo     bool // unlimited until kerfd says another tenant asks
}

// soloBudget tells a solo grant from a budget to spend.
func soloBudget(b time.Duration) bool { return b >= slicer.Unlimited }

var _ gpu.Gate = (*shareGate)(nil)

func newShareGate(send func(ctlMsg) error, hold time.Duration) *shareGate {
	return &shareGate{send: send, hold: hold, grants: make(chan grantMsg, 1)}
}

// granted hands the gate a grant from kerfd: a renewal of the one held,
// or a new one.
func (g *shareGate) granted(m grantMsg) {
	g.mu.Lock()
	if c := g.cur; c != nil && c.id == m.ID {
		// The renewal's budget counts from when it was asked for.
		if c.renewing && !c.yielded {
			c.budget = c.reported + m.Budget
			c.solo = soloBudget(m.Budget)
		}
		g.answerLocked(c)
		if c.used >= c.budget && g.inflight == 0 {
			g.giveBackLocked()
		}
		g.mu.Unlock()
		return
	}
	stale := m.ID <= g.latest
	g.mu.Unlock()
	if stale {
		return
	}
	select {
	case g.grants <- m:
	default:
	}
}

// yield cuts the held grant to what kerfd allows now that others wait.
func (g *shareGate) yield(m yieldMsg) {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.cur
	if c == nil || c.id != m.Grant {
		if m.Grant > g.latest {
			g.early = m
		}
		return
	}
	wasSolo := c.solo
	c.yielded, c.solo = true, false
	c.budget = min(c.budget, c.used+m.Budget)
	g.answerLocked(c)
	g.wakeLocked()
	if g.inflight == 0 || c.used >= c.budget {
		g.giveBackLocked()
		return
	}
	if wasSolo {
		// What it used alone is charged apart from what follows.
		g.send(renewMsg{Grant: c.id, Used: c.used - c.reported})
		c.reported = c.used
	}
}

// pendingLocked is what the launches in flight other than the one
// entering are expected to use.
func (g *shareGate) pendingLocked() time.Duration {
	return time.Duration(max(g.inflight-1, 0)) * g.mean
}

// wakeLocked wakes an Enter waiting for a kernel or for kerfd.
func (g *shareGate) wakeLocked() {
	if g.wake != nil {
		close(g.wake)
		g.wake = nil
	}
}

// Enter implements gpu.Gate.
func (g *shareGate) Enter() func(time.Duration) {
	g.enter.Lock()
	defer g.enter.Unlock()
	g.mu.Lock()
	if g.idle != nil {
		g.idle.Stop()
	}
	g.inflight++
	var timeout <-chan time.Time
	for c := g.cur; c != nil; c = g.cur {
		if c.solo || c.used+g.pendingLocked() < c.budget {
			g.mu.Unlock()
			return g.done
		}
		// Spent, counting the launches in flight. With a renewal on its
		// way, or launches yet to finish, wait for them rather than give
		// the grant back and ask again.
		if !c.renewing && g.inflight <= 1 {
			g.giveBackLocked()
			break
		}
		if g.wake == nil {
			g.wake = make(chan struct{})
		}
		wake := g.wake
		g.mu.Unlock()
		if timeout == nil {
			timeout = time.After(gateWait)
		}
		select {
		case <-wake:
			g.mu.Lock()
		case <-timeout:
			// Run unpaced rather than stall on a lost answer.
			g.mu.Lock()
			g.answerLocked(c)
			g.mu.Unlock()
			return g.done
		}
	}
	if !g.asking {
		g.asking = true
		g.send(acquireMsg{})
	}
	g.mu.Unlock()
	select {
	case m := <-g.grants:
		g.mu.Lock()
		g.takeLocked(m)
		g.mu.Unlock()
	case <-time.After(gateWait):
		// Run unpaced; the outstanding ask is answered later.
	}
	return g.done
}

// takeLocked takes up a new grant.
func (g *shareGate) takeLocked(m grantMsg) {
	g.asking = false
	g.latest = max(g.latest, m.ID)
	c := &heldGrant{id: m.ID, budget: m.Budget, used: g.debt, solo: soloBudget(m.Budget)}
	g.debt = 0
	if g.early.Grant == m.ID {
		c.yielded, c.solo = true, false
		c.budget = min(c.budget, g.early.Budget)
	}
	g.cur = c
}

// done accounts a kernel's GPU time against the grant.
func (g *shareGate) done(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inflight = max(g.inflight-1, 0)
	if g.mean == 0 {
		g.mean = d
	} else {
		g.mean += (d - g.mean) / 8
	}
	g.wakeLocked()
	c := g.cur
	if c == nil {
		g.debt += d
		return
	}
	c.used += d
	if c.solo {
		return // kept, idle or not, until kerfd says another asks
	}
	if c.used >= c.budget && !c.renewing {
		g.giveBackLocked()
		return
	}
	if !c.renewing && !c.yielded && 2*c.used >= c.budget {
		c.renewing = true
		g.send(renewMsg{Grant: c.id, Used: c.used - c.reported})
		c.reported = c.used
	}
	if g.inflight > 0 {
		return
	}
	wait := g.hold
	if c.yielded {
		wait = gateIdle
	}
	g.idle = time.AfterFunc(wait, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.cur == c && g.inflight == 0 {
			g.giveBackLocked()
		}
	})
}

// answerLocked ends c's renewal, if one is on its way.
func (g *shareGate) answerLocked(c *heldGrant) {
	c.renewing = false
	g.wakeLocked()
}

func (g *shareGate) giveBackLocked() {
	g.send(usedMsg{Grant: g.cur.id, Used: g.cur.used - g.cur.reported})
	g.cur = nil
}

// arbiters are kerfd's per-GPU share arbiters; clients are slices.
type arbiters struct {
	byGPU map[int]*slicer.Arbiter
}

// newArbiters makes one arbiter per GPU. quantum is the largest grant: it
// should cover several kernels (emulated kernels run for milliseconds; on
// a real GPU the slicer's default, 2 ms, fits). slots is how many tenants
// may run kernels at once, and more while the GPU's load is below
// overlapBelow (slicer.ArbiterConfig).
func newArbiters(gpus int, quantum time.Duration, slots int, overlapBelow float64) *arbiters {
	a := &arbiters{byGPU: map[int]*slicer.Arbiter{}}
	for i := range gpus {
		a.byGPU[i] = slicer.NewArbiter(slicer.ArbiterConfig{Quantum: quantum, Slots: slots, OverlapBelow: overlapBelow})
	}
	return a
}

// tick takes back grants that were never reported.
func (a *arbiters) tick() {
	for _, ar := range a.byGPU {
		ar.Tick()
	}
}
