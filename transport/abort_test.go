package transport

import (
	"testing"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
)

// endlessBackend's contexts synchronise only once aborted, like a
// context running a kernel that never ends.
type endlessBackend struct {
	gpu.Backend
	opened chan *endlessContext
}

type endlessContext struct {
	gpu.Context
	aborted chan struct{}
}

func (b endlessBackend) Open(dev int, limit uint64) (gpu.Context, error) {
	c, err := b.Backend.Open(dev, limit)
	if err != nil {
		return nil, err
	}
	ec := &endlessContext{Context: c, aborted: make(chan struct{})}
	b.opened <- ec
	return ec, nil
}

func (c *endlessContext) Synchronize() error {
	<-c.aborted
	return abi.Errorf(abi.ErrLaunchFailed, "aborted")
}

func (c *endlessContext) Abort() { close(c.aborted) }

// A session ended from outside (a revoked token, a stopping server)
// aborts its context's work, so that it ends while a kernel runs.
func TestClosedSessionAbortsItsWork(t *testing.T) {
	for _, via := range transports {
		t.Run(via, func(t *testing.T) {
			opened := make(chan *endlessContext, 1)
			ts := startServerB(t, func(s *Server) { s.Backend = endlessBackend{Backend: s.Backend, opened: opened} })
			c := ts.dial(t, via, ts.token(t, "busy", 0))
			ec := <-opened
			done := make(chan error, 1)
			go func() { done <- c.Synchronize() }()
			waitFor(t, "the call to reach the server", func() bool {
				for _, s := range ts.srv.Sessions() {
					if s.Calls > 0 {
						return true
					}
				}
				return false
			})
			if n := ts.srv.CloseTenant("busy"); n != 1 {
				t.Fatalf("closed %d sessions", n)
			}
			select {
			case <-ec.aborted:
			case <-time.After(10 * time.Second):
				t.Fatal("the session's context was not aborted")
			}
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("Synchronize succeeded on an ended session")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the tenant's call never returned")
			}
			waitFor(t, "the session to end", func() bool { return len(ts.srv.Sessions()) == 0 })
		})
	}
}
