package slicer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/kerf-edge/kerf/internal/clock"
)

// Errors callers tell apart with errors.Is.
var (
	// ErrNoCapacity: the request fits this node but not now.
	ErrNoCapacity = errors.New("no capacity now")
	// ErrUnsatisfiable: the request cannot fit this node's layout at all.
	ErrUnsatisfiable = errors.New("request cannot be satisfied on this node")
	// ErrLimit: the tenant's GPU limit would be exceeded.
	ErrLimit = errors.New("tenant GPU limit reached")
	// ErrReclaimed: the lease was reclaimed after its idle timeout.
	ErrReclaimed = errors.New("lease reclaimed after idle timeout")
	// ErrUnknownLease: no such lease (released, or never granted).
	ErrUnknownLease = errors.New("unknown lease")
	// ErrStalePlan: leases or the layout changed since the plan.
	ErrStalePlan = errors.New("layout changed since the plan was made")
	// ErrBadRequest: the request itself is malformed.
	ErrBadRequest = errors.New("bad request")
	// ErrUnknownProfile: no profile of that name.
	ErrUnknownProfile = errors.New("unknown profile")
	// ErrBuiltinProfile: built-in profiles cannot be replaced or removed.
	ErrBuiltinProfile = errors.New("built-in profile")
	// ErrActiveProfile: the active profile cannot be removed.
	ErrActiveProfile = errors.New("active profile")
)

// fitTolerance lets a 20% slice serve a 0.2 request despite MiB rounding.
const fitTolerance = 1e-3

// Request asks for N slices on N distinct GPUs of this node.
type Request struct {
	Tenant string `json:"tenant"`
	N      int    `json:"n"`
	// Fraction of a GPU (its memory and compute) each slice has; Memory,
	// if set, the least memory per slice (alone: that memory and the
	// same part of compute). Neither: a whole GPU. The slice is cut to
	// that size and the tenant is charged it.
	Fraction float64 `json:"fraction,omitempty"`
	Memory   uint64  `json:"memory,omitempty"`
	// AnySlice asks for the smallest free profile slice, whatever its
	// size: a session that names its device but no size.
	AnySlice bool `json:"anySlice,omitempty"`
	// Model filters GPUs by model (case-insensitive substring);
	// MinMemory by their total memory.
	Model     string `json:"model,omitempty"`
	MinMemory uint64 `json:"minMemory,omitempty"`
	// GPUs, if set, restricts placement to these GPU indices: a session
	// that names its device without a lease.
	GPUs []int `json:"gpus,omitempty"`
}

// Policy is what a tenant may hold.
type Policy struct {
	// MaxGPUs caps the GPUs a tenant holds at once, fractions counted
	// (2.5 allows 1 + 0.75 + 0.75); 0 means no cap.
	MaxGPUs float64 `json:"maxGPUs,omitempty"`
	// IdleTimeout reclaims a lease with no activity for that long; 0
	// means never.
	IdleTimeout time.Duration `json:"idleTimeout,omitempty"`
	// MaxMemory caps the device memory a tenant's sessions use at once,
	// across all its leases; 0 means no cap. kerfd enforces it when
	// sessions allocate.
	MaxMemory uint64 `json:"maxMemory,omitempty"`
}

// Lease is a granted request.
type Lease struct {
	ID     LeaseID   `json:"id"`
	Tenant string    `json:"tenant"`
	Slices []SliceID `json:"slices"`
	GPUs   []int     `json:"gpus"`
	// Charge is the GPUs the lease counts against the tenant's limit:
	// the parts of a GPU its slices were granted.
	Charge   float64   `json:"charge"`
	Request  Request   `json:"request"`
	Granted  time.Time `json:"granted"`
	LastUsed time.Time `json:"lastUsed"`
}

// Usage is a worker's periodic report for one slice.
type Usage struct {
	MemUsed uint64 `json:"memUsed"`
	// Calls is the session's call count; a change is activity.
	Calls uint64 `json:"calls"`
}

