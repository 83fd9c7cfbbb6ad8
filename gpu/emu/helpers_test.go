package emu

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/gpu/emu/ptx"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeKernel runs a Go function in place of interpreted PTX, so that tests
// can hold a stream busy deterministically.
type fakeKernel struct {
	ps []ptx.Param
	fn func(l *ptx.Launch) error
}

func (k fakeKernel) params() []ptx.Param     { return k.ps }
func (k fakeKernel) info() kernelInfo        { return kernelInfo{} }
func (k fakeKernel) run(l *ptx.Launch) error { return k.fn(l) }

type fakeProgram struct {
	ks map[string]fakeKernel
	gs []ptx.Global
}

func (p *fakeProgram) kernel(name string) (kernel, error) {
	k, ok := p.ks[name]
	if !ok {
		return nil, errors.New("no such kernel")
	}
	return k, nil
}

func (p *fakeProgram) globals() []ptx.Global { return p.gs }

const fakePTX = "// fake\n.version 7.0\n.target sm_70\n"

// u64param is a one-pointer parameter layout.
var u64param = []ptx.Param{{Name: "p", Offset: 0, Size: 8, Align: 8}}

// gateProgram has kernels "gate" (blocks until release is closed, then
// writes 0xAA over the first byte of its pointer argument), "poke" (writes
// 0x11 there at once), "fault" (fails with ErrIllegalAddress) and
// "refuse" (fails with the non-sticky ErrLaunchOutOfResources).
func gateProgram(release <-chan struct{}) *fakeProgram {
	write := func(l *ptx.Launch, v byte) error {
		addr := binary.LittleEndian.Uint64(l.Params)
		base, data, ok := l.Memory.Span(addr)
		if !ok {
			return abi.Errorf(abi.ErrIllegalAddress, "fake access at %#x", addr)
		}
		data[addr-base] = v
		return nil
	}
	return &fakeProgram{ks: map[string]fakeKernel{
		"gate": {ps: u64param, fn: func(l *ptx.Launch) error { <-release; return write(l, 0xAA) }},
		"poke": {ps: u64param, fn: func(l *ptx.Launch) error { return write(l, 0x11) }},
		"fault": {ps: u64param, fn: func(l *ptx.Launch) error {
			return abi.Errorf(abi.ErrIllegalAddress, "fake out-of-bounds store")
		}},
		"refuse": {ps: u64param, fn: func(l *ptx.Launch) error {
			return abi.Errorf(abi.ErrLaunchOutOfResources, "fake resource refusal")
		}},
	}}
}

// fakeBackend returns a backend whose module loader yields prog.
func fakeBackend(cfg Config, prog program) *Backend {
	b := New(cfg)
	b.load = func([]byte) (program, error) { return prog, nil }
	return b
}

func open(t *testing.T, b *Backend, dev int, limit uint64) *Context {
	t.Helper()
	c, err := b.Open(dev, limit)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	ctx := c.(*Context)
	t.Cleanup(func() { _ = ctx.Close() })
	return ctx
}

// must(f())(t) returns f's value, failing t on f's error.
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantCode fails t unless err carries code as an *abi.Error.
func wantCode(t *testing.T, err error, code abi.Result) {
	t.Helper()
	if code == abi.Success {
		if err != nil {
			t.Fatalf("got %v, want success", err)
		}
		return
	}
	var ae *abi.Error
	if !errors.As(err, &ae) || ae.Code != code {
		t.Fatalf("got %v, want %v", err, code)
	}
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// never checks that cond stays false for a short while.
func never(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
		if cond() {
			t.Fatalf("%s happened", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func ptrParam(p uint64) []byte { return binary.LittleEndian.AppendUint64(nil, p) }

func one(x uint32) abi.Dim3 { return abi.Dim3{X: x, Y: 1, Z: 1} }

// loadFake loads the fake module and returns its function name.
func fn(t *testing.T, c *Context, name string) gpu.Function {
	t.Helper()
	m := must(c.ModuleLoad([]byte(fakePTX)))(t)
	return must(m.Function(name))(t)
}

// launch1 launches f with one thread and a pointer argument.
func launch1(c *Context, f gpu.Function, p uint64, s gpu.Stream) error {
	return c.Launch(f, abi.LaunchConfig{Grid: one(1), Block: one(1)}, ptrParam(p), s)
}
