package appliance

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/ingest"
	"github.com/kerf-edge/kerf/profiles/api"
	"github.com/kerf-edge/kerf/profiles/client"
)

// historyHeapBound is the most kerfd's heap may grow by when the page's
// history holds 10,000 load-signal series over the default window (15m
// in 5s steps): 180 values of 4 bytes per series, with the map and the
// keys. docs/benchmarks.md has the measured figure.
const historyHeapBound = 24 << 20

// heapAlloc is the live heap after a collection.
func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestHistoryHeapWith10000Sources fills the history of a running kerfd
// with 10,000 sources, one signal per step over the whole window, handed
// over as the load-signal pipeline hands them, and reports the heap it
// took; then 30,000 more sources, which history.max_series (20,000) caps.
func TestHistoryHeapWith10000Sources(t *testing.T) {
	a := start(t, testConfig(t, t.TempDir()))
	if w, s := a.cfg.History.Window, a.cfg.History.Step; w != 15*time.Minute || s != 5*time.Second {
		t.Fatalf("history %v in %v steps: the bound is for the defaults", w, s)
	}
	fill := func(first, n int) time.Time {
		now := time.Now()
		steps := int(a.cfg.History.Window / a.cfg.History.Step)
		for k := steps - 1; k >= 0; k-- {
			at := now.Add(-time.Duration(k) * a.cfg.History.Step)
			for i := first; i < first+n; i++ {
				a.observeSignal(ingest.Signal{Topic: ingest.Topic{Site: "plant", Node: "n1", Kind: ingest.KindLoad, Source: fmt.Sprintf("cam-%05d", i)},
					Metric: "queue_depth", Value: float64(i + k), Time: at, Arrived: now})
			}
		}
		return now
	}
	before := heapAlloc()
	filled := fill(0, 10_000)
	after := heapAlloc()
	grew := int64(after) - int64(before)
	t.Logf("10,000 sources × %d steps: heap %.1f MiB → %.1f MiB, grew %.1f MiB (%.0f bytes per source)",
		int(a.cfg.History.Window/a.cfg.History.Step), float64(before)/(1<<20), float64(after)/(1<<20), float64(grew)/(1<<20), float64(grew)/10_000)
	if grew > historyHeapBound {
		t.Errorf("the history of 10,000 sources took %d bytes, over the bound %d", grew, historyHeapBound)
	}
	var h api.SignalHistory
	tok, err := a.api.RotateAdminToken()
	if err != nil {
		t.Fatal(err)
	}
	c := client.New("http://"+a.HTTPAddr(), tok)
	if err := c.Do(t.Context(), "GET", "/v1/history/signals?q=cam-0999&limit=200", nil, &h); err != nil {
		t.Fatal(err)
	}
	// The oldest steps leave the window while the fill runs (tens of
	// seconds under -race on a loaded machine).
	steps := int(a.cfg.History.Window / a.cfg.History.Step)
	left := int(time.Since(filled)/a.cfg.History.Step) + 1
	if h.Total != 10 || len(h.Series[0].Points.V) < steps-left {
		t.Fatalf("search: %d series, %d points in the first", h.Total, len(h.Series[0].Points.V))
	}

	// Past history.max_series new sources are refused: the heap stops.
	fill(10_000, 30_000)
	capped := heapAlloc()
	t.Logf("40,000 sources offered, %d kept: heap %.1f MiB", a.cfg.History.MaxSeries, float64(capped)/(1<<20))
	if err := c.Do(t.Context(), "GET", "/v1/history/signals?limit=1", nil, &h); err != nil {
		t.Fatal(err)
	}
	if h.Total != a.cfg.History.MaxSeries {
		t.Errorf("%d series kept, want history.max_series %d", h.Total, a.cfg.History.MaxSeries)
	}
	if int64(capped)-int64(before) > 2*historyHeapBound+historyHeapBound/2 {
		t.Errorf("at the cap the heap grew %d bytes", int64(capped)-int64(before))
	}
}