// Reclaimed records a lease taken back for idleness.
type Reclaimed struct {
	Lease   Lease         `json:"lease"`
	At      time.Time     `json:"at"`
	IdleFor time.Duration `json:"idleFor"`
}

func (r Reclaimed) err() error {
	return fmt.Errorf("%w: lease %s of %s was idle for %s and reclaimed at %s; request GPUs again",
		ErrReclaimed, r.Lease.ID, r.Lease.Tenant, r.IdleFor, r.At.Format(time.RFC3339))
}

// Queued is a request waiting in Allocate.
type Queued struct {
	Request Request   `json:"request"`
	Since   time.Time `json:"since"`
}

// Config sets up a Slicer.
type Config struct {
	GPUs    []GPU
	Reserve Reserve
	// Profiles adds to the builtin ones, whose names it may not use.
	Profiles []Profile
	// Profile is the active profile when the store has none; default
	// uniform-20. A stored one (the operator's last apply) wins.
	Profile string
	// DefaultPolicy is every tenant's policy unless one of its own was
	// set (SetPolicy). It wins over the default kept in the store: it is
	// the node's configuration. Tenants' own policies are restored.
	DefaultPolicy Policy
	Control       Control     // nil: bookkeeping only
	Store         Store       // nil: nothing persists; else Close the Slicer
	Clock         clock.Clock // nil: the system clock
}

// Status is a snapshot for the API.
type Status struct {
	Profile       string            `json:"profile"`
	Generation    uint64            `json:"generation"`
	Layout        Layout            `json:"layout"`
	Pending       []Pending         `json:"pending,omitempty"`
	Leases        []Lease           `json:"leases,omitempty"`
	Queue         []Queued          `json:"queue,omitempty"`
	DefaultPolicy Policy            `json:"defaultPolicy"`
	Policies      map[string]Policy `json:"policies,omitempty"`
	// Ended lists leases that were live when kerfd last stopped; their
	// sessions ended with it.
	Ended []Lease `json:"ended,omitempty"`
	// Warnings are restore problems kerfd survived.
	Warnings   []string    `json:"warnings,omitempty"`
	Reclaimed  []Reclaimed `json:"reclaimed,omitempty"`
	StoreError string      `json:"storeError,omitempty"`
}

// ApplyOptions tunes Apply.
type ApplyOptions struct {
	// RejectPending refuses, with a *PlanError, a plan that live tenants
	// keep from completing at once (judged on their last reports; a
	// worker that refuses a shrink during the apply still leaves that
	// shrink pending, as the result shows). By default such a plan is
	// applied and the remainder stays pending until tenants free memory
	// or leave.
	RejectPending bool
	// Force lets the new profile shrink held slices below what their
	// tenants were granted (never below what they use); their grants
	// shrink with them. Without it a held slice keeps at least its
	// grant, and one that no slice of the profile covers stays as it
	// is until released.
	Force bool
}

type waiter struct {
	req   Request
	since time.Time
	ch    chan result
}

type result struct {
	lease Lease
	err   error
}

type lease struct {
	Lease
	seq   uint64
	calls map[SliceID]uint64
	// reclaimed is set once Reclaim took the lease back: nothing may use
	// it, but its slices stay held until Release.
	reclaimed *Reclaimed
}

// maxReclaimed bounds how many reclaimed leases are remembered.
const maxReclaimed = 1024

// Slicer owns this node's layout and leases. It is safe for concurrent use.
type Slicer struct {
	mu       sync.Mutex
	reserve  Reserve
	clock    clock.Clock
	ctl      Control
	saver    *saver // nil without a Store
	profiles map[string]Profile
	custom   map[string]bool
	active   string
	layout   Layout
	leases   map[LeaseID]*lease
	// reclaimed remembers recent reclaims, oldest first.
	reclaimed []Reclaimed
	policies  map[string]Policy
	defPolicy Policy
	queue     []*waiter
	gen       uint64
	nextLease uint64
	ended     []Lease
	warnings  []string
	origins   Origins
}

