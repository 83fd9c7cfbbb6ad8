package emu

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/abi/fatbin"
	"github.com/kerf-edge/kerf/abi/fatbin/fatbintest"
	"github.com/kerf-edge/kerf/gpu/emu/ptx"
)

func TestLaunchLimits(t *testing.T) {
	b := fakeBackend(Config{}, gateProgram(nil))
	c := open(t, b, 0, 0)
	poke := fn(t, c, "poke")
	buf := must(c.MemAlloc(8))(t)
	p := ptrParam(buf)
	d := func(x, y, z uint32) abi.Dim3 { return abi.Dim3{X: x, Y: y, Z: z} }
	for _, tc := range []struct {
		name   string
		cfg    abi.LaunchConfig
		params []byte
		want   abi.Result
	}{
		{"ok", abi.LaunchConfig{Grid: d(1, 1, 1), Block: d(1, 1, 1)}, p, abi.Success},
		{"max block", abi.LaunchConfig{Grid: d(1, 1, 1), Block: d(1024, 1, 1)}, p, abi.Success},
		{"max grid", abi.LaunchConfig{Grid: d(1, 65535, 1), Block: d(1, 1, 1)}, p, abi.Success},
		{"zero grid", abi.LaunchConfig{Grid: d(0, 1, 1), Block: d(1, 1, 1)}, p, abi.ErrInvalidValue},
		{"zero block z", abi.LaunchConfig{Grid: d(1, 1, 1), Block: d(1, 1, 0)}, p, abi.ErrInvalidValue},
		{"block x", abi.LaunchConfig{Grid: d(1, 1, 1), Block: d(1025, 1, 1)}, p, abi.ErrInvalidValue},
		{"block z", abi.LaunchConfig{Grid: d(1, 1, 1), Block: d(1, 1, 65)}, p, abi.ErrInvalidValue},
		{"block threads", abi.LaunchConfig{Grid: d(1, 1, 1), Block: d(32, 32, 2)}, p, abi.ErrInvalidValue},
		{"block overflow", abi.LaunchConfig{Grid: d(1, 1, 1), Block: d(1<<31, 1<<31, 4)}, p, abi.ErrInvalidValue},
		{"grid x", abi.LaunchConfig{Grid: d(1<<31, 1, 1), Block: d(1, 1, 1)}, p, abi.ErrInvalidValue},
		{"grid y", abi.LaunchConfig{Grid: d(1, 65536, 1), Block: d(1, 1, 1)}, p, abi.ErrInvalidValue},
		{"grid z", abi.LaunchConfig{Grid: d(1, 1, 65536), Block: d(1, 1, 1)}, p, abi.ErrInvalidValue},
		{"shared 48K", abi.LaunchConfig{Grid: d(1, 1, 1), Block: d(1, 1, 1), SharedBytes: 48 << 10}, p, abi.Success},
		{"shared too much", abi.LaunchConfig{Grid: d(1, 1, 1), Block: d(1, 1, 1), SharedBytes: 48<<10 + 1}, p, abi.ErrInvalidValue},
		{"short params", abi.LaunchConfig{Grid: d(1, 1, 1), Block: d(1, 1, 1)}, p[:7], abi.ErrInvalidValue},
		{"nil params", abi.LaunchConfig{Grid: d(1, 1, 1), Block: d(1, 1, 1)}, nil, abi.ErrInvalidValue},
		{"long params", abi.LaunchConfig{Grid: d(1, 1, 1), Block: d(1, 1, 1)}, append(p, 1, 2, 3), abi.Success},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, c.Launch(poke, tc.cfg, tc.params, nil), tc.want) })
	}
	ok(t, c.Synchronize())

	// Raising the dynamic shared limit, as cuFuncSetAttribute does.
	f := poke.(*Function)
	wantCode(t, f.SetAttribute(abi.FuncAttrMaxDynamicShared, 96<<10+1), abi.ErrInvalidValue)
	wantCode(t, f.SetAttribute(abi.FuncAttrNumRegs, 1), abi.ErrInvalidValue)
	ok(t, f.SetAttribute(abi.FuncAttrMaxDynamicShared, 96<<10))
	ok(t, c.Launch(poke, abi.LaunchConfig{Grid: d(1, 1, 1), Block: d(1, 1, 1), SharedBytes: 96 << 10}, p, nil))

	// Handles that are not this context's functions.
	other := open(t, b, 0, 0)
	foreign := fn(t, other, "poke")
	wantCode(t, c.Launch(foreign, abi.LaunchConfig{Grid: d(1, 1, 1), Block: d(1, 1, 1)}, p, nil), abi.ErrInvalidHandle)
	wantCode(t, c.Launch(nil, abi.LaunchConfig{Grid: d(1, 1, 1), Block: d(1, 1, 1)}, p, nil), abi.ErrInvalidHandle)
	wantCode(t, c.Launch((*Function)(nil), abi.LaunchConfig{Grid: d(1, 1, 1), Block: d(1, 1, 1)}, p, nil), abi.ErrInvalidHandle)
	ok(t, c.Synchronize())
}

