package slicer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/kerf-edge/kerf/internal/clock"
)

// Compute shares are enforced across worker processes by time budgets.
// Each GPU has an Arbiter in kerfd. A worker meters the GPU time of its
// launches (the emulator's Context.BusyTime; CUDA events on a real GPU),
// and before launching asks for a Grant: a budget of GPU time it may use
// now. It launches until the budget is spent or its queue drains, then
// reports what it used, which frees the GPU for the next grant.
//
// The algorithm is weighted fair queuing on GPU time (stride
// scheduling) with budgets sized like deficit round robin's quanta. Every
// client has a virtual time, pass, which grows by used/share as it
// reports. A free slot goes to the waiting client with the lowest pass.
// A grant's budget is the quantum scaled by the client's share relative
// to the largest competing share, less the client's lead over the
// share-weighted mean pass of the competitors (times its share): one that
// got ahead (an overrun, since a kernel cannot be stopped, or an extra
// turn while the others were between grants) gets shorter budgets until
// the others catch up, one behind gets longer ones. Competitors are the
// clients waiting, holding a grant or seen within the last few quanta. A
// client alone gets every grant (work conservation); a client back from
// idle starts at the current virtual time and none is ever owed more
// than a quantum, so idling banks nothing and starves no one later.
//
// Grants are cheap to keep. A holder may Renew its grant before the budget
// runs out, charging what it used so far: while nobody waits for the GPU
// the grant is extended in place, so renewal rides on the traffic already
// flowing and the holder's kernels never stall on it.
//
// Contention is judged by demand, not by the GPU time charged: a client
// competes while it asks, holds a grant, or asked or reported within the
// last few quanta. A client with no competitor gets a solo grant (Solo,
// unlimited by default): it needs no renewal and may be held idle, so a
// GPU with one active tenant costs that tenant no round trip at all. As
// soon as another client asks, the holder is told to yield (AskYield's
// yield): its budget is cut to what the fair share allows from then,
// after which it reports and the slot goes to the waiter. What a solo
// grant's holder used before it was told to yield was the GPU's spare
// time: the first charge after the yield (a holder charges what it used
// so far as soon as it is told) pays off what the holder was owed,
// moving its virtual time up to the competitors' mean at most, and is
// not held against it beyond.
//
// While the GPU has room, a hand-over need not wait for a slot. With
// OverlapBelow set, the Arbiter measures the demand on the GPU over the
// last ten quanta: the GPU time charged plus the time clients spent
// waiting for a grant, per second of wall time. While that is below
// OverlapBelow a client that asks and is under its share (its fair budget
// is at least MinGrant) gets a grant at once, beside the ones out: clients
// that each want a kernel now and then do not queue behind each other for
// a slot and a round trip. One that got ahead waits, as with one slot,
// until the others' charges catch up or the GPU is free. Waiting counts as
// demand so that slow hand-overs, which leave the GPU idle between grants
// while tenants queue for it, do not pass for a GPU with room. Once demand
// is high, grants go out one slot at a time again: kernels that overlap on
// a GPU are each timed over the other's, so shares are only measured truly
// one at a time.

// Grant is permission to use up to Budget of GPU time from Issued.
type Grant struct {
	ID     uint64        `json:"id"`
	Client string        `json:"client"`
	Budget time.Duration `json:"budget"`
	Issued time.Time     `json:"issued"`
}

// Budgeter is what a worker's launch path needs. kerfd's Arbiter
// implements it; in a worker, a client of the control socket does (see
// the package's wiring notes).
type Budgeter interface {
	// Acquire waits for a grant; estimate (0: unknown) is the GPU time
	// the client expects to use and may shorten the budget.
	Acquire(ctx context.Context, client string, estimate time.Duration) (Grant, error)
	// Report returns a grant with the GPU time actually used.
	Report(g Grant, used time.Duration) error
}

var _ Budgeter = (*Arbiter)(nil)

// Arbiter errors.
var (
	ErrUnknownClient = errors.New("unknown share client")
	ErrBusy          = errors.New("client already has an ask or grant outstanding")
	ErrUnknownGrant  = errors.New("unknown or expired grant")
)

