package pool

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/kerf-edge/kerf/internal/testkit"
)

// memberEnv carries, to the test binary run as a member of its own
// (TestPoolMemberProcess), the member it is to be.
const memberEnv = "KERF_POOL_TEST_MEMBER"

// memberSpec is what a member in a process of its own is told.
type memberSpec struct {
	Name, Store string
	Config      Config
	GPUs        int
}

// TestPoolMemberProcess is a member of a test pool in a process of its
// own, so that a test can kill it with SIGKILL: a broker shut down in
// process hands its Raft leaderships over first, as a killed one cannot.
// Run alone, without memberEnv, it has nothing to do.
func TestPoolMemberProcess(t *testing.T) {
	spec := os.Getenv(memberEnv)
	if spec == "" {
		t.Skip("a pool member for tests that kill one; started by them")
	}
	var s memberSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		t.Fatal(err)
	}
	m := &member{name: s.Name, cfg: s.Config, gpus: s.GPUs, store: s.Store}
	m.start(t)
	select {} // until killed
}

// startPoolKillable is startPool but with the member named killable in
// a process of its own (TestPoolMemberProcess). It returns the members
// in this process and a function that kills the other with SIGKILL.
func startPoolKillable(t *testing.T, names []string, killable string, gpus int) ([]*member, func()) {
	t.Helper()
	addrs := make([]string, len(names))
	for i := range names {
		addrs[i] = testkit.FreePort(t)
	}
	var out []*member
	kill := func() {}
	for i, name := range names {
		var peers []string
		for j, a := range addrs {
			if j != i {
				peers = append(peers, a)
			}
		}
		cfg := Config{Name: "test", Node: name, Listen: addrs[i], Peers: peers, Secret: strings.Repeat("s", minSecret),
			LeaseTimeout: time.Minute, ReservationTTL: 10 * time.Second}
		if name != killable {
			m := &member{name: name, gpus: gpus, store: t.TempDir(), cfg: cfg}
			m.start(t)
			out = append(out, m)
			continue
		}
		spec, _ := json.Marshal(memberSpec{Name: name, Store: t.TempDir(), Config: cfg, GPUs: gpus})
		cmd := exec.Command(os.Args[0], "-test.run=^TestPoolMemberProcess$", "-test.timeout=10m")
		cmd.Env = append(os.Environ(), memberEnv+"="+string(spec))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		kill = func() {
			cmd.Process.Kill()
			<-done
		}
		t.Cleanup(kill)
	}
	for _, m := range out {
		waitFormed(t, m, len(names))
	}
	return out, kill
}

// The member leading JetStream's meta group dies by SIGKILL: the members
// left go on placing on their own GPUs while JetStream elects another
// leader (nats-server's Raft waits 4 to 9 s without a word from its
// leader before it stands for election). Each placement writes only the
// placing member's lease bucket, whose stream it leads and which keeps a
// majority of its replicas.
func TestPoolPlacesWhileJetStreamElects(t *testing.T) {
	ms, kill := startPoolKillable(t, []string{"a", "b", "c"}, "c", 1)
	a := ms[0]
	for _, m := range ms {
		testkit.WaitForWithin(t, 30*time.Second, m.name+" leads its leases", func() bool { return leaderOf(t, a, m.name) == m.name })
	}
	stepdown, _ := json.Marshal(server.JSApiLeaderStepdownRequest{Placement: &server.Placement{Preferred: "c"}})
	testkit.WaitForWithin(t, time.Minute, "c leads JetStream", func() bool {
		if _, leader := a.pool.meta(); leader == "c" {
			return true
		}
		_, _ = a.pool.sys.Request(server.JSApiLeaderStepDown, stepdown, time.Second)
		time.Sleep(time.Second)
		_, leader := a.pool.meta()
		return leader == "c"
	})

	// From the kill until a leader is elected again and for a second
	// more, a placement is asked of a every 100 ms; the longest time
	// without a grant, from the kill or the grant before, is what
	// JetStream's election cost the placements. Meanwhile, the majority
	// rule is asked of both members left every millisecond: the
	// election's own moments, a member standing for it and voting, have
	// no leader either, and last seconds after a split vote.
	type refusal struct {
		at  time.Duration
		err error
	}
	sampled := make(chan []refusal, len(ms))
	stop := make(chan struct{})
	kill()
	killed := time.Now()
	for _, m := range ms {
		go func() {
			var out []refusal
			for {
				select {
				case <-stop:
					sampled <- out
					return
				case <-time.After(time.Millisecond):
				}
				if err := m.pool.Quorum(); err != nil && !slices.Contains(m.pool.liveMembers(), "c") {
					out = append(out, refusal{time.Since(killed), err})
				}
			}
		}()
	}
	var (
		last, longest time.Duration // since the kill: the latest grant, the longest wait for one
		asked, okN    int
		elected       time.Duration // when a leader was elected again, since the kill
		firstErr      error
	)
	for i := 0; ; i++ {
		start := time.Now()
		asked++
		id := fmt.Sprintf("after-%d", i)
		err := a.pool.Admit(Lease{ID: id, Tenant: "u", GPUs: []int{0}, Charge: 0.01, Granted: start.UTC()})
		now := time.Since(killed)
		if err == nil {
			okN++
			longest, last = max(longest, now-last), now
			a.pool.Release(id)
		} else if firstErr == nil {
			firstErr = err
		}
		if _, leader := a.pool.meta(); elected == 0 && leader != "" && leader != "c" {
			elected = now
		}
		if elected > 0 && now > elected+time.Second || now > 30*time.Second {
			break
		}
		time.Sleep(time.Until(start.Add(100 * time.Millisecond)))
	}
	longest = max(longest, time.Since(killed)-last)
	close(stop)
	var refused []refusal
	for range ms {
		refused = append(refused, <-sampled...)
	}
	t.Logf("meta leader c killed: a leader elected again after %v; %d of %d placements granted meanwhile, the longest wait for one %v (first refusal: %v)",
		elected.Round(time.Millisecond), okN, asked, longest.Round(time.Millisecond), firstErr)
	if elected == 0 {
		t.Fatalf("no JetStream leader elected within 30 s of c's death")
	}
	if live := a.pool.liveMembers(); slices.Contains(live, "c") {
		t.Fatalf("a still sees c live: %v", live)
	}
	if len(refused) > 0 {
		t.Errorf("the majority rule refused placements %d times while two of three members were live, from %v after the kill: %v",
			len(refused), refused[0].at.Round(time.Millisecond), refused[0].err)
	}
	if okN != asked {
		t.Errorf("%d of %d placements on a refused while JetStream elected a leader; the first: %v", asked-okN, asked, firstErr)
	}
	// Raft's election takes 4 s at least; placements that waited for it
	// would wait that long.
	if longest > 2500*time.Millisecond {
		t.Fatalf("placements on a waited %v for a grant while JetStream elected a leader (after %v); want them granted throughout", longest, elected)
	}
}
