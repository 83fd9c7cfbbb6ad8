package ingest

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kerf-edge/kerf/internal/clock"
)

// Status payloads on edge/v1/{site}/{node}/status/{source} (retained).
const (
	StatusOnline  = "online"
	StatusOffline = "offline"
)

// PipelineOptions tune a Pipeline; zero values take defaults.
type PipelineOptions struct {
	Clock          clock.Clock // nil: the system clock
	Log            *slog.Logger
	QueuePerSource int           // messages held per source; default 64
	QueueTotal     int           // messages held in all; default 65536
	MaxSources     int           // sources queued or tracked for liveness; default 65536
	Tick           time.Duration // rule evaluation without signals; default 1s
	LogEvery       time.Duration // at most one malformed-message log line per this; default 5s
	// Coalesce: signals arriving within this of the last evaluation are
	// evaluated together, bounding evaluation work under load; default 5ms,
	// negative for none.
	Coalesce time.Duration
	// Evaluated, when set, is called for each signal once the rules have
	// been evaluated with it (benchmarks measure latency with it).
	Evaluated func(s Signal, at time.Time)
	// Observe, when set, is called with each signal as it is handed to
	// the engine, whether a rule reads it or not (kerfd's history). It
	// must not block.
	Observe func(s Signal)
}

// PipelineStats are the subscriber-side counters.
type PipelineStats struct {
	Messages   uint64 // load and status messages received
	Bytes      uint64 // their payload bytes
	Records    uint64 // SenML records decoded
	Signals    uint64 // numeric records passed to the engine
	NonNumeric uint64 // vs/vd records, decoded and ignored
	Malformed  uint64 // bad topic, payload or status
	Dropped    uint64 // oldest messages dropped by a full queue
	Rejected   uint64 // new messages refused (new source past MaxSources, or queue full)
	Queued     int
}

// Pipeline is what subscribers deliver to: it decodes and validates each
// message on the caller's goroutine, queues it without blocking, and Run
// feeds the engine from the queue.
type Pipeline struct {
	eng   *Engine
	q     *fairQueue
	clock clock.Clock
	log   *slog.Logger
	o     PipelineOptions

	messages, payloadBytes, records, signals, nonNumeric, malformed atomic.Uint64

	logMu      sync.Mutex
	lastLog    time.Time
	suppressed int

	liveMu sync.Mutex
	live   map[string]string // source key -> online/offline

	fed []Signal // fed but not yet evaluated; only with Evaluated set
}

