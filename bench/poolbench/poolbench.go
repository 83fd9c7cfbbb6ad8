// Package poolbench measures a pool of kerfd processes on loopback, on
// the emulated GPU (`kerf bench pool`), and runs the pool's demo (`make
// demo-pool`): placement latency against a node alone measured in the
// same run, placements per second under contention, and the time from a
// member's SIGKILL to the next placement on the members left.
//
// It drives real kerfd processes through their public interfaces only:
// the tenant's lease request (intercept/launcher, as kerf run makes it)
// and the operator API. It measures and reports, and asserts nothing
// about speed. No product package may import it.
package poolbench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/kerf-edge/kerf/intercept/launcher"
)

// Options configure Run.
type Options struct {
	Kerfd      string  // the kerfd binary
	Dir        string  // scratch space for the nodes' state
	Nodes      int     // members of the pool (default 3)
	GPUs       int     // emulated GPUs per node (default 4)
	Fraction   float64 // of a GPU per placement (default 0.25)
	Placements int     // sequential placements measured on each side (default 200)
	Placers    int     // concurrent placers under contention (default 8)
	Contention time.Duration
	Progress   io.Writer // nil: quiet
}

// Result is what Run measured. Latencies are of a whole tenant lease
// request over QUIC: the handshake, the placement and the grant.
type Result struct {
	Nodes, GPUs int
	Fraction    float64
	Placements  int

	PoolP50Ms, PoolP99Ms     float64
	SingleP50Ms, SingleP99Ms float64
	P50Ratio, P99Ratio       float64 // pool / single node
	Redirected               int     // pool placements granted by another member than the one asked

	Placers                    int
	ContentionSeconds          float64
	PoolPerSec, SinglePerSec   float64
	PoolRefused, SingleRefused int    // refused for want of room, retried
	PoolErrors, SingleErrors   int    // any other failure
	FirstError                 string `json:",omitempty"`
	ContentionRatio            float64
	// Failovers: each member killed by SIGKILL in turn, and restarted
	// before the next; FailoverMs is the longest.
	Failovers  []Failover
	FailoverMs float64
	Targets    []Target
}

// Failover is one member's SIGKILL and the next placement after it.
type Failover struct {
	Killed     string
	MetaLeader bool    // it led JetStream's meta group when killed
	Ms         float64 // from the SIGKILL to the next placement granted
	Attempts   int     // placements asked of the members left until one was granted, one every 100 ms
	GrantedOn  string
	FirstError string `json:",omitempty"` // of the attempts refused meanwhile
}

// Target is one of the pool's goals and whether this run met it.
type Target struct {
	Name, Goal, Got string
	Met             bool
}

// Run starts a pool and a node alone, measures both, then kills the
// pool's members one at a time and times the next placement after each.
func Run(ctx context.Context, o Options) (Result, error) {
	o.Nodes = cmp.Or(o.Nodes, 3)
	o.GPUs = cmp.Or(o.GPUs, 4)
	o.Placements = cmp.Or(o.Placements, 200)
	o.Placers = cmp.Or(o.Placers, 8)
	if o.Fraction == 0 {
		o.Fraction = 0.25
	}
	if o.Contention == 0 {
		o.Contention = 3 * time.Second
	}
	say := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", a...)
		}
	}
	res := Result{Nodes: o.Nodes, GPUs: o.GPUs, Fraction: o.Fraction, Placements: o.Placements, Placers: o.Placers}

	say("starting a pool of %d kerfd and a kerfd alone, %d emulated GPUs each", o.Nodes, o.GPUs)
	pool, err := StartCluster(ctx, ClusterOptions{Kerfd: o.Kerfd, Dir: o.Dir + "/pool", Nodes: o.Nodes, GPUs: o.GPUs, Pool: true})
	if err != nil {
		return res, err
	}
	defer pool.Close()
	single, err := StartCluster(ctx, ClusterOptions{Kerfd: o.Kerfd, Dir: o.Dir + "/single", Nodes: 1, GPUs: o.GPUs})
	if err != nil {
		return res, err
	}
	defer single.Close()

	// Latency: one placement at a time, the pool's and the node's taking
	// turns so that both see the same load; the pool's are asked of each
	// member in turn.
	say("latency: %d placements of %.2f GPU on each, taking turns", o.Placements, o.Fraction)
	var poolLat, singleLat []time.Duration
	for i := -10; i < o.Placements; i++ { // ten of each to warm up
		entry := pool.Nodes[(i+10)%len(pool.Nodes)]
		d, at, err := place(ctx, pool, entry, o.Fraction)
		if err != nil {
			return res, fmt.Errorf("placement in the pool via %s: %w", entry.Name, err)
		}
		if i >= 0 {
			poolLat = append(poolLat, d)
			if at != entry {
				res.Redirected++
			}
		}
		if d, _, err = place(ctx, single, single.Nodes[0], o.Fraction); err != nil {
			return res, fmt.Errorf("placement on the node alone: %w", err)
		}
		if i >= 0 {
			singleLat = append(singleLat, d)
		}
	}
	res.PoolP50Ms, res.PoolP99Ms = ms(quantile(poolLat, 0.50)), ms(quantile(poolLat, 0.99))
	res.SingleP50Ms, res.SingleP99Ms = ms(quantile(singleLat, 0.50)), ms(quantile(singleLat, 0.99))
	res.P50Ratio, res.P99Ratio = res.PoolP50Ms/res.SingleP50Ms, res.PoolP99Ms/res.SingleP99Ms

	// Contention: placers placing and releasing at once, through every
	// member.
	say("contention: %d placers for %v on each", o.Placers, o.Contention)
	pc := contend(ctx, pool, o.Placers, o.Fraction, o.Contention)
	sc := contend(ctx, single, o.Placers, o.Fraction, o.Contention)
	res.ContentionSeconds = o.Contention.Seconds()
	res.PoolPerSec, res.PoolRefused, res.PoolErrors = float64(pc.ok)/o.Contention.Seconds(), pc.refused, pc.errors
	res.SinglePerSec, res.SingleRefused, res.SingleErrors = float64(sc.ok)/o.Contention.Seconds(), sc.refused, sc.errors
	res.FirstError = cmp.Or(pc.firstError, sc.firstError)
	if res.SinglePerSec > 0 {
		res.ContentionRatio = res.PoolPerSec / res.SinglePerSec
	}

	// Failover: each member is killed in turn, so that one of them leads
	// JetStream's meta group and each leads its own lease bucket, and the
	// members left are asked in turn until one places; the member is
	// restarted before the next.
	for _, victim := range pool.Nodes {
		f, err := failover(ctx, pool, victim, o.Fraction, say)
		if err != nil {
			return res, err
		}
		res.Failovers = append(res.Failovers, f)
		res.FailoverMs = max(res.FailoverMs, f.Ms)
		if err := victim.Start(ctx); err != nil {
			return res, err
		}
		if err := pool.WaitFormed(ctx, pool.Nodes); err != nil {
			return res, err
		}
	}

	res.Targets = []Target{
		{Name: "placement p99, loopback", Goal: "≤ 20 ms", Got: fmt.Sprintf("%.2f ms", res.PoolP99Ms), Met: res.PoolP99Ms <= 20},
		{Name: "SIGKILL to the next placement", Goal: "≤ 5 s", Got: fmt.Sprintf("%.2f s", res.FailoverMs/1000), Met: res.FailoverMs <= 5000},
	}
	return res, nil
}