func TestFunctionAttributes(t *testing.T) {
	b := fakeBackend(Config{}, gateProgram(nil))
	c := open(t, b, 0, 0)
	f := fn(t, c, "poke")
	for _, tc := range []struct {
		attr uint32
		want int32
	}{
		{abi.FuncAttrMaxThreadsPerBlock, 1024},
		{abi.FuncAttrSharedSizeBytes, 0},
		{abi.FuncAttrPTXVersion, 70},
		{abi.FuncAttrBinaryVersion, 80},
		{abi.FuncAttrMaxDynamicShared, 48 << 10},
	} {
		got, err := f.Attribute(tc.attr)
		if err != nil || got != tc.want {
			t.Errorf("attribute %d = %d, %v; want %d", tc.attr, got, err, tc.want)
		}
	}
	_, err := f.Attribute(99)
	wantCode(t, err, abi.ErrInvalidValue)
	ps := must(f.Params())(t)
	if len(ps) != 1 || ps[0] != (abi.ParamInfo{Offset: 0, Size: 8}) {
		t.Errorf("params = %v", ps)
	}
}

func TestModuleFormats(t *testing.T) {
	b := fakeBackend(Config{}, gateProgram(nil))
	c := open(t, b, 0, 0)
	ptx80 := fatbintest.PTX(80, []byte(".version 7.0\n.target sm_70\n"), false)
	for _, tc := range []struct {
		name  string
		image []byte
		want  abi.Result
	}{
		{"ptx", []byte(".version 7.0\n.target sm_70\n"), abi.Success},
		{"ptx with comments and NUL", []byte("  /* x */\n// y\n\t.version 8.0\x00"), abi.Success},
		{"cubin", fatbintest.ELF(128), abi.ErrNotSupported},
		{"truncated cubin", []byte("\x7fELF\x02\x01\x01"), abi.ErrInvalidImage},
		{"fatbin", fatbintest.Container(ptx80), abi.Success},
		{"fatbin truncated", fatbintest.Container(ptx80)[:70], abi.ErrInvalidImage},
		{"fatbin header only", binary.LittleEndian.AppendUint32(nil, 0xBA55ED50), abi.ErrInvalidImage},
		{"fatbin of cubins", fatbintest.Container(fatbintest.Entry{Kind: fatbin.KindELF, Arch: 80, Payload: fatbintest.ELF(128)}), abi.ErrNoBinaryForGPU},
		{"fatbin for a newer GPU", fatbintest.Container(fatbintest.PTX(90, []byte(".version 7.0\n"), false)), abi.ErrNoBinaryForGPU},
		{"fatbin wrapper", fatbintest.Wrapper(0x1000), abi.ErrInvalidImage},
		{"garbage", []byte("hello"), abi.ErrInvalidImage},
		{"empty", nil, abi.ErrInvalidImage},
		{"unterminated comment", []byte("/* .version"), abi.ErrInvalidImage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := c.ModuleLoad(tc.image)
			wantCode(t, err, tc.want)
			if err == nil {
				ok(t, m.Unload())
				wantCode(t, m.Unload(), abi.ErrInvalidHandle)
			}
		})
	}
	m := must(c.ModuleLoad([]byte(fakePTX)))(t)
	_, err := m.Function("nope")
	wantCode(t, err, abi.ErrNotFound)
	_, _, err = m.Global("nope")
	wantCode(t, err, abi.ErrNotFound)
}

