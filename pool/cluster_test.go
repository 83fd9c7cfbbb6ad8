package pool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/kerf-edge/kerf/internal/testkit"
)

// fakeLocal is a member's node: gpus whole GPUs, every lease held.
type fakeLocal struct{ gpus int }

func (f fakeLocal) Inventory() Node {
	n := Node{}
	for i := range f.gpus {
		n.GPUs = append(n.GPUs, GPU{Index: i, Name: "emulated", Memory: 1 << 30})
	}
	return n
}

func (fakeLocal) Holds(string) bool { return true }

// member is one member of a test pool: an embedded nats-server, clustered,
// and the Pool on it.
type member struct {
	name  string
	srv   *server.Server
	pool  *Pool
	cfg   Config
	gpus  int
	limit float64
	store string
	quiet time.Duration // the releaser's quiet period; 0: the pool's
}

// startPool starts a pool of len(names) members in this process, each
// with gpus GPUs and the tenant limit limit, and waits until every member
// sees every other's inventory and leads its own lease bucket.
func startPool(t *testing.T, names []string, gpus int, limit float64) []*member {
	t.Helper()
	return startPoolWith(t, names, gpus, limit, nil)
}

// startPoolWith is startPool with set applied to each member before it
// starts (nil: none).
func startPoolWith(t *testing.T, names []string, gpus int, limit float64, set func(*member)) []*member {
	t.Helper()
	addrs := make([]string, len(names))
	for i := range names {
		addrs[i] = testkit.FreePort(t)
	}
	var out []*member
	for i, name := range names {
		var peers []string
		for j, a := range addrs {
			if j != i {
				peers = append(peers, a)
			}
		}
		m := &member{name: name, gpus: gpus, limit: limit, store: t.TempDir(),
			cfg: Config{Name: "test", Node: name, Listen: addrs[i], Peers: peers, Secret: strings.Repeat("s", minSecret),
				LeaseTimeout: time.Minute, ReservationTTL: 10 * time.Second}}
		if set != nil {
			set(m)
		}
		m.start(t)
		out = append(out, m)
	}
	for _, m := range out {
		waitFormed(t, m, len(names))
	}
	return out
}

