package main

import (
	"sync"

	"github.com/kerf-edge/kerf/abi"
)

// Host functions (cuLaunchHostFunc, cuStreamAddCallback) run in the
// program's process, in stream order: the shim records an event after the
// stream's earlier work, and the stream's worker goroutine waits for it,
// then calls the function. Work the program adds to the stream later
// waits, in streamOf, until the stream's queued functions have run; work
// on the legacy default stream and cuCtxSynchronize wait for every
// stream's of the device.

// hostCall is one queued host function.
// The program's pointers are kept as integers: they need not point at
// anything (user data is often a small number).
type hostCall struct {
	fn, data uintptr
	stream   uintptr // the program's stream handle, for a stream callback
	callback bool    // a CUstreamCallback, not a CUhostFn
	// goFn, when set, is the shim's own work in stream order (a
	// stream-ordered free), run instead of fn.
	goFn func()
	ev   uint64
}

// hostQueue runs one stream's host functions in order.
type hostQueue struct {
	dv      *device
	work    chan hostCall
	mu      sync.Mutex
	cond    *sync.Cond
	pending int // queued and not yet finished
}

type queueKey struct {
	dv     *device
	stream uint64
}

var hostQueues struct {
	mu sync.Mutex
	m  map[queueKey]*hostQueue
}

// hostQueueBacklog bounds the functions queued on one stream before the
// program's thread waits to queue more.
const hostQueueBacklog = 1024

func hostQueueFor(dv *device, s uint64) *hostQueue {
	hostQueues.mu.Lock()
	defer hostQueues.mu.Unlock()
	k := queueKey{dv, s}
	if q := hostQueues.m[k]; q != nil {
		return q
	}
	if hostQueues.m == nil {
		hostQueues.m = map[queueKey]*hostQueue{}
	}
	q := &hostQueue{dv: dv, work: make(chan hostCall, hostQueueBacklog)}
	q.cond = sync.NewCond(&q.mu)
	hostQueues.m[k] = q
	go q.run()
	return q
}

// run calls each queued function once its event has completed, passing a
// stream callback the stream's error, if any.
func (q *hostQueue) run() {
	for c := range q.work {
		status := abi.ResultOf(q.dv.cl.Call(abi.CallEventSynchronize, new(abi.Values).Word(c.ev), nil))
		q.dv.cl.Call(abi.CallEventDestroy, new(abi.Values).Word(c.ev), nil) //nolint:errcheck // the shim's own event
		switch {
		case c.goFn != nil:
			c.goFn()
		case c.callback:
			callStreamCallback(c.fn, c.stream, status, c.data)
		default:
			callHostFn(c.fn, c.data)
		}
		q.mu.Lock()
		q.pending--
		q.cond.Broadcast()
		q.mu.Unlock()
	}
}

// waitHostCalls returns once the host functions queued on stream s of dv
// have run; for the legacy default stream (0), those of every stream.
func waitHostCalls(dv *device, s uint64) {
	hostQueues.mu.Lock()
	var qs []*hostQueue
	for k, q := range hostQueues.m {
		if k.dv == dv && (s == 0 || k.stream == s) {
			qs = append(qs, q)
		}
	}
	hostQueues.mu.Unlock()
	for _, q := range qs {
		q.mu.Lock()
		for q.pending > 0 {
			q.cond.Wait()
		}
		q.mu.Unlock()
	}
}

// cuEventDisableTiming is CU_EVENT_DISABLE_TIMING.
const cuEventDisableTiming = 2

// launchHostCall queues c on the stream with handle key.
func launchHostCall(key uintptr, c hostCall) Result {
	if c.fn == 0 {
		return abi.ErrInvalidValue
	}
	dv, s, res := resolveStream(key)
	if res == abi.Success && isDefaultStream(key) {
		res = legacyStreamUse(dv)
	}
	if res != abi.Success {
		return res
	}
	if c.callback {
		// Stream callbacks cannot be captured; host functions can.
		if res := refuseInCapture(key); res != abi.Success {
			return res
		}
		return queueHostCall(dv, s, c)
	}
	return submit(key, dv, s, nodeHost, func(dv *device, s uint64) Result { return queueHostCall(dv, s, c) })
}

// queueHostCall queues c on stream s of dv, after the stream's work so far.
func queueHostCall(dv *device, s uint64, c hostCall) Result {
	ev, err := dv.cl.EventCreate(cuEventDisableTiming)
	if err != nil {
		return abi.ResultOf(err)
	}
	if err := dv.cl.EventRecord(ev, s); err != nil {
		dv.cl.Call(abi.CallEventDestroy, new(abi.Values).Word(ev), nil) //nolint:errcheck // refused before use
		return abi.ResultOf(err)
	}
	c.ev = ev
	q := hostQueueFor(dv, s)
	q.mu.Lock()
	q.pending++
	q.mu.Unlock()
	q.work <- c
	return abi.Success
}
