// Package poolbench measures a pool of kerfd processes on loopback, on
// the emulated GPU (`kerf bench pool`), and runs the pool's demo (`make
// demo-pool`): placement latency against a node alone measured in the
// same run, placements per second under contention, and, after a
// member's SIGKILL (JetStream's meta leader's among them), the longest
// wait for a placement on the members left while JetStream elects.
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
	"os"
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
	// SyncP50Ms and SyncP99Ms are of a small append made durable
	// (fsync) on the disk of the members' state, one after each pair of
	// placements: a pool placement waits for two in a row, its lease
	// bucket's leader's Raft log and then a follower's, so their sum is
	// the floor the disk sets under what the pool adds.
	SyncP50Ms, SyncP99Ms float64

	Placers                    int
	ContentionSeconds          float64
	PoolPerSec, SinglePerSec   float64
	PoolRefused, SingleRefused int    // refused for want of room, retried
	PoolErrors, SingleErrors   int    // any other failure
	FirstError                 string `json:",omitempty"`
	ContentionRatio            float64
	// Failovers: each member killed by SIGKILL in turn, JetStream's meta
	// leader first, then another, each restarted before the next.
	// FailoverMs is the longest wait for a placement after a kill
	// (Failover.WaitMs); MetaFailoverMs and OtherFailoverMs the longest of
	// the kills of the meta leader and of the others.
	Failovers       []Failover
	FailoverMs      float64
	MetaFailoverMs  float64
	OtherFailoverMs float64
	Targets         []Target
}

