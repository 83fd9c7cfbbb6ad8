package pool

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func twoGPUNodes(names ...string) []Node {
	var out []Node
	for _, n := range names {
		out = append(out, Node{Name: n, GPUs: []GPU{{Index: 0}, {Index: 1}}})
	}
	return out
}

func TestLedgerAdmit(t *testing.T) {
	now := time.Unix(0, 0)
	for _, tc := range []struct {
		name  string
		held  []Lease
		x     Lease
		limit float64
		want  error
	}{
		{"room", nil, Lease{ID: "a", Tenant: "t", Node: "n1", GPUs: []int{0}, Charge: 1}, 0, nil},
		{"full GPU", []Lease{{ID: "r", Tenant: "u", Node: "n1", GPUs: []int{0}, Charge: 0.8}}, Lease{ID: "a", Tenant: "t", Node: "n1", GPUs: []int{0}, Charge: 0.25}, 0, ErrNoCapacity},
		{"other node's GPU", []Lease{{ID: "r", Tenant: "u", Node: "n2", GPUs: []int{0}, Charge: 1}}, Lease{ID: "a", Tenant: "t", Node: "n1", GPUs: []int{0}, Charge: 1}, 0, nil},
		{"exactly full", []Lease{{ID: "r", Tenant: "u", Node: "n1", GPUs: []int{0, 1}, Charge: 1.5}}, Lease{ID: "a", Tenant: "t", Node: "n1", GPUs: []int{1}, Charge: 0.25}, 0, nil},
		{"limit across nodes", []Lease{{ID: "r", Tenant: "t", Node: "n2", GPUs: []int{0, 1}, Charge: 2}}, Lease{ID: "a", Tenant: "t", Node: "n1", GPUs: []int{0}, Charge: 0.75}, 2.5, ErrLimit},
		{"within limit", []Lease{{ID: "r", Tenant: "t", Node: "n2", GPUs: []int{0, 1}, Charge: 2}}, Lease{ID: "a", Tenant: "t", Node: "n1", GPUs: []int{0}, Charge: 0.5}, 2.5, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := Ledger{Leases: tc.held}
			tc.x.Granted = now
			err := l.Admit(tc.x, tc.limit)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Admit: %v, want %v", err, tc.want)
			}
			if _, in := l.Find(tc.x.Node, tc.x.ID); in != (err == nil) {
				t.Errorf("lease in the ledger: %v after error %v", in, err)
			}
		})
	}
	t.Run("twice", func(t *testing.T) {
		var l Ledger
		x := Lease{ID: "a", Tenant: "t", Node: "n1", GPUs: []int{0}, Charge: 0.1}
		if err := l.Admit(x, 0); err != nil {
			t.Fatal(err)
		}
		if err := l.Admit(x, 0); err == nil {
			t.Fatal("the same lease admitted twice")
		}
		// Each node numbers its own leases.
		x.Node = "n2"
		if err := l.Admit(x, 0); err != nil {
			t.Fatalf("another node's lease of the same ID: %v", err)
		}
	})
}

