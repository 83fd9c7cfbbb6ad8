package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/ingest"
	"github.com/kerf-edge/kerf/profiles"
	"github.com/kerf-edge/kerf/profiles/api"
	"github.com/kerf-edge/kerf/slicer"
	"github.com/kerf-edge/kerf/slicer/discover"
	"github.com/kerf-edge/kerf/transport"
)

// node joins the slicer to the rest of kerfd. It is the transport's
// Allocator (leases are slicer leases), the operator API's view of the
// node, and it turns worker reports into slicer usage.
type node struct {
	sl      *slicer.Slicer
	devices []gpu.DeviceInfo
	gpus    []slicer.GPU
	reserve slicer.Reserve // memory kept back on each GPU
	a       *Appliance
	log     *slog.Logger
	api     *profiles.Server // set once the API exists; records re-slices
	// samples reads NVML, when kerfd drives real GPUs.
	samples func() []discover.Sample
	// shares paces each GPU's kernels by the slices' compute shares.
	shares *arbiters

	mu     sync.Mutex
	totals map[string]*api.Tenant // counters of ended sessions, per tenant
}

var (
	_ transport.Allocator = (*node)(nil)
	_ profiles.Node       = (*node)(nil)
	_ ingest.Applier      = (*node)(nil)
)

// emuQuantum is the largest compute-share grant on the emulated GPU.
const emuQuantum = 20 * time.Millisecond

// smallestSlice asks the slicer for the smallest free slice: a session
// that brought neither a lease nor a size.
const smallestSlice = 1e-9

func newNode(a *Appliance, devices []gpu.DeviceInfo, ctl slicer.Control, log *slog.Logger) (*node, error) {
	n := &node{devices: devices, a: a, log: log, totals: map[string]*api.Tenant{}, reserve: slicer.DefaultReserve,
		shares: newArbiters(len(devices), a.cfg.Slicer.ShareQuantum, 1)}
	if a.kind == "emulated" {
		n.reserve = slicer.Reserve{} // no driver or context overhead to keep back
		quantum := a.cfg.Slicer.ShareQuantum
		if quantum == 0 {
			quantum = emuQuantum // emulated kernels are long
		}
		// One tenant's kernels at a time, as a GPU time-slices contexts;
		// each kernel spreads its blocks over every core anyway.
		n.shares = newArbiters(len(devices), quantum, 1)
	}
	for i, d := range devices {
		n.gpus = append(n.gpus, slicer.FromDevice(i, d))
	}
	sl, err := slicer.New(slicer.Config{
		GPUs:          n.gpus,
		Reserve:       n.reserve,
		Profile:       a.cfg.Slicer.Profile,
		DefaultPolicy: slicer.Policy{MaxGPUs: a.cfg.Slicer.MaxGPUsPerTenant, IdleTimeout: a.cfg.Slicer.IdleTimeout},
		Control:       ctl,
		Store:         slicer.FileStore{Path: a.cfg.SlicerPath()},
	})
	if err != nil {
		return nil, fmt.Errorf("slicer: %w", err)
	}
	n.sl = sl
	st := sl.Status()
	for _, w := range st.Warnings {
		log.Warn("slicer state restored with a problem", "warning", w)
	}
	for _, l := range st.Ended {
		log.Warn("a tenant's slices were live when kerfd stopped; its sessions ended", "tenant", l.Tenant, "lease", l.ID)
	}
	log.Info("slicer ready", "profile", st.Profile, "gpus", len(n.gpus))
	return n, nil
}

// Allocate implements transport.Allocator.
func (n *node) Allocate(t auth.Tenant, req transport.AllocRequest) (transport.Lease, error) {
	sreq := slicer.Request{Tenant: t.ID, N: req.Count, Fraction: req.Fraction, Memory: req.Memory, Model: req.Model, MinMemory: req.MinMemory}
	if req.Device >= 0 {
		sreq.GPUs = []int{req.Device}
		if sreq.Fraction == 0 && sreq.Memory == 0 {
			sreq.Fraction = smallestSlice
		}
	}
	l, err := n.sl.TryAllocate(sreq)
	if err != nil {
		return transport.Lease{}, allocError(err)
	}
	return n.transportLease(l), nil
}

