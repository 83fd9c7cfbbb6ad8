// Package testkit holds helpers shared by Kerf's tests. It is imported by
// _test.go files only and holds no product logic.
package testkit

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// WaitTimeout bounds every WaitFor.
const WaitTimeout = 10 * time.Second

// WaitFor polls cond until it holds, failing the test with what after
// WaitTimeout. Tests poll with a deadline instead of sleeping and hoping.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	WaitForWithin(t, WaitTimeout, what, cond)
}

// WaitForWithin is WaitFor with its own deadline, for what a protocol
// timer bounds (an idle connection's timeout, say).
func WaitForWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// SyncBuffer is a bytes.Buffer that a test may read while a program or
// goroutine writes it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