func TestLedgerPlace(t *testing.T) {
	now := time.Unix(100, 0)
	nodes := twoGPUNodes("n2", "n1")
	var l Ledger
	// The first node by name with two GPUs of room, the fullest first.
	if err := l.Admit(Lease{ID: "h", Tenant: "u", Node: "n1", GPUs: []int{1}, Charge: 0.5}, 0); err != nil {
		t.Fatal(err)
	}
	x, err := l.Place(Request{Tenant: "t", Count: 1, Fraction: 0.5}, nodes, "p1", now, now.Add(time.Minute), 0)
	if err != nil || x.Node != "n1" || len(x.GPUs) != 1 || x.GPUs[0] != 1 || !x.Expires.Equal(now.Add(time.Minute)) {
		t.Fatalf("Place: %+v, %v; want n1's fuller GPU 1", x, err)
	}
	x, err = l.Place(Request{Tenant: "t", Count: 2, Fraction: 0.75}, nodes, "p2", now, now, 0)
	if err != nil || x.Node != "n2" {
		t.Fatalf("Place: %+v, %v; want n2 (n1 has one free GPU)", x, err)
	}
	if _, err := l.Place(Request{Tenant: "t", Count: 2, Fraction: 0.5}, nodes, "p3", now, now, 0); !errors.Is(err, ErrNoCapacity) {
		t.Fatalf("Place with room on one GPU of each node: %v, want ErrNoCapacity", err)
	}
	if _, err := l.Place(Request{Tenant: "t", Count: 1, Fraction: 0.25}, nodes, "p4", now, now, 2); !errors.Is(err, ErrLimit) {
		t.Fatalf("Place past the limit: %v, want ErrLimit (t holds 2)", err)
	}
	for _, bad := range []Request{{Tenant: "t", Count: 0, Fraction: 0.5}, {Tenant: "t", Count: 1, Fraction: 0}, {Tenant: "t", Count: 1, Fraction: 1.5}} {
		if _, err := l.Place(bad, nodes, "bad", now, now, 0); err == nil || errors.Is(err, ErrNoCapacity) {
			t.Errorf("Place(%+v): %v, want a refusal of the request", bad, err)
		}
	}
	if !l.Remove(func(x Lease) bool { return x.ID == "p2" }) || l.Remove(func(x Lease) bool { return x.ID == "p2" }) {
		t.Error("Remove reports wrongly")
	}
	// The preferred node first when it fits, else the first by name.
	x, err = l.Place(Request{Tenant: "t", Count: 1, Fraction: 0.25, Prefer: "n2"}, nodes, "p5", now, now, 0)
	if err != nil || x.Node != "n2" {
		t.Fatalf("Place preferring n2: %+v, %v", x, err)
	}
	x, err = l.Place(Request{Tenant: "t", Count: 2, Fraction: 0.6, Prefer: "n1"}, nodes, "p6", now, now, 0)
	if err != nil || x.Node != "n2" {
		t.Fatalf("Place preferring n1, which has no room for it: %+v, %v; want n2", x, err)
	}
}

func TestLedgerTakeUp(t *testing.T) {
	now := time.Unix(1000, 0)
	placed := func() Ledger {
		l := Ledger{Leases: []Lease{{ID: "l1", Tenant: "u", Node: "n1", GPUs: []int{0}, Charge: 0.5, Granted: now}}}
		if _, err := l.Place(Request{Tenant: "t", Count: 2, Fraction: 0.5}, twoGPUNodes("n1"), "pool-r", now, now.Add(time.Minute), 0); err != nil {
			t.Fatal(err)
		}
		return l
	}
	for _, tc := range []struct {
		name string
		id   string
		x    Lease
		at   time.Time
		want error
	}{
		{"taken up", "pool-r", Lease{ID: "l2", Tenant: "t", Node: "n1", GPUs: []int{0, 1}, Charge: 1}, now, nil},
		{"expired", "pool-r", Lease{ID: "l2", Tenant: "t", Node: "n1", GPUs: []int{0, 1}, Charge: 1}, now.Add(2 * time.Minute), ErrNoReservation},
		{"another tenant", "pool-r", Lease{ID: "l2", Tenant: "u", Node: "n1", GPUs: []int{0, 1}, Charge: 1}, now, ErrNoReservation},
		{"another node", "pool-r", Lease{ID: "l2", Tenant: "t", Node: "n2", GPUs: []int{0, 1}, Charge: 1}, now, ErrNoReservation},
		{"not a reservation", "l1", Lease{ID: "l2", Tenant: "u", Node: "n1", GPUs: []int{0}, Charge: 0.5}, now, ErrNoReservation},
		{"other GPUs", "pool-r", Lease{ID: "l2", Tenant: "t", Node: "n1", GPUs: []int{1}, Charge: 0.5}, now, errAny},
		{"more than reserved", "pool-r", Lease{ID: "l2", Tenant: "t", Node: "n1", GPUs: []int{0, 1}, Charge: 1.5}, now, errAny},
		{"an ID already in", "pool-r", Lease{ID: "l1", Tenant: "t", Node: "n1", GPUs: []int{0, 1}, Charge: 1}, now, errAny},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := placed()
			before := len(l.Leases)
			err := l.TakeUp(tc.id, tc.x, tc.at)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("TakeUp: %v", err)
				}
				if _, ok := l.Find("n1", "pool-r"); ok || len(l.Leases) != before {
					t.Fatalf("after TakeUp the reservation is still there or a lease is missing: %+v", l.Leases)
				}
				if got, ok := l.Find("n1", tc.x.ID); !ok || got.Charge != tc.x.Charge {
					t.Fatalf("lease %s not in the ledger: %+v", tc.x.ID, l.Leases)
				}
				return
			}
			if err == nil || tc.want != errAny && !errors.Is(err, tc.want) {
				t.Fatalf("TakeUp: %v, want %v", err, tc.want)
			}
			if len(l.Leases) != before {
				t.Fatalf("a refused TakeUp changed the ledger: %+v", l.Leases)
			}
		})
	}
}

