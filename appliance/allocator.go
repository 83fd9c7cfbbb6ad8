package appliance

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/pool"
	"github.com/kerf-edge/kerf/slicer"
	"github.com/kerf-edge/kerf/transport"
)

// allocator places sessions in slices. It is the transport's Allocator
// (leases are slicer leases), and it tells a worker its slice and turns
// the worker's reports into slicer usage.
type allocator struct {
	sl      *slicer.Slicer
	workers *workerSet // a released lease's workers end before its slices are free
	mem     *leaseMemory
	pool    *pool.Pool // nil outside a pool; else every lease is admitted by its ledger (pool.go)
	log     *slog.Logger
}

// newAllocator places sessions with sl; a lease's workers are in workers.
func newAllocator(sl *slicer.Slicer, workers *workerSet, ledger *pool.Pool, log *slog.Logger) *allocator {
	al := &allocator{sl: sl, workers: workers, pool: ledger, log: log}
	al.mem = newLeaseMemory(al.leaseSliceMemory, func(t string) uint64 { return sl.PolicyOf(t).MaxMemory })
	return al
}

// leaseSliceMemory is the memory of lease's slice on device dev now; 0
// when the lease holds none (it ended).
func (al *allocator) leaseSliceMemory(lease string, dev int) uint64 {
	if id := al.sliceOf(lease, dev); id != "" {
		return al.sliceMemory(slicer.SliceID(id))
	}
	return 0
}

var (
	_ transport.Allocator     = (*allocator)(nil)
	_ transport.LeaseReporter = (*allocator)(nil)
)

// emuQuantum is the largest compute-share grant on the emulated GPU.
const emuQuantum = 20 * time.Millisecond

// slicerGPUs describes the devices to the slicer.
func slicerGPUs(devices []gpu.DeviceInfo) []slicer.GPU {
	out := make([]slicer.GPU, 0, len(devices))
	for i, d := range devices {
		out = append(out, slicer.FromDevice(i, d))
	}
	return out
}

// slicerReserve is the memory kept back on each GPU of a backend kind.
func slicerReserve(kind string) slicer.Reserve {
	if kind == "emulated" {
		return slicer.Reserve{} // no driver or context overhead to keep back
	}
	return slicer.DefaultReserve
}

// newShares makes the arbiters that pace each GPU's kernels by the slices'
// compute shares. One tenant's kernels run at a time, as a GPU
// time-slices contexts (an emulated kernel spreads its blocks over every
// core anyway), unless slicer.share_overlap_below lets tenants under
// their share hold grants side by side while the GPU's load is below it.
func newShares(cfg Config, kind string, gpus int) *arbiters {
	quantum := cfg.Slicer.ShareQuantum
	if kind == "emulated" && quantum == 0 {
		quantum = emuQuantum // emulated kernels are long
	}
	return newArbiters(gpus, quantum, 1, cfg.Slicer.ShareOverlapBelow)
}

// tenantLimit is the most GPUs one tenant holds at once, fractions
// counted: the smaller of slicer.max_gpus_per_tenant and
// slicer.max_fraction_per_tenant of the node's gpus; 0 for no limit.
func tenantLimit(cfg Config, gpus int) float64 {
	limit := cfg.Slicer.MaxGPUsPerTenant
	if f := cfg.Slicer.MaxFractionPerTenant; f > 0 {
		if byFraction := f * float64(gpus); limit == 0 || byFraction < limit {
			limit = byFraction
		}
	}
	return limit
}