// Lease implements transport.Allocator.
func (n *node) Lease(t auth.Tenant, id string) (transport.Lease, error) {
	for _, l := range n.sl.Status().Leases {
		if string(l.ID) == id {
			if l.Tenant != t.ID {
				break
			}
			n.sl.Touch(l.ID)
			return n.transportLease(l), nil
		}
	}
	return transport.Lease{}, fmt.Errorf("no live lease %s for tenant %s (released, reclaimed after idling, or never granted)", id, t.ID)
}

// Release implements transport.Allocator.
func (n *node) Release(id string) {
	if err := n.sl.Release(slicer.LeaseID(id)); err != nil && !errors.Is(err, slicer.ErrUnknownLease) && !errors.Is(err, slicer.ErrReclaimed) {
		n.log.Warn("releasing a lease", "lease", id, "err", err)
	}
}

func (n *node) transportLease(l slicer.Lease) transport.Lease {
	out := transport.Lease{ID: string(l.ID)}
	for i, id := range l.Slices {
		out.Slices = append(out.Slices, transport.LeaseSlice{Device: l.GPUs[i], Memory: n.sliceMemory(id)})
	}
	return out
}

func (n *node) sliceMemory(id slicer.SliceID) uint64 {
	if s := n.findSlice(id); s != nil {
		return s.Size.Memory
	}
	return 0
}

func (n *node) findSlice(id slicer.SliceID) *slicer.Slice {
	st := n.sl.Status()
	for _, g := range st.Layout.GPUs {
		for i := range g.Slices {
			if g.Slices[i].ID == id {
				return &g.Slices[i]
			}
		}
	}
	return nil
}

// sliceShare is a slice's compute share now.
func (n *node) sliceShare(id string) float64 {
	if s := n.findSlice(slicer.SliceID(id)); s != nil {
		return s.Size.Share
	}
	return 0
}

// sliceOf names the slice a lease holds on device dev.
func (n *node) sliceOf(lease string, dev int) string {
	for _, l := range n.sl.Status().Leases {
		if string(l.ID) == lease {
			for i, g := range l.GPUs {
				if g == dev {
					return string(l.Slices[i])
				}
			}
		}
	}
	return ""
}

// allocError turns slicer errors into CUDA results a client understands:
// only "no capacity now" is worth retrying.
func allocError(err error) error {
	switch {
	case errors.Is(err, slicer.ErrNoCapacity):
		return abi.Errorf(abi.ErrOutOfMemory, "no capacity: %v", err)
	case errors.Is(err, slicer.ErrLimit):
		return abi.Errorf(abi.ErrNotPermitted, "%v", err)
	case errors.Is(err, slicer.ErrReclaimed), errors.Is(err, slicer.ErrUnknownLease):
		return abi.Errorf(abi.ErrNotPermitted, "%v", err)
	}
	return abi.Errorf(abi.ErrInvalidValue, "%v", err)
}

// report feeds a worker's usage to the slicer.
func (n *node) report(lease, slice string, r workerReport) {
	if lease == "" || slice == "" {
		return
	}
	err := n.sl.Report(slicer.LeaseID(lease), slicer.SliceID(slice), slicer.Usage{MemUsed: r.MemUsed, Calls: r.Calls})
	if err != nil && !errors.Is(err, slicer.ErrUnknownLease) && !errors.Is(err, slicer.ErrReclaimed) {
		n.log.Debug("usage report", "lease", lease, "err", err)
	}
}

// ended adds a finished session's counters to its tenant's totals, so the
// API's counters keep running across sessions.
func (n *node) ended(tenant string, r workerReport) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := n.totals[tenant]
	if t == nil {
		t = &api.Tenant{Name: tenant}
		n.totals[tenant] = t
	}
	t.Calls += r.Calls
	t.Errors += r.Errors
	t.BytesIn += r.BytesIn
	t.BytesOut += r.BytesOut
}

// reclaimLoop ends the sessions of leases the slicer reclaims for idling.
func (n *node) reclaimLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			n.shares.tick()
		case <-t.C:
			for _, r := range n.sl.Reclaim() {
				n.log.Info("reclaimed idle slices", "tenant", r.Lease.Tenant, "lease", r.Lease.ID, "idle", r.IdleFor.Round(time.Second))
				if n.a.workers != nil {
					n.a.workers.closeLease(string(r.Lease.ID))
				}
			}
		}
	}
}

