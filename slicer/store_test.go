package slicer

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/internal/clock"
	"github.com/kerf-edge/kerf/internal/testkit"
)

func TestRestartRestoresState(t *testing.T) {
	dir := t.TempDir()
	store := FileStore{Path: filepath.Join(dir, "slicer.json")}
	custom := Profile{Name: "halves", Slices: []SliceSpec{{Fraction: 0.5}, {Fraction: 0.5}}}
	cfg := Config{GPUs: gpus(2, "A100", 40*GiB), Reserve: DefaultReserve, Store: store, Profiles: nil, Clock: clock.NewFake(time.Time{})}
	s := newSlicer(t, cfg)
	must[struct{}](t)(struct{}{}, s.AddProfile(custom))
	must[*Plan](t)(s.ApplyProfile("halves", ApplyOptions{}))
	s.SetPolicy("a", Policy{MaxGPUs: 1.5, IdleTimeout: time.Hour})
	s.SetPolicy("", Policy{MaxGPUs: 1})
	la := must[Lease](t)(s.TryAllocate(Request{Tenant: "a", N: 2, Fraction: 0.5}))
	lb := must[Lease](t)(s.TryAllocate(Request{Tenant: "b", N: 1, Fraction: 0.5}))
	must[struct{}](t)(struct{}{}, s.Release(lb.ID))
	before := s.Status()
	s.Close()

	// "Restart": a new Slicer on the same store and GPUs.
	r := newSlicer(t, cfg)
	after := r.Status()
	if after.Profile != "halves" || !reflect.DeepEqual(after.Policies, before.Policies) || after.DefaultPolicy != cfg.DefaultPolicy {
		t.Fatalf("restored profile %q policies %+v default %+v", after.Profile, after.Policies, after.DefaultPolicy)
	}
	if len(after.Ended) != 1 || after.Ended[0].ID != la.ID || after.Ended[0].Tenant != "a" {
		t.Fatalf("ended %+v, want lease %s", after.Ended, la.ID)
	}
	if len(after.Leases) != 0 || len(after.Pending) != 0 {
		t.Fatalf("leases %+v pending %+v after restart", after.Leases, after.Pending)
	}
	// Same slices, same IDs, all free.
	for gi, g := range after.Layout.GPUs {
		if len(g.Slices) != 2 {
			t.Fatalf("gpu %d: %+v", gi, g.Slices)
		}
		for i, sl := range g.Slices {
			if was := before.Layout.GPUs[gi].Slices[i]; sl.ID != was.ID || sl.Size != was.Size || sl.Held() {
				t.Fatalf("slice %+v, was %+v", sl, was)
			}
		}
	}
	// The ended lease's ID is not reused and its tenant can allocate again.
	l := must[Lease](t)(r.TryAllocate(Request{Tenant: "a", N: 1, Fraction: 0.5}))
	if l.ID == la.ID || l.ID == lb.ID {
		t.Fatalf("lease id %s reused", l.ID)
	}
	// The custom profile survived too.
	if _, err := r.Plan("halves", ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestRestartOtherGPUs: a GPU whose UUID changed is cut afresh.
func TestRestartOtherGPUs(t *testing.T) {
	store := FileStore{Path: filepath.Join(t.TempDir(), "s.json")}
	g := gpus(2, "A100", 40*GiB)
	s := newSlicer(t, Config{GPUs: g, Store: store, Reserve: noReserve})
	old := s.Status().Layout
	s.Close()
	g[1].UUID = "GPU-new"
	r := newSlicer(t, Config{GPUs: g, Store: store, Reserve: noReserve})
	now := r.Status().Layout
	if !reflect.DeepEqual(now.GPUs[0].Slices, old.GPUs[0].Slices) {
		t.Fatal("gpu 0 changed")
	}
	if len(now.GPUs[1].Slices) != 5 || now.GPUs[1].Slices[0].ID == old.GPUs[1].Slices[0].ID || now.GPUs[1].GPU.UUID != "GPU-new" {
		t.Fatalf("gpu 1 not re-cut: %+v", now.GPUs[1])
	}
}

func TestFileStore(t *testing.T) {
	dir := t.TempDir()
	f := FileStore{Path: filepath.Join(dir, "state.json")}
	if st, err := f.Load(); st != nil || err != nil {
		t.Fatalf("empty store: %v %v", st, err)
	}
	want := &State{Version: stateVersion, Profile: "uniform-10", NextLease: 7, Policies: map[string]Policy{"a": {MaxGPUs: 2.5}}}
	for range 3 {
		if err := f.Save(want); err != nil {
			t.Fatal(err)
		}
	}
	got, err := f.Load()
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("load %+v %v", got, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
	for name, body := range map[string]string{"corrupt": "{\"version\": 1, \"lay", "future": `{"version": 99}`} {
		os.WriteFile(f.Path, []byte(body), 0o600)
		if _, err := f.Load(); err == nil {
			t.Errorf("%s state loaded", name)
		}
		if _, err := New(Config{GPUs: gpus(1, "x", GiB), Store: f}); err == nil || !strings.Contains(err.Error(), "loading state") {
			t.Errorf("%s state: New: %v", name, err)
		}
	}
}

type failStore struct{}

func (failStore) Load() (*State, error) { return nil, nil }
func (failStore) Save(*State) error     { return errors.New("disk full") }

func TestStoreErrorVisible(t *testing.T) {
	s := newSlicer(t, Config{Store: failStore{}})
	must[Lease](t)(s.TryAllocate(Request{Tenant: "a", N: 1, Fraction: 0.2}))
	s.Flush()
	if e := s.Status().StoreError; e != "disk full" {
		t.Fatalf("store error %q", e)
	}
}

// TestRestartWithPendingWork: shrinks and new slices that were pending
// when kerfd stopped complete on restart, since their tenants are gone.
func TestRestartWithPendingWork(t *testing.T) {
	store := FileStore{Path: filepath.Join(t.TempDir(), "s.json")}
	cfg := Config{GPUs: gpus(1, "T4", 10*GiB), Reserve: noReserve, Store: store, Control: newControl()}
	s := newSlicer(t, cfg)
	for _, tn := range []string{"a", "b", "c"} {
		l := must[Lease](t)(s.TryAllocate(Request{Tenant: tn, N: 1, Fraction: 0.2}))
		must[struct{}](t)(struct{}{}, s.Report(l.ID, l.Slices[0], Usage{MemUsed: 2 * GiB}))
	}
	if p := must[*Plan](t)(s.ApplyProfile("uniform-10", ApplyOptions{})); len(p.Pending) == 0 {
		t.Fatal("nothing pending")
	}
	s.Close()
	r := newSlicer(t, cfg)
	st := r.Status()
	if len(st.Pending) != 0 || len(st.Layout.GPUs[0].Slices) != 10 || len(st.Ended) != 3 {
		t.Fatalf("after restart: %d slices, pending %+v, ended %d", len(st.Layout.GPUs[0].Slices), st.Pending, len(st.Ended))
	}
	for _, sl := range st.Layout.GPUs[0].Slices {
		if sl.Memory != GiB || !sl.Settled() {
			t.Fatalf("slice %+v", sl)
		}
	}
}

// TestRestartSmallerGPU: a stored profile that no longer fits (the GPU
// shrank) is dropped with a warning and the default profile is used.
func TestRestartSmallerGPU(t *testing.T) {
	store := FileStore{Path: filepath.Join(t.TempDir(), "s.json")}
	big := Profile{Name: "big", Slices: []SliceSpec{{Memory: 30 * GiB}}}
	s := newSlicer(t, Config{GPUs: gpus(1, "A100", 40*GiB), Reserve: noReserve, Store: store})
	must[struct{}](t)(struct{}{}, s.AddProfile(big))
	must[*Plan](t)(s.ApplyProfile("big", ApplyOptions{}))
	s.Close()
	r := newSlicer(t, Config{GPUs: gpus(1, "A100", 16*GiB), Reserve: noReserve, Store: store})
	st := r.Status()
	if st.Profile != "fifths" || len(st.Warnings) != 2 || !strings.Contains(st.Warnings[0], "need 30.00 GiB") {
		t.Fatalf("profile %q warnings %q", st.Profile, st.Warnings)
	}
}

// TestConfiguredPolicyWinsOverState: the default policy of the
// configuration holds at every start, whatever the store kept; tenants'
// own policies and the active profile come from the store. Origins says
// which came from where.
func TestConfiguredPolicyWinsOverState(t *testing.T) {
	store := FileStore{Path: filepath.Join(t.TempDir(), "s.json")}
	c := clock.NewFake(time.Time{})
	cfg := Config{GPUs: gpus(1, "A100", 40*GiB), Reserve: noReserve, Store: store, Clock: c,
		DefaultPolicy: Policy{MaxGPUs: 0.5, IdleTimeout: time.Hour}}
	s := newSlicer(t, cfg)
	if o := s.Origins(); o.Profile != "config" || o.StoredDefaultPolicy != nil || len(o.TenantPolicies) != 0 {
		t.Fatalf("first start: %+v", o)
	}
	s.SetPolicy("vip", Policy{MaxGPUs: 1})
	must[*Plan](t)(s.ApplyProfile("uniform-10", ApplyOptions{}))
	s.Close()

	cfg.DefaultPolicy = Policy{MaxGPUs: 0.2, IdleTimeout: time.Minute}
	r := newSlicer(t, cfg)
	st := r.Status()
	if st.DefaultPolicy != cfg.DefaultPolicy || st.Policies["vip"] != (Policy{MaxGPUs: 1}) || st.Profile != "uniform-10" {
		t.Fatalf("after restart: default %+v, policies %+v, profile %s", st.DefaultPolicy, st.Policies, st.Profile)
	}
	o := r.Origins()
	if o.Profile != "state" || o.StoredDefaultPolicy == nil || *o.StoredDefaultPolicy != (Policy{MaxGPUs: 0.5, IdleTimeout: time.Hour}) ||
		!reflect.DeepEqual(o.TenantPolicies, []string{"vip"}) {
		t.Fatalf("origins %+v", o)
	}
	// The configured limit and idle timeout are the ones in force.
	l := must[Lease](t)(r.TryAllocate(Request{Tenant: "a", N: 1, Fraction: 0.2}))
	if _, err := r.TryAllocate(Request{Tenant: "a", N: 1, Fraction: 0.1}); !errors.Is(err, ErrLimit) {
		t.Fatalf("past the configured limit: %v", err)
	}
	c.Advance(2 * time.Minute)
	if got := r.Reclaim(); len(got) != 1 || got[0].Lease.ID != l.ID {
		t.Fatalf("reclaimed %+v after the configured idle timeout", got)
	}
}

// TestProfilesAcrossRestart: built-in profiles cannot be replaced or
// removed, nor the active one removed; a removed profile stays removed
// after a restart.
func TestProfilesAcrossRestart(t *testing.T) {
	store := FileStore{Path: filepath.Join(t.TempDir(), "s.json")}
	cfg := Config{GPUs: gpus(1, "A100", 40*GiB), Reserve: noReserve, Store: store}
	s := newSlicer(t, cfg)
	halves := Profile{Name: "halves", Slices: []SliceSpec{{Fraction: 0.5}, {Fraction: 0.5}}}
	thirds := Profile{Name: "thirds", Slices: []SliceSpec{{Fraction: 0.3}, {Fraction: 0.3}, {Fraction: 0.3}}}
	for _, p := range []Profile{halves, thirds} {
		must[struct{}](t)(struct{}{}, s.AddProfile(p))
	}
	if err := s.AddProfile(Profile{Name: "whole", Slices: []SliceSpec{{Fraction: 0.5}}}); !errors.Is(err, ErrBuiltinProfile) {
		t.Fatalf("replacing a built-in: %v", err)
	}
	if err := s.RemoveProfile("uniform-20"); !errors.Is(err, ErrBuiltinProfile) {
		t.Fatalf("removing a built-in: %v", err)
	}
	must[*Plan](t)(s.ApplyProfile("halves", ApplyOptions{}))
	if err := s.RemoveProfile("halves"); !errors.Is(err, ErrActiveProfile) {
		t.Fatalf("removing the active profile: %v", err)
	}
	must[struct{}](t)(struct{}{}, s.RemoveProfile("thirds"))
	s.Close()
	r := newSlicer(t, cfg)
	var names []string
	for _, p := range r.Profiles() {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, " "); got != "fifths halves mixed-2x25-5x10 uniform-10 uniform-20 whole" {
		t.Fatalf("profiles after restart: %s", got)
	}
}

// countingStore records the states saved.
type countingStore struct {
	mu    sync.Mutex
	saved []uint64 // NextLease of each state saved
}

func (c *countingStore) Load() (*State, error) { return nil, nil }
func (c *countingStore) Save(st *State) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.saved = append(c.saved, st.NextLease)
	return nil
}

func (c *countingStore) states() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.saved)
}

