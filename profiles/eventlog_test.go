package profiles

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/kerf-edge/kerf/profiles/api"
)

// newTestEventLog opens a store and an event log on it that counts drops.
func newTestEventLog(t *testing.T) (*Store, *eventLog, *atomic.Int64) {
	t.Helper()
	st, err := OpenStore(filepath.Join(t.TempDir(), "api.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dropped := new(atomic.Int64)
	return st, newEventLog(st, slog.Default(), func(n int) { dropped.Add(int64(n)) }), dropped
}

func TestEventLogKeepsOrderAndFlushes(t *testing.T) {
	st, l, dropped := newTestEventLog(t)
	for i := range 500 {
		l.add(api.Event{Kind: api.EventKindAPI, Action: fmt.Sprint(i)})
	}
	l.flush() // everything added is readable now
	evs, err := st.Events(1000, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 500 {
		t.Fatalf("%d events after flush, want 500", len(evs))
	}
	for i, e := range evs {
		if e.Action != fmt.Sprint(i) || e.ID != uint64(i+1) || e.Time.IsZero() {
			t.Fatalf("event %d: %+v", i, e)
		}
	}
	l.add(api.Event{Kind: api.EventKindAPI, Action: "last"})
	l.close() // writes what is queued
	if evs, _ := st.Events(1, 0, ""); len(evs) != 1 || evs[0].Action != "last" {
		t.Fatalf("after close: %+v", evs)
	}
	l.add(api.Event{Kind: api.EventKindAPI, Action: "after close"}) // ignored, no panic
	if dropped.Load() != 0 {
		t.Fatalf("%d dropped", dropped.Load())
	}
}

func TestEventLogDropsOldestWhenTheDiskFallsBehind(t *testing.T) {
	st, l, dropped := newTestEventLog(t)
	// Hold the writer off the disk: bbolt allows one writer at a time.
	tx, err := st.db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3 * maxQueuedEvents
	for i := range n {
		l.add(api.Event{Kind: api.EventKindAPI, Action: fmt.Sprint(i)})
	}
	tx.Rollback()
	l.flush()
	evs, err := st.Events(1000, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := evs[len(evs)-1].Action; got != fmt.Sprint(n-1) {
		t.Fatalf("newest event %q, want %d", got, n-1)
	}
	// At most the queue and the batch the writer had taken survive.
	if d := dropped.Load(); d < n-maxQueuedEvents-maxQueuedEvents || d >= n {
		t.Fatalf("%d dropped of %d", d, n)
	}
	l.close()
}
