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
// one grant, asked for once and never renewed: nothing goes to kerfd per
// kernel. When a second tenant asks, the holder gives the grant back,
// charging what it used alone, and the newcomer gets the GPU.
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
	if acquires != 1 || renewals != 0 {
		t.Errorf("%d kernels: %d acquisitions, %d renewals; want 1 and 0", kernels, acquires, renewals)
	}
	if got := k.used()["solo"]; got != 0 {
		t.Errorf("solo charged %v before anyone else asked, want nothing sent", got)
	}
	other := k.gate(t, "other", 0.5)
	entered := make(chan struct{})
	go func() { other.Enter()(gateKernel); close(entered) }()
	select {
	case <-entered:
	case <-time.After(gateWait / 2):
		t.Fatal("the second tenant waited for the idle solo holder")
	}
	checkCharged(t, k, "solo", kernels*gateKernel)
}

// TestShareGateCountsInFlight: launches queued ahead of the GPU (entered,
// not yet done, as on a CUDA stream) count against a grant at the mean
// time of recent kernels, so a grant lets in about as many as its budget
// covers, not every launch queued before the first completes.
func TestShareGateCountsInFlight(t *testing.T) {
	k := newGateKerfd(slicer.ArbiterConfig{Quantum: 2 * time.Millisecond})
	a, b := k.gate(t, "a", 0.5), k.gate(t, "b", 0.5)
	b.Enter()(gateKernel) // b was just active: a's grants are budgets
	a.Enter()(200 * time.Microsecond)
	const queued = 30
	dones := make(chan func(time.Duration), queued)
	go func() {
		for range queued {
			dones <- a.Enter()
		}
	}()
	// The grant is 2 ms: about 10 launches of 200 µs may be in flight.
	var held []func(time.Duration)
	for timeout := time.After(200 * time.Millisecond); len(held) < queued; {
		select {
		case d := <-dones:
			held = append(held, d)
			continue
		case <-timeout:
		}
		break
	}
	t.Logf("%d of %d launches let in on a 2 ms grant with 200 µs kernels in flight", len(held), queued)
	if len(held) == 0 || len(held) > 12 {
		t.Errorf("%d of %d launches let in on a 2 ms grant with 200 µs kernels in flight, want 1 to 12", len(held), queued)
	}
	// As they complete, the rest get in on later grants.
	for n := len(held); n < queued; n++ {
		for _, d := range held {
			d(200 * time.Microsecond)
		}
		held = held[:0]
		select {
		case d := <-dones:
			held = append(held, d)
		case <-time.After(gateWait):
			t.Fatalf("launch %d of %d never let in", n+1, queued)
		}
	}
	for _, d := range held {
		d(200 * time.Microsecond)
	}
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

// BenchmarkShareGateSolo is what the gate costs a kernel of a tenant alone
// on the GPU, holding a solo grant.
func BenchmarkShareGateSolo(b *testing.B) {
	k := newGateKerfd(slicer.ArbiterConfig{Quantum: 2 * time.Millisecond})
	k.ar.SetShare("solo", 0.5)
	var g *shareGate
	g = newShareGate(func(m ctlMsg) error {
		if _, ok := m.(acquireMsg); ok {
			go k.ar.AskYield("solo", 0, func(gr slicer.Grant, err error) {
				g.granted(grantMsg{ID: gr.ID, Budget: gr.Budget})
			}, nil)
		}
		return nil
	}, gateHold)
	g.Enter()(gateKernel)
	b.ResetTimer()
	for range b.N {
		g.Enter()(gateKernel)
	}
}