// Origins says where New took its settings from, for the start log.
type Origins struct {
	// Profile is "state" (active when kerfd last stopped) or "config".
	Profile string
	// StoredDefaultPolicy is the default policy the store held, which
	// Config.DefaultPolicy replaced; nil when none was stored.
	StoredDefaultPolicy *Policy
	// TenantPolicies are the tenants whose own policies the store held.
	TenantPolicies []string
}

// Origins says where the settings in force at New came from.
func (s *Slicer) Origins() Origins {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.origins
	o.TenantPolicies = append([]string(nil), o.TenantPolicies...)
	return o
}

// New builds a Slicer for cfg.GPUs, restoring the store's state if any:
// the saved profile, policies and slices (on GPUs whose UUID matches);
// leases that were live are listed in Status().Ended and their slices
// freed.
func New(cfg Config) (*Slicer, error) {
	if len(cfg.GPUs) == 0 {
		return nil, errors.New("slicer: no GPUs")
	}
	s := &Slicer{
		reserve: cfg.Reserve, clock: cfg.Clock, ctl: cfg.Control,
		profiles: map[string]Profile{}, custom: map[string]bool{},
		leases: map[LeaseID]*lease{}, policies: map[string]Policy{}, defPolicy: cfg.DefaultPolicy,
		active: cfg.Profile, origins: Origins{Profile: "config"},
	}
	if s.clock == nil {
		s.clock = clock.System{}
	}
	if s.active == "" {
		s.active = "uniform-20"
	}
	for _, p := range Builtin() {
		s.profiles[p.Name] = p
	}
	var st *State
	if cfg.Store != nil {
		var err error
		if st, err = cfg.Store.Load(); err != nil {
			return nil, fmt.Errorf("slicer: loading state: %w", err)
		}
	}
	if st != nil {
		// A stored profile that no longer fits these GPUs is dropped, not
		// fatal: kerfd must still start.
		for _, p := range st.Profiles {
			if IsBuiltin(p.Name) {
				continue // an earlier kerfd let the operator replace one
			}
			if err := p.Validate(cfg.GPUs, s.reserve); err != nil {
				s.warnings = append(s.warnings, fmt.Sprintf("stored profile dropped: %v", err))
				continue
			}
			s.profiles[p.Name], s.custom[p.Name] = p, true
		}
	}
	for _, p := range cfg.Profiles {
		if IsBuiltin(p.Name) {
			return nil, fmt.Errorf("slicer: %w %q cannot be replaced", ErrBuiltinProfile, p.Name)
		}
		if err := p.Validate(cfg.GPUs, s.reserve); err != nil {
			return nil, fmt.Errorf("slicer: %w", err)
		}
		s.profiles[p.Name], s.custom[p.Name] = p, true
	}
	saved2 := map[string]GPULayout{}
	if st != nil {
		if _, ok := s.profiles[st.Profile]; ok {
			s.active, s.origins.Profile = st.Profile, "state"
		} else {
			s.warnings = append(s.warnings, fmt.Sprintf("stored profile %q is gone; using %q", st.Profile, s.active))
		}
		for t, p := range st.Policies {
			s.policies[t] = p
			s.origins.TenantPolicies = append(s.origins.TenantPolicies, t)
		}
		sort.Strings(s.origins.TenantPolicies)
		s.origins.StoredDefaultPolicy = st.DefaultPolicy
		s.layout.Seq, s.nextLease = st.Layout.Seq, st.NextLease+leaseIDGap
		for _, g := range st.Layout.GPUs {
			saved2[g.GPU.UUID] = g
		}
		s.ended = append(s.ended, st.Leases...)
	}
	p, ok := s.profiles[s.active]
	if !ok {
		return nil, fmt.Errorf("slicer: %w %q", ErrUnknownProfile, s.active)
	}
	for _, g := range cfg.GPUs {
		gl := GPULayout{GPU: g, Usable: s.reserve.Usable(g)}
		if old, ok := saved2[g.UUID]; ok && old.GPU.Memory == g.Memory {
			for _, sl := range old.Slices {
				sl.GPU, sl.Tenant, sl.Lease, sl.Used, sl.Err, sl.Grant = g.Index, "", "", 0, "", Size{}
				if sl.Orphan {
					continue
				}
				if sl.Memory == 0 || !sl.Settled() {
					sl.Size = Size{}
				}
				gl.Slices = append(gl.Slices, sl)
			}
		}
		s.layout.GPUs = append(s.layout.GPUs, gl)
	}
	if err := retarget(&s.layout, &p, false); err != nil {
		return nil, fmt.Errorf("slicer: %w", err)
	}
	reconcile(&s.layout, nil)
	s.gen = 1
	if cfg.Store != nil {
		s.saver = newSaver(cfg.Store, saveEvery)
		s.save()
	}
	return s, nil
}