// GPUs implements profiles.Node.
func (n *node) GPUs() []api.GPU {
	out := make([]api.GPU, len(n.devices))
	for i, d := range n.devices {
		out[i] = api.GPU{Index: i, Name: d.Name, MemoryBytes: d.TotalMem, SMs: d.SMs, Emulated: d.Emulated}
	}
	if n.samples != nil {
		for _, s := range n.samples() {
			if s.Index >= 0 && s.Index < len(out) {
				g := &out[s.Index]
				g.Sampled = true
				g.UtilizationRatio = float64(s.GPUUtil) / 100
				g.TemperatureCelsius = float64(s.TemperatureC)
				g.PowerWatts = float64(s.PowerMW) / 1000
			}
		}
	}
	return out
}

// Slices implements profiles.Node: every slice of the layout, held or
// free.
func (n *node) Slices() []api.Slice {
	var achieved map[string]float64
	if n.a.workers != nil {
		achieved = n.a.workers.shares()
	}
	var out []api.Slice
	for _, g := range n.sl.Status().Layout.GPUs {
		for _, s := range g.Slices {
			out = append(out, api.Slice{
				Tenant: s.Tenant, GPU: g.GPU.Index, MemoryUsedBytes: s.Used, MemoryLimitBytes: s.Size.Memory,
				ShareTarget: s.Size.Share, ShareAchieved: achieved[string(s.ID)], Pending: s.Size != s.Target,
			})
		}
	}
	return out
}

