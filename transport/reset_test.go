package transport

import (
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/internal/testkit"
)

// A context reset frees everything of the session's, keeps its memory
// limit, and numbers new handles after the old ones.
func TestContextReset(t *testing.T) {
	ts := startServer(t)
	for _, via := range transports {
		t.Run(via, func(t *testing.T) {
			c := ts.dial(t, via, ts.token(t, "r-"+via, 1<<20))
			p, err := c.MemAlloc(1 << 20)
			if err != nil {
				t.Fatal(err)
			}
			s, err := c.StreamCreate(0)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Call(abi.CallCtxReset, nil, nil); err != nil {
				t.Fatalf("reset: %v", err)
			}
			wantCode(t, c.MemFree(p), abi.ErrInvalidValue)
			wantCode(t, c.StreamSynchronize(s), abi.ErrInvalidHandle)
			q, err := c.MemAlloc(1 << 20) // the whole limit is free again
			if err != nil {
				t.Fatalf("allocating after the reset: %v", err)
			}
			_, err = c.MemAlloc(1)
			wantCode(t, err, abi.ErrOutOfMemory)
			s2, err := c.StreamCreate(0)
			if err != nil {
				t.Fatal(err)
			}
			if s2 == s {
				t.Fatalf("a stream after the reset got the old stream's handle %d", s)
			}
			if err := c.MemFree(q); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A reset opens the new context with the memory limit set last, and
// other goroutines may list the sessions meanwhile.
func TestContextResetKeepsLimitSet(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t, transports[0], ts.token(t, "r-limit", 1<<20))
	// The server registers a session just after its hello is answered.
	testkit.WaitFor(t, "the session", func() bool { return len(ts.srv.Sessions()) == 1 })
	if err := ts.srv.SetMemLimit(2 << 20); err != nil {
		t.Fatal(err)
	}
	stop, listed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(listed)
		for {
			select {
			case <-stop:
				return
			default:
				_ = ts.srv.Sessions()
			}
		}
	}()
	for range 3 {
		if err := c.Call(abi.CallCtxReset, nil, nil); err != nil {
			t.Fatalf("reset: %v", err)
		}
	}
	close(stop)
	<-listed
	if _, err := c.MemAlloc(2 << 20); err != nil {
		t.Fatalf("allocating the limit set before the reset: %v", err)
	}
	_, err := c.MemAlloc(1)
	wantCode(t, err, abi.ErrOutOfMemory)
}
