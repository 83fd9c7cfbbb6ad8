//go:build cgo

package cuda

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/internal/testkit"
	"github.com/kerf-edge/kerf/slicer"
	"github.com/kerf-edge/kerf/slicer/slicertest"
)

// The compute-share gate over a fake driver whose kernels take 300 µs of
// device time, one at a time, and whose events measure it.

func TestFakeDriverGate(t *testing.T) { inChild(t, "TestFakeDriverGateChild") }

const timedKernel = 300 * time.Microsecond

func TestFakeDriverGateChild(t *testing.T) {
	dir := os.Getenv(fakeDirEnv)
	if dir == "" {
		t.Skip("run by TestFakeDriverGate")
	}
	// As kerfd's on a real GPU: 2 ms quanta, one grant out at a time.
	ar := slicer.NewArbiter(slicer.ArbiterConfig{Quantum: 2 * time.Millisecond})
	b, err := New(Config{Library: filepath.Join(dir, "timed.so")})
	if err != nil {
		t.Fatal(err)
	}
	open := func(client string, share float64) (*Context, gpu.Function, *slicertest.Gate) {
		t.Helper()
		ar.SetShare(client, share)
		gate := slicertest.NewGate(ar, client)
		b.Pace(gate)
		g, err := b.Open(0, 0)
		if err != nil {
			t.Fatal(err)
		}
		c := g.(*Context)
		t.Cleanup(func() { c.Close() })
		m, err := c.ModuleLoad([]byte(".version 8.4\n"))
		if err != nil {
			t.Fatal(err)
		}
		f, err := m.Function("vadd")
		if err != nil {
			t.Fatal(err)
		}
		return c, f, gate
	}
	params := make([]byte, 28)

	t.Run("charges measured time", func(t *testing.T) {
		c, f, gate := open("alone", 0.5)
		defer ar.Remove("alone") // its session ends: its grant goes back
		const n = 20
		// A launch on an idle device starts when its call reaches the
		// driver, later than its start event if the thread was
		// descheduled in between: as on a GPU, that gap is charged too,
		// and it is bounded by the time the launch calls took.
		var inCalls time.Duration
		for range n {
			start := time.Now()
			if err := c.Launch(f, fakeLaunch, params, nil); err != nil {
				t.Fatal(err)
			}
			inCalls += time.Since(start)
		}
		// No synchronisation: the meter's watcher charges each launch
		// as its events complete.
		testkit.WaitFor(t, "every launch charged", func() bool { _, done, _ := gate.Counts(); return done == n })
		entered, _, charged := gate.Counts()
		if entered != n || charged < n*timedKernel*99/100 || charged > n*timedKernel*101/100+inCalls {
			t.Fatalf("%d launches of %v, their calls taking %v: entered %d, charged %v", n, timedKernel, inCalls, entered, charged)
		}
		// A launch that fails is charged nothing.
		if err := c.Launch(f, fakeLaunch, params[:20], nil); abi.ResultOf(err) != abi.ErrInvalidValue {
			t.Fatalf("short parameters: %v", err)
		}
		if entered, done, charged2 := gate.Counts(); entered != n+1 || done != n+1 || charged2 != charged {
			t.Fatalf("after a failed launch: entered %d, done %d, charged %v", entered, done, charged2)
		}
	})

	// Tenants with fixed work, unsynchronised, each keeping a few
	// launches in flight, contend for the GPU until the first has done
	// its work. Each tenant's part of the GPU time charged in every 1 s
	// window from then must be within ±5% (relative) of its share.
	for _, tc := range []struct {
		name   string
		shares []float64
	}{{"shares 30/70", []float64{0.3, 0.7}}, {"shares 20/30/50", []float64{0.2, 0.3, 0.5}}} {
		t.Run(tc.name, func(t *testing.T) {
			type tenant struct {
				name string
				c    *Context
				f    gpu.Function
				gate *slicertest.Gate
			}
			tns := make([]*tenant, len(tc.shares))
			for i, share := range tc.shares {
				tn := &tenant{name: fmt.Sprintf("%s-%d", tc.name, i)}
				tn.c, tn.f, tn.gate = open(tn.name, share)
				tns[i] = tn
			}
			var once sync.Once
			var end time.Time
			first := make(chan struct{}) // closed when the first is done
			var ends sync.WaitGroup
			for i, tn := range tns {
				ends.Add(1)
				go func() {
					defer ends.Done()
					defer ar.Remove(tn.name) // its session ends: its grant goes back
					for k := range shareWork {
						select {
						case <-first:
							return
						default:
						}
						// Unsynchronised: each its own depth of launches in flight.
						if k%(3+i) == 2+i {
							tn.c.Synchronize()
						}
						if err := tn.c.Launch(tn.f, fakeLaunch, params, nil); err != nil {
							t.Error(err)
							return
						}
					}
					tn.c.Synchronize()
					once.Do(func() { end = time.Now(); close(first) })
				}()
			}
			ends.Wait()
			for _, tn := range tns {
				tn.c.Synchronize()
				testkit.WaitFor(t, "every launch charged", func() bool { entered, done, _ := tn.gate.Counts(); return done == entered })
			}
			logs := make([][]slicertest.Charge, len(tns))
			for i, tn := range tns {
				logs[i] = tn.gate.Charges()
			}
			windows := slicertest.Windows(logs, 250*time.Millisecond, time.Second, end)
			if len(windows) < minShareWindows {
				t.Fatalf("%d windows of 1 s with every tenant running; want at least %d", len(windows), minShareWindows)
			}
			worst := 0.0
			for w, parts := range windows {
				for i, share := range tc.shares {
					dev := math.Abs(parts[i]-share) / share
					worst = max(worst, dev)
					if math.IsNaN(dev) || dev > 0.05 { // NaN: a window with no GPU time
						t.Errorf("window %d: tenant %d (%.0f%%) got %.1f%% of the GPU time", w, i, share*100, parts[i]*100)
					}
				}
			}
			t.Logf("%d windows of 1 s; worst deviation from a share %.1f%% (relative)", len(windows), worst*100)
		})
	}
}

// shareWork is each tenant's work, in launches: at 300 µs each, about
// 4–6 s of contention before the largest share is done, on a machine
// that keeps the fake GPU busy.
const shareWork = 10000

// minShareWindows is the fewest 1 s windows a share test measures.
const minShareWindows = 3