// policyOf returns tenant's policy.
func (s *Slicer) policyOf(tenant string) Policy {
	if p, ok := s.policies[tenant]; ok {
		return p
	}
	return s.defPolicy
}

// PolicyOf returns tenant's policy: its own, or else the default.
func (s *Slicer) PolicyOf(tenant string) Policy {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.policyOf(tenant)
}

// SetPolicy sets a tenant's policy, kept across restarts; an empty
// tenant sets the default until the next start (Config.DefaultPolicy).
func (s *Slicer) SetPolicy(tenant string, p Policy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tenant == "" {
		s.defPolicy = p
	} else {
		s.policies[tenant] = p
	}
	s.save()
}

// held is the GPUs tenant holds, fractions counted by what its slices
// were granted.
func (s *Slicer) held(tenant string) float64 {
	var f float64
	for _, g := range s.layout.GPUs {
		for i := range g.Slices {
			if sl := &g.Slices[i]; sl.Tenant == tenant {
				f += fraction(sl.Grant, g.Usable)
			}
		}
	}
	return f
}

// charge is what l counts against its tenant's limit now.
func (s *Slicer) charge(l *lease) float64 {
	var f float64
	for _, g := range s.layout.GPUs {
		for i := range g.Slices {
			if sl := &g.Slices[i]; sl.Lease == l.ID {
				f += fraction(sl.Grant, g.Usable)
			}
		}
	}
	return f
}

// check rejects requests that are malformed or over the limit whatever
// the layout does.
func (s *Slicer) check(req *Request) error {
	switch {
	case req.Tenant == "":
		return fmt.Errorf("%w: no tenant", ErrBadRequest)
	case req.N < 1:
		return fmt.Errorf("%w: n is %d; ask for at least 1 GPU", ErrBadRequest, req.N)
	case req.Fraction < 0 || req.Fraction > 1+eps:
		return fmt.Errorf("%w: fraction %g is outside (0, 1]", ErrBadRequest, req.Fraction)
	}
	if req.Fraction == 0 && req.Memory == 0 && !req.AnySlice {
		req.Fraction = 1
	}
	return s.overLimit(req.Tenant, req.N, float64(req.N)*req.Fraction)
}

// overLimit refuses n more slices of charge in all if they take tenant
// past its limit.
func (s *Slicer) overLimit(tenant string, n int, charge float64) error {
	pol := s.policyOf(tenant)
	h := s.held(tenant)
	if pol.MaxGPUs <= 0 || h+charge <= pol.MaxGPUs+fitTolerance {
		return nil
	}
	hint := "release a lease first"
	if left := pol.MaxGPUs - h; left >= 1e-3 {
		hint = fmt.Sprintf("ask for at most %.2f GPUs in all (%.3g per slice), or release a lease", left, math.Floor(left/float64(n)*1000)/1000)
	}
	return fmt.Errorf("%w: %s holds %.2f of its %.2f GPUs; %.2f more would exceed it; %s", ErrLimit, tenant, h, pol.MaxGPUs, charge, hint)
}

