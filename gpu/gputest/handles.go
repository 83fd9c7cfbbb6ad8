package gputest

import (
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/abi/fatbin/fatbintest"
	"github.com/kerf-edge/kerf/gpu"
)

const gone = abi.ErrInvalidHandle

func (s *suite) testStreamLifetime(t *testing.T) {
	c, _ := s.openLimited(t, s.newBackend(t))
	p := must[uint64](t, "MemAlloc")(c.MemAlloc(64))
	buf := make([]byte, 64)
	wantCode(t, "StreamCreate with unknown flags", must2(c.StreamCreate(1<<20, 0)), abi.ErrInvalidValue)
	st := must[gpu.Stream](t, "StreamCreate")(c.StreamCreate(0, 0))
	other := must[gpu.Stream](t, "StreamCreate")(c.StreamCreate(abi.StreamNonBlocking, 0))
	ev := must[gpu.Event](t, "EventCreate")(c.EventCreate(0))
	ok(t, "MemcpyHtoD on a stream", c.MemcpyHtoD(p, buf, st))
	ok(t, "stream Synchronize", st.Synchronize())
	ok(t, "stream Query after Synchronize", st.Query())
	ok(t, "stream Destroy", st.Destroy())

	wantCode(t, "second Destroy", st.Destroy(), gone)
	wantCode(t, "Synchronize", st.Synchronize(), gone)
	wantCode(t, "Query", st.Query(), gone)
	wantCode(t, "WaitEvent", st.WaitEvent(ev), gone)
	wantCode(t, "MemcpyHtoD", c.MemcpyHtoD(p, buf, st), gone)
	wantCode(t, "MemcpyDtoH", c.MemcpyDtoH(buf, p, st), gone)
	wantCode(t, "MemcpyDtoD", c.MemcpyDtoD(p+32, p, 16, st), gone)
	wantCode(t, "Memset", c.Memset(p, 0, 1, 64, st), gone)
	wantCode(t, "event Record", ev.Record(st), gone)

	ok(t, "MemcpyHtoD on another stream", c.MemcpyHtoD(p, buf, other))
	ok(t, "the other stream's Synchronize", other.Synchronize())
	ok(t, "the other stream's Destroy", other.Destroy())
	ok(t, "MemFree", c.MemFree(p))
	ok(t, "Synchronize", c.Synchronize())
}

func (s *suite) testEventLifetime(t *testing.T) {
	c, _ := s.openLimited(t, s.newBackend(t))
	wantCode(t, "EventCreate with unknown flags", must2(c.EventCreate(1<<20)), abi.ErrInvalidValue)
	start := must[gpu.Event](t, "EventCreate")(c.EventCreate(0))
	end := must[gpu.Event](t, "EventCreate")(c.EventCreate(0))
	st := must[gpu.Stream](t, "StreamCreate")(c.StreamCreate(0, 0))
	ok(t, "Record", start.Record(nil))
	ok(t, "Record", end.Record(st))
	ok(t, "event Synchronize", end.Synchronize())
	ok(t, "event Query after Synchronize", end.Query())
	ok(t, "stream WaitEvent", st.WaitEvent(end))
	if ms, err := end.ElapsedSince(start); err != nil || ms < 0 {
		t.Fatalf("ElapsedSince = %v, %v", ms, err)
	}
	ok(t, "event Destroy", start.Destroy())

	wantCode(t, "second Destroy", start.Destroy(), gone)
	wantCode(t, "Record", start.Record(nil), gone)
	wantCode(t, "Query", start.Query(), gone)
	wantCode(t, "Synchronize", start.Synchronize(), gone)
	wantCode(t, "ElapsedSince a destroyed start", must2(end.ElapsedSince(start)), gone)
	wantCode(t, "ElapsedSince of a destroyed event", must2(start.ElapsedSince(end)), gone)
	wantCode(t, "stream WaitEvent", st.WaitEvent(start), gone)
	ok(t, "the other event's Destroy", end.Destroy())
	ok(t, "stream Destroy", st.Destroy())
}

