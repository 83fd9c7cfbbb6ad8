//go:build cgo

package cuda

import (
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
)

// The compute-share gate over a fake driver whose kernels take 300 µs of
// device time, one at a time, and whose events measure it.

func TestFakeDriverGate(t *testing.T) { inChild(t, "TestFakeDriverGateChild") }

const timedKernel = 300 * time.Microsecond

// grantGate is a gpu.Gate that spends grants of a slicer.Arbiter, as a
// worker does: a grant covers kernels until their measured time spends
// it (cut short when the arbiter says others wait), then goes back with
// what they used.
type grantGate struct {
	ar     *slicer.Arbiter
	client string

	mu      sync.Mutex
	g       slicer.Grant
	held    bool
	used    time.Duration // charged to the grant held
	entered int
	done    int
	charged time.Duration
}

func (q *grantGate) Enter() func(time.Duration) {
	q.mu.Lock()
	q.entered++
	if q.held && q.used < q.g.Budget {
		q.mu.Unlock()
		return q.charge
	}
	spent, used, held := q.g, q.used, q.held
	// Launches still in flight are charged to the next grant.
	q.held, q.used = false, 0
	q.mu.Unlock()
	if held {
		q.ar.Report(spent, used)
	}
	got := make(chan slicer.Grant, 1)
	err := q.ar.AskYield(q.client, 0, func(g slicer.Grant, err error) {
		if err == nil {
			got <- g
		}
	}, func(g slicer.Grant) {
		// Others wait: what is left is g.Budget from now.
		q.mu.Lock()
		defer q.mu.Unlock()
		if q.held && q.g.ID == g.ID {
			q.g.Budget = min(q.g.Budget, q.used+g.Budget)
		}
	})
	if err == nil {
		g := <-got
		q.mu.Lock()
		q.g, q.held = g, true
		q.mu.Unlock()
	}
	return q.charge
}

func (q *grantGate) charge(d time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.used += d
	q.done++
	q.charged += d
}

func (q *grantGate) counts() (entered, done int, charged time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.entered, q.done, q.charged
}

func TestFakeDriverGateChild(t *testing.T) {
	dir := os.Getenv(fakeDirEnv)
	if dir == "" {
		t.Skip("run by TestFakeDriverGate")
	}
	ar := slicer.NewArbiter(slicer.ArbiterConfig{Quantum: 2 * time.Millisecond})
	b, err := New(Config{Library: filepath.Join(dir, "timed.so")})
	if err != nil {
		t.Fatal(err)
	}
	open := func(client string, share float64) (*Context, gpu.Function, *grantGate) {
		t.Helper()
		ar.SetShare(client, share)
		gate := &grantGate{ar: ar, client: client}
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
		for range n {
			if err := c.Launch(f, fakeLaunch, params, nil); err != nil {
				t.Fatal(err)
			}
		}
		// No synchronisation: the meter's watcher charges each launch
		// as its events complete.
		testkit.WaitFor(t, "every launch charged", func() bool { _, done, _ := gate.counts(); return done == n })
		entered, _, charged := gate.counts()
		if entered != n || charged < n*timedKernel*99/100 || charged > n*timedKernel*101/100 {
			t.Fatalf("%d launches of %v: entered %d, charged %v", n, timedKernel, entered, charged)
		}
		// A launch that fails is charged nothing.
		if err := c.Launch(f, fakeLaunch, params[:20], nil); abi.ResultOf(err) != abi.ErrInvalidValue {
			t.Fatalf("short parameters: %v", err)
		}
		if entered, done, charged2 := gate.counts(); entered != n+1 || done != n+1 || charged2 != charged {
			t.Fatalf("after a failed launch: entered %d, done %d, charged %v", entered, done, charged2)
		}
	})

	t.Run("shares 30/70", func(t *testing.T) {
		// Two tenants with fixed work, unsynchronised, each keeping a few
		// launches in flight; their shares are the arbiter's own
		// accounts when the first has done its work.
		small, fs, _ := open("small", 0.3)
		big, fb, _ := open("big", 0.7)
		var once sync.Once
		var at map[string]time.Duration
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for _, tn := range []struct {
			name string
			c    *Context
			f    gpu.Function
		}{{"small", small, fs}, {"big", big, fb}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer ar.Remove(tn.name) // its session ends: its grant goes back
				for i := range 2000 {
					select {
					case <-stop:
						return
					default:
					}
					if err := tn.c.Launch(tn.f, fakeLaunch, params, nil); err != nil {
						t.Error(err)
						return
					}
					if i%4 == 3 {
						tn.c.Synchronize()
					}
				}
				once.Do(func() {
					at = map[string]time.Duration{}
					for _, s := range ar.Stats() {
						at[s.Client] = s.Used
					}
					close(stop)
				})
			}()
		}
		wg.Wait()
		total := at["small"] + at["big"]
		t.Logf("arbiter charged small %v, big %v", at["small"], at["big"])
		for name, share := range map[string]float64{"small": 0.3, "big": 0.7} {
			if got := float64(at[name]) / float64(total); math.Abs(got-share)/share > 0.05 {
				t.Errorf("%s got %.1f%% of %v, want %.0f%% ± 5%%", name, got*100, total, share*100)
			}
		}
	})
}
