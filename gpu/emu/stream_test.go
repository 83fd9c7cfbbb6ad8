package emu

import (
	"bytes"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
)

func ready(e gpu.Event) bool { return e.Query() == nil }

// gated returns a context whose fake module has a "gate" kernel held
// until release is closed, and a buffer for it.
func gated(t *testing.T) (c *Context, gate gpu.Function, buf uint64, release chan struct{}) {
	t.Helper()
	release = make(chan struct{})
	b := fakeBackend(Config{MemoryBytes: 1 << 20}, gateProgram(release))
	c = open(t, b, 0, 0)
	// Registered after open's Close cleanup, so it runs first.
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	gate = fn(t, c, "gate")
	buf = must(c.MemAlloc(256))(t)
	return c, gate, buf, release
}

func TestStreamOrdering(t *testing.T) {
	c, gate, buf, release := gated(t)
	s := must(c.StreamCreate(0, 0))(t)
	other := must(c.StreamCreate(abi.StreamNonBlocking, 0))(t)

	ok(t, launch1(c, gate, buf, s))
	// A chain of copies behind the kernel on the same stream.
	ok(t, c.MemcpyHtoD(buf, []byte{0x55}, s))
	ok(t, c.MemcpyDtoD(buf+1, buf, 1, s))
	ok(t, c.MemcpyDtoD(buf+2, buf+1, 1, s))
	wantCode(t, s.Query(), abi.ErrNotReady)

	// Another stream runs meanwhile: its copy completes while s is held.
	q := must(c.MemAlloc(16))(t)
	got := make([]byte, 3)
	ok(t, c.MemcpyHtoD(q, []byte{1, 2, 3}, other))
	ok(t, c.MemcpyDtoH(got, q, other))
	if !bytes.Equal(got, []byte{1, 2, 3}) {
		t.Fatalf("concurrent stream copy got %v", got)
	}
	wantCode(t, s.Query(), abi.ErrNotReady)

	close(release)
	ok(t, s.Synchronize())
	ok(t, s.Query())
	ok(t, c.MemcpyDtoH(got, buf, s))
	// The kernel wrote 0xAA first; the copies after it won.
	if !bytes.Equal(got, []byte{0x55, 0x55, 0x55}) {
		t.Fatalf("stream order violated: %x", got)
	}
}

func TestDefaultStream(t *testing.T) {
	c, gate, buf, release := gated(t)
	blocking := must(c.StreamCreate(0, 0))(t)
	nonblocking := must(c.StreamCreate(abi.StreamNonBlocking, 0))(t)
	evDef := must(c.EventCreate(0))(t)
	evNB := must(c.EventCreate(0))(t)
	evB := must(c.EventCreate(0))(t)

	// Default stream work waits for prior work in blocking streams...
	ok(t, launch1(c, gate, buf, blocking))
	ok(t, evDef.Record(nil))
	ok(t, evNB.Record(nonblocking))
	eventually(t, "non-blocking stream event", func() bool { return ready(evNB) })
	never(t, "default stream passing a busy blocking stream", func() bool { return ready(evDef) })
	close(release)
	eventually(t, "default stream event", func() bool { return ready(evDef) })
	ok(t, c.Synchronize())

	// ...and blocking streams wait for prior default-stream work.
	release2 := make(chan struct{})
	defer close(release2)
	prog := gateProgram(release2)
	c.b.load = func([]byte) (program, error) { return prog, nil }
	gate2 := fn(t, c, "gate")
	ok(t, launch1(c, gate2, buf, nil))
	ok(t, evB.Record(blocking))
	ok(t, evNB.Record(nonblocking))
	eventually(t, "non-blocking stream event", func() bool { return ready(evNB) })
	never(t, "blocking stream passing busy default stream", func() bool { return ready(evB) })
	wantCode(t, evB.Query(), abi.ErrNotReady)
	release2 <- struct{}{} // gate2 proceeds
	ok(t, evB.Synchronize())
}