// start starts m's broker on its store and cluster address, and its Pool.
func (m *member) start(t *testing.T) {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: m.store}
	if err := opts.ProcessConfigString("accounts { KERF { jetstream: enabled } }"); err != nil {
		t.Fatal(err)
	}
	opts.Users = []*server.User{{Username: "kerfd", Password: "kerfd", Account: opts.Accounts[0]}}
	user, password, err := m.cfg.ClusterOptions(opts, m.name, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.srv, err = server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	m.srv.Start()
	t.Cleanup(m.srv.Shutdown)
	m.pool = New(Options{Config: m.cfg, Node: m.name, Limit: m.limit, Log: slog.New(slog.DiscardHandler)})
	if m.quiet > 0 {
		m.pool.releaseQuiet = m.quiet
	}
	if err := m.pool.Start(m.srv, Login{"kerfd", "kerfd"}, Login{user, password}, fakeLocal{m.gpus}, func(string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.pool.Close)
}

// stop stops m's Pool and its broker, as a member's kerfd stopping does.
func (m *member) stop() {
	m.pool.Close()
	m.srv.Shutdown()
}

// waitFormed waits until m sees a quorum, and live members live with their
// inventories.
func waitFormed(t *testing.T, m *member, live int) {
	t.Helper()
	testkit.WaitForWithin(t, time.Minute, m.name+" sees the pool formed", func() bool {
		st := m.pool.Status()
		if !st.Quorum || st.Problem != "" {
			return false
		}
		n := 0
		for _, x := range st.Members {
			if x.Live && len(x.GPUs) > 0 {
				n++
			}
		}
		return n == live
	})
}

// leaderOf is the member leading node's lease bucket, as m's broker sees it.
func leaderOf(t *testing.T, m *member, node string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	s, err := m.pool.js.Stream(ctx, "KV_"+LeaseBucket(node))
	if err != nil || s.CachedInfo().Cluster == nil {
		return ""
	}
	return s.CachedInfo().Cluster.Leader
}

// Each member leads its own lease bucket, so that its placements need no
// other member's stream leader; in a pool of five too, where JetStream
// places the bucket's three copies among all members, and where a copy
// moved to its member the bucket is then placed freely again.
func TestPoolMembersLeadTheirLeases(t *testing.T) {
	for _, names := range [][]string{{"a", "b", "c"}, {"a", "b", "c", "d", "e"}} {
		t.Run(fmt.Sprintf("%d members", len(names)), func(t *testing.T) {
			ms := startPool(t, names, 1, 0)
			for _, m := range ms {
				testkit.WaitForWithin(t, time.Minute, m.name+" leads its leases", func() bool { return leaderOf(t, ms[0], m.name) == m.name })
				testkit.WaitForWithin(t, 30*time.Second, m.name+"'s leases placed freely", func() bool {
					ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
					defer cancel()
					s, err := ms[0].pool.js.Stream(ctx, "KV_"+LeaseBucket(m.name))
					return err == nil && s.CachedInfo().Config.Placement == nil
				})
			}
		})
	}
}

// Placements racing for the pool's last free GPU, asked of every member
// at once, some reserving it on its member and one granted there by the
// member itself: exactly one wins, and the others are refused for room.
func TestPoolRaceForTheLastGPU(t *testing.T) {
	ms := startPool(t, []string{"a", "b", "c"}, 1, 0)
	now := time.Now().UTC()
	for _, m := range ms[:2] { // a's and b's GPUs are taken
		if err := m.pool.Admit(Lease{ID: "full-" + m.name, Tenant: "u", GPUs: []int{0}, Charge: 1, Granted: now}); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WaitForWithin(t, 10*time.Second, "every member reads a's and b's leases", func() bool {
		for _, m := range ms {
			if len(m.pool.Status().Leases) != 2 {
				return false
			}
		}
		return true
	})
	const racers = 6
	var wg sync.WaitGroup
	errs := make([]error, racers+1)
	start := make(chan struct{})
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = ms[i%len(ms)].pool.Place(Request{Tenant: fmt.Sprintf("t%d", i), Count: 1, Fraction: 1})
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-start
		errs[racers] = ms[2].pool.Admit(Lease{ID: "local", Tenant: "own", GPUs: []int{0}, Charge: 1, Granted: time.Now().UTC()})
	}()
	close(start)
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrNoCapacity):
			t.Errorf("racer %d: %v, want a win or ErrNoCapacity", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d placements won the last GPU, want exactly 1: %v", won, errs)
	}
	leases, _, err := ms[0].pool.readLeases(context.Background(), "c")
	if err != nil {
		t.Fatal(err)
	}
	if len(leases) != 1 || leases[0].Charge != 1 {
		t.Fatalf("c's leases: %+v, want the one winner", leases)
	}
}

// One tenant placing on two members at the same moment, each placement
// within the tenant's limit alone but not both together: never are both
// granted, and every round ends with the tenant within its limit.
func TestPoolTenantLimitRacingAcrossMembers(t *testing.T) {
	ms := startPool(t, []string{"a", "b", "c"}, 1, 1)
	granted := 0
	for round := range 8 {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		ids := []string{fmt.Sprintf("a%d", round), fmt.Sprintf("b%d", round)}
		start := make(chan struct{})
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = ms[i].pool.Admit(Lease{ID: ids[i], Tenant: "t", GPUs: []int{0}, Charge: 0.75, Granted: time.Now().UTC()})
			}()
		}
		close(start)
		wg.Wait()
		if errs[0] == nil && errs[1] == nil {
			t.Fatalf("round %d: both placements granted, 1.5 GPU against a limit of 1", round)
		}
		for i, err := range errs {
			if err != nil && !errors.Is(err, ErrContended) && !errors.Is(err, ErrLimit) {
				t.Fatalf("round %d, member %s: %v, want ErrContended or ErrLimit", round, ms[i].name, err)
			}
		}
		var held float64
		for _, m := range ms[:2] {
			leases, _, err := ms[2].pool.readLeases(context.Background(), m.name)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range leases {
				held += x.Charge
			}
		}
		if held > 1+epsilon {
			t.Fatalf("round %d: the tenant holds %.2f GPU across the pool, limit 1", round, held)
		}
		for i, err := range errs {
			if err == nil {
				granted++
				ms[i].pool.Release(ids[i])
			}
		}
		testkit.WaitForWithin(t, 10*time.Second, "the releases written", func() bool {
			for _, m := range ms[:2] {
				if l, _, _ := m.pool.kept(m.name); len(l) != 0 {
					return false
				}
			}
			return true
		})
	}
	t.Logf("%d of 8 rounds granted one of the two", granted)
	// Alone, a placement within the limit is granted; the next, on
	// another member, is refused.
	if err := ms[0].pool.Admit(Lease{ID: "alone", Tenant: "t", GPUs: []int{0}, Charge: 0.75, Granted: time.Now().UTC()}); err != nil {
		t.Fatalf("a placement alone within the limit: %v", err)
	}
	err := ms[1].pool.Admit(Lease{ID: "next", Tenant: "t", GPUs: []int{0}, Charge: 0.75, Granted: time.Now().UTC()})
	if !errors.Is(err, ErrLimit) && !errors.Is(err, ErrContended) {
		t.Fatalf("a placement past the limit on another member: %v, want ErrLimit or ErrContended", err)
	}
}

