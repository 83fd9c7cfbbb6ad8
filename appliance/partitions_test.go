package appliance

import (
	"log/slog"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/slicer"
	"github.com/kerf-edge/kerf/transport"
)

func TestSMPlannerPlan(t *testing.T) {
	p := &smPlanner{groups: map[int]int{0: 16}}
	for _, tc := range []struct {
		name   string
		dev    int
		shares map[string]float64
		want   map[string]smPartitionMsg
	}{
		{"time-sliced GPU", 1, map[string]float64{"a": 1}, nil},
		{"30/70 in slice order", 0, map[string]float64{"s2": 0.7, "s1": 0.3},
			map[string]smPartitionMsg{"s1": {First: 0, Groups: 5}, "s2": {First: 5, Groups: 11}}},
		{"a zero share gets the minimum", 0, map[string]float64{"a": 0, "b": 0.5},
			map[string]smPartitionMsg{"a": {First: 0, Groups: 1}, "b": {First: 1, Groups: 8}}},
		{"more slices than groups: all SMs, paced", 0, map[string]float64{
			"a": 0.05, "b": 0.05, "c": 0.05, "d": 0.05, "e": 0.05, "f": 0.05, "g": 0.05, "h": 0.05, "i": 0.05,
			"j": 0.05, "k": 0.05, "l": 0.05, "m": 0.05, "n": 0.05, "o": 0.05, "p": 0.05, "q": 0.05},
			nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := p.plan(tc.dev, tc.shares)
			if tc.want == nil && tc.dev == 0 {
				// Every slice gets the whole GPU, paced.
				for id, m := range got {
					if m != (smPartitionMsg{Device: 0, First: 0, Groups: 16, Gated: true}) {
						t.Errorf("slice %s: %+v, want all 16 groups, gated", id, m)
					}
				}
				if len(got) != len(tc.shares) {
					t.Errorf("%d slices planned, want %d", len(got), len(tc.shares))
				}
				return
			}
			if len(got) != len(tc.want) {
				t.Fatalf("plan %+v, want %+v", got, tc.want)
			}
			for id, w := range tc.want {
				w.Device = tc.dev
				if got[id] != w {
					t.Errorf("slice %s: %+v, want %+v", id, got[id], w)
				}
			}
		})
	}
}

// TestWorkersMoveOnReplan: sessions starting, a share changing and a
// session ending each move the other workers on the GPU, and only those
// whose SMs changed are told.
func TestWorkersMoveOnReplan(t *testing.T) {
	s := newWorkerSet(0, SessionCaps{}, &smPlanner{groups: map[int]int{0: 16}})
	pid := 100
	start := func(slice string, dev int, share float64) (*worker, *smPartitionMsg) {
		t.Helper()
		pid++
		w := &worker{pid: pid, slice: slice, adm: transport.Admission{Device: dev}, control: make(chan ctlMsg, 16), gone: make(chan struct{})}
		s.add(w)
		return w, s.partition(w, share)
	}
	told := func(w *worker) []smPartitionMsg {
		t.Helper()
		var out []smPartitionMsg
		for {
			select {
			case m := <-w.control:
				out = append(out, m.(smPartitionMsg))
			default:
				return out
			}
		}
	}

	a, pa := start("s1", 0, 0.5)
	if pa == nil || *pa != (smPartitionMsg{Groups: 8}) {
		t.Fatalf("alone, a 50%% slice runs on %+v, want groups [0,8): a partition is a ceiling", pa)
	}
	b, pb := start("s2", 0, 0.25)
	if pb == nil || *pb != (smPartitionMsg{First: 8, Groups: 4}) {
		t.Fatalf("second slice: %+v, want groups [8,12)", pb)
	}
	if got := told(a); len(got) != 0 {
		t.Fatalf("the first worker, whose SMs stay, was told %+v", got)
	}
	if got := told(b); len(got) != 0 {
		t.Fatalf("the new worker was told %+v besides its spec", got)
	}
	// A second session in the first slice shares its partition.
	a2, pa2 := start("s1", 0, 0.5)
	if pa2 == nil || *pa2 != (smPartitionMsg{Groups: 8}) {
		t.Fatalf("a second session of the first slice runs on %+v, want groups [0,8)", pa2)
	}
	// A session on a time-sliced GPU gets no partition and moves no one.
	if _, pc := start("s3", 1, 0.5); pc != nil {
		t.Fatalf("a time-sliced GPU's worker got %+v", pc)
	}
	// A re-slice to 25/75.
	if err := s.SetShare(slicer.SliceID("s1"), 0.25); err != nil {
		t.Fatal(err)
	}
	s.SetShare(slicer.SliceID("s2"), 0.75)
	if got := told(a); len(got) == 0 || got[len(got)-1] != (smPartitionMsg{First: 0, Groups: 4}) {
		t.Fatalf("after the re-slice the first worker was told %+v, want groups [0,4)", got)
	}
	if got := told(b); len(got) == 0 || got[len(got)-1] != (smPartitionMsg{First: 4, Groups: 12}) {
		t.Fatalf("after the re-slice the second worker was told %+v, want groups [4,16)", got)
	}
	if got := told(a2); len(got) == 0 || got[len(got)-1] != (smPartitionMsg{First: 0, Groups: 4}) {
		t.Fatalf("after the re-slice the first slice's second worker was told %+v, want groups [0,4)", got)
	}
	// One of the first slice's sessions ends: nothing moves.
	s.finish(a)
	if got := append(told(a2), told(b)...); len(got) != 0 {
		t.Fatalf("a session ended in a slice that still runs one, and workers were told %+v", got)
	}
	// The first slice's last session ends: the second keeps its 12
	// groups, from 0.
	s.finish(a2)
	if got := told(b); len(got) != 1 || got[0] != (smPartitionMsg{First: 0, Groups: 12}) {
		t.Fatalf("after the first slice's sessions ended the second was told %+v, want groups [0,12)", got)
	}
}

// countingGate counts the kernels it paced.
type countingGate struct{ entered int }

func (g *countingGate) Enter() func(time.Duration) {
	g.entered++
	return func(time.Duration) {}
}

// TestSMWorkerPaces: a worker's kernels skip the share gate while they
// have SMs of their own, and go through it when kerfd says the GPU is
// shared by time or the backend refuses the partition.
func TestSMWorkerPaces(t *testing.T) {
	g := &countingGate{}
	s := &smWorker{gate: g, log: slog.New(slog.DiscardHandler)}
	s.paced.Store(false)
	s.Enter()(time.Millisecond)
	if g.entered != 0 {
		t.Fatal("a partitioned worker's kernel entered the share gate")
	}
	// No CUDA backend (the emulator): the partition is refused.
	s.apply(smPartitionMsg{Device: 0, First: 0, Groups: 4})
	s.Enter()(time.Millisecond)
	if g.entered != 1 {
		t.Fatal("a refused partition left the kernels unpaced")
	}
}