// A context never accepts another context's streams, events, functions or
// allocations.
func (s *suite) testForeignHandles(t *testing.T) {
	b := s.newBackend(t)
	c1, c2 := s.open(t, b, s.opts.MemLimit), s.open(t, b, s.opts.MemLimit)
	p1 := must[uint64](t, "MemAlloc")(c1.MemAlloc(64))
	p2 := must[uint64](t, "MemAlloc")(c2.MemAlloc(64))
	s1 := must[gpu.Stream](t, "StreamCreate")(c1.StreamCreate(0, 0))
	s2 := must[gpu.Stream](t, "StreamCreate")(c2.StreamCreate(0, 0))
	e1 := must[gpu.Event](t, "EventCreate")(c1.EventCreate(0))
	e2 := must[gpu.Event](t, "EventCreate")(c2.EventCreate(0))
	ok(t, "Record", e2.Record(s2))

	wantCode(t, "MemcpyHtoD on another context's stream", c1.MemcpyHtoD(p1, make([]byte, 8), s2), gone)
	wantCode(t, "Record on another context's stream", e1.Record(s2), gone)
	wantCode(t, "WaitEvent on another context's event", s1.WaitEvent(e2), gone)
	wantCode(t, "ElapsedSince another context's event", must2(e1.ElapsedSince(e2)), gone)
	wantCode(t, "MemFree of another context's allocation", c1.MemFree(p2), abi.ErrInvalidValue)
	if k := s.opts.Kernels; k != nil {
		m := must[gpu.Module](t, "ModuleLoad")(c2.ModuleLoad(k.Ok.Image))
		f := must[gpu.Function](t, "Function")(m.Function(k.Ok.Name))
		cfg, params := k.Ok.Launch(t, c1)
		wantCode(t, "Launch of another context's function", c1.Launch(f, cfg, params, nil), gone)
		ok(t, "Unload", m.Unload())
	}
	ok(t, "MemFree", c2.MemFree(p2))
	ok(t, "MemFree", c1.MemFree(p1))
}

func (s *suite) testModuleLifetime(t *testing.T) {
	k := s.needKernels(t)
	c, _ := s.openLimited(t, s.newBackend(t))
	wantError(t, "ModuleLoad of an empty image", must2(c.ModuleLoad(nil)))
	for name, img := range fatbintest.Malformed() {
		wantCode(t, "ModuleLoad of a "+name, must2(c.ModuleLoad(img)), abi.ErrInvalidImage)
	}
	m := must[gpu.Module](t, "ModuleLoad")(c.ModuleLoad(k.Ok.Image))
	f := must[gpu.Function](t, "Function")(m.Function(k.Ok.Name))
	must[[]abi.ParamInfo](t, "Params")(f.Params())
	wantCode(t, "Function of a name not in the module", must2(m.Function("kerf_no_such_kernel")), abi.ErrNotFound)
	cfg, params := k.Ok.Launch(t, c)
	st := must[gpu.Stream](t, "StreamCreate")(c.StreamCreate(0, 0))
	ok(t, "Launch", c.Launch(f, cfg, params, st))
	ok(t, "stream Synchronize", st.Synchronize())
	ok(t, "stream Destroy", st.Destroy())
	wantCode(t, "Launch on a destroyed stream", c.Launch(f, cfg, params, st), gone)
	ok(t, "Launch on the default stream", c.Launch(f, cfg, params, nil))
	ok(t, "Unload", m.Unload())

	wantCode(t, "second Unload", m.Unload(), gone)
	wantCode(t, "Function of an unloaded module", must2(m.Function(k.Ok.Name)), gone)
	_, _, err := m.Global("kerf_global")
	wantCode(t, "Global of an unloaded module", err, gone)
	wantCode(t, "Params of an unloaded module's function", must2(f.Params()), gone)
	wantCode(t, "Attribute of an unloaded module's function", must2(f.Attribute(abi.FuncAttrMaxThreadsPerBlock)), gone)
	wantCode(t, "Launch of an unloaded module's function", c.Launch(f, cfg, params, nil), gone)
	ok(t, "Synchronize", c.Synchronize())
}

// What a module takes from the quota, unloading returns.
func (s *suite) testModuleQuota(t *testing.T) {
	k := s.needKernels(t)
	c, free := s.openLimited(t, s.newBackend(t))
	m := must[gpu.Module](t, "ModuleLoad")(c.ModuleLoad(k.Ok.Image))
	if f, _ := c.MemInfo(); f > free {
		t.Fatalf("%d bytes free after a module load, %d before", f, free)
	}
	ok(t, "Unload", m.Unload())
	wantInfo(t, "after Unload", c, free, s.opts.MemLimit)
}

// wantError fails unless err is an *abi.Error (any code).
func wantError(t *testing.T, what string, err error) {
	t.Helper()
	if abi.ResultOf(err) == abi.Success {
		t.Fatalf("%s succeeded", what)
	}
	wantCode(t, what, err, abi.ResultOf(err))
}