// Failover is one member's SIGKILL and the placements after it. From the
// kill, a placement is asked of the members left every 100 ms, in turn,
// until JetStream's meta group has a leader other than the member killed
// and for a second more (when the member killed led it, that is until
// the members left have elected another, which nats-server's Raft does
// 4 to 9 s after the leader's last word), and at least until one is
// granted (or a minute has passed).
type Failover struct {
	Killed     string
	MetaLeader bool    // it led JetStream's meta group when killed
	Ms         float64 // from the SIGKILL to the first placement granted
	// WaitMs is the longest time without a grant over the placements
	// asked: from the kill or a grant to the next grant (or to the end,
	// when the last asked was not granted).
	WaitMs    float64
	ElectedMs float64 // from the SIGKILL until a member left saw another meta leader; 0: it was not the leader
	Attempts  int     // placements asked of the members left
	Refused   int     // of them, not granted
	GrantedOn string  // the member that granted the first
	// FirstError is of the first refused.
	FirstError string `json:",omitempty"`
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
	var poolLat, singleLat, syncLat []time.Duration
	disk, err := newSyncProbe(o.Dir)
	if err != nil {
		return res, err
	}
	defer disk.Close()
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
		d, err = disk.append()
		if err != nil {
			return res, err
		}
		if i >= 0 {
			syncLat = append(syncLat, d)
		}
	}
	res.PoolP50Ms, res.PoolP99Ms = ms(quantile(poolLat, 0.50)), ms(quantile(poolLat, 0.99))
	res.SyncP50Ms, res.SyncP99Ms = ms(quantile(syncLat, 0.50)), ms(quantile(syncLat, 0.99))
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

	// Failover: each member is killed in turn, the member is restarted
	// before the next; JetStream's meta leader first, then a member that
	// does not lead it, so that both kinds of kill are measured, and each
	// is of the leader of its own lease bucket.
	var killed []*Node
	for k := range pool.Nodes {
		victim, err := nextVictim(ctx, pool, killed, k%2 == 0)
		if err != nil {
			return res, err
		}
		killed = append(killed, victim)
		f, err := failover(ctx, pool, victim, o.Fraction, say)
		if err != nil {
			return res, err
		}
		res.Failovers = append(res.Failovers, f)
		res.FailoverMs = max(res.FailoverMs, f.WaitMs)
		if f.MetaLeader {
			res.MetaFailoverMs = max(res.MetaFailoverMs, f.WaitMs)
		} else {
			res.OtherFailoverMs = max(res.OtherFailoverMs, f.WaitMs)
		}
		if err := victim.Start(ctx); err != nil {
			return res, err
		}
		if err := pool.WaitFormed(ctx, pool.Nodes); err != nil {
			return res, err
		}
	}

	res.Targets = []Target{
		{Name: "placement p99, loopback", Goal: "≤ 20 ms", Got: fmt.Sprintf("%.2f ms", res.PoolP99Ms), Met: res.PoolP99Ms <= 20},
	}
	for _, k := range []struct {
		meta bool
		name string
		ms   float64
	}{{true, "failover (meta leader killed)", res.MetaFailoverMs}, {false, "failover (other member killed)", res.OtherFailoverMs}} {
		if !slices.ContainsFunc(res.Failovers, func(f Failover) bool { return f.MetaLeader == k.meta }) {
			res.Targets = append(res.Targets, Target{Name: k.name, Goal: "≤ 5 s", Got: "not measured"})
			continue
		}
		res.Targets = append(res.Targets, Target{Name: k.name, Goal: "≤ 5 s", Got: fmt.Sprintf("%.2f s", k.ms/1000), Met: k.ms <= 5000})
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

// nextVictim is the next member to kill among those not killed yet: the
// meta leader if leader is set, else another, where there is a choice.
func nextVictim(ctx context.Context, c *Cluster, killed []*Node, leader bool) (*Node, error) {
	st, err := c.Nodes[0].PoolStatus(ctx)
	if err != nil {
		return nil, err
	}
	var left []*Node
	for _, n := range c.Nodes {
		if !slices.Contains(killed, n) {
			left = append(left, n)
		}
	}
	for _, n := range left {
		if (n.Name == st.Leader) == leader {
			return n, nil
		}
	}
	return left[0], nil
}

// failover kills victim and asks the members left for placements, in
// turn, a new one every 100 ms (each may wait up to the pool's 5 s bound
// for a write), until JetStream's meta group has a leader other than
// victim and for a second more, as a member left sees it, and at least
// until one is granted: a failover slower than that window is measured,
// not cut short.
func failover(ctx context.Context, c *Cluster, victim *Node, fraction float64, say func(string, ...any)) (Failover, error) {
	f := Failover{Killed: victim.Name}
	var left []*Node
	for _, n := range c.Nodes {
		if n != victim {
			left = append(left, n)
		}
	}
	st, err := left[0].PoolStatus(ctx)
	if err != nil {
		return f, err
	}
	f.MetaLeader = st.Leader == victim.Name
	say("failover: SIGKILL of %s (meta leader: %v), then placements on the members left", victim.Name, f.MetaLeader)
	type outcome struct {
		at         *Node
		start, end time.Time
		err        error
	}
	ctx, cancel := context.WithCancel(ctx)
	outcomes := make(chan outcome)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // the attempts still under way end
	leader := make(chan string, 1)         // the meta leader as a member left sees it, asked once a tick
	asking := false
	var done []outcome
	var elected time.Time
	granted := false // a placement asked after the kill was granted
	killed := time.Now()
	victim.Kill()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for k := 0; ; k++ {
		now := time.Now()
		if !elected.IsZero() && now.Sub(elected) > time.Second && granted {
			break
		}
		if now.Sub(killed) > time.Minute {
			if elected.IsZero() {
				return f, fmt.Errorf("JetStream's meta group had no leader but %s within a minute of its death", victim.Name)
			}
			break // nothing granted within a minute: said below
		}
		entry := left[k%len(left)]
		f.Attempts++
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			_, at, err := place(ctx, c, entry, fraction)
			select {
			case outcomes <- outcome{at, start, time.Now(), err}:
			case <-ctx.Done():
			}
		}()
		if !asking {
			asking = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				sctx, done := context.WithTimeout(ctx, time.Second)
				defer done()
				st, err := left[k%len(left)].PoolStatus(sctx)
				if err != nil {
					st.Leader = ""
				}
				leader <- st.Leader
			}()
		}
		for waiting := true; waiting; {
			select {
			case o := <-outcomes:
				done = append(done, o)
				granted = granted || o.err == nil
			case l := <-leader:
				asking = false
				if elected.IsZero() && l != "" && l != victim.Name {
					elected = time.Now()
				}
			case <-tick.C:
				waiting = false
			case <-ctx.Done():
				return f, ctx.Err()
			}
		}
	}
	end := time.Now()
	if f.MetaLeader {
		f.ElectedMs = ms(elected.Sub(killed))
	}
	// The attempts still under way when the window closed count as not
	// granted, and end with it.
	slices.SortFunc(done, func(a, b outcome) int { return a.end.Compare(b.end) })
	last, lastAsked := killed, time.Time{}
	for _, o := range done {
		if o.err != nil {
			f.Refused++
			if f.FirstError == "" {
				f.FirstError = o.err.Error()
			}
			continue
		}
		if f.GrantedOn == "" {
			f.Ms, f.GrantedOn = ms(o.end.Sub(killed)), o.at.Name
		}
		f.WaitMs = max(f.WaitMs, ms(o.end.Sub(last)))
		last = o.end
		if o.start.After(lastAsked) {
			lastAsked = o.start
		}
	}
	f.Refused += f.Attempts - len(done)
	if f.GrantedOn == "" {
		return f, fmt.Errorf("no placement granted by the members left within %v of %s's death: %s", end.Sub(killed).Round(time.Millisecond), victim.Name, f.FirstError)
	}
	// Attempts asked after the last granted one and not granted: the wait
	// runs to the end of the window.
	for _, o := range done {
		if o.start.After(lastAsked) && o.err != nil {
			f.WaitMs = max(f.WaitMs, ms(end.Sub(last)))
		}
	}
	if len(done) < f.Attempts {
		f.WaitMs = max(f.WaitMs, ms(end.Sub(last)))
	}
	return f, nil
}

// syncProbe appends to a file of its own on the disk under test and
// times each append made durable, as a Raft log's append is.
type syncProbe struct{ f *os.File }

func newSyncProbe(dir string) (*syncProbe, error) {
	f, err := os.CreateTemp(dir, "sync-probe-*")
	if err != nil {
		return nil, err
	}
	return &syncProbe{f}, nil
}

// syncRecord is the size of one append, about a lease bucket's write.
const syncRecord = 512

func (s *syncProbe) append() (time.Duration, error) {
	start := time.Now()
	if _, err := s.f.Write(make([]byte, syncRecord)); err != nil {
		return 0, err
	}
	if err := s.f.Sync(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func (s *syncProbe) Close() {
	s.f.Close()
	os.Remove(s.f.Name())
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
