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
// gets every grant). The worker keeps running kernels while its grant
// lasts, then reports what it used and asks again; a grant it does not
// need goes back as soon as its stream is idle.

// The messages that carry this are acquire, grant and used (control.go).

const (
	// gateWait bounds a wait for a grant; past it the kernel runs anyway,
	// so a fault in arbitration slows no tenant to a halt.
	gateWait = 2 * time.Second
	// gateIdle returns a grant the worker holds but does not use.
	gateIdle = 100 * time.Microsecond
)

// shareGate is a worker's gpu.Gate.
type shareGate struct {
	send   func(ctlMsg) error
	grants chan grantMsg // grants from kerfd

	enter  sync.Mutex // one acquisition at a time
	mu     sync.Mutex
	cur    *heldGrant
	asking bool
	idle   *time.Timer
}

type heldGrant struct {
	id           uint64
	budget, used time.Duration
}

var _ gpu.Gate = (*shareGate)(nil)

func newShareGate(send func(ctlMsg) error) *shareGate {
	return &shareGate{send: send, grants: make(chan grantMsg, 1)}
}

// granted hands the gate a grant from kerfd.
func (g *shareGate) granted(m grantMsg) {
	select {
	case g.grants <- m:
	default:
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
	if g.cur != nil && g.cur.used < g.cur.budget {
		g.mu.Unlock()
		return g.done
	}
	if g.cur != nil {
		g.giveBackLocked()
	}
	if !g.asking {
		g.asking = true
		g.send(acquireMsg{})
	}
	g.mu.Unlock()
	select {
	case m := <-g.grants:
		g.mu.Lock()
		g.asking = false
		g.cur = &heldGrant{id: m.ID, budget: m.Budget}
		g.mu.Unlock()
	case <-time.After(gateWait):
		// Run unpaced; the outstanding ask is answered later.
	}
	return g.done
}

// done accounts a kernel's GPU time against the grant.
func (g *shareGate) done(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cur == nil {
		return
	}
	g.cur.used += d
	if g.cur.used >= g.cur.budget {
		g.giveBackLocked()
		return
	}
	g.idle = time.AfterFunc(gateIdle, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.cur != nil {
			g.giveBackLocked()
		}
	})
}

func (g *shareGate) giveBackLocked() {
	g.send(usedMsg{Grant: g.cur.id, Used: g.cur.used})
	g.cur = nil
}

// arbiters are kerfd's per-GPU share arbiters; clients are slices.
type arbiters struct {
	byGPU map[int]*slicer.Arbiter
}

// newArbiters makes one arbiter per GPU. quantum is the largest grant: it
// should cover several kernels (emulated kernels run for milliseconds; on
// a real GPU the slicer's default, 2 ms, fits). slots is how many tenants
// may run kernels at once.
func newArbiters(gpus int, quantum time.Duration, slots int) *arbiters {
	a := &arbiters{byGPU: map[int]*slicer.Arbiter{}}
	for i := range gpus {
		a.byGPU[i] = slicer.NewArbiter(slicer.ArbiterConfig{Quantum: quantum, Slots: slots})
	}
	return a
}

// tick takes back grants that were never reported.
func (a *arbiters) tick() {
	for _, ar := range a.byGPU {
		ar.Tick()
	}
}
