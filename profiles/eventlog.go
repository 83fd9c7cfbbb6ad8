package profiles

import (
	"log/slog"
	"sync"
	"time"

	"github.com/kerf-edge/kerf/profiles/api"
)

// maxQueuedEvents bounds the events waiting for the disk; past it the
// oldest waiting are dropped and counted.
const maxQueuedEvents = 4096

// eventLog writes events to the Store in the background, a batch per
// transaction, so that nothing that records one (a re-slice, a policy
// decision, an API write) waits for the disk. Readers call flush first,
// so the API always shows what was recorded before the request.
type eventLog struct {
	store   *Store
	log     *slog.Logger
	dropped func(n int)

	mu     sync.Mutex
	cond   *sync.Cond
	queue  []api.Event
	queued uint64 // events handed over so far
	done   uint64 // of those, written, dropped or failed
	closed bool
	exit   chan struct{}
}

func newEventLog(store *Store, log *slog.Logger, dropped func(n int)) *eventLog {
	l := &eventLog{store: store, log: log, dropped: dropped, exit: make(chan struct{})}
	l.cond = sync.NewCond(&l.mu)
	go l.run()
	return l
}

// add queues e, stamped now if it has no time.
func (l *eventLog) add(e api.Event) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if len(l.queue) == maxQueuedEvents {
		l.queue = l.queue[1:]
		l.done++
		l.dropped(1)
	}
	l.queue = append(l.queue, e)
	l.queued++
	l.cond.Broadcast()
}

func (l *eventLog) run() {
	defer close(l.exit)
	l.mu.Lock()
	for {
		for len(l.queue) == 0 && !l.closed {
			l.cond.Wait()
		}
		if len(l.queue) == 0 {
			l.mu.Unlock()
			return
		}
		batch := l.queue
		l.queue = nil
		l.mu.Unlock()
		if _, err := l.store.AppendEvents(batch); err != nil {
			l.log.Error("event log", "err", err, "events", len(batch), "first", batch[0].Action)
		}
		l.mu.Lock()
		l.done += uint64(len(batch))
		l.cond.Broadcast()
	}
}

// flush waits until every event added so far is in the Store.
func (l *eventLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for want := l.queued; l.done < want && !l.closed; {
		l.cond.Wait()
	}
}

// close writes what is queued and stops the writer.
func (l *eventLog) close() {
	l.mu.Lock()
	l.closed = true
	l.cond.Broadcast()
	l.mu.Unlock()
	<-l.exit
}