// Tenants implements profiles.Node: live sessions plus the totals of
// ended ones.
func (n *node) Tenants() []api.Tenant {
	n.mu.Lock()
	byName := map[string]*api.Tenant{}
	for name, t := range n.totals {
		c := *t
		byName[name] = &c
	}
	n.mu.Unlock()
	for _, s := range n.a.Sessions() {
		t := byName[s.Tenant]
		if t == nil {
			t = &api.Tenant{Name: s.Tenant}
			byName[s.Tenant] = t
		}
		t.Sessions++
		t.MemoryUsedBytes += s.MemUsed
		t.Calls += s.Calls
		t.Errors += s.Errors
		t.BytesIn += s.BytesIn
		t.BytesOut += s.BytesOut
	}
	for _, l := range n.sl.Status().Leases {
		if t := byName[l.Tenant]; t != nil {
			for _, id := range l.Slices {
				t.MemoryLimitBytes += n.sliceMemory(id)
			}
		}
	}
	out := make([]api.Tenant, 0, len(byName))
	for _, t := range byName {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// toSlicer converts an API profile; a GPU index of -1 means every GPU.
func toSlicer(p api.Profile) slicer.Profile {
	sp := slicer.Profile{Name: p.Name, PerGPU: map[int][]slicer.SliceSpec{}}
	for _, g := range p.GPUs {
		specs := make([]slicer.SliceSpec, len(g.Slices))
		for i, s := range g.Slices {
			specs[i] = slicer.SliceSpec{Fraction: s.MemoryFraction, Memory: s.MemoryBytes, Share: s.ComputeShare}
		}
		if g.GPU < 0 {
			sp.Slices = specs
		} else {
			sp.PerGPU[g.GPU] = specs
		}
	}
	return sp
}

// fromSlicer converts a slicer profile for the API store.
func fromSlicer(p slicer.Profile, gpus []slicer.GPU) api.Profile {
	out := api.Profile{Name: p.Name, Description: "built in"}
	for _, g := range gpus {
		specs := p.PerGPU[g.Index]
		if specs == nil {
			specs = p.Slices
		}
		gp := api.GPUProfile{GPU: g.Index}
		for _, s := range specs {
			gp.Slices = append(gp.Slices, api.SliceSpec{MemoryFraction: s.Fraction, MemoryBytes: s.Memory, ComputeShare: s.Share})
		}
		out.GPUs = append(out.GPUs, gp)
	}
	return out
}

// Validate implements profiles.Node.
func (n *node) Validate(p api.Profile) error {
	sp := toSlicer(p)
	return sp.Validate(n.gpus, n.reserve)
}

// Plan implements profiles.Node: a dry run.
func (n *node) Plan(_ context.Context, p api.Profile) (api.Plan, error) {
	if err := n.sl.AddProfile(toSlicer(p)); err != nil {
		return api.Plan{}, err
	}
	plan, err := n.sl.Plan(p.Name)
	if err != nil {
		return api.Plan{}, err
	}
	return apiPlan(plan, false), nil
}

// Apply implements profiles.Node: re-slices live.
func (n *node) Apply(_ context.Context, p api.Profile) (api.Plan, error) {
	if err := n.sl.AddProfile(toSlicer(p)); err != nil {
		return api.Plan{}, err
	}
	start := time.Now()
	plan, err := n.sl.ApplyProfile(p.Name, slicer.ApplyOptions{})
	if n.api != nil {
		n.api.RecordReslice("profile "+p.Name, time.Since(start), err)
	}
	if err != nil {
		return api.Plan{}, err
	}
	n.log.Info("re-sliced", "profile", p.Name, "steps", len(plan.Steps), "pending", len(plan.Pending), "took", time.Since(start))
	return apiPlan(plan, true), nil
}

func apiPlan(p *slicer.Plan, applied bool) api.Plan {
	out := api.Plan{Profile: p.Profile, Applied: applied}
	for _, s := range p.Steps {
		if s.Op == "keep" {
			continue
		}
		out.Steps = append(out.Steps, api.PlanStep{GPU: s.GPU, Tenant: s.Tenant, Action: s.Op,
			FromMemoryBytes: s.From.Memory, ToMemoryBytes: s.Target.Memory, FromShare: s.From.Share, ToShare: s.Target.Share})
	}
	for _, pd := range p.Pending {
		out.Steps = append(out.Steps, api.PlanStep{GPU: pd.GPU, Tenant: pd.Tenant, Action: "pending " + pd.Kind, Note: pd.Reason,
			FromMemoryBytes: pd.Size.Memory, ToMemoryBytes: pd.Target.Memory})
	}
	return out
}

// Evict implements profiles.Node: ends the tenant's sessions and frees its
// slices.
func (n *node) Evict(_ context.Context, tenant string) error {
	found := false
	if n.a.workers != nil && n.a.workers.closeTenant(tenant) > 0 {
		found = true
	}
	if n.a.server.CloseTenant(tenant) > 0 {
		found = true
	}
	for _, l := range n.sl.Status().Leases {
		if l.Tenant == tenant {
			n.Release(string(l.ID))
			found = true
		}
	}
	if !found {
		return fmt.Errorf("tenant %s: %w", tenant, profiles.ErrNotFound)
	}
	return nil
}

// ApplyProfile implements ingest.Applier: a policy decision re-slices the
// node, or one GPU of it (the active layout with that GPU re-cut).
func (n *node) ApplyProfile(_ context.Context, t ingest.Target, profile string, why ingest.Decision) error {
	start := time.Now()
	name := profile
	var err error
	if t.GPU != nil {
		name, err = n.withGPU(*t.GPU, profile)
	}
	if err == nil {
		_, err = n.sl.ApplyProfile(name, slicer.ApplyOptions{})
	}
	if n.api != nil {
		n.api.RecordReslice("policy "+why.Rule+": "+t.ID()+" → "+profile, time.Since(start), err)
		n.api.RecordDecision(why.Rule, "apply "+profile+" to "+t.ID(), fmt.Sprintf("%s %s = %g (threshold %g): %s", why.Aggregate, why.Rule, why.Value, why.Threshold, why.Reason))
	}
	return err
}

// withGPU registers the active profile with GPU gpu's slices taken from
// profile, and returns its name.
func (n *node) withGPU(gpu int, profile string) (string, error) {
	var base, over *slicer.Profile
	active := n.sl.Status().Profile
	for _, p := range n.sl.Profiles() {
		switch p.Name {
		case active:
			base = &p
		case profile:
			over = &p
		}
	}
	if over == nil {
		return "", fmt.Errorf("%w: %s", slicer.ErrUnknownProfile, profile)
	}
	if base == nil {
		return profile, nil
	}
	specs := over.PerGPU[gpu]
	if specs == nil {
		specs = over.Slices
	}
	c := slicer.Profile{Name: fmt.Sprintf("%s;gpu%d=%s", strings.SplitN(base.Name, ";", 2)[0], gpu, profile),
		Slices: base.Slices, PerGPU: map[int][]slicer.SliceSpec{}}
	for g, s := range base.PerGPU {
		c.PerGPU[g] = s
	}
	c.PerGPU[gpu] = specs
	if err := n.sl.AddProfile(c); err != nil {
		return "", err
	}
	return c.Name, nil
}
