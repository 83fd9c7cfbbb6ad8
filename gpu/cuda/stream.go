//go:build cgo

package cuda

import (
	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
)

// Stream is a driver stream of a context.
type Stream struct {
	c         *Context
	h         uintptr // replaced, under c.op held for writing, when the context moves partition
	flags     uint32
	priority  int32
	destroyed bool // guarded by c.bk
}

var _ gpu.Stream = (*Stream)(nil)

var (
	errDestroyedStream = abi.Errorf(abi.ErrInvalidHandle, "stream was destroyed")
	errDestroyedEvent  = abi.Errorf(abi.ErrInvalidHandle, "event was destroyed")
)

// StreamCreate creates a stream (abi.StreamNonBlocking: no implicit
// synchronisation with the legacy default stream) with a priority, which
// the driver clamps to the device's range.
func (c *Context) StreamCreate(flags uint32, priority int32) (gpu.Stream, error) {
	if err := c.enter(); err != nil {
		return nil, err
	}
	defer c.op.RUnlock()
	if flags&^abi.StreamNonBlocking != 0 {
		return nil, abi.Errorf(abi.ErrInvalidValue, "unknown stream flags %#x", flags)
	}
	h, r := streamCreate(c.h, flags, priority)
	if err := c.check("cuStreamCreateWithPriority", r); err != nil {
		return nil, err
	}
	st := &Stream{c: c, h: h, flags: flags, priority: priority}
	c.bk.Lock()
	c.streams[st] = struct{}{}
	c.bk.Unlock()
	return st, nil
}

// live checks the context and the stream; op is held on success.
func (s *Stream) live() error {
	if err := s.c.enter(); err != nil {
		return err
	}
	s.c.bk.Lock()
	d := s.destroyed
	s.c.bk.Unlock()
	if d {
		s.c.op.RUnlock()
		return errDestroyedStream
	}
	return nil
}

// Synchronize waits for the stream's work.
func (s *Stream) Synchronize() error {
	if err := s.live(); err != nil {
		return err
	}
	defer s.c.op.RUnlock()
	return s.c.check("cuStreamSynchronize", streamSync(s.c.h, s.h))
}

// Query returns abi.ErrNotReady while the stream has pending work.
func (s *Stream) Query() error {
	if err := s.live(); err != nil {
		return err
	}
	defer s.c.op.RUnlock()
	return s.c.check("cuStreamQuery", streamQuery(s.c.h, s.h))
}

// WaitEvent makes later work in s wait for ev's last record.
func (s *Stream) WaitEvent(ev gpu.Event) error {
	if err := s.live(); err != nil {
		return err
	}
	defer s.c.op.RUnlock()
	eh, err := s.c.eventHandle(ev)
	if err != nil {
		return err
	}
	return s.c.check("cuStreamWaitEvent", streamWait(s.c.h, s.h, eh))
}

// Destroy releases the stream; work already queued still runs.
func (s *Stream) Destroy() error {
	c := s.c
	c.op.Lock()
	defer c.op.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	c.bk.Lock()
	d := s.destroyed
	s.destroyed = true
	delete(c.streams, s)
	c.bk.Unlock()
	if d {
		return errDestroyedStream
	}
	return c.check("cuStreamDestroy", streamDestroy(c.h, s.h))
}

// Event is a driver event of a context.
type Event struct {
	c         *Context
	h         uintptr
	flags     uint32
	destroyed bool // guarded by c.bk
}

var _ gpu.Event = (*Event)(nil)

// EventCreate creates an event.
func (c *Context) EventCreate(flags uint32) (gpu.Event, error) {
	if err := c.enter(); err != nil {
		return nil, err
	}
	defer c.op.RUnlock()
	const known = abi.EventBlockingSync | abi.EventDisableTiming | abi.EventInterprocess
	if flags&^known != 0 {
		return nil, abi.Errorf(abi.ErrInvalidValue, "unknown event flags %#x", flags)
	}
	if flags&abi.EventInterprocess != 0 {
		// An IPC handle would let another process see this tenant's event.
		return nil, abi.Errorf(abi.ErrNotSupported, "interprocess events are not served")
	}
	h, r := eventCreate(c.h, flags)
	if err := c.check("cuEventCreate", r); err != nil {
		return nil, err
	}
	return &Event{c: c, h: h, flags: flags}, nil
}

// eventHandle resolves ev to a live CUevent of this context.
func (c *Context) eventHandle(ev gpu.Event) (uintptr, error) {
	e, ok := ev.(*Event)
	if !ok || e == nil || e.c != c {
		return 0, abi.Errorf(abi.ErrInvalidHandle, "event does not belong to this context")
	}
	c.bk.Lock()
	defer c.bk.Unlock()
	if e.destroyed {
		return 0, errDestroyedEvent
	}
	return e.h, nil
}

// enterEvent checks the context and the event; op is held on success.
func (e *Event) enter() error {
	if err := e.c.enter(); err != nil {
		return err
	}
	if _, err := e.c.eventHandle(e); err != nil {
		e.c.op.RUnlock()
		return err
	}
	return nil
}

// Record captures the work queued in s so far.
func (e *Event) Record(s gpu.Stream) error {
	if err := e.enter(); err != nil {
		return err
	}
	defer e.c.op.RUnlock()
	sh, err := e.c.streamHandle(s)
	if err != nil {
		return err
	}
	return e.c.check("cuEventRecord", eventRecord(e.c.h, e.h, sh))
}

// Query returns abi.ErrNotReady until the last record has completed.
func (e *Event) Query() error {
	if err := e.enter(); err != nil {
		return err
	}
	defer e.c.op.RUnlock()
	return e.c.check("cuEventQuery", eventQuery(e.c.h, e.h))
}

// Synchronize waits for the last record to complete.
func (e *Event) Synchronize() error {
	if err := e.enter(); err != nil {
		return err
	}
	defer e.c.op.RUnlock()
	return e.c.check("cuEventSynchronize", eventSync(e.c.h, e.h))
}

// ElapsedSince returns the milliseconds from start's record to e's.
func (e *Event) ElapsedSince(start gpu.Event) (float32, error) {
	if err := e.enter(); err != nil {
		return 0, err
	}
	defer e.c.op.RUnlock()
	sh, err := e.c.eventHandle(start)
	if err != nil {
		return 0, err
	}
	ms, r := eventElapsed(e.c.h, sh, e.h)
	return ms, e.c.check("cuEventElapsedTime", r)
}

// Destroy releases the event.
func (e *Event) Destroy() error {
	c := e.c
	c.op.Lock()
	defer c.op.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	c.bk.Lock()
	d := e.destroyed
	e.destroyed = true
	c.bk.Unlock()
	if d {
		return errDestroyedEvent
	}
	return c.check("cuEventDestroy", eventDestroy(c.h, e.h))
}
