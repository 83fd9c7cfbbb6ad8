//go:build cgo

package cuda

import "github.com/kerf-edge/kerf/abi"

// meter times launches with a pair of timing events recorded around each
// one on its stream. Pairs are pooled; completed pairs are harvested into
// Context.busy by BusyTime, Synchronize and Launch.
type meter struct {
	free    [][2]uintptr
	pending [][2]uintptr
	made    int
	lost    uint64 // launches not metered: too many in flight, or no events
}

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
// queued, idle again if not.
func (c *Context) settle(p [2]uintptr, launched bool) {
	if p[0] == 0 {
		return
	}
	c.bk.Lock()
	defer c.bk.Unlock()
	if launched {
		c.m.pending = append(c.m.pending, p)
	} else {
		c.m.free = append(c.m.free, p)
	}
}

// harvest adds the elapsed time of every completed pending launch to
// c.busy. op is held (either way); bk is not.
func (c *Context) harvest() {
	c.bk.Lock()
	defer c.bk.Unlock()
	keep := c.m.pending[:0]
	for _, p := range c.m.pending {
		switch r := eventQuery(c.h, p[1]); r {
		case 0:
			if ms, r := eventElapsed(c.h, p[0], p[1]); r == 0 && ms > 0 {
				c.busy.Add(int64(float64(ms) * 1e6))
			}
			c.m.free = append(c.m.free, p)
		case int(abi.ErrNotReady):
			keep = append(keep, p)
		default:
			// A faulted context: the launch's time is unknowable.
			c.m.lost++
			c.m.free = append(c.m.free, p)
		}
	}
	clear(c.m.pending[len(keep):])
	c.m.pending = keep
}

// Unmetered counts launches whose GPU time BusyTime does not include.
func (c *Context) Unmetered() uint64 {
	c.bk.Lock()
	defer c.bk.Unlock()
	return c.m.lost
}
