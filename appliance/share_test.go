package appliance

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/slicer"
)

// gateKerfd is kerfd's side of the share protocol for gates in this
// process: each gate's messages are handled in order on a goroutine of
// its own, as a control socket would carry them, against a real Arbiter.
type gateKerfd struct {
	ar *slicer.Arbiter
	mu sync.Mutex
	// counts of what the gates sent, by client
	acquires, renewals map[string]int
}

func newGateKerfd(cfg slicer.ArbiterConfig) *gateKerfd {
	return &gateKerfd{ar: slicer.NewArbiter(cfg), acquires: map[string]int{}, renewals: map[string]int{}}
}

// gate returns a gate for client, with the given share.
func (k *gateKerfd) gate(t *testing.T, client string, share float64) *shareGate {
	t.Helper()
	k.ar.SetShare(client, share)
	msgs := make(chan ctlMsg, 64)
	g := newShareGate(func(m ctlMsg) error { msgs <- m; return nil }, gateHold)
	held := map[uint64]slicer.Grant{}
	var mu sync.Mutex
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		for {
			var m ctlMsg
			select {
			case m = <-msgs:
			case <-stop:
				return
			}
			switch m := m.(type) {
			case acquireMsg:
				k.count(k.acquires, client)
				k.ar.AskYield(client, 0, func(gr slicer.Grant, err error) {
					if err != nil {
						return
					}
					mu.Lock()
					held[gr.ID] = gr
					mu.Unlock()
					g.granted(grantMsg{ID: gr.ID, Budget: gr.Budget})
				}, func(gr slicer.Grant) { g.yield(yieldMsg{Grant: gr.ID, Budget: gr.Budget}) })
			case renewMsg:
				k.count(k.renewals, client)
				mu.Lock()
				gr, ok := held[m.Grant]
				mu.Unlock()
				if !ok {
					continue
				}
				switch gr, ok, err := k.ar.Renew(gr, m.Used); {
				case err != nil:
				case ok:
					g.granted(grantMsg{ID: gr.ID, Budget: gr.Budget})
				default:
					g.yield(yieldMsg{Grant: gr.ID, Budget: gr.Budget})
				}
			case usedMsg:
				mu.Lock()
				gr, ok := held[m.Grant]
				delete(held, m.Grant)
				mu.Unlock()
				if ok {
					k.ar.Report(gr, m.Used)
				}
			}
		}
	}()
	return g
}

func (k *gateKerfd) count(m map[string]int, client string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	m[client]++
}

func (k *gateKerfd) used() map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, s := range k.ar.Stats() {
		out[s.Client] = s.Used
	}
	return out
}

// kernel is the time every simulated kernel reports.
const gateKernel = 50 * time.Microsecond

// TestShareGateSoloAsksOnce: a tenant alone runs thousands of kernels on
// one grant, renewed ahead of need, instead of asking per kernel.
func TestShareGateSoloAsksOnce(t *testing.T) {
	k := newGateKerfd(slicer.ArbiterConfig{Quantum: 2 * time.Millisecond})
	g := k.gate(t, "solo", 0.5)
	const kernels = 20000
	for range kernels {
		g.Enter()(gateKernel)
	}
	k.mu.Lock()
	acquires, renewals := k.acquires["solo"], k.renewals["solo"]
	k.mu.Unlock()
	// 20000 × 50 µs is 1 s of GPU time: 500 quanta, 10 solo budgets.
	if acquires > 3 || renewals < 5 {
		t.Errorf("%d kernels: %d acquisitions, %d renewals; want ≤ 3 and ≥ 5", kernels, acquires, renewals)
	}
	checkCharged(t, k, "solo", kernels*gateKernel/2)
}

// checkCharged checks that at least want of client's time is charged
// (the rest is charged when the grant goes back).
func checkCharged(t *testing.T, k *gateKerfd, client string, want time.Duration) {
	t.Helper()
	if got := k.used()[client]; got < want {
		t.Fatalf("%s charged %v, want ≥ %v", client, got, want)
	}
}

// TestShareGateContended: two tenants at 30/70 running kernels back to
// back, unsynchronised, are charged GPU time 30/70 ± 5%, measured when
// the first has done its fixed work. Kernels take real time, so that
// yields and renewals race with them as they do on a GPU.
func TestShareGateContended(t *testing.T) {
	k := newGateKerfd(slicer.ArbiterConfig{Quantum: 2 * time.Millisecond})
	shares := map[string]float64{"small": 0.3, "big": 0.7}
	var wg sync.WaitGroup
	var once sync.Once
	var at map[string]time.Duration
	stop := make(chan struct{})
	for name, share := range shares {
		g := k.gate(t, name, share)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2000 {
				select {
				case <-stop:
					return
				default:
				}
				done := g.Enter()
				start := time.Now()
				time.Sleep(gateKernel) // a kernel takes time
				done(time.Since(start))
			}
			once.Do(func() { at = k.used(); close(stop) })
		}()
	}
	wg.Wait()
	total := at["small"] + at["big"]
	t.Logf("charged: small %v, big %v", at["small"], at["big"])
	for name, share := range shares {
		got := float64(at[name]) / float64(total)
		if math.Abs(got-share)/share > 0.05 {
			t.Errorf("%s charged %.1f%% of %v, want %.0f%% ± 5%%", name, got*100, total, share*100)
		}
	}
}