// grant places req and records the lease, or says why not.
func (s *Slicer) grant(req Request) (Lease, error) {
	picked, err := s.place(req)
	if err != nil {
		return Lease{}, err
	}
	var charge float64
	for _, o := range picked {
		charge += fraction(o.size, s.layout.GPUs[o.gpu].Usable)
	}
	if err := s.overLimit(req.Tenant, req.N, charge); err != nil {
		return Lease{}, err
	}
	s.nextLease++
	now := s.clock.Now()
	l := &lease{Lease: Lease{ID: LeaseID(fmt.Sprintf("l%d", s.nextLease)), Tenant: req.Tenant, Charge: charge, Request: req, Granted: now, LastUsed: now},
		seq: s.nextLease, calls: map[SliceID]uint64{}}
	for _, o := range picked {
		l.Slices = append(l.Slices, s.take(o, req.Tenant, l.ID))
		l.GPUs = append(l.GPUs, s.layout.GPUs[o.gpu].GPU.Index)
	}
	s.leases[l.ID] = l
	s.gen++
	s.save()
	return l.Lease, nil
}

// TryAllocate grants req now or fails: ErrNoCapacity when the node is
// full or others queue ahead (clients back off and retry), ErrLimit,
// ErrUnsatisfiable or ErrBadRequest otherwise.
func (s *Slicer) TryAllocate(req Request) (Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(&req); err != nil {
		return Lease{}, err
	}
	if len(s.queue) > 0 {
		return Lease{}, fmt.Errorf("%w: %d requests queued ahead", ErrNoCapacity, len(s.queue))
	}
	return s.grant(req)
}

