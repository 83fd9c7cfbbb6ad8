//go:build cgo

package cuda

import (
	"time"

	"github.com/kerf-edge/kerf/abi"
)

// meter times launches with a pair of timing events recorded around each
// one on its stream. Pairs are pooled; completed pairs are harvested into
// Context.busy by BusyTime, Synchronize and Launch, and, for a context
// paced by a gpu.Gate, by a watcher while launches are pending, which
// charges each launch's measured time to the gate as it completes.
type meter struct {
	free     [][2]uintptr
	pending  []metered
	made     int
	lost     uint64 // launches not metered: too many in flight, or no events
	watching bool   // a watcher harvests while launches are pending
}

// metered is a launch in flight: its event pair and the gate's charge.
type metered struct {
	p    [2]uintptr
	done func(time.Duration)
}

// watchEvery is how often the watcher looks for completed launches.
const watchEvery = 100 * time.Microsecond

// maxMeterPairs bounds the event pairs (and so unharvested launches) of a
// context; launches beyond it run unmetered and are counted in lost.
const maxMeterPairs = 512

// pair returns an idle event pair, or zeros when none can be had. op is
// held; bk is not.
func (c *Context) pair() [2]uintptr {
	c.bk.Lock()
	if n := len(c.m.free); n > 0 {
		p := c.m.free[n-1]
		c.m.free = c.m.free[:n-1]
		c.bk.Unlock()
		return p
	}
	full := c.m.made >= maxMeterPairs
	c.bk.Unlock()
	if full {
		c.harvest()
		c.bk.Lock()
		defer c.bk.Unlock()
		if n := len(c.m.free); n > 0 {
			p := c.m.free[n-1]
			c.m.free = c.m.free[:n-1]
			return p
		}
		c.m.lost++
		return [2]uintptr{}
	}
	e0, r0 := eventCreate(c.h, abi.EventDefault)
	e1, r1 := eventCreate(c.h, abi.EventDefault)
	c.bk.Lock()
	defer c.bk.Unlock()
	if r0 != 0 || r1 != 0 {
		if r0 == 0 {
			eventDestroy(c.h, e0)
		}
		if r1 == 0 {
			eventDestroy(c.h, e1)
		}
		c.m.lost++
		return [2]uintptr{}
	}
	c.m.made++
	return [2]uintptr{e0, e1}
}

// settle files a pair after its launch: pending if the launch was
// queued, idle again if not. done (nil: none) is the gate's charge: told
// the launch's time when it completes, zero if it was not queued or
// cannot be metered.
func (c *Context) settle(p [2]uintptr, launched bool, done func(time.Duration)) {
	if p[0] == 0 || !launched {
		if done != nil {
			done(0)
		}
		if p[0] == 0 {
			return
		}
	}
	c.bk.Lock()
	defer c.bk.Unlock()
	if !launched {
		c.m.free = append(c.m.free, p)
		return
	}
	c.m.pending = append(c.m.pending, metered{p: p, done: done})
	if done != nil && !c.m.watching {
		c.m.watching = true
		go c.watch()
	}
}

// watch harvests while launches are pending, so that a gate hears of
// each launch's time as it completes; it ends when none are.
func (c *Context) watch() {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for range t.C {
		if c.enter() != nil {
			c.stopWatching()
			return
		}
		c.harvest()
		c.op.RUnlock()
		c.bk.Lock()
		idle := len(c.m.pending) == 0
		if idle {
			c.m.watching = false
		}
		c.bk.Unlock()
		if idle {
			return
		}
	}
}

// stopWatching settles a closed context's watcher: what is pending will
// never be harvested, so its charges go to the gate as zero.
func (c *Context) stopWatching() {
	c.bk.Lock()
	c.m.watching = false
	var dones []func(time.Duration)
	for _, m := range c.m.pending {
		if m.done != nil {
			dones = append(dones, m.done)
		}
	}
	c.m.pending = nil
	c.bk.Unlock()
	for _, d := range dones {
		d(0)
	}
}

// harvest adds the elapsed time of every completed pending launch to
// c.busy and charges it to the launch's gate. op is held (either way); bk
// is not.
func (c *Context) harvest() {
	type charge struct {
		done func(time.Duration)
		d    time.Duration
	}
	var charges []charge
	c.bk.Lock()
	keep := c.m.pending[:0]
	for _, m := range c.m.pending {
		p := m.p
		var d time.Duration
		switch r := eventQuery(c.h, p[1]); r {
		case 0:
			if ms, r := eventElapsed(c.h, p[0], p[1]); r == 0 && ms > 0 {
				d = time.Duration(float64(ms) * 1e6)
				c.busy.Add(int64(d))
			}
			c.m.free = append(c.m.free, p)
		case int(abi.ErrNotReady):
			keep = append(keep, m)
			continue
		default:
			// A faulted context: the launch's time is unknowable.
			c.m.lost++
			c.m.free = append(c.m.free, p)
		}
		if m.done != nil {
			charges = append(charges, charge{m.done, d})
		}
	}
	clear(c.m.pending[len(keep):])
	c.m.pending = keep
	c.bk.Unlock()
	// The gate's charges are made outside bk: a gate may block.
	for _, ch := range charges {
		ch.done(ch.d)
	}
}

// Unmetered counts launches whose GPU time BusyTime does not include.
func (c *Context) Unmetered() uint64 {
	c.bk.Lock()
	defer c.bk.Unlock()
	return c.m.lost
}
