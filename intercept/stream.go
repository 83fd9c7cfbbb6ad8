package main

import (
	"math"

	"github.com/kerf-edge/kerf/abi"
)

func streamCreate(flags uint32, priority int32) (*object, Result) {
	dv, res := currentDevice()
	if res != abi.Success {
		return nil, res
	}
	if flags&^abi.StreamNonBlocking != 0 {
		return nil, abi.ErrInvalidValue
	}
	var out abi.Values
	if err := dv.cl.Call(abi.CallStreamCreate, new(abi.Values).Word(uint64(flags)).Word(uint64(uint32(priority))), &out); err != nil {
		return nil, abi.ResultOf(err)
	}
	o, res := drv.newObject(kindStream, dv, out.Words[0])
	if res != abi.Success {
		dv.cl.Call(abi.CallStreamDestroy, new(abi.Values).Word(out.Words[0]), nil)
		return nil, res
	}
	drv.mu.Lock()
	o.streamFlags = flags
	drv.mu.Unlock()
	return o, res
}

func streamDestroy(key uintptr) Result { return destroyHandle(key, kindStream, abi.CallStreamDestroy) }

// destroyHandle unregisters a stream or event handle, frees its memory and
// destroys the object on the server with call.
func destroyHandle(key uintptr, k kind, call abi.CallID) Result {
	if _, res := drv.ready(); res != abi.Success {
		return res
	}
	o, ok := drv.take(key, k)
	if !ok {
		return abi.ErrInvalidHandle
	}
	freeHandleMem(o.mem)
	return abi.ResultOf(o.dev.cl.Call(call, new(abi.Values).Word(o.wire), nil))
}

func streamSynchronize(key uintptr) Result {
	if res := refuseInCapture(key); res != abi.Success {
		return res
	}
	dv, s, res := streamOf(key)
	if res != abi.Success {
		return res
	}
	if err := dv.cl.StreamSynchronize(s); err != nil {
		return abi.ResultOf(err)
	}
	return toHost(dv)
}

func streamQuery(key uintptr) Result {
	if res := refuseInCapture(key); res != abi.Success {
		return res
	}
	dv, s, res := streamOf(key)
	if res != abi.Success {
		return res
	}
	return abi.ResultOf(dv.cl.Call(abi.CallStreamQuery, new(abi.Values).Word(s), nil))
}

func streamWaitEvent(skey, ekey uintptr, flags uint32) Result {
	dv, s, res := streamOf(skey)
	if res != abi.Success {
		return res
	}
	e, ok := drv.lookup(ekey, kindEvent)
	if !ok {
		return abi.ErrInvalidHandle
	}
	if captured, res := captureStreamWait(skey, ekey); captured {
		return res
	}
	if e.dev != dv {
		// Another device's event: no session can wait on it, so wait here.
		return abi.ResultOf(e.dev.cl.Call(abi.CallEventSynchronize, new(abi.Values).Word(e.wire), nil))
	}
	return abi.ResultOf(dv.cl.StreamWaitEvent(s, e.wire, flags))
}

func eventCreate(flags uint32) (*object, Result) {
	dv, res := currentDevice()
	if res != abi.Success {
		return nil, res
	}
	if flags&^(abi.EventBlockingSync|abi.EventDisableTiming|abi.EventInterprocess) != 0 {
		return nil, abi.ErrInvalidValue
	}
	w, err := dv.cl.EventCreate(flags)
	if err != nil {
		return nil, abi.ResultOf(err)
	}
	o, res := drv.newObject(kindEvent, dv, w)
	if res != abi.Success {
		dv.cl.Call(abi.CallEventDestroy, new(abi.Values).Word(w), nil)
	}
	return o, res
}

func event(key uintptr) (*object, Result) {
	if _, res := drv.ready(); res != abi.Success {
		return nil, res
	}
	e, ok := drv.lookup(key, kindEvent)
	if !ok {
		return nil, abi.ErrInvalidHandle
	}
	return e, abi.Success
}

func eventRecord(ekey, skey uintptr) Result {
	e, res := event(ekey)
	if res != abi.Success {
		return res
	}
	var s uint64
	if isDefaultStream(skey) {
		// The event's context's default stream, as in CUDA.
		if res := legacyStreamUse(e.dev); res != abi.Success {
			return res
		}
	} else {
		st, ok := drv.lookup(skey, kindStream)
		if !ok {
			return abi.ErrInvalidHandle
		}
		if st.dev != e.dev {
			return abi.ErrInvalidHandle
		}
		s = st.wire
	}
	if captured, res := captureEventRecord(ekey, skey); captured {
		return res
	}
	return abi.ResultOf(e.dev.cl.EventRecord(e.wire, s))
}

func eventQuery(key uintptr) Result {
	e, res := event(key)
	if res != abi.Success {
		return res
	}
	if res := capturedEventUse(key); res != abi.Success {
		return res
	}
	return abi.ResultOf(e.dev.cl.Call(abi.CallEventQuery, new(abi.Values).Word(e.wire), nil))
}

func eventSynchronize(key uintptr) Result {
	e, res := event(key)
	if res != abi.Success {
		return res
	}
	if res := capturedEventUse(key); res != abi.Success {
		return res
	}
	if err := e.dev.cl.Call(abi.CallEventSynchronize, new(abi.Values).Word(e.wire), nil); err != nil {
		return abi.ResultOf(err)
	}
	return toHost(e.dev)
}

func eventElapsed(start, end uintptr) (float32, Result) {
	a, res := event(start)
	if res != abi.Success {
		return 0, res
	}
	b, res := event(end)
	if res != abi.Success {
		return 0, res
	}
	if a.dev != b.dev {
		return 0, abi.ErrInvalidHandle
	}
	ms, err := a.dev.cl.EventElapsedTime(a.wire, b.wire)
	if err != nil {
		return 0, abi.ResultOf(err)
	}
	if math.IsNaN(float64(ms)) {
		return 0, abi.ErrInvalidValue
	}
	return ms, abi.Success
}

func eventDestroy(key uintptr) Result { return destroyHandle(key, kindEvent, abi.CallEventDestroy) }