// Allocate grants req, waiting in FIFO order behind earlier requests
// while the node is full, until capacity frees or ctx ends. Errors other
// than ErrNoCapacity end the wait at once.
func (s *Slicer) Allocate(ctx context.Context, req Request) (Lease, error) {
	s.mu.Lock()
	if err := s.check(&req); err != nil {
		s.mu.Unlock()
		return Lease{}, err
	}
	if len(s.queue) == 0 {
		l, err := s.grant(req)
		if !errors.Is(err, ErrNoCapacity) {
			s.mu.Unlock()
			return l, err
		}
	}
	w := &waiter{req: req, since: s.clock.Now(), ch: make(chan result, 1)}
	s.queue = append(s.queue, w)
	s.mu.Unlock()
	select {
	case r := <-w.ch:
		return r.lease, r.err
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, q := range s.queue {
		if q == w {
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
			s.dispatch()
			return Lease{}, fmt.Errorf("%w: gave up waiting: %w", ErrNoCapacity, ctx.Err())
		}
	}
	// Granted as ctx ended: the caller has gone, give it back.
	if r := <-w.ch; r.err == nil {
		s.release(r.lease.ID)
		s.dispatch()
	}
	return Lease{}, fmt.Errorf("%w: gave up waiting: %w", ErrNoCapacity, ctx.Err())
}

// dispatch grants queued requests in order while the head fits.
func (s *Slicer) dispatch() {
	for len(s.queue) > 0 {
		w := s.queue[0]
		if err := s.check(&w.req); err != nil {
			w.ch <- result{err: err}
		} else {
			l, err := s.grant(w.req)
			if errors.Is(err, ErrNoCapacity) {
				return
			}
			w.ch <- result{l, err}
		}
		s.queue = s.queue[1:]
	}
}

// lookup finds a live lease, or explains why there is none.
func (s *Slicer) lookup(id LeaseID) (*lease, error) {
	if l, ok := s.leases[id]; ok {
		if l.reclaimed != nil {
			return nil, l.reclaimed.err()
		}
		return l, nil
	}
	for i := len(s.reclaimed) - 1; i >= 0; i-- {
		if s.reclaimed[i].Lease.ID == id {
			return nil, s.reclaimed[i].err()
		}
	}
	return nil, fmt.Errorf("%w %s", ErrUnknownLease, id)
}

// Release gives a lease's slices back and wakes waiters in order. A
// reclaimed lease is released once, when its sessions have ended.
func (s *Slicer) Release(id LeaseID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.leases[id]; !ok || l.reclaimed == nil {
		if _, err := s.lookup(id); err != nil {
			return err
		}
	}
	s.release(id)
	s.dispatch()
	return nil
}

func (s *Slicer) release(id LeaseID) {
	delete(s.leases, id)
	for gi := range s.layout.GPUs {
		g := &s.layout.GPUs[gi]
		for i := range g.Slices {
			if sl := &g.Slices[i]; sl.Lease == id {
				sl.Tenant, sl.Lease, sl.Used, sl.Err, sl.Grant = "", "", 0, "", Size{}
			}
		}
	}
	reconcile(&s.layout, s.ctl)
	s.gen++
	s.save()
}

// Touch marks a lease as in use; ErrReclaimed if it was reclaimed.
func (s *Slicer) Touch(id LeaseID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.lookup(id)
	if err == nil {
		l.LastUsed = s.clock.Now()
	}
	return err
}

// Report records a worker's usage of one slice of a lease: memory use
// lets pending shrinks proceed, a changed call count is activity. It
// returns ErrReclaimed once the lease was reclaimed, so kerfd can tell
// the worker.
func (s *Slicer) Report(id LeaseID, slice SliceID, u Usage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.lookup(id)
	if err != nil {
		return err
	}
	sl := s.slice(slice)
	if sl == nil || sl.Lease != id {
		return fmt.Errorf("%w: slice %s is not part of lease %s", ErrBadRequest, slice, id)
	}
	sl.Used = u.MemUsed
	if last, ok := l.calls[slice]; !ok || last != u.Calls {
		l.calls[slice] = u.Calls
		l.LastUsed = s.clock.Now()
	}
	if !sl.Settled() || s.unsettled() {
		if reconcile(&s.layout, s.ctl) {
			s.save()
			s.dispatch()
		}
	}
	return nil
}

func (s *Slicer) slice(id SliceID) *Slice {
	for gi := range s.layout.GPUs {
		g := &s.layout.GPUs[gi]
		for i := range g.Slices {
			if g.Slices[i].ID == id {
				return &g.Slices[i]
			}
		}
	}
	return nil
}

func (s *Slicer) unsettled() bool {
	for _, g := range s.layout.GPUs {
		for i := range g.Slices {
			if !g.Slices[i].Settled() {
				return true
			}
		}
	}
	return false
}

// Reclaim takes back every lease idle past its tenant's IdleTimeout and
// returns them: from then on, use of such a lease gets ErrReclaimed. Its
// slices stay held, so that no other lease gets them while its sessions
// run, until kerfd has ended those sessions and calls Release. kerfd
// calls Reclaim periodically (every few seconds).
func (s *Slicer) Reclaim() []Reclaimed {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	var out []Reclaimed
	for _, l := range s.sortedLeases() {
		if l.reclaimed != nil {
			continue
		}
		to := s.policyOf(l.Tenant).IdleTimeout
		if idle := now.Sub(l.LastUsed); to > 0 && idle >= to {
			r := Reclaimed{Lease: l.Lease, At: now, IdleFor: idle}
			out = append(out, r)
			s.reclaimed = append(s.reclaimed, r)
			l.reclaimed = &r
		}
	}
	if n := len(s.reclaimed) - maxReclaimed; n > 0 {
		s.reclaimed = append([]Reclaimed(nil), s.reclaimed[n:]...)
	}
	return out
}

// AddProfile validates p against this node and makes it available, kept
// across restarts. A built-in profile's name is refused unless p is that
// profile as it is.
func (s *Slicer) AddProfile(p Profile) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if IsBuiltin(p.Name) {
		if reflect.DeepEqual(p, s.profiles[p.Name]) {
			return nil
		}
		return fmt.Errorf("%w %q cannot be replaced", ErrBuiltinProfile, p.Name)
	}
	gpus := make([]GPU, len(s.layout.GPUs))
	for i, g := range s.layout.GPUs {
		gpus[i] = g.GPU
	}
	if err := p.Validate(gpus, s.reserve); err != nil {
		return err
	}
	s.profiles[p.Name], s.custom[p.Name] = p, true
	s.save()
	return nil
}