// errAny stands for an error of no particular kind.
var errAny = errors.New("any error")

// Placement by memory, model and least GPU memory: a request lands on the
// first member (by name) with a GPU that fits it, charged the part of
// that GPU's usable memory it takes.
func TestLedgerPlaceByMemory(t *testing.T) {
	const gib = 1 << 30
	nodes := []Node{
		{Name: "a", GPUs: []GPU{{Index: 0, Name: "Small GPU", Memory: 1 * gib, Usable: gib - 64*mib}}},
		{Name: "b", GPUs: []GPU{{Index: 0, Name: "Mid GPU", Memory: 2 * gib, Usable: 2*gib - 128*mib}, {Index: 1, Name: "Mid GPU", Memory: 2 * gib, Usable: 2*gib - 128*mib}}},
		{Name: "c", GPUs: []GPU{{Index: 0, Name: "Big GPU", Memory: 4 * gib}}}, // no usable published: its memory
	}
	now := time.Unix(0, 0)
	for _, tc := range []struct {
		name   string
		held   []Lease
		r      Request
		node   string
		charge float64
		limit  float64
		want   error
	}{
		{"fits the first", nil, Request{Count: 1, Memory: 512 * mib}, "a", 512.0 / 960, 0, nil},
		{"too big for the first", nil, Request{Count: 1, Memory: gib}, "b", 1024.0 / 1920, 0, nil},
		{"a MiB more than usable", nil, Request{Count: 1, Memory: 1920*mib + 1}, "c", 1921.0 / 4096, 0, nil},
		{"two on one node", nil, Request{Count: 2, Memory: 100 * mib}, "b", 2 * 100.0 / 1920, 0, nil},
		{"the first full", []Lease{{ID: "x", Tenant: "u", Node: "a", GPUs: []int{0}, Charge: 0.6}}, Request{Count: 1, Memory: 512 * mib}, "b", 512.0 / 1920, 0, nil},
		{"by model", nil, Request{Count: 1, Fraction: 0.1, Model: "big"}, "c", 0.1, 0, nil},
		{"by least memory", nil, Request{Count: 1, Fraction: 0.5, MinMemory: 2 * gib}, "b", 0.5, 0, nil},
		{"memory and fraction", nil, Request{Count: 1, Fraction: 0.25, Memory: 512 * mib}, "a", 512.0 / 960, 0, nil},
		{"no model", nil, Request{Count: 1, Fraction: 0.1, Model: "huge"}, "", 0, 0, ErrNoCapacity},
		{"nowhere big enough", nil, Request{Count: 1, Memory: 5 * gib}, "", 0, 0, ErrNoCapacity},
		{"within the limit where GPUs are larger", nil, Request{Count: 1, Memory: 900 * mib}, "c", 900.0 / 4096, 0.45, nil},
		{"over the limit anywhere", nil, Request{Count: 1, Memory: 900 * mib}, "", 0, 0.2, ErrLimit},
		{"over the limit where it fits", []Lease{{ID: "x", Tenant: "u", Node: "c", GPUs: []int{0}, Charge: 0.9}}, Request{Count: 1, Memory: 900 * mib}, "", 0, 0.45, ErrNoCapacity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := Ledger{Leases: slices.Clone(tc.held)}
			tc.r.Tenant = "t"
			x, err := l.Place(tc.r, nodes, "p1", now, now.Add(time.Minute), tc.limit)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Place: %v, want %v", err, tc.want)
			}
			if err != nil {
				return
			}
			if x.Node != tc.node || len(x.GPUs) != tc.r.Count || x.Charge < tc.charge-epsilon || x.Charge > tc.charge+epsilon || x.Memory != tc.r.Memory {
				t.Errorf("placed %+v, want on %s charged %.4f", x, tc.node, tc.charge)
			}
		})
	}
}
