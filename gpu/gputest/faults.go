package gputest

import (
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
)

// stickyCodes are the execution faults that leave a context unusable for
// good, as on CUDA.
var stickyCodes = []abi.Result{
	abi.ErrIllegalAddress, abi.ErrLaunchTimeout, abi.ErrIllegalInstruction,
	abi.ErrMisalignedAddress, abi.ErrLaunchFailed,
}

// After a kernel faults, every call of its context reports the fault,
// forever; other contexts carry on; the context still closes.
func (s *suite) testStickyFault(t *testing.T) {
	k := s.needKernels(t)
	b := s.newBackend(t)
	c, _ := s.openLimited(t, b)
	bystander, _ := s.openLimited(t, b)
	p := must[uint64](t, "MemAlloc")(c.MemAlloc(64))
	ev := must[gpu.Event](t, "EventCreate")(c.EventCreate(0))
	m := must[gpu.Module](t, "ModuleLoad")(c.ModuleLoad(k.Fault.Image))
	f := must[gpu.Function](t, "Function")(m.Function(k.Fault.Name))
	cfg, params := k.Fault.Launch(t, c)

	err := c.Launch(f, cfg, params, nil)
	if err == nil {
		err = c.Synchronize()
	}
	code := abi.ResultOf(err)
	sticky := false
	for _, sc := range stickyCodes {
		sticky = sticky || code == sc
	}
	if !sticky {
		t.Fatalf("faulting launch: %v, want one of %v", err, stickyCodes)
	}
	wantCode(t, "the fault", err, code)

	wantCode(t, "Synchronize", c.Synchronize(), code)
	wantCode(t, "Synchronize again", c.Synchronize(), code)
	wantCode(t, "MemAlloc", must2(c.MemAlloc(64)), code)
	wantCode(t, "MemFree", c.MemFree(p), code)
	wantCode(t, "MemcpyHtoD", c.MemcpyHtoD(p, []byte{1}, nil), code)
	wantCode(t, "SetMemLimit", c.SetMemLimit(0), code)
	wantCode(t, "StreamCreate", must2(c.StreamCreate(0, 0)), code)
	wantCode(t, "EventCreate", must2(c.EventCreate(0)), code)
	wantCode(t, "event Record", ev.Record(nil), code)
	wantCode(t, "ModuleLoad", must2(c.ModuleLoad(k.Ok.Image)), code)
	wantCode(t, "Launch", c.Launch(f, cfg, params, nil), code)
	wantCode(t, "Unload", m.Unload(), code)

	if s.opts.FaultsShared != "" {
		t.Logf("other contexts not checked: %s", s.opts.FaultsShared)
	} else {
		q := must[uint64](t, "MemAlloc in another context")(bystander.MemAlloc(64))
		ok(t, "MemFree in another context", bystander.MemFree(q))
		ok(t, "Synchronize of another context", bystander.Synchronize())
	}

	ok(t, "Close of a poisoned context", c.Close())
	wantCode(t, "second Close", c.Close(), abi.ErrInvalidContext)
}
