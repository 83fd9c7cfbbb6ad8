package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/internal/clock"
)

type countHandler struct{ n atomic.Int64 }

func (h *countHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (h *countHandler) Handle(context.Context, slog.Record) error { h.n.Add(1); return nil }
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler        { return h }
func (h *countHandler) WithGroup(string) slog.Handler             { return h }

func load(v int) []byte { return fmt.Appendf(nil, `[{"n":"queue_depth","v":%d}]`, v) }

// A flood of malformed messages is counted, logged at a bounded rate and
// does not keep a good message from its decision.
func TestPipelineMalformedFlood(t *testing.T) {
	clk := clock.NewFake(testNow)
	rec := &recorder{}
	logs := &countHandler{}
	e, _ := NewEngine([]Rule{baseRule()}, rec, EngineOptions{Clock: clk})
	p := NewPipeline(e, PipelineOptions{Clock: clk, Log: slog.New(logs), LogEvery: time.Second})
	junk := [][]byte{nil, []byte(`{`), []byte(`[]`), []byte(`[{"n":"x"}]`), make([]byte, MaxPayload+1), []byte(`[{"n":"q","v":"1"}]`)}
	const n = 30000
	for i := 0; i < n; i++ {
		if i%1000 == 0 {
			clk.Advance(time.Second / 2)
		}
		p.HandleMQTT("edge/v1/plant/n1/load/bad", junk[i%len(junk)])
		p.HandleNATS("edge.v1.plant.n1.nope.bad", nil)
		p.HandleMQTT("edge/v1/plant/n1/status/bad", []byte("maybe"))
	}
	p.HandleMQTT("edge/v1/plant/n1/load/cam-1", load(20))
	p.Drain(context.Background())
	st := p.Stats()
	if st.Malformed != 3*n || st.Signals != 1 || rec.count() != 1 {
		t.Fatalf("stats %+v, %d decisions", st, rec.count())
	}
	if l := logs.n.Load(); l < 10 || l > 20 { // 15 s of fake time, one line a second
		t.Errorf("%d log lines for %d malformed messages", l, st.Malformed)
	}
}

// Every message's payload bytes are counted, whatever becomes of it:
// decoded, malformed or a status.
func TestPipelineCountsBytes(t *testing.T) {
	e, _ := NewEngine([]Rule{baseRule()}, &recorder{}, EngineOptions{Clock: clock.NewFake(testNow)})
	p := NewPipeline(e, PipelineOptions{Clock: clock.NewFake(testNow)})
	msgs := []struct {
		topic   string
		payload []byte
	}{
		{"edge/v1/plant/n1/load/cam-1", load(20)},
		{"edge/v1/plant/n1/load/cam-1", []byte(`{`)},
		{"edge/v1/plant/n1/status/cam-1", []byte("online")},
		{"not/a/topic", []byte("xyz")},
	}
	var want uint64
	for _, m := range msgs {
		p.HandleMQTT(m.topic, m.payload)
		want += uint64(len(m.payload))
	}
	p.HandleNATS("edge.v1.plant.n1.load.cam-2", load(7))
	want += uint64(len(load(7)))
	if st := p.Stats(); st.Bytes != want || st.Messages != 5 {
		t.Fatalf("stats %+v, want %d bytes in 5 messages", st, want)
	}
}

// A flooding source drops only its own oldest messages; the queue and the
// heap stay bounded however long the flood lasts.
func TestPipelineDropOldestBounded(t *testing.T) {
	clk := clock.NewFake(testNow)
	rec := &recorder{}
	r := baseRule()
	r.Trigger.Aggregate = AggMax
	e, _ := NewEngine([]Rule{r}, rec, EngineOptions{Clock: clk, MaxSamples: 16})
	p := NewPipeline(e, PipelineOptions{Clock: clk, QueuePerSource: 8, QueueTotal: 64, MaxSources: 16})
	p.HandleMQTT("edge/v1/plant/n1/load/cam-quiet", load(1))
	flood := func(n int) {
		for i := 0; i < n; i++ {
			p.HandleMQTT("edge/v1/plant/n1/load/cam-flood", load(i))
		}
	}
	flood(1000)
	if st := p.Stats(); st.Queued != 9 || st.Dropped != 992 {
		t.Fatalf("after flood: %+v", st)
	}
	// Past MaxSources, new sources are refused; past QueueTotal, a source
	// with something queued drops its own oldest.
	for i := 0; i < 40; i++ {
		for j := 0; j < 8; j++ {
			p.HandleMQTT(fmt.Sprintf("edge/v1/plant/n1/load/s%d", i), load(j))
		}
	}
	if st := p.Stats(); st.Queued > 64 || st.Rejected == 0 {
		t.Fatalf("bounds: %+v", st)
	}
	p.Drain(context.Background())
	// The quiet source got through, and the flooder's newest 8 survived.
	fl := e.series["plant/n1/cam-flood\x00queue_depth"]
	if len(fl.samples) != 8 || fl.samples[0].v != 992 || fl.samples[7].v != 999 {
		t.Errorf("flood series %+v", fl.samples)
	}
	if q := e.series["plant/n1/cam-quiet\x00queue_depth"]; q == nil || len(q.samples) != 1 {
		t.Errorf("quiet series %+v", q)
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for round := 0; round < 5; round++ {
		flood(5000)
		p.Drain(context.Background())
		clk.Advance(time.Second)
	}
	flood(5000) // leave the queue full
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grow := int64(after.HeapAlloc) - int64(before.HeapAlloc); grow > 4<<20 {
		t.Errorf("heap grew %d bytes over a 30k-message flood", grow)
	}
	if st := p.Stats(); st.Queued > 64 {
		t.Errorf("queued %d", st.Queued)
	}
}

func TestPipelineRunTicks(t *testing.T) {
	// The engine's time is a fake clock, so how late the run loop gets to a
	// signal on a busy machine cannot make it stale: it goes stale only when
	// the clock is moved past StaleAfter.
	clk := clock.NewFake(testNow)
	rec := &recorder{}
	r := baseRule()
	r.Trigger.StaleAfter = Duration(time.Second)
	r.Fallback.Profile = "2x40gb"
	e, _ := NewEngine([]Rule{r}, rec, EngineOptions{Clock: clk})
	p := NewPipeline(e, PipelineOptions{Clock: clk, Tick: 5 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	p.HandleMQTT("edge/v1/plant/n1/load/cam-1", load(20))
	wait := func(n int) {
		deadline := time.Now().Add(10 * time.Second)
		for len(rec.profiles()) < n && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	wait(1)
	clk.Advance(2 * time.Second) // the run loop's tick finds the signal stale
	wait(2)
	cancel()
	<-done
	if got := rec.profiles(); len(got) < 2 || got[0] != "7x10gb/scale-up" || got[1] != "2x40gb/fallback-stale" {
		t.Fatalf("run: %v", got)
	}
}
