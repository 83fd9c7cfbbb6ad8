package ingest

import "sync"

// item is one decoded message waiting for the engine.
type item struct {
	topic   Topic
	signals []Signal
	offline bool
}

// fairQueue holds items per source and hands them out round-robin, so a
// flooding source only ever pushes out its own oldest items. Memory is
// bounded by maxSources, perSource and total.
type fairQueue struct {
	mu                          sync.Mutex
	per                         map[string][]item
	ready                       []string // sources with items, in turn order
	n                           int
	perSource, total, maxSource int
	dropped, rejected           uint64
	notify                      chan struct{}
}

func newFairQueue(perSource, total, maxSources int) *fairQueue {
	return &fairQueue{per: map[string][]item{}, perSource: perSource, total: total, maxSource: maxSources,
		notify: make(chan struct{}, 1)}
}

// push never blocks. When the source's queue or the whole queue is full it
// drops the source's oldest item; a new source past maxSources, or a full
// queue where the source has nothing to drop, loses the new item.
func (q *fairQueue) push(key string, it item) {
	q.mu.Lock()
	items, ok := q.per[key]
	switch {
	case !ok && len(q.per) >= q.maxSource, len(items) == 0 && q.n >= q.total:
		q.rejected++
		q.mu.Unlock()
		return
	case len(items) >= q.perSource || q.n >= q.total:
		items[0] = item{}
		items = items[1:]
		q.n--
		q.dropped++
	}
	if len(items) == 0 {
		q.ready = append(q.ready, key)
	}
	q.per[key] = append(items, it)
	q.n++
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// pop takes the next item in round-robin order.
func (q *fairQueue) pop() (item, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.ready) == 0 {
		return item{}, false
	}
	key := q.ready[0]
	q.ready[0] = ""
	q.ready = q.ready[1:]
	items := q.per[key]
	it := items[0]
	items[0] = item{}
	q.n--
	if len(items) == 1 {
		delete(q.per, key) // a quiet source costs nothing
	} else {
		q.per[key] = items[1:]
		q.ready = append(q.ready, key)
	}
	if len(q.ready) == 0 {
		q.ready = nil // let the backing array go
	}
	return it, true
}

func (q *fairQueue) stats() (queued int, dropped, rejected uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n, q.dropped, q.rejected
}