// NewPipeline feeds e.
func NewPipeline(e *Engine, o PipelineOptions) *Pipeline {
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.QueuePerSource <= 0 {
		o.QueuePerSource = 64
	}
	if o.QueueTotal <= 0 {
		o.QueueTotal = 65536
	}
	if o.MaxSources <= 0 {
		o.MaxSources = 65536
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.Coalesce == 0 {
		o.Coalesce = 5 * time.Millisecond
	}
	if o.LogEvery <= 0 {
		o.LogEvery = 5 * time.Second
	}
	return &Pipeline{eng: e, q: newFairQueue(o.QueuePerSource, o.QueueTotal, o.MaxSources), clock: o.Clock,
		log: o.Log, o: o, live: map[string]string{}}
}

// HandleMQTT takes one message from an MQTT subscription.
func (p *Pipeline) HandleMQTT(topic string, payload []byte) {
	t, err := ParseTopic(topic)
	p.handle(t, err, topic, payload)
}

// HandleNATS takes one message from a NATS subscription.
func (p *Pipeline) HandleNATS(subject string, payload []byte) {
	t, err := ParseSubject(subject)
	p.handle(t, err, subject, payload)
}

func (p *Pipeline) handle(t Topic, err error, name string, payload []byte) {
	p.messages.Add(1)
	p.payloadBytes.Add(uint64(len(payload)))
	if err != nil {
		p.bad(name, err)
		return
	}
	now := p.clock.Now()
	if t.Kind == KindStatus {
		st := string(bytes.TrimSpace(payload))
		if st != StatusOnline && st != StatusOffline {
			p.bad(name, errStatus)
			return
		}
		p.setLive(t.Key(), st)
		if st == StatusOffline {
			p.q.push(t.Key(), item{topic: t, offline: true})
		}
		return
	}
	recs, err := DecodeSenML(payload, now)
	if err != nil {
		p.bad(name, err)
		return
	}
	p.records.Add(uint64(len(recs)))
	sigs := make([]Signal, 0, len(recs))
	for _, r := range recs {
		v, ok := r.Numeric()
		if !ok {
			p.nonNumeric.Add(1)
			continue
		}
		sigs = append(sigs, Signal{Topic: t, Name: r.Name, Metric: r.Metric, Unit: r.Unit, Value: v, Time: r.Time, Arrived: now})
	}
	if len(sigs) > 0 {
		p.q.push(t.Key(), item{topic: t, signals: sigs})
	}
}

type statusError struct{}

func (statusError) Error() string { return `status payload: want "online" or "offline"` }

var errStatus statusError

// bad counts a malformed message and logs it, at most once per LogEvery.
func (p *Pipeline) bad(name string, err error) {
	p.malformed.Add(1)
	now := p.clock.Now()
	p.logMu.Lock()
	if now.Sub(p.lastLog) < p.o.LogEvery {
		p.suppressed++
		p.logMu.Unlock()
		return
	}
	n := p.suppressed
	p.lastLog, p.suppressed = now, 0
	p.logMu.Unlock()
	p.log.Warn("ingest: malformed message", "topic", name, "err", err, "suppressed_since_last", n)
}

func (p *Pipeline) setLive(key, st string) {
	p.liveMu.Lock()
	defer p.liveMu.Unlock()
	if _, ok := p.live[key]; ok || len(p.live) < p.o.MaxSources {
		p.live[key] = st
	}
}

// Liveness returns the last status of each source that sent one.
func (p *Pipeline) Liveness() map[string]string {
	p.liveMu.Lock()
	defer p.liveMu.Unlock()
	out := make(map[string]string, len(p.live))
	for k, v := range p.live {
		out[k] = v
	}
	return out
}

// Drain hands every queued message to the engine, evaluates, and returns
// how many messages it took. It must not run alongside Run.
func (p *Pipeline) Drain(ctx context.Context) int {
	n := 0
	for ctx.Err() == nil {
		k := p.feed(ctx, 4096)
		if k == 0 {
			break
		}
		n += k
	}
	p.flush(ctx)
	return n
}

// feed hands up to max queued messages to the engine without evaluating.
func (p *Pipeline) feed(ctx context.Context, max int) int {
	n := 0
	for ; n < max; n++ {
		it, ok := p.q.pop()
		if !ok {
			break
		}
		if it.offline {
			p.eng.SetOffline(ctx, it.topic)
			continue
		}
		for _, s := range it.signals {
			p.signals.Add(1)
			p.eng.Add(s)
			if p.o.Observe != nil {
				p.o.Observe(s)
			}
		}
		if p.o.Evaluated != nil {
			p.fed = append(p.fed, it.signals...)
		}
	}
	return n
}

// flush evaluates the rules the fed signals touched, once each.
func (p *Pipeline) flush(ctx context.Context) {
	p.eng.EvaluateDirty(ctx)
	if p.o.Evaluated != nil {
		at := time.Now()
		for _, s := range p.fed {
			p.o.Evaluated(s, at)
		}
		clear(p.fed)
		p.fed = p.fed[:0]
	}
}

// Run feeds the engine until ctx ends, and ticks it every Tick. Signals
// arriving within Coalesce of the last evaluation wait for the next one.
func (p *Pipeline) Run(ctx context.Context) error {
	tick := time.NewTicker(p.o.Tick)
	defer tick.Stop()
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	var pending bool
	var last time.Time
	for {
		busy := p.feed(ctx, 4096) == 4096
		pending = pending || p.eng.dirty()
		if pending {
			if wait := p.o.Coalesce - time.Since(last); wait <= 0 {
				p.flush(ctx)
				last, pending = time.Now(), false
			} else {
				wake.Reset(wait)
			}
		}
		if busy { // tick between batches, but do not wait
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
				p.eng.Tick(ctx)
			default:
			}
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			p.eng.Tick(ctx)
		case <-p.q.notify:
		case <-wake.C:
		}
	}
}

// Stats returns the counters.
func (p *Pipeline) Stats() PipelineStats {
	queued, dropped, rejected := p.q.stats()
	return PipelineStats{Messages: p.messages.Load(), Bytes: p.payloadBytes.Load(), Records: p.records.Load(), Signals: p.signals.Load(),
		NonNumeric: p.nonNumeric.Load(), Malformed: p.malformed.Load(), Dropped: dropped, Rejected: rejected, Queued: queued}
}