// place opens a lease of fraction as kerf run does, asking entry first
// (a redirect is followed), and releases it. It returns how long the
// lease took and the node that granted it.
func place(ctx context.Context, c *Cluster, entry *Node, fraction float64) (time.Duration, *Node, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	l, lf, err := launcher.Open(ctx, launcher.Options{GPUs: 1, Fraction: fraction, Bundle: c.Bundle, Server: entry.QUIC, Via: "quic"}, "kerf bench pool")
	d := time.Since(start)
	if err != nil {
		return d, nil, err
	}
	l.Close()
	at := entry
	for _, n := range c.Nodes {
		if n.QUIC == lf.Server {
			at = n
		}
	}
	return d, at, nil
}

type tally struct {
	ok, refused, errors int
	firstError          string
}

// contend runs placers placing and releasing through the cluster's nodes
// in turn for d.
func contend(ctx context.Context, c *Cluster, placers int, fraction float64, d time.Duration) tally {
	var mu sync.Mutex
	var t tally
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for i := range placers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; time.Now().Before(end); k++ {
				entry := c.Nodes[(i+k)%len(c.Nodes)]
				_, _, err := place(ctx, c, entry, fraction)
				mu.Lock()
				switch {
				case err == nil:
					t.ok++
				case errors.Is(err, launcher.ErrNoCapacity):
					t.refused++
				default:
					t.errors++
					if t.firstError == "" {
						t.firstError = err.Error()
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return t
}

// failover kills victim and asks the members left for placements, in
// turn, a new one every 100 ms while none has been granted (an attempt
// may wait up to the pool's 5 s bound for a write), until one is.
func failover(ctx context.Context, c *Cluster, victim *Node, fraction float64, say func(string, ...any)) (Failover, error) {
	f := Failover{Killed: victim.Name}
	st, err := c.Nodes[0].PoolStatus(ctx)
	if err != nil {
		return f, err
	}
	f.MetaLeader = st.Leader == victim.Name
	var left []*Node
	for _, n := range c.Nodes {
		if n != victim {
			left = append(left, n)
		}
	}
	say("failover: SIGKILL of %s (meta leader: %v), then placements on the members left", victim.Name, f.MetaLeader)
	type outcome struct {
		at  *Node
		end time.Time
		err error
	}
	ctx, cancel := context.WithCancel(ctx)
	outcomes := make(chan outcome)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // the attempts still under way end
	killed := time.Now()
	victim.Kill()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for k := 0; ; k++ {
		if k < 600 { // a minute's worth
			entry := left[k%len(left)]
			f.Attempts++
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, at, err := place(ctx, c, entry, fraction)
				select {
				case outcomes <- outcome{at, time.Now(), err}:
				case <-ctx.Done():
				}
			}()
		}
		for waiting := true; waiting; {
			select {
			case o := <-outcomes:
				if o.err == nil {
					f.Ms, f.GrantedOn = ms(o.end.Sub(killed)), o.at.Name
					return f, nil
				}
				if f.FirstError == "" {
					f.FirstError = o.err.Error()
				}
			case <-tick.C:
				waiting = false
			case <-ctx.Done():
				return f, ctx.Err()
			}
		}
		if time.Since(killed) > time.Minute {
			return f, fmt.Errorf("no placement within a minute of %s's death: %s", victim.Name, f.FirstError)
		}
	}
}

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