func TestEvents(t *testing.T) {
	c, gate, buf, release := gated(t)
	s1 := must(c.StreamCreate(0, 0))(t)
	s2 := must(c.StreamCreate(abi.StreamNonBlocking, 0))(t)
	start := must(c.EventCreate(0))(t)
	end := must(c.EventCreate(0))(t)
	after := must(c.EventCreate(0))(t)
	noTiming := must(c.EventCreate(abi.EventDisableTiming))(t)

	// Never recorded: complete, but no elapsed time.
	ok(t, start.Query())
	ok(t, start.Synchronize())
	_, err := end.ElapsedSince(start)
	wantCode(t, err, abi.ErrInvalidHandle)

	ok(t, start.Record(s1))
	ok(t, launch1(c, gate, buf, s1))
	ok(t, end.Record(s1))
	wantCode(t, end.Query(), abi.ErrNotReady)
	_, err = end.ElapsedSince(start)
	wantCode(t, err, abi.ErrNotReady)

	// s2 waits on end, so work queued on s2 after the wait is held.
	ok(t, s2.WaitEvent(end))
	ok(t, after.Record(s2))
	never(t, "stream wait on an event passing it", func() bool { return ready(after) })

	close(release)
	ok(t, end.Synchronize())
	ok(t, end.Query())
	ok(t, after.Synchronize())
	ms, err := end.ElapsedSince(start)
	if err != nil || ms < 0 {
		t.Fatalf("elapsed = %v, %v", ms, err)
	}

	ok(t, noTiming.Record(s1))
	ok(t, noTiming.Synchronize())
	_, err = noTiming.ElapsedSince(start)
	wantCode(t, err, abi.ErrInvalidHandle)
	_, err = end.ElapsedSince(noTiming)
	wantCode(t, err, abi.ErrInvalidHandle)

	_, err = c.EventCreate(0x80)
	wantCode(t, err, abi.ErrInvalidValue)
	ok(t, end.Destroy())
	wantCode(t, end.Destroy(), abi.ErrInvalidHandle)
	wantCode(t, end.Record(s1), abi.ErrInvalidHandle)
	wantCode(t, s1.WaitEvent(end), abi.ErrInvalidHandle)
	_, err = after.ElapsedSince(end)
	wantCode(t, err, abi.ErrInvalidHandle)
}

func TestStreamDestroyLetsWorkFinish(t *testing.T) {
	c, gate, buf, release := gated(t)
	s := must(c.StreamCreate(0, 0))(t)
	ok(t, launch1(c, gate, buf, s))
	ok(t, c.MemcpyHtoD(buf+1, []byte{0x77}, s))
	ok(t, s.Destroy())
	wantCode(t, s.Destroy(), abi.ErrInvalidHandle)
	wantCode(t, s.Query(), abi.ErrInvalidHandle)
	wantCode(t, s.Synchronize(), abi.ErrInvalidHandle)
	wantCode(t, c.MemcpyHtoD(buf, []byte{1}, s), abi.ErrInvalidHandle)

	// The default stream still waits for the destroyed stream's work.
	ev := must(c.EventCreate(0))(t)
	ok(t, ev.Record(nil))
	never(t, "default stream passing a destroyed stream's pending work", func() bool { return ready(ev) })
	close(release)
	ok(t, c.Synchronize())
	got := make([]byte, 2)
	ok(t, c.MemcpyDtoH(got, buf, nil))
	if !bytes.Equal(got, []byte{0xAA, 0x77}) {
		t.Fatalf("destroyed stream's work: %x", got)
	}
	_, err := c.StreamCreate(0x4, 0)
	wantCode(t, err, abi.ErrInvalidValue)
	wantCode(t, c.def.Destroy(), abi.ErrInvalidHandle)
}

// A host-to-device copy runs at once only when nothing it is ordered after
// is pending: on the legacy default stream it waits for blocking streams,
// on a blocking stream for the default stream; a non-blocking stream's
// copy passes both.
func TestCopyWaitsForWhatItIsOrderedAfter(t *testing.T) {
	c, gate, buf, release := gated(t)
	blocking := must(c.StreamCreate(0, 0))(t)
	nonblocking := must(c.StreamCreate(abi.StreamNonBlocking, 0))(t)
	q := must(c.MemAlloc(16))(t)

	ok(t, launch1(c, gate, buf, blocking)) // held: writes 0xAA when released
	ok(t, c.MemcpyHtoD(buf, []byte{0x55}, nil))
	ok(t, c.MemcpyHtoD(q, []byte{7}, nonblocking))
	got := make([]byte, 1)
	ok(t, c.MemcpyDtoH(got, q, nonblocking))
	if got[0] != 7 {
		t.Fatalf("non-blocking stream copy got %#x", got[0])
	}
	wantCode(t, blocking.Query(), abi.ErrNotReady)
	close(release)
	ok(t, c.Synchronize())
	ok(t, c.MemcpyDtoH(got, buf, nil))
	if got[0] != 0x55 {
		t.Fatalf("the default stream's copy ran before the blocking stream's kernel: %#x", got[0])
	}
}