// ArbiterConfig tunes an Arbiter; zero fields take the defaults.
type ArbiterConfig struct {
	// Quantum is the budget of a grant to the client with the largest
	// active share (default 2 ms); the shorter, the closer shares track
	// over short windows, the more grants per second.
	Quantum time.Duration
	// MinGrant is the smallest budget an estimate can ask for
	// (default 200 µs).
	MinGrant time.Duration
	// Slots is how many grants may be out at once (default 1: a GPU
	// time-slices contexts anyway).
	Slots int
	// Timeout takes back a grant not reported by Issued+Budget+Timeout,
	// charging its whole budget (default 1 s), on Tick.
	Timeout time.Duration
	// Solo is the budget of a grant to a client with no competitor
	// (default Unlimited): held until another client asks.
	Solo time.Duration
	// OverlapBelow (0: never) is the demand, in GPU time charged plus
	// time spent waiting for a grant per second of wall time, below which
	// a client under its share gets a grant beside the Slots out.
	OverlapBelow float64
	Clock        clock.Clock // nil: the system clock
}

type shareClient struct {
	name  string
	share float64
	pass  float64 // virtual time: GPU seconds / share
	used  time.Duration
	// seen is when it last asked or reported.
	seen    time.Time
	asking  *ask
	holding *Grant
	grants  uint64
	renewed uint64
	// yield tells the holder that others wait; yielded once per grant.
	yield   func(Grant)
	yielded bool
	// solo: the grant held was issued or extended with no competitor.
	// spare: it was cut by a yield, and the next charge is the GPU time
	// it used alone.
	solo, spare bool
}

type ask struct {
	c        *shareClient
	estimate time.Duration
	seq      uint64
	since    time.Time // when asked, or when the demand window began
	fn       func(Grant, error)
	yield    func(Grant)
}

type delivery struct {
	fn    func(Grant, error)
	yield func(Grant)
	g     Grant
	err   error
}

// Arbiter grants GPU time budgets by weighted fair share. It is safe for
// concurrent use.
type Arbiter struct {
	cfg     ArbiterConfig
	mu      sync.Mutex
	clients map[string]*shareClient
	waiting []*ask
	out     map[uint64]*shareClient
	nextID  uint64
	seq     uint64
	vtime   float64 // pass of the latest grantee
	// The demand on the GPU: GPU time charged and time spent waiting for
	// a grant since loadFrom, and the demand of the last window before it.
	loadFrom time.Time
	loadUsed time.Duration
	load     float64
}

// Unlimited is the default Solo budget: a grant that lasts until another
// client asks for the GPU.
const Unlimited = time.Duration(1 << 62)

// loadWindow is how long the load is measured over, in quanta.
const loadWindow = 10