func TestModuleGlobals(t *testing.T) {
	prog := &fakeProgram{
		ks: map[string]fakeKernel{"inc": {ps: nil, fn: func(l *ptx.Launch) error {
			addr := l.Globals["counter"]
			base, data, ok := l.Memory.Span(addr)
			if !ok {
				return abi.Errorf(abi.ErrIllegalAddress, "counter not mapped")
			}
			data[addr-base]++
			return nil
		}}},
		gs: []ptx.Global{
			{Name: "counter", Size: 4, Align: 4, Init: []byte{41}},
			{Name: "table", Size: 1000, Align: 8, Init: []byte{1, 2, 3}},
		},
	}
	b := fakeBackend(Config{MemoryBytes: 1 << 20}, prog)
	c := open(t, b, 0, 0)
	m := must(c.ModuleLoad([]byte(fakePTX)))(t)
	if got := b.UsedBytes(0); got != 256+1024 {
		t.Errorf("globals use %d bytes, want %d", got, 256+1024)
	}
	ptr, size, err := m.Global("table")
	if err != nil || size != 1000 {
		t.Fatalf("Global = %#x, %d, %v", ptr, size, err)
	}
	got := make([]byte, 1000)
	ok(t, c.MemcpyDtoH(got, ptr, nil))
	if !bytes.Equal(got[:4], []byte{1, 2, 3, 0}) || !bytes.Equal(got[3:], make([]byte, 997)) {
		t.Errorf("table not initialised: %v", got[:8])
	}
	inc := must(m.Function("inc"))(t)
	ok(t, c.Launch(inc, abi.LaunchConfig{Grid: one(1), Block: one(1)}, nil, nil))
	cp, _, _ := m.Global("counter")
	ok(t, c.MemcpyDtoH(got[:1], cp, nil))
	if got[0] != 42 {
		t.Errorf("counter = %d, want 42", got[0])
	}
	// Globals cannot be freed as allocations.
	wantCode(t, c.MemFree(cp), abi.ErrInvalidValue)

	// Globals count against the context's limit.
	small := open(t, b, 0, 512)
	_, err = small.ModuleLoad([]byte(fakePTX))
	wantCode(t, err, abi.ErrOutOfMemory)

	ok(t, m.Unload())
	wantCode(t, c.MemcpyDtoH(got[:1], cp, nil), abi.ErrInvalidValue)
	wantCode(t, c.Launch(inc, abi.LaunchConfig{Grid: one(1), Block: one(1)}, nil, nil), abi.ErrInvalidHandle)
	_, err = inc.Params()
	wantCode(t, err, abi.ErrInvalidHandle)
	if got := b.UsedBytes(0); got != 0 {
		t.Errorf("UsedBytes after unload = %d", got)
	}
}

func TestPoisonIsStickyAndPerContext(t *testing.T) {
	b := fakeBackend(Config{MemoryBytes: 1 << 20}, gateProgram(nil))
	bad := open(t, b, 0, 0)
	good := open(t, b, 0, 0)
	fault := fn(t, bad, "fault")
	poke := fn(t, good, "poke")
	s := must(bad.StreamCreate(0, 0))(t)
	ev := must(bad.EventCreate(0))(t)
	buf := must(bad.MemAlloc(64))(t)

	ok(t, launch1(bad, fault, buf, s)) // the launch itself is accepted
	wantCode(t, bad.Synchronize(), abi.ErrIllegalAddress)
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"synchronize again", bad.Synchronize()},
		{"stream sync", s.Synchronize()},
		{"stream query", s.Query()},
		{"event record", ev.Record(s)},
		{"event sync", ev.Synchronize()},
		{"alloc", func() error { _, err := bad.MemAlloc(1); return err }()},
		{"free", bad.MemFree(buf)},
		{"HtoD", bad.MemcpyHtoD(buf, []byte{1}, nil)},
		{"DtoH", bad.MemcpyDtoH(make([]byte, 1), buf, nil)},
		{"memset", bad.Memset(buf, 0, 1, 1, s)},
		{"launch", launch1(bad, fault, buf, nil)},
		{"attribute", func() error { _, err := bad.Attribute(abi.AttrWarpSize); return err }()},
		{"module load", func() error { _, err := bad.ModuleLoad([]byte(fakePTX)); return err }()},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.err, abi.ErrIllegalAddress) })
	}

	// The other context on the same device is unaffected.
	p := must(good.MemAlloc(8))(t)
	ok(t, launch1(good, poke, p, nil))
	got := make([]byte, 1)
	ok(t, good.MemcpyDtoH(got, p, nil))
	if got[0] != 0x11 {
		t.Fatalf("good context kernel wrote %x", got[0])
	}
	ok(t, good.Synchronize())

	// A poisoned context still closes and frees everything.
	ok(t, bad.Close())
	ok(t, good.Close())
	if got := b.UsedBytes(0); got != 0 {
		t.Errorf("UsedBytes = %d after Close", got)
	}
}

