//go:build cgo

package cuda

import "github.com/kerf-edge/kerf/abi"

// A partitioned context is a green context: its kernels run on its SMs
// alone. Memory and modules belong to the device's primary context,
// which every green context of the process shares, so a context moves
// to another partition without copying anything: at its next launch,
// once its queued work has finished, a green context of the new
// partition replaces the old one, its streams are recreated there, and
// the old green context is destroyed.

// moveTo makes the context move to partition p at its next launch.
func (c *Context) moveTo(p SMPartition) { c.pending.Store(&p) }

// Partition is the context's SM partition and its SM count; ok is false
// for a context that is not partitioned.
func (c *Context) Partition() (p SMPartition, sms int, ok bool) {
	c.op.RLock()
	defer c.op.RUnlock()
	if c.part == nil {
		return SMPartition{}, 0, false
	}
	return c.part.p, c.part.sms, true
}

// MoveError is why the context's last move to another partition failed;
// nil if it succeeded or none was tried. A failed move leaves the
// context's kernels on the SMs they had.
func (c *Context) MoveError() error {
	b, _ := c.moveErr.Load().(errBox)
	return b.err
}

// applyMove moves the context to its pending partition, if any: a kernel
// boundary, since it holds op for writing, so that no launch is being
// queued, and waits for what was queued. A move that fails leaves the
// context, and its streams, where they were, until the next partition it
// is given (MoveError says why).
func (c *Context) applyMove() error {
	c.op.Lock()
	defer c.op.Unlock()
	want := c.pending.Swap(nil)
	if want == nil || c.part == nil || c.usable() != nil || *want == c.part.p {
		return nil
	}
	if err := c.check("cuCtxSynchronize", ctxSync(c.h)); err != nil {
		return err
	}
	c.harvest()
	green, h, sms, r := greenCreate(c.dev, c.part.minSMs, *want)
	if r != 0 {
		return abi.Errorf(mapResult(r), "moving to %v: %v", *want, driverError("cuGreenCtxCreate", r))
	}
	c.bk.Lock()
	defer c.bk.Unlock()
	moved := make(map[*Stream]uintptr, len(c.streams))
	for st := range c.streams {
		nh, r := streamCreate(h, st.flags, st.priority)
		if r != 0 {
			for _, nh := range moved {
				streamDestroy(h, nh)
			}
			greenDestroy(green)
			return abi.Errorf(mapResult(r), "moving to %v: %v", *want, driverError("cuStreamCreateWithPriority", r))
		}
		moved[st] = nh
	}
	for st, nh := range moved {
		streamDestroy(c.h, st.h)
		st.h = nh
	}
	// The meter's idle events were made in the old green context.
	for _, p := range c.m.free {
		eventDestroy(c.h, p[0])
		eventDestroy(c.h, p[1])
	}
	c.m.made -= len(c.m.free)
	c.m.free = nil
	old := c.part.green
	c.h = h
	c.part = &greenPart{minSMs: c.part.minSMs, p: *want, green: green, sms: sms}
	greenDestroy(old)
	return nil
}