// openSlicer restores the slicer's state for gpus; it resizes live slices
// through ctl. The configuration sets the node-wide default policy at
// every start; tenants' own policies and the active profile come from
// the state (docs/architecture.md, "Slices and re-slicing"). It logs
// which came from where.
func openSlicer(cfg Config, gpus []slicer.GPU, reserve slicer.Reserve, ctl slicer.Control, log *slog.Logger) (*slicer.Slicer, error) {
	policy := slicer.Policy{MaxGPUs: tenantLimit(cfg, len(gpus)), IdleTimeout: cfg.Slicer.IdleTimeout}
	sl, err := slicer.New(slicer.Config{
		GPUs:          gpus,
		Reserve:       reserve,
		Profile:       cfg.Slicer.Profile,
		DefaultPolicy: policy,
		Control:       ctl,
		Store:         slicer.FileStore{Path: cfg.SlicerPath()},
	})
	if err != nil {
		return nil, fmt.Errorf("slicer: %w", err)
	}
	st, from := sl.Status(), sl.Origins()
	log.Info("slicer default policy from the configuration", "limit_gpus", policy.MaxGPUs,
		"max_gpus_per_tenant", cfg.Slicer.MaxGPUsPerTenant, "max_fraction_per_tenant", cfg.Slicer.MaxFractionPerTenant, "idle_timeout", policy.IdleTimeout)
	if old := from.StoredDefaultPolicy; old != nil && *old != policy {
		log.Info("the configured default policy replaces the one kept in the state", "state_limit_gpus", old.MaxGPUs, "state_idle_timeout", old.IdleTimeout)
	}
	if len(from.TenantPolicies) > 0 {
		log.Info("tenant policies from the state", "tenants", strings.Join(from.TenantPolicies, ","))
	}
	if from.Profile == "state" && st.Profile != cfg.Slicer.Profile {
		log.Info("slicer profile from the state, the last one applied; slicer.profile sets only a node's first start", "profile", st.Profile, "configured", cfg.Slicer.Profile)
	}
	for _, w := range st.Warnings {
		log.Warn("slicer state restored with a problem", "warning", w)
	}
	for _, l := range st.Ended {
		log.Warn("a tenant's slices were live when kerfd stopped; its sessions ended", "tenant", l.Tenant, "lease", l.ID)
	}
	log.Info("slicer ready", "profile", st.Profile, "gpus", len(gpus))
	return sl, nil
}

// Allocate implements transport.Allocator.
func (al *allocator) Allocate(t auth.Tenant, req transport.AllocRequest) (transport.Lease, error) {
	if al.placesInPool(req) {
		return al.allocateInPool(t, req)
	}
	sreq := slicer.Request{Tenant: t.ID, N: req.Count, Fraction: req.Fraction, Memory: req.Memory, Model: req.Model, MinMemory: req.MinMemory}
	if req.Device >= 0 {
		sreq.GPUs = []int{req.Device}
		// A session that brought neither a lease nor a size: the
		// smallest free slice.
		sreq.AnySlice = sreq.Fraction == 0 && sreq.Memory == 0
	}
	l, err := al.sl.TryAllocate(sreq)
	if err != nil {
		// The tenant's error sums what others hold; the log names them.
		// Waiting tenants retry, so this is at debug level.
		if r := (*slicer.Refusal)(nil); errors.As(err, &r) {
			al.log.Debug("allocation refused", "tenant", t.ID, "detail", r.Detail())
		} else if errors.Is(err, slicer.ErrNoCapacity) {
			return transport.Lease{}, abi.Errorf(abi.ErrOutOfMemory, "%v; %s", err, al.held(t.ID))
		}
		return transport.Lease{}, allocError(err)
	}
	if err := al.admitToPool(l); err != nil {
		return transport.Lease{}, err
	}
	return al.transportLease(l), nil
}

// held says how much of the node is leased, as a tenant refused for lack
// of capacity may know it: amounts, the tenant's own leases apart, and no
// other tenant's name.
func (al *allocator) held(tenant string) string {
	var mine, others float64
	var nMine, nOthers int
	for _, l := range al.sl.Status().Leases {
		if l.Tenant == tenant {
			mine, nMine = mine+l.Charge, nMine+1
		} else {
			others, nOthers = others+l.Charge, nOthers+1
		}
	}
	s := fmt.Sprintf("held now: %.2f GPU by other tenants (%d lease(s))", others, nOthers)
	if nMine > 0 {
		s += fmt.Sprintf(", %.2f GPU by you (%d lease(s))", mine, nMine)
	}
	return s
}

// Lease implements transport.Allocator. A lease that was reclaimed is
// refused even while its last workers end.
func (al *allocator) Lease(t auth.Tenant, id string) (transport.Lease, error) {
	for _, l := range al.sl.Status().Leases {
		if string(l.ID) == id {
			if l.Tenant != t.ID || al.sl.Touch(l.ID) != nil {
				break
			}
			return al.transportLease(l), nil
		}
	}
	return transport.Lease{}, fmt.Errorf("no live lease %s for tenant %s (released, reclaimed after idling, or never granted)", id, t.ID)
}

