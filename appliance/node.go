package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/profiles"
	"github.com/kerf-edge/kerf/profiles/api"
	"github.com/kerf-edge/kerf/slicer"
	"github.com/kerf-edge/kerf/slicer/discover"
	"github.com/kerf-edge/kerf/transport"
)

// node is the operator API's view of this machine: its GPUs, slices and
// tenants, and the dry runs, re-slices and evictions the API asks for.
type node struct {
	sl      *slicer.Slicer
	slices  *allocator
	devices []gpu.DeviceInfo
	gpus    []slicer.GPU
	reserve slicer.Reserve // memory kept back on each GPU
	// samples reads NVML; nil unless kerfd drives real GPUs.
	samples func() []discover.Sample
	workers *workerSet
	server  *transport.Server // lists and ends the sessions served inside kerfd
	log     *slog.Logger
}

var _ profiles.Node = (*node)(nil)

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
	achieved := n.workers.shares()
	st := n.sl.Status()
	busy := sliceBusy(st, liveSessions(n.server, n.workers))
	var out []api.Slice
	for _, g := range st.Layout.GPUs {
		for _, s := range g.Slices {
			out = append(out, api.Slice{
				ID: string(s.ID), Tenant: s.Tenant, GPU: g.GPU.Index, MemoryUsedBytes: s.Used, MemoryLimitBytes: s.Size.Memory,
				ShareTarget: s.Size.Share, ShareAchieved: achieved[string(s.ID)], Pending: s.Size != s.Target,
				GPUSeconds: busy[s.ID].Seconds(),
			})
		}
	}
	return out
}

// sliceBusy sums the GPU time of the live sessions by slice: a session
// runs on the slice its lease holds on the session's GPU.
func sliceBusy(st slicer.Status, sessions []transport.SessionInfo) map[slicer.SliceID]time.Duration {
	byLease := map[string]slicer.Lease{}
	for _, l := range st.Leases {
		byLease[string(l.ID)] = l
	}
	out := map[slicer.SliceID]time.Duration{}
	for _, s := range sessions {
		l := byLease[s.Lease]
		if i := slices.Index(l.GPUs, s.Device); i >= 0 && i < len(l.Slices) {
			out[l.Slices[i]] += s.Busy
		}
	}
	return out
}

// Tenants implements profiles.Node: live sessions plus the totals of
// ended ones.
func (n *node) Tenants() []api.Tenant {
	byName := n.workers.endedTotals()
	for _, s := range liveSessions(n.server, n.workers) {
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
		t.GPUSeconds += s.Busy.Seconds()
	}
	for _, l := range n.sl.Status().Leases {
		if t := byName[l.Tenant]; t != nil {
			for _, id := range l.Slices {
				t.MemoryLimitBytes += n.slices.sliceMemory(id)
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

// builtinProfile converts a built-in slicer profile for the API store.
func builtinProfile(p slicer.Profile, gpus []slicer.GPU) api.Profile {
	out := api.Profile{Name: p.Name, Description: builtinDescription, BuiltIn: true}
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

// builtinDescription describes the built-in profiles in the API's store.
const builtinDescription = "built in"

// register makes an operator's profile known to the slicer; a built-in
// one it has.
func (n *node) register(p api.Profile) error {
	if slicer.IsBuiltin(p.Name) {
		return nil
	}
	return n.sl.AddProfile(toSlicer(p))
}

// Plan implements profiles.Node: a dry run.
func (n *node) Plan(_ context.Context, p api.Profile, opts profiles.ApplyOptions) (api.Plan, error) {
	if err := n.register(p); err != nil {
		return api.Plan{}, err
	}
	plan, err := n.sl.Plan(p.Name, slicer.ApplyOptions{Force: opts.Force})
	if err != nil {
		return api.Plan{}, err
	}
	return apiPlan(plan, false), nil
}

// Apply implements profiles.Node: re-slices live.
func (n *node) Apply(_ context.Context, p api.Profile, opts profiles.ApplyOptions) (api.Plan, error) {
	if err := n.register(p); err != nil {
		return api.Plan{}, err
	}
	start := time.Now()
	plan, err := n.sl.ApplyProfile(p.Name, slicer.ApplyOptions{Force: opts.Force})
	if err != nil {
		return api.Plan{}, err
	}
	n.log.Info("re-sliced", "profile", p.Name, "force", opts.Force, "steps", len(plan.Steps), "pending", len(plan.Pending), "took", time.Since(start))
	return apiPlan(plan, true), nil
}

// DeleteProfile implements profiles.Node: the slicer forgets the profile,
// unless it runs it.
func (n *node) DeleteProfile(name string) error {
	err := n.sl.RemoveProfile(name)
	if errors.Is(err, slicer.ErrActiveProfile) || errors.Is(err, slicer.ErrBuiltinProfile) {
		return fmt.Errorf("%w: %w", profiles.ErrInUse, err)
	}
	return err
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
	if n.workers.closeTenant(tenant) > 0 {
		found = true
	}
	if n.server.CloseTenant(tenant) > 0 {
		found = true
	}
	for _, l := range n.sl.Status().Leases {
		if l.Tenant == tenant {
			n.slices.Release(string(l.ID))
			found = true
		}
	}
	if !found {
		return fmt.Errorf("tenant %s: %w", tenant, profiles.ErrNotFound)
	}
	return nil
}

// liveSessions lists the sessions running in kerfd and in workers.
func liveSessions(server *transport.Server, workers *workerSet) []transport.SessionInfo {
	return append(server.Sessions(), workers.sessions()...)
}
