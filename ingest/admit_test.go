package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/internal/clock"
)

// floodSources is how many distinct sources TestPipelineSourceFlood sends.
func floodSources() int {
	if testing.Short() {
		return 20_000
	}
	return 100_000
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// A flood of distinct sources that no rule reads, from many publishers,
// neither keeps a new source that a rule reads from its place nor drives a
// decision; the series table's memory stays bounded by the unread pool.
func TestPipelineSourceFlood(t *testing.T) {
	n := floodSources()
	clk := clock.NewFake(testNow)
	rec := &recorder{}
	logs := &countHandler{}
	r := baseRule()
	r.Trigger.Aggregate = AggMax
	// A table smaller than the flood, so that unread series would fill it.
	e, _ := NewEngine([]Rule{r}, rec, EngineOptions{Clock: clk, Log: slog.New(logs), MaxSeries: n / 2})
	p := NewPipeline(e, PipelineOptions{Clock: clk})
	ctx := context.Background()
	before := heapInUse()
	const batch = 1000
	for i := 0; i < n; i++ {
		p.HandleMQTT(fmt.Sprintf("edge/v1/plant/bot-%d/load/x-%d", i%997, i), load(1000))
		if i%batch != batch-1 {
			continue
		}
		p.HandleMQTT("edge/v1/plant/n1/load/cam-1", load(1))
		if i > n*4/5 { // a device that appears once the flood is under way
			p.HandleMQTT("edge/v1/plant/n1/load/cam-2", load(20))
		}
		p.Drain(ctx)
		clk.Advance(time.Second)
		e.Tick(ctx)
	}
	after := heapInUse()
	runtime.KeepAlive(p)

	st := e.Stats()
	if st.Series != 2 || st.UnreadSeries > e.opts.MaxUnreadSeries || st.RefusedUnreadPoolFull == 0 || st.SeriesDropped != 0 {
		t.Fatalf("stats %+v", st)
	}
	got := rec.profiles()
	if len(got) != 2 || got[0] != "1x80gb/scale-down" || got[1] != "7x10gb/scale-up" {
		t.Fatalf("decisions %v, want the idle profile and then the one cam-2 asks for", got)
	}
	ev := e.Events()
	if in := ev[len(ev)-1].Inputs; len(in) != 2 || in[0].Source != "plant/n1/cam-2" || in[0].Value != 20 {
		t.Errorf("scale-up inputs %+v", in)
	}
	// 1 s of fake time per batch, one refusal line per 5 s at most, and a
	// line per decision.
	if l, most := logs.n.Load(), int64(n/batch/5+1+len(got)); l <= int64(len(got)) || l > most {
		t.Errorf("%d log lines, want %d..%d", l, len(got)+1, most)
	}
	grew := int64(after) - int64(before)
	t.Logf("%d sources: heap %d -> %d bytes (%+d); %d series, %d unread, %d refused, %d unread forgotten",
		n, before, after, grew, st.Series, st.UnreadSeries, st.RefusedUnreadPoolFull, st.UnreadForgotten)
	// The pool's 4096 entries cost about 240 bytes each; a table that kept
	// the flood's series held about 350 bytes for each of tens of thousands.
	if limit := int64(4 << 20); grew > limit {
		t.Errorf("heap grew %d bytes under the flood, want at most %d", grew, limit)
	}
}

// A series no rule reads takes no place in the table and is forgotten
// UnreadTTL after its last signal.
func TestEngineForgetsUnreadSeries(t *testing.T) {
	clk := clock.NewFake(testNow)
	e, _ := NewEngine([]Rule{baseRule()}, &recorder{}, EngineOptions{Clock: clk, UnreadTTL: time.Minute})
	ctx := context.Background()
	for i := range 10 {
		e.Observe(ctx, sig(clk, fmt.Sprintf("other-%d", i), 1))
	}
	check := func(when string, read, unread int) {
		t.Helper()
		if st := e.Stats(); st.Series != read || st.UnreadSeries != unread {
			t.Fatalf("%s: %d series, %d unread; want %d, %d (stats %+v)", when, st.Series, st.UnreadSeries, read, unread, st)
		}
	}
	check("at first", 0, 10)
	clk.Advance(30 * time.Second)
	e.Observe(ctx, sig(clk, "other-3", 2))
	e.Tick(ctx)
	check("30s on", 0, 10)
	clk.Advance(30 * time.Second)
	e.Tick(ctx)
	check("1m on", 0, 1)
	clk.Advance(30 * time.Second)
	e.Tick(ctx)
	check("1m30s on", 0, 0)
	if st := e.Stats(); st.UnreadForgotten != 10 || st.Unmatched != 11 {
		t.Errorf("stats %+v", st)
	}
	if len(e.publishers) != 0 {
		t.Errorf("publisher counts left: %v", e.publishers)
	}
}

// One publisher holds at most MaxSeriesPerPublisher series that a rule
// reads, and as many unread; past that its new series are refused, while
// other publishers and its own admitted series carry on.
func TestEnginePublisherCap(t *testing.T) {
	clk := clock.NewFake(testNow)
	r := baseRule()
	r.Trigger.Aggregate = AggMax
	rec := &recorder{}
	e, _ := NewEngine([]Rule{r}, rec, EngineOptions{Clock: clk, MaxSeriesPerPublisher: 3})
	ctx := context.Background()
	from := func(node, source string, v float64) Signal {
		s := sig(clk, source, v)
		s.Topic.Node = node
		return s
	}
	for i := range 10 {
		e.Observe(ctx, from("evil", fmt.Sprintf("cam-%d", i), 1))
		e.Observe(ctx, from("evil", fmt.Sprintf("x-%d", i), 1))
	}
	e.Observe(ctx, from("n1", "cam-1", 2))
	e.Observe(ctx, from("evil", "cam-0", 50)) // admitted: still windowed
	e.Observe(ctx, from("evil", "cam-9", 99)) // refused: no decision from it
	st := e.Stats()
	if st.Series != 4 || st.UnreadSeries != 3 || st.RefusedPublisherCap != 7+7+1 || e.publishers["plant/evil"].read != 3 {
		t.Fatalf("stats %+v", st)
	}
	ev := e.Events()
	if len(ev) == 0 || ev[len(ev)-1].Value != 50 {
		t.Fatalf("events %+v, want the last decided on cam-0's 50", ev)
	}
	// A series forgotten frees its publisher's place.
	clk.Advance(2 * time.Hour)
	e.Tick(ctx)
	e.Observe(ctx, from("evil", "cam-9", 1))
	if st := e.Stats(); st.Series != 1 || st.RefusedPublisherCap != 15 {
		t.Errorf("after the sweep: stats %+v", st)
	}
}

// Replacing the rules moves series between the table and the unread pool,
// keeping the publisher counts exact.
func TestEngineSetRulesMovesUnreadSeries(t *testing.T) {
	clk := clock.NewFake(testNow)
	e, _ := NewEngine([]Rule{baseRule()}, &recorder{}, EngineOptions{Clock: clk, MaxSeriesPerPublisher: 2})
	ctx := context.Background()
	e.Observe(ctx, sig(clk, "cam-1", 1))
	e.Observe(ctx, sig(clk, "other-1", 1))
	r := baseRule()
	r.Trigger.Source = "plant/*/other-*"
	if err := e.SetRules([]Rule{r}); err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.Series != 0 || st.UnreadSeries != 0 || len(e.publishers) != 0 {
		t.Fatalf("after SetRules: stats %+v, publishers %v", st, e.publishers)
	}
	for _, src := range []string{"cam-1", "other-1", "other-2", "other-3"} {
		e.Observe(ctx, sig(clk, src, 1))
	}
	if st := e.Stats(); st.Series != 2 || st.UnreadSeries != 1 || st.RefusedPublisherCap != 1 {
		t.Errorf("stats %+v", st)
	}
}