func TestClose(t *testing.T) {
	release, started := make(chan struct{}), make(chan struct{})
	prog := gateProgram(release)
	gateFn := prog.ks["gate"].fn
	prog.ks["gate"] = fakeKernel{ps: u64param, fn: func(l *ptx.Launch) error { close(started); return gateFn(l) }}
	b := fakeBackend(Config{MemoryBytes: 1 << 20}, prog)
	c := open(t, b, 0, 0)
	m := must(c.ModuleLoad([]byte(fakePTX)))(t)
	gate := must(m.Function("gate"))(t)
	s := must(c.StreamCreate(0, 0))(t)
	ev := must(c.EventCreate(0))(t)
	p := must(c.MemAlloc(100))(t)
	ok(t, launch1(c, gate, p, s))
	ok(t, ev.Record(s))

	// Close waits for the running kernel (a kernel not yet started would
	// not run).
	<-started
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	never(t, "Close returning before the work finished", func() bool { return len(done) > 0 })
	close(release)
	ok(t, <-done)
	if got := b.UsedBytes(0); got != 0 {
		t.Errorf("UsedBytes = %d after Close", got)
	}
	if c.BusyTime() <= 0 {
		t.Error("no busy time metered")
	}

	ic := abi.ErrInvalidContext
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"close", c.Close()},
		{"alloc", func() error { _, err := c.MemAlloc(1); return err }()},
		{"free", c.MemFree(p)},
		{"HtoD", c.MemcpyHtoD(p, []byte{1}, nil)},
		{"DtoH", c.MemcpyDtoH([]byte{1}, p, s)},
		{"DtoD", c.MemcpyDtoD(p, p, 1, nil)},
		{"memset", c.Memset(p, 0, 1, 1, nil)},
		{"launch", launch1(c, gate, p, nil)},
		{"sync", c.Synchronize()},
		{"stream sync", s.Synchronize()},
		{"stream query", s.Query()},
		{"stream wait", s.WaitEvent(ev)},
		{"stream destroy", s.Destroy()},
		{"event record", ev.Record(nil)},
		{"event query", ev.Query()},
		{"event sync", ev.Synchronize()},
		{"event elapsed", func() error { _, err := ev.ElapsedSince(ev); return err }()},
		{"event destroy", ev.Destroy()},
		{"module load", func() error { _, err := c.ModuleLoad([]byte(fakePTX)); return err }()},
		{"module function", func() error { _, err := m.Function("gate"); return err }()},
		{"module global", func() error { _, _, err := m.Global("x"); return err }()},
		{"module unload", m.Unload()},
		{"function params", func() error { _, err := gate.Params(); return err }()},
		{"function attribute", func() error { _, err := gate.Attribute(0); return err }()},
		{"set limit", c.SetMemLimit(1)},
		{"stream create", func() error { _, err := c.StreamCreate(0, 0); return err }()},
		{"event create", func() error { _, err := c.EventCreate(0); return err }()},
		{"attribute", func() error { _, err := c.Attribute(abi.AttrWarpSize); return err }()},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.err, ic) })
	}
	if free, total := c.MemInfo(); free != 0 || total != 0 {
		t.Errorf("MemInfo after Close = %d, %d", free, total)
	}
	if !c.Device().Emulated {
		t.Error("Device() after Close lost its description")
	}
}

func TestNonStickyAsyncError(t *testing.T) {
	b := fakeBackend(Config{MemoryBytes: 1 << 20}, gateProgram(nil))
	c := open(t, b, 0, 0)
	refuse := fn(t, c, "refuse")
	poke := fn(t, c, "poke")
	p := must(c.MemAlloc(8))(t)
	ok(t, launch1(c, refuse, p, nil))
	ok(t, launch1(c, poke, p, nil)) // later work still runs
	wantCode(t, c.Synchronize(), abi.ErrLaunchOutOfResources)
	ok(t, c.Synchronize()) // reported once, not sticky
	got := make([]byte, 1)
	ok(t, c.MemcpyDtoH(got, p, nil))
	if got[0] != 0x11 {
		t.Fatalf("work after a refused launch did not run: %x", got[0])
	}
}
