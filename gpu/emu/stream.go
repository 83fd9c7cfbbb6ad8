package emu

import (
	"sync"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
)

// task is one unit of stream work. It runs after every task in deps and
// after the tasks queued before it in its stream.
type task struct {
	deps []*task
	run  func() error // nil for markers (event records, waits)
	done chan struct{}
	at   time.Time // completion time, valid once done is closed
}

func newTask(run func() error) *task {
	return &task{run: run, done: make(chan struct{})}
}

func (t *task) isDone() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// after makes t wait for d, unless d is nil or already complete.
func (t *task) after(d *task) {
	if d != nil && !d.isDone() {
		t.deps = append(t.deps, d)
	}
}

// exec runs t on behalf of context c. Once c is poisoned, work is skipped
// but still completes, so that waiters are released.
func (t *task) exec(c *Context) {
	for _, d := range t.deps {
		<-d.done
	}
	t.deps = nil
	if t.run != nil && c.sticky.Load() == nil {
		if err := t.run(); err != nil {
			c.fail(err)
		}
	}
	t.run = nil
	t.at = time.Now()
	close(t.done)
}

// Stream is an ordered queue of work. A goroutine drains it while it has
// work and exits when it is empty, so idle streams cost no goroutine.
type Stream struct {
	c      *Context
	flags  uint32
	legacy bool // the context's legacy default stream

	// Guarded by c.mu.
	last      *task
	destroyed bool

	mu      sync.Mutex
	q       []*task
	running bool
}

var _ gpu.Stream = (*Stream)(nil)

func (s *Stream) blocking() bool { return s.flags&abi.StreamNonBlocking == 0 }

// push queues t and starts the drain goroutine if needed. c.mu is held.
func (s *Stream) push(t *task) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.q = append(s.q, t)
	if !s.running {
		s.running = true
		s.c.wg.Add(1)
		go s.drain()
	}
}

func (s *Stream) drain() {
	defer s.c.wg.Done()
	for {
		s.mu.Lock()
		if len(s.q) == 0 {
			s.running = false
			s.q = nil
			s.mu.Unlock()
			return
		}
		t := s.q[0]
		s.q[0] = nil
		s.q = s.q[1:]
		s.mu.Unlock()
		t.exec(s.c)
	}
}

// Synchronize waits for the stream's work.
func (s *Stream) Synchronize() error {
	return s.c.waitFor(s.lastTask)
}

// lastTask returns the stream's latest task; c.mu must be held.
func (s *Stream) lastTask() (*task, error) {
	if s.destroyed {
		return nil, errDestroyedStream
	}
	return s.last, nil
}

// queryLast reports abi.ErrNotReady, with msg, while the task that last
// returns (read with c.mu held) is pending.
func (c *Context) queryLast(last func() (*task, error), msg string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	t, err := last()
	if err != nil {
		return err
	}
	if t != nil && !t.isDone() {
		return abi.Errorf(abi.ErrNotReady, "%s", msg)
	}
	return nil
}

// waitFor waits for the task that last returns (read with c.mu held), then
// reports the context's asynchronous error, if any.
func (c *Context) waitFor(last func() (*task, error)) error {
	c.mu.Lock()
	if err := c.usable(); err != nil {
		c.mu.Unlock()
		return err
	}
	t, err := last()
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if t != nil {
		<-t.done
	}
	return c.syncErr()
}

// Query reports abi.ErrNotReady while the stream has pending work.
func (s *Stream) Query() error {
	return s.c.queryLast(s.lastTask, "stream has pending work")
}

// WaitEvent makes later work in s wait for the last record of ev.
func (s *Stream) WaitEvent(ev gpu.Event) error {
	return s.c.waitEvent(s, ev)
}

// Destroy releases the stream; work already queued still runs.
func (s *Stream) Destroy() error {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	if s.legacy {
		return abi.Errorf(abi.ErrInvalidHandle, "the default stream cannot be destroyed")
	}
	if s.destroyed {
		return errDestroyedStream
	}
	s.destroyed = true
	// The stream stays in c.streams until its work is done, so that the
	// default stream and Close still wait for it.
	c.pruneStreams()
	return nil
}

var errDestroyedStream = abi.Errorf(abi.ErrInvalidHandle, "stream was destroyed")

// Event marks a point in a stream.
type Event struct {
	c     *Context
	flags uint32

	// Guarded by c.mu.
	rec       *task // the latest record, nil before the first
	destroyed bool
}

var _ gpu.Event = (*Event)(nil)

// Record captures the work queued in s so far.
func (e *Event) Record(s gpu.Stream) error {
	c := e.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	if e.destroyed {
		return errDestroyedEvent
	}
	st, err := c.streamLocked(s)
	if err != nil {
		return err
	}
	t := newTask(nil)
	c.enqueueLocked(st, t)
	e.rec = t
	return nil
}

// Query reports abi.ErrNotReady until the last record has completed. An
// event never recorded is complete.
func (e *Event) Query() error {
	return e.c.queryLast(e.lastRecord, "event not yet reached")
}

// Synchronize waits for the last record to complete.
func (e *Event) Synchronize() error {
	return e.c.waitFor(e.lastRecord)
}

// lastRecord returns the event's latest record; c.mu must be held.
func (e *Event) lastRecord() (*task, error) {
	if e.destroyed {
		return nil, errDestroyedEvent
	}
	return e.rec, nil
}

// ElapsedSince returns the milliseconds between start's and e's records.
func (e *Event) ElapsedSince(start gpu.Event) (float32, error) {
	c := e.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return 0, err
	}
	s, ok := start.(*Event)
	if !ok || s == nil || s.c != c || s.destroyed || e.destroyed {
		return 0, abi.Errorf(abi.ErrInvalidHandle, "start event is not a live event of this context")
	}
	if (e.flags|s.flags)&abi.EventDisableTiming != 0 {
		return 0, abi.Errorf(abi.ErrInvalidHandle, "event created with timing disabled")
	}
	if e.rec == nil || s.rec == nil {
		return 0, abi.Errorf(abi.ErrInvalidHandle, "event was never recorded")
	}
	if !e.rec.isDone() || !s.rec.isDone() {
		return 0, abi.Errorf(abi.ErrNotReady, "event not yet reached")
	}
	return float32(float64(e.rec.at.Sub(s.rec.at).Nanoseconds()) / 1e6), nil
}

// Destroy releases the event.
func (e *Event) Destroy() error {
	c := e.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	if e.destroyed {
		return errDestroyedEvent
	}
	e.destroyed = true
	e.rec = nil
	delete(c.events, e)
	return nil
}

var errDestroyedEvent = abi.Errorf(abi.ErrInvalidHandle, "event was destroyed")