// Leave names the member to JetStream by metaPeerID: it must be the ID
// the server gives itself.
func TestMetaPeerIDIsTheServersOwn(t *testing.T) {
	for _, name := range []string{"node-a", "kerfd", "appliance-17.factory"} {
		srv, err := server.NewServer(&server.Options{ServerName: name, Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
		if err != nil {
			t.Fatal(err)
		}
		srv.Start()
		if !srv.ReadyForConnections(10 * time.Second) {
			t.Fatalf("%s: server not ready", name)
		}
		if got, want := metaPeerID(name), srv.Node(); got != want {
			t.Errorf("metaPeerID(%q) = %q, the server calls itself %q", name, got, want)
		}
		srv.Shutdown()
	}
}

// A member that is down leaves through a member that stays, while
// JetStream's meta leader is a member restarted since: one that never
// learnt the leaving member's name. JetStream must count it no more.
func TestPoolLeaveWhenTheMetaLeaderNeverSawTheMember(t *testing.T) {
	ms := startPool(t, []string{"a", "b", "c"}, 1, 0)
	a, b, c := ms[0], ms[1], ms[2]
	c.stop()
	b.stop()
	b.start(t)
	waitFormed(t, a, 2)
	stepdown, _ := json.Marshal(server.JSApiLeaderStepdownRequest{Placement: &server.Placement{Preferred: b.name}})
	testkit.WaitForWithin(t, time.Minute, b.name+" leads JetStream", func() bool {
		if _, leader := a.pool.meta(); leader == b.name {
			return true
		}
		_, _ = a.pool.sys.Request(server.JSApiLeaderStepDown, stepdown, time.Second)
		time.Sleep(time.Second)
		_, leader := a.pool.meta()
		return leader == b.name
	})
	if err := a.pool.Leave(c.name); err != nil {
		t.Fatalf("leave %s: %v", c.name, err)
	}
	testkit.WaitForWithin(t, 30*time.Second, "JetStream counting two members", func() bool {
		size, _ := a.pool.meta()
		return size == 2
	})
	if err := a.pool.Quorum(); err != nil {
		t.Errorf("quorum of two after the leave: %v", err)
	}
}

// A release rides with the next write of the member's leases, the
// admission that follows it, in one write; with no write coming, the
// releaser writes it once the leases have gone unwritten for its quiet
// period.
func TestPoolReleaseRidesWithTheNextAdmission(t *testing.T) {
	ms := startPoolWith(t, []string{"a", "b", "c"}, 1, 0, func(m *member) {
		if m.name == "a" {
			m.quiet = time.Hour // a's releaser writes nothing during the test
		}
	})
	a, b := ms[0], ms[1]
	admit := func(m *member, id string) {
		t.Helper()
		if err := m.pool.Admit(Lease{ID: id, Tenant: "t", GPUs: []int{0}, Charge: 0.5, Granted: time.Now().UTC()}); err != nil {
			t.Fatalf("admitting %s on %s: %v", id, m.name, err)
		}
	}
	admit(a, "first")
	_, before, _ := a.pool.kept(a.name)
	a.pool.Release("first")
	admit(a, "second")
	leases, rev, err := b.pool.readLeases(context.Background(), a.name)
	if err != nil {
		t.Fatal(err)
	}
	if len(leases) != 1 || leases[0].ID != "second" || rev != before+1 {
		t.Fatalf("a's leases after a release and an admission: %+v at revision %d, want the second alone at %d (one write)", leases, rev, before+1)
	}
	// Alone, a release is written by the releaser.
	admit(b, "alone")
	b.pool.Release("alone")
	testkit.WaitForWithin(t, 10*time.Second, "the release written", func() bool {
		leases, _, err := a.pool.readLeases(context.Background(), b.name)
		return err == nil && len(leases) == 0
	})
}