// NewArbiter returns an Arbiter for one GPU.
func NewArbiter(cfg ArbiterConfig) *Arbiter {
	if cfg.Quantum <= 0 {
		cfg.Quantum = 2 * time.Millisecond
	}
	if cfg.MinGrant <= 0 {
		cfg.MinGrant = 200 * time.Microsecond
	}
	cfg.MinGrant = min(cfg.MinGrant, cfg.Quantum)
	if cfg.Slots <= 0 {
		cfg.Slots = 1
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	if cfg.Solo <= 0 {
		cfg.Solo = Unlimited
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	return &Arbiter{cfg: cfg, clients: map[string]*shareClient{}, out: map[uint64]*shareClient{}, loadFrom: cfg.Clock.Now()}
}

// charged adds used to the demand's window, starting a new window once
// the last is loadWindow quanta old. Called with the lock held.
func (a *Arbiter) charged(used time.Duration) {
	a.loadUsed += used
	a.rollLoad(a.cfg.Clock.Now())
}

// waited adds the time k has waited in this window (asks are added as
// they leave the queue, and at each window's end). Called with the lock
// held.
func (a *Arbiter) waited(k *ask, now time.Time) {
	if now.After(k.since) {
		a.loadUsed += now.Sub(k.since)
	}
	k.since = now
}

func (a *Arbiter) rollLoad(now time.Time) {
	if el := now.Sub(a.loadFrom); el >= loadWindow*a.cfg.Quantum {
		for _, k := range a.waiting {
			a.waited(k, now)
		}
		a.load = float64(a.loadUsed) / float64(el)
		a.loadFrom, a.loadUsed = now, 0
	}
}

// overlap reports whether a grant may go out beside the Slots out: the
// demand on the GPU is below OverlapBelow. Called with the lock held.
func (a *Arbiter) overlap() bool {
	if a.cfg.OverlapBelow <= 0 {
		return false
	}
	a.rollLoad(a.cfg.Clock.Now())
	return a.load < a.cfg.OverlapBelow
}

// minShare keeps a zero share from dividing by zero: such a client runs
// only when nobody else waits.
const minShare = 1e-4

// SetShare adds a client (a slice) or changes its share; changes take
// effect from the next grant.
func (a *Arbiter) SetShare(client string, share float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.clients[client]
	if c == nil {
		c = &shareClient{name: client, pass: a.floor()}
		a.clients[client] = c
	}
	c.share = max(share, minShare)
}

// Remove drops a client, as when its session ends: its ask fails and its
// grant is taken back uncharged.
func (a *Arbiter) Remove(client string) {
	var ds []delivery
	a.mu.Lock()
	if c := a.clients[client]; c != nil {
		if c.asking != nil {
			ds = append(ds, delivery{fn: c.asking.fn, err: fmt.Errorf("%w %q: removed", ErrUnknownClient, client)})
			a.dropAsk(c.asking)
		}
		if c.holding != nil {
			delete(a.out, c.holding.ID)
		}
		delete(a.clients, client)
		ds = append(ds, a.dispatch()...)
	}
	a.mu.Unlock()
	deliver(ds)
}

// floor is the virtual time a client returning from idle starts at: the
// lowest pass among active clients, or the latest grantee's.
func (a *Arbiter) floor() float64 {
	f, found := a.vtime, false
	for _, c := range a.clients {
		if c.asking != nil || c.holding != nil {
			if !found || c.pass < f {
				f, found = c.pass, true
			}
		}
	}
	return f
}

// Ask registers interest in a grant without blocking; fn is called, from
// the goroutine that freed the slot (never with the Arbiter's lock held),
// once the grant is issued. A client may have one ask or grant out.
func (a *Arbiter) Ask(client string, estimate time.Duration, fn func(Grant, error)) error {
	return a.AskYield(client, estimate, fn, nil)
}

// AskYield is Ask for a holder that can give its grant back early: yield
// (if not nil) is called, at most once per grant and never with the lock
// held, when another client waits while this one holds the grant. Its
// Grant carries the budget left from its Issued time on; the holder
// should report once that is spent or its stream is idle, whichever
// comes first.
func (a *Arbiter) AskYield(client string, estimate time.Duration, fn func(Grant, error), yield func(Grant)) error {
	a.mu.Lock()
	c := a.clients[client]
	switch {
	case c == nil:
		a.mu.Unlock()
		return fmt.Errorf("%w %q", ErrUnknownClient, client)
	case c.asking != nil || c.holding != nil:
		a.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrBusy, client)
	}
	now := a.cfg.Clock.Now()
	if !c.seen.After(now.Add(-recent * a.cfg.Quantum)) { // back from idle
		c.pass = max(c.pass, a.floor())
	}
	// Never owed more than a quantum.
	c.pass = max(c.pass, a.mean(c)-a.cfg.Quantum.Seconds()/c.share)
	a.seq++
	c.seen = now
	c.asking = &ask{c: c, estimate: estimate, seq: a.seq, since: now, fn: fn, yield: yield}
	a.waiting = append(a.waiting, c.asking)
	ds := a.dispatch()
	ds = append(ds, a.yields()...)
	a.mu.Unlock()
	deliver(ds)
	return nil
}

// Acquire waits for a grant until ctx ends.
func (a *Arbiter) Acquire(ctx context.Context, client string, estimate time.Duration) (Grant, error) {
	ch := make(chan delivery, 1)
	if err := a.Ask(client, estimate, func(g Grant, err error) { ch <- delivery{g: g, err: err} }); err != nil {
		return Grant{}, err
	}
	select {
	case d := <-ch:
		return d.g, d.err
	case <-ctx.Done():
	}
	a.mu.Lock()
	c := a.clients[client]
	if c != nil && c.asking != nil { // still waiting: withdraw
		a.dropAsk(c.asking)
		ds := a.dispatch()
		a.mu.Unlock()
		deliver(ds)
		return Grant{}, ctx.Err()
	}
	a.mu.Unlock()
	// Issued as ctx ended: hand it back unused.
	if d := <-ch; d.err == nil {
		a.Report(d.g, 0)
	}
	return Grant{}, ctx.Err()
}

func (a *Arbiter) dropAsk(k *ask) {
	a.waited(k, a.cfg.Clock.Now())
	for i, w := range a.waiting {
		if w == k {
			a.waiting = append(a.waiting[:i], a.waiting[i+1:]...)
			break
		}
	}
	k.c.asking = nil
}

// Report returns a grant, charging the GPU time used (which may exceed
// the budget: a kernel cannot be stopped), and issues the next grant.
func (a *Arbiter) Report(g Grant, used time.Duration) error {
	a.mu.Lock()
	c, ok := a.out[g.ID]
	if !ok {
		a.mu.Unlock()
		return fmt.Errorf("%w %d", ErrUnknownGrant, g.ID)
	}
	a.charge(c, used)
	ds := a.dispatch()
	ds = append(ds, a.yields()...)
	a.mu.Unlock()
	deliver(ds)
	return nil
}

// Renew charges used, the GPU time spent under g since it was issued or
// last renewed, and, while nobody waits for the GPU, extends g in place:
// the Grant returned has a fresh budget from now and ok is true. With
// others waiting, ok is false and the Grant returned has what is left of
// its budget from now; the holder reports it as usual once that is spent.
func (a *Arbiter) Renew(g Grant, used time.Duration) (Grant, bool, error) {
	a.mu.Lock()
	c, ok := a.out[g.ID]
	if !ok {
		a.mu.Unlock()
		return Grant{}, false, fmt.Errorf("%w %d", ErrUnknownGrant, g.ID)
	}
	c.seen = a.cfg.Clock.Now()
	a.account(c, used)
	// What was charged may bring a waiter back under its share.
	ds := a.dispatch()
	ds = append(ds, a.yields()...)
	var r Grant
	if ok = len(a.waiting) == 0 && !c.yielded; ok {
		var b time.Duration
		b, c.solo = a.budget(c)
		c.holding.Budget = max(b, a.cfg.MinGrant)
		c.holding.Issued = c.seen
		c.renewed++
		a.vtime = max(a.vtime, c.pass)
		r = *c.holding
	} else {
		r = *c.holding
		r.Budget = max(r.Issued.Add(r.Budget).Sub(c.seen), 0)
		r.Issued = c.seen
	}
	a.mu.Unlock()
	deliver(ds)
	return r, ok, nil
}

// yields tells every holder that has not yet been told that others wait,
// or holding a solo grant that others ask or hold grants beside it,
// cutting its budget to its fair one from now. Called with the lock held.
func (a *Arbiter) yields() []delivery {
	var ds []delivery
	for _, c := range a.out {
		if c.yielded || len(a.waiting) == 0 && !(c.solo && a.othersActive(c)) {
			continue
		}
		c.yielded = true
		c.spare, c.solo = c.solo, false
		now := a.cfg.Clock.Now()
		left := max(c.holding.Issued.Add(c.holding.Budget).Sub(now), 0)
		b, _ := a.budget(c)
		c.holding.Budget = min(left, max(b, a.cfg.MinGrant))
		c.holding.Issued = now
		if c.yield != nil {
			ds = append(ds, delivery{yield: c.yield, g: *c.holding})
		}
	}
	return ds
}

// othersActive reports whether a client other than c asks or holds a
// grant. Called with the lock held.
func (a *Arbiter) othersActive(c *shareClient) bool {
	if len(a.waiting) > 1 || len(a.waiting) == 1 && a.waiting[0].c != c {
		return true
	}
	for _, o := range a.out {
		if o != c {
			return true
		}
	}
	return false
}

func (a *Arbiter) charge(c *shareClient, used time.Duration) {
	c.seen = a.cfg.Clock.Now()
	delete(a.out, c.holding.ID)
	c.holding = nil
	c.yield, c.yielded = nil, false
	a.account(c, used)
	c.solo, c.spare = false, false
}

// account charges used to c: its account, the demand and its virtual
// time. The GPU time c used alone on a solo grant moves its virtual time
// no further than the competitors' mean: it pays off what c was owed,
// and is not held against it beyond.
func (a *Arbiter) account(c *shareClient, used time.Duration) {
	used = max(used, 0)
	c.used += used
	if c.spare {
		c.spare = false
		c.pass = max(c.pass, min(c.pass+used.Seconds()/c.share, a.mean(c)))
	} else {
		c.pass += used.Seconds() / c.share
	}
	a.charged(used)
}

// Tick takes back grants overdue by Timeout (a worker that hung or died),
// charging their budget. kerfd calls it every few quanta.
func (a *Arbiter) Tick() {
	a.mu.Lock()
	now := a.cfg.Clock.Now()
	for _, c := range a.out {
		if now.After(c.holding.Issued.Add(c.holding.Budget + a.cfg.Timeout)) {
			a.charge(c, c.holding.Budget)
		}
	}
	ds := a.dispatch()
	ds = append(ds, a.yields()...)
	a.mu.Unlock()
	deliver(ds)
}

// dispatch fills free slots from the waiting clients, lowest pass first
// (ties: earliest ask). Called with the lock held; the deliveries are made
// after it is released.
func (a *Arbiter) dispatch() []delivery {
	var ds []delivery
	for len(a.waiting) > 0 {
		sort.SliceStable(a.waiting, func(i, j int) bool {
			x, y := a.waiting[i], a.waiting[j]
			return x.c.pass < y.c.pass || x.c.pass == y.c.pass && x.seq < y.seq
		})
		k := a.waiting[0]
		c := k.c
		budget, solo := a.budget(c)
		if len(a.out) >= a.cfg.Slots && (budget < a.cfg.MinGrant || !a.overlap()) {
			break
		}
		a.waiting = a.waiting[1:]
		a.waited(k, a.cfg.Clock.Now())
		c.asking = nil
		c.solo, c.spare = solo, false
		if k.estimate > 0 {
			budget = min(budget, k.estimate)
		}
		budget = max(budget, a.cfg.MinGrant)
		a.nextID++
		g := Grant{ID: a.nextID, Client: c.name, Budget: budget, Issued: a.cfg.Clock.Now()}
		c.holding = &g
		c.yield, c.yielded = k.yield, false
		c.grants++
		a.out[g.ID] = c
		a.vtime = c.pass
		ds = append(ds, delivery{fn: k.fn, g: g})
	}
	return ds
}

// recent is how long after its last ask or report a client still counts
// as competing when budgets are scaled, in quanta: a tenant between two
// grants (host work, a round trip) is still in the game.
const recent = 10

// competing reports whether o counts when budgets are sized.
func (a *Arbiter) competing(o *shareClient, now time.Time) bool {
	return o.asking != nil || o.holding != nil || o.seen.After(now.Add(-recent*a.cfg.Quantum))
}

// mean returns the share-weighted mean pass of c and its competitors.
func (a *Arbiter) mean(c *shareClient) float64 {
	now := a.cfg.Clock.Now()
	sum, w := c.pass*c.share, c.share
	for _, o := range a.clients {
		if o != c && a.competing(o, now) {
			sum += o.pass * o.share
			w += o.share
		}
	}
	return sum / w
}

// budget sizes c's next grant: the quantum scaled by c's share relative
// to the largest competing share, less c's lead over the share-weighted
// mean virtual time of the competitors (plus its lag), within [0, 2
// quanta]; or Solo, and solo true, when c has no competitor.
func (a *Arbiter) budget(c *shareClient) (b time.Duration, solo bool) {
	now := a.cfg.Clock.Now()
	top, alone := c.share, true
	for _, o := range a.clients {
		if o != c && a.competing(o, now) {
			top = max(top, o.share)
			alone = false
		}
	}
	if alone {
		return a.cfg.Solo, true
	}
	f := a.cfg.Quantum.Seconds()*c.share/top - (c.pass-a.mean(c))*c.share
	return time.Duration(min(max(f, 0), 2*a.cfg.Quantum.Seconds()) * float64(time.Second)), false
}

func deliver(ds []delivery) {
	for _, d := range ds {
		switch {
		case d.fn != nil:
			d.fn(d.g, d.err)
		case d.yield != nil:
			d.yield(d.g)
		}
	}
}

// ShareStats is one client's account.
type ShareStats struct {
	Client  string        `json:"client"`
	Share   float64       `json:"share"`
	Used    time.Duration `json:"used"`
	Grants  uint64        `json:"grants"`
	Renewed uint64        `json:"renewed"`
	Waiting bool          `json:"waiting"`
	Holding bool          `json:"holding"`
}

// Stats lists the clients by name.
func (a *Arbiter) Stats() []ShareStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]ShareStats, 0, len(a.clients))
	for _, c := range a.clients {
		out = append(out, ShareStats{Client: c.name, Share: c.share, Used: c.used, Grants: c.grants, Renewed: c.renewed, Waiting: c.asking != nil, Holding: c.holding != nil})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Client < out[j].Client })
	return out
}
