package ingest

import (
	"strings"
	"sync/atomic"
	"time"
)

// Reasons a signal of a new series is refused. Each has its own counter
// (EngineStats) and metric label.
const (
	// RefusedTableFull: a rule reads the series, but the table already
	// holds MaxSeries series.
	RefusedTableFull = "table_full"
	// RefusedPublisherCap: its publisher already holds
	// MaxSeriesPerPublisher series of that kind (read by a rule, or not).
	RefusedPublisherCap = "publisher_cap"
	// RefusedUnreadPoolFull: no rule reads the series and the unread pool
	// holds MaxUnreadSeries series that are not yet quiet for UnreadTTL.
	RefusedUnreadPoolFull = "unread_pool_full"
)

// Publisher names who published a topic: its site/node. Devices on the
// embedded broker are anonymous or log in, and neither the MQTT nor the
// NATS subscriber is told a message's client ID or credential,
// so the topic is all a message says about where it came from.
func (t Topic) Publisher() string { return t.Site + "/" + t.Node }

// publisherSeries counts the series one publisher holds in each place.
type publisherSeries struct{ read, unread int }

// unreadSeries is a series no rule reads: remembered, to be counted and
// capped, but never windowed.
type unreadSeries struct {
	key, publisher string
	lastSeen       time.Time
	prev, next     *unreadSeries // in lastSeen order, oldest first
}

// unreadPool holds at most max unread series and forgets each ttl after
// its last signal. A list in lastSeen order makes forgetting cost only the
// series forgotten.
type unreadPool struct {
	m          map[string]*unreadSeries
	head, tail *unreadSeries
	max        int
	ttl        time.Duration
}

func newUnreadPool(max int, ttl time.Duration) *unreadPool {
	return &unreadPool{m: map[string]*unreadSeries{}, max: max, ttl: ttl}
}

func (p *unreadPool) full() bool { return len(p.m) >= p.max }

func (p *unreadPool) unlink(u *unreadSeries) {
	if u.prev != nil {
		u.prev.next = u.next
	} else {
		p.head = u.next
	}
	if u.next != nil {
		u.next.prev = u.prev
	} else {
		p.tail = u.prev
	}
	u.prev, u.next = nil, nil
}

func (p *unreadPool) append(u *unreadSeries) {
	u.prev = p.tail
	if p.tail != nil {
		p.tail.next = u
	} else {
		p.head = u
	}
	p.tail = u
}

// touch records a signal of u at now.
func (p *unreadPool) touch(u *unreadSeries, now time.Time) {
	u.lastSeen = now
	p.unlink(u)
	p.append(u)
}

func (p *unreadPool) insert(key, publisher string, now time.Time) {
	u := &unreadSeries{key: key, publisher: publisher, lastSeen: now}
	p.m[key] = u
	p.append(u)
}

// expire forgets the series quiet for ttl, oldest first, and calls forgot
// for each.
func (p *unreadPool) expire(now time.Time, forgot func(*unreadSeries)) {
	for u := p.head; u != nil && now.Sub(u.lastSeen) >= p.ttl; u = p.head {
		p.remove(u, forgot)
	}
}

// clear forgets every series.
func (p *unreadPool) clear(forgot func(*unreadSeries)) {
	for u := p.head; u != nil; u = p.head {
		p.remove(u, forgot)
	}
}

func (p *unreadPool) remove(u *unreadSeries, forgot func(*unreadSeries)) {
	p.unlink(u)
	delete(p.m, u.key)
	forgot(u)
}

// admit finds a place for the first signal of a series: in the table when a
// rule reads it, else in the unread pool. It returns the new series, or nil
// when the signal is not windowed: no rule reads it, or it was refused.
// Nothing already admitted is ever pushed out.
func (e *Engine) admit(s Signal, src, key string) *series {
	now := e.clock.Now()
	if u := e.unread.m[key]; u != nil {
		e.c.unmatched.Add(1)
		e.unread.touch(u, now)
		return nil
	}
	pub := s.Topic.Publisher()
	ps := e.publisherSeries(pub)
	defer e.dropPublisher(pub)
	if !e.read(src, s.Metric, s.Name) {
		e.c.unmatched.Add(1)
		if ps.unread >= e.opts.MaxSeriesPerPublisher {
			e.refuse(RefusedPublisherCap, &e.c.refusedPublisherCap, pub, key, now)
			return nil
		}
		if e.unread.full() {
			e.unread.expire(now, e.forgetUnread)
		}
		if e.unread.full() {
			e.refuse(RefusedUnreadPoolFull, &e.c.refusedUnreadPoolFull, pub, key, now)
			return nil
		}
		e.unread.insert(key, pub, now)
		ps.unread++
		return nil
	}
	switch {
	case ps.read >= e.opts.MaxSeriesPerPublisher:
		e.refuse(RefusedPublisherCap, &e.c.refusedPublisherCap, pub, key, now)
	case len(e.series) >= e.opts.MaxSeries:
		e.refuse(RefusedTableFull, &e.c.seriesDropped, pub, key, now)
	default:
		se := &series{key: key, source: src, metric: s.Metric, name: s.Name, publisher: pub, cap: e.opts.MaxSamples, keep: e.keep}
		e.series[key] = se
		e.attach(se)
		ps.read++
		return se
	}
	return nil
}

// refuse counts a refused signal of series key and logs it, at most once per
// LogEvery with the number of refusals not logged.
func (e *Engine) refuse(reason string, n *atomic.Uint64, publisher, key string, now time.Time) {
	n.Add(1)
	if !e.lastRefusalLog.IsZero() && now.Sub(e.lastRefusalLog) < e.opts.LogEvery {
		e.refusalsUnlogged++
		return
	}
	src, metric, _ := strings.Cut(key, "\x00")
	e.log.Warn("ingest: series refused", "reason", reason, "publisher", publisher, "source", src,
		"metric", metric, "series", len(e.series), "unread_series", len(e.unread.m),
		"refused_since_last", e.refusalsUnlogged)
	e.lastRefusalLog, e.refusalsUnlogged = now, 0
}

// read reports whether some rule or watch reads the series.
func (e *Engine) read(source, metric, name string) bool {
	for _, rs := range e.readers() {
		if rs.matches(source, metric, name) {
			return true
		}
	}
	return false
}

// publisherSeries returns the counts of publisher p, creating them.
func (e *Engine) publisherSeries(p string) *publisherSeries {
	ps := e.publishers[p]
	if ps == nil {
		ps = &publisherSeries{}
		e.publishers[p] = ps
	}
	return ps
}

// dropPublisher forgets p's counts once it holds no series.
func (e *Engine) dropPublisher(p string) {
	if ps := e.publishers[p]; ps != nil && ps.read == 0 && ps.unread == 0 {
		delete(e.publishers, p)
	}
}

func (e *Engine) forgetUnread(u *unreadSeries) {
	e.publisherSeries(u.publisher).unread--
	e.dropPublisher(u.publisher)
	e.c.unreadForgotten.Add(1)
}