// LeaseUse implements transport.LeaseReporter: a live lease of t, each
// slice's compute share and achieved share of its GPU's time (about the
// last second's, from its workers' reports), and the sessions its workers
// serve. Unlike Lease, asking does not count as using the lease.
func (al *allocator) LeaseUse(t auth.Tenant, id string) (transport.LeaseUse, error) {
	st := al.sl.Status()
	for _, r := range st.Reclaimed {
		if string(r.Lease.ID) == id {
			return transport.LeaseUse{}, fmt.Errorf("lease %s was reclaimed after idling", id)
		}
	}
	for _, l := range st.Leases {
		if string(l.ID) != id || l.Tenant != t.ID {
			continue
		}
		sizes := map[slicer.SliceID]slicer.Size{}
		for _, g := range st.Layout.GPUs {
			for _, s := range g.Slices {
				sizes[s.ID] = s.Size
			}
		}
		achieved := al.workers.shares()
		use := transport.LeaseUse{ID: id}
		for i, sid := range l.Slices {
			use.Slices = append(use.Slices, transport.SliceUse{
				LeaseSlice:  transport.LeaseSlice{Device: l.GPUs[i], Memory: sizes[sid].Memory},
				Share:       sizes[sid].Share,
				Utilization: achieved[string(sid)],
			})
		}
		for _, s := range al.workers.sessions() {
			if s.Lease == id {
				use.Sessions = append(use.Sessions, s)
			}
		}
		return use, nil
	}
	return transport.LeaseUse{}, fmt.Errorf("no live lease %s for tenant %s", id, t.ID)
}

// Release implements transport.Allocator: the lease's workers are ended
// first, and its slices are free for another lease only once every one
// of them is gone.
func (al *allocator) Release(id string) {
	al.workers.endLease(id)
	if err := al.sl.Release(slicer.LeaseID(id)); err != nil && !errors.Is(err, slicer.ErrUnknownLease) && !errors.Is(err, slicer.ErrReclaimed) {
		al.log.Warn("releasing a lease", "lease", id, "err", err)
	}
	if al.pool != nil {
		al.pool.Release(id)
	}
}

func (al *allocator) transportLease(l slicer.Lease) transport.Lease {
	out := transport.Lease{ID: string(l.ID)}
	for i, id := range l.Slices {
		out.Slices = append(out.Slices, transport.LeaseSlice{Device: l.GPUs[i], Memory: al.sliceMemory(id)})
	}
	return out
}

func (al *allocator) sliceMemory(id slicer.SliceID) uint64 {
	if s := al.findSlice(id); s != nil {
		return s.Size.Memory
	}
	return 0
}

func (al *allocator) findSlice(id slicer.SliceID) *slicer.Slice {
	st := al.sl.Status()
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
func (al *allocator) sliceShare(id string) float64 {
	if s := al.findSlice(slicer.SliceID(id)); s != nil {
		return s.Size.Share
	}
	return 0
}

// sliceOf names the slice a lease holds on device dev.
func (al *allocator) sliceOf(lease string, dev int) string {
	for _, l := range al.sl.Status().Leases {
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
		return abi.Errorf(abi.ErrOutOfMemory, "%v", err)
	case errors.Is(err, slicer.ErrLimit):
		return abi.Errorf(abi.ErrNotPermitted, "%v", err)
	case errors.Is(err, slicer.ErrReclaimed), errors.Is(err, slicer.ErrUnknownLease):
		return abi.Errorf(abi.ErrNotPermitted, "%v", err)
	}
	return abi.Errorf(abi.ErrInvalidValue, "%v", err)
}

// report feeds a worker's usage to the slicer. It returns false when the
// slicer no longer knows the lease: released, or reclaimed.
func (al *allocator) report(lease, slice string, r workerReport) bool {
	if lease == "" || slice == "" {
		return true
	}
	err := al.sl.Report(slicer.LeaseID(lease), slicer.SliceID(slice), slicer.Usage{MemUsed: r.MemUsed, Calls: r.Calls})
	switch {
	case errors.Is(err, slicer.ErrUnknownLease), errors.Is(err, slicer.ErrReclaimed):
		return false
	case err != nil:
		al.log.Debug("usage report", "lease", lease, "err", err)
	}
	return true
}

var _ transport.CapacityReporter = (*allocator)(nil)

// Capacity implements transport.CapacityReporter: every GPU with its free
// slices, and the tenant's policy and holdings.
func (al *allocator) Capacity(t auth.Tenant) (transport.Capacity, error) {
	st := al.sl.Status()
	pol := al.sl.PolicyOf(t.ID)
	c := transport.Capacity{MaxGPUs: pol.MaxGPUs, IdleTimeout: pol.IdleTimeout, MaxMemory: pol.MaxMemory}
	for _, l := range st.Leases {
		if l.Tenant == t.ID {
			c.HeldGPUs += l.Charge
		}
	}
	for _, g := range st.Layout.GPUs {
		n, total, largest, largestMem := g.FreeCapacity()
		c.GPUs = append(c.GPUs, transport.GPUCapacity{Device: g.GPU.Index, Name: g.GPU.Model, Memory: g.GPU.Memory, Slices: len(g.Slices),
			FreeSlices: n, FreeFraction: total, LargestFree: largest, LargestFreeMemory: largestMem})
	}
	return c, nil
}
