package emu

import (
	"testing"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu/emu/ptx"
)

// emptyPTX has one kernel whose blocks do nothing.
const emptyPTX = `
.version 6.0
.target sm_70
.address_size 64

.visible .entry empty()
{
	ret;
}
`

// launchEmptyGrid queues the largest grid of empty blocks there is.
func launchEmptyGrid(t *testing.T, c *Context) {
	t.Helper()
	m := must(c.ModuleLoad([]byte(emptyPTX)))(t)
	f := must(m.Function("empty"))(t)
	cfg := abi.LaunchConfig{Grid: abi.Dim3{X: 1<<31 - 1, Y: 65535, Z: 65535}, Block: abi.Dim3{X: 32, Y: 1, Z: 1}}
	ok(t, c.Launch(f, cfg, nil, nil))
}

// within runs f and fails t unless it returns within a deadline.
func within(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not return", what)
		return nil
	}
}

// The launch budget bounds a grid whose every block is trivial; its
// timeout poisons the context, as a watchdog timeout does on a GPU.
func TestLaunchBudgetIsSticky(t *testing.T) {
	b := New(Config{MemoryBytes: 1 << 20, MaxLaunchInstructions: 1 << 20})
	c := open(t, b, 0, 0)
	launchEmptyGrid(t, c)
	err := within(t, "Synchronize", c.Synchronize)
	wantCode(t, err, abi.ErrLaunchTimeout)
	_, err = c.MemAlloc(64)
	wantCode(t, err, abi.ErrLaunchTimeout)
	ok(t, c.Close())
}

// Close ends a launch nobody will wait for, between blocks.
func TestCloseStopsRunningGrid(t *testing.T) {
	b := New(Config{MemoryBytes: 1 << 20})
	c := open(t, b, 0, 0)
	launchEmptyGrid(t, c)
	ok(t, within(t, "Close", c.Close))
}

// Abort ends the running kernel and the queued ones; the context is
// poisoned, and Close frees it.
func TestAbort(t *testing.T) {
	started := make(chan struct{})
	prog := gateProgram(nil)
	prog.ks["hold"] = fakeKernel{ps: u64param, fn: func(l *ptx.Launch) error {
		close(started)
		<-l.Stop
		return abi.Errorf(abi.ErrLaunchFailed, "stopped")
	}}
	b := fakeBackend(Config{MemoryBytes: 1 << 20}, prog)
	c := open(t, b, 0, 0)
	p := must(c.MemAlloc(8))(t)
	ok(t, launch1(c, fn(t, c, "hold"), p, nil))
	ok(t, launch1(c, fn(t, c, "poke"), p, nil))
	<-started
	c.Abort()
	wantCode(t, within(t, "Synchronize", c.Synchronize), abi.ErrLaunchFailed)
	// The context is poisoned, so look at its memory directly.
	if _, data, _ := c.mem.Span(p); data[0] != 0 {
		t.Fatalf("a kernel queued behind the aborted one ran: wrote %#x", data[0])
	}
	c.Abort() // twice is fine
	ok(t, c.Close())
}