// RemoveProfile forgets an operator's profile; removing a built-in or the
// active one is refused, an unknown one is no error.
func (s *Slicer) RemoveProfile(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case IsBuiltin(name):
		return fmt.Errorf("%w %q cannot be removed", ErrBuiltinProfile, name)
	case name == s.active:
		return fmt.Errorf("%w %q cannot be removed; apply another first", ErrActiveProfile, name)
	}
	if _, ok := s.profiles[name]; ok {
		delete(s.profiles, name)
		delete(s.custom, name)
		s.save()
	}
	return nil
}

// Profiles lists the available profiles by name.
func (s *Slicer) Profiles() []Profile {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Profile, 0, len(s.profiles))
	for _, p := range s.profiles {
		out = append(out, p)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

// Plan is a dry run of moving to the named profile; see MakePlan.
func (s *Slicer) Plan(profile string, opts ApplyOptions) (*Plan, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.profiles[profile]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownProfile, profile)
	}
	pl, err := MakePlan(s.layout, p, opts)
	if err != nil {
		return nil, err
	}
	pl.Base = s.gen
	return pl, nil
}

// Apply carries out a plan from Plan: it refuses with ErrStalePlan if
// leases or the layout changed since, retargets the layout, resizes live
// slices through Control (shrinks before grows) and re-cuts free room.
// It returns what was done; unfinished work stays pending (see
// ApplyOptions) and proceeds on Report and Release.
func (s *Slicer) Apply(plan *Plan, opts ApplyOptions) (*Plan, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if plan.Base != s.gen {
		return nil, fmt.Errorf("%w (generation %d, now %d); plan again", ErrStalePlan, plan.Base, s.gen)
	}
	return s.apply(plan.Profile, opts)
}

// ApplyProfile plans and applies the named profile in one step.
func (s *Slicer) ApplyProfile(profile string, opts ApplyOptions) (*Plan, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apply(profile, opts)
}

func (s *Slicer) apply(name string, opts ApplyOptions) (*Plan, error) {
	p, ok := s.profiles[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownProfile, name)
	}
	if opts.RejectPending {
		dry, err := MakePlan(s.layout, p, opts)
		if err != nil {
			return nil, err
		}
		if len(dry.Pending) > 0 {
			return nil, &PlanError{Profile: name, Pending: dry.Pending}
		}
	}
	next := s.layout.Clone()
	if err := retarget(&next, &p, opts.Force); err != nil {
		return nil, err
	}
	reconcile(&next, s.ctl)
	done := &Plan{Profile: name, Base: s.gen, Steps: diff(s.layout, next), Pending: pendingOf(next, name), Result: next.Clone()}
	s.layout, s.active = next, name
	for _, l := range s.leases {
		l.Charge = s.charge(l)
	}
	s.gen++
	s.save()
	s.dispatch()
	return done, nil
}

// Status returns a snapshot of the layout, leases, queue and pending work.
func (s *Slicer) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{Profile: s.active, Generation: s.gen, Layout: s.layout.Clone(), Pending: pendingOf(s.layout, s.active),
		DefaultPolicy: s.defPolicy, Policies: map[string]Policy{},
		Ended: append([]Lease(nil), s.ended...), Warnings: append([]string(nil), s.warnings...), Reclaimed: append([]Reclaimed(nil), s.reclaimed...)}
	for t, p := range s.policies {
		st.Policies[t] = p
	}
	if s.saver != nil {
		st.StoreError = s.saver.lastErr()
	}
	st.Leases = s.leaseList()
	for _, w := range s.queue {
		st.Queue = append(st.Queue, Queued{Request: w.req, Since: w.since})
	}
	return st
}

func (s *Slicer) leaseList() []Lease {
	ls := s.sortedLeases()
	out := make([]Lease, len(ls))
	for i, l := range ls {
		out[i] = l.Lease
	}
	return out
}

// sortedLeases returns the live leases in grant order.
func (s *Slicer) sortedLeases() []*lease {
	out := make([]*lease, 0, len(s.leases))
	for _, l := range s.leases {
		out = append(out, l)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].seq < out[b].seq })
	return out
}