// A burst of changes is written in few saves, the newest last, and a
// flush writes at once however long the pause between saves.
func TestSaverCoalescesBursts(t *testing.T) {
	c := &countingStore{}
	v := newSaver(c, time.Hour)
	defer v.close()
	v.put(&State{NextLease: 1})
	testkit.WaitForWithin(t, 10*time.Second, "the first state saved at once", func() bool { return len(c.states()) == 1 })
	for i := uint64(2); i <= 100; i++ {
		v.put(&State{NextLease: i})
	}
	v.flush()
	if got := c.states(); !slices.Equal(got, []uint64{1, 100}) {
		t.Fatalf("saved %v, want the first state and then the newest", got)
	}
	// After a flush, the next save waits for the pause again.
	v.put(&State{NextLease: 101})
	v.put(&State{NextLease: 102})
	v.flush()
	if got := c.states(); !slices.Equal(got, []uint64{1, 100, 102}) {
		t.Fatalf("saved %v, want 102 last and 101 not alone", got)
	}
}

// frozenStore keeps the first state saved and drops the later ones, as a
// crash before their writes would.
type frozenStore struct {
	mu    sync.Mutex
	first *State
}

func (f *frozenStore) Load() (*State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.first, nil
}

func (f *frozenStore) Save(st *State) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.first == nil {
		f.first = st
	}
	return nil
}

// Leases granted after the last save that reached the disk keep their IDs
// after a crash: the next start grants none of them again.
func TestCrashDoesNotReuseLeaseIDs(t *testing.T) {
	store := &frozenStore{}
	cfg := Config{GPUs: gpus(1, "T4", 10*GiB), Reserve: noReserve, Store: store}
	s := newSlicer(t, cfg)
	s.Flush()
	var lost []LeaseID
	for range 3 {
		l := must[Lease](t)(s.TryAllocate(Request{Tenant: "a", N: 1, Fraction: 0.1}))
		lost = append(lost, l.ID)
	}
	r := newSlicer(t, cfg)
	for range 3 {
		l := must[Lease](t)(r.TryAllocate(Request{Tenant: "b", N: 1, Fraction: 0.1}))
		if slices.Contains(lost, l.ID) {
			t.Fatalf("lease %s granted again after a crash (granted before it: %v)", l.ID, lost)
		}
	}
}
