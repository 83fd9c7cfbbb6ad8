package profiles

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/profiles/api"
)

// fakePool is a pool of named members with room for a number of
// placements; quorum is whether it places at all.
type fakePool struct {
	mu      sync.Mutex
	members []string
	peers   []string
	room    int
	quorum  bool
}

func (f *fakePool) Status() api.PoolStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := api.PoolStatus{Pool: "kerf", Node: f.members[0], Quorum: f.quorum, Size: len(f.members), Needed: len(f.members)/2 + 1,
		Replicas: 3, Live: f.members, Leases: []api.PoolLease{}}
	for i, m := range f.members {
		st.Members = append(st.Members, api.PoolMember{Name: m, Live: true, Self: i == 0, GPUs: []api.PoolGPU{}})
	}
	return st
}

func (f *fakePool) Join(address string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if slices.Contains(f.peers, address) {
		return fmt.Errorf("%s: %w", address, ErrInUse)
	}
	f.peers = append(f.peers, address)
	return nil
}

func (f *fakePool) Leave(node string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Contains(f.members, node) {
		return fmt.Errorf("%s: %w", node, ErrNotFound)
	}
	f.members = slices.DeleteFunc(f.members, func(m string) bool { return m == node })
	return nil
}

func (f *fakePool) Place(r api.PoolPlacementRequest) (api.PoolLease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case !f.quorum:
		return api.PoolLease{}, fmt.Errorf("%w: no quorum: 1 of 3 members live (a)", ErrUnavailable)
	case r.Tenant == "greedy":
		return api.PoolLease{}, fmt.Errorf("%w: over 2.5 GPUs", ErrOverLimit)
	case f.room == 0:
		return api.PoolLease{}, fmt.Errorf("%w: no capacity in the pool", ErrInUse)
	}
	f.room--
	return api.PoolLease{ID: "pool-1", Tenant: r.Tenant, Node: f.members[0], GPUs: []int{0}, Charge: r.Fraction, Granted: time.Unix(1, 0).UTC()}, nil
}

// contractPool covers the pool endpoints: status, join (twice), leave,
// placement (placed, no room, over the limit, no quorum, bad requests);
// and 409 from a node outside a pool.
func contractPool(t *testing.T, e *env, cov covered) {
	t.Helper()
	a := e.admin
	problemOf(t, e.do("GET", "/v1/pool", a, nil), 409)
	f := &fakePool{members: []string{"a", "b", "c"}, room: 1, quorum: true}
	e.srv.deps.Pool = f
	defer func() { e.srv.deps.Pool = nil }()

	var st api.PoolStatus
	e.call(cov, "GET /v1/pool", "/v1/pool", a, nil).json(t, &st)
	if len(st.Members) != 3 || !st.Quorum || st.Node != "a" {
		t.Fatalf("pool status %+v", st)
	}
	if r := e.call(cov, "POST /v1/pool/peers", "/v1/pool/peers", a, map[string]any{"address": "10.0.0.4:7222"}); r.code != 204 {
		t.Fatalf("join: %d %s", r.code, r.body)
	}
	problemOf(t, e.do("POST", "/v1/pool/peers", a, map[string]any{"address": "10.0.0.4:7222"}), 409)
	problemOf(t, e.do("POST", "/v1/pool/peers", a, map[string]any{"address": "10.0.0.4:7222", "secret": "x"}), 400)

	var l api.PoolLease
	r := e.call(cov, "POST /v1/pool/leases", "/v1/pool/leases", a, map[string]any{"tenant": "bob", "count": 1, "fraction": 0.5})
	if r.code != 201 {
		t.Fatalf("place: %d %s", r.code, r.body)
	}
	r.json(t, &l)
	if l.Tenant != "bob" || l.Node != "a" {
		t.Fatalf("placed %+v", l)
	}
	problemOf(t, e.do("POST", "/v1/pool/leases", a, map[string]any{"tenant": "bob", "count": 1, "fraction": 0.5}), 409)
	problemOf(t, e.do("POST", "/v1/pool/leases", a, map[string]any{"tenant": "greedy", "count": 1, "fraction": 0.5}), 403)
	problemOf(t, e.do("POST", "/v1/pool/leases", a, map[string]any{"tenant": "bob", "count": 1, "fraction": 0}), 422)
	problemOf(t, e.do("POST", "/v1/pool/leases", a, map[string]any{"tenant": "bob", "count": 0, "fraction": 0.5}), 422)
	if pr := problemOf(t, e.do("POST", "/v1/pool/leases", a, map[string]any{"tenant": "bob", "count": 1, "model": "big"}), 422); len(pr.Errors) != 1 || pr.Errors[0].Field != "fraction" {
		t.Errorf("a placement of neither fraction nor memory: %+v", pr)
	}
	problemOf(t, e.do("POST", "/v1/pool/leases", a, map[string]any{"tenant": "bob", "count": 1, "memoryBytes": 0}), 422)
	f.mu.Lock()
	f.quorum = false
	f.mu.Unlock()
	if pr := problemOf(t, e.do("POST", "/v1/pool/leases", a, map[string]any{"tenant": "bob", "count": 1, "fraction": 0.5}), 503); pr.Detail == "" {
		t.Errorf("no quorum: %+v", pr)
	}

	if r := e.call(cov, "DELETE /v1/pool/members/{node}", "/v1/pool/members/c", a, nil); r.code != 204 {
		t.Fatalf("leave: %d %s", r.code, r.body)
	}
	problemOf(t, e.do("DELETE", "/v1/pool/members/c", a, nil), 404)
	problemOf(t, e.do("DELETE", "/v1/pool/members/c.d", a, nil), 422)
}
