package appliance

import (
	"errors"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/gpu/cuda"
)

// Where the CUDA backend can partition a GPU's SMs (green contexts:
// gpu/cuda ComputeMode), each slice with a running session gets SMs of its
// own in proportion to its compute share (cuda.PlanSMPartitions), and its
// worker's kernels run there, unpaced by the share gate. kerfd plans a
// GPU's partitions again whenever a session starts or ends in a slice of
// it, or a slice's share changes, and tells each worker whose partition
// moved (smPartitionMsg); the worker's context moves at its next kernel.
// When a GPU's slices cannot each have a group of SMs, every one of them
// runs on all of the SMs, paced by the share gate, as on GPUs without
// partitions. A worker moves when it next reads its control socket, so
// for a moment two workers may share SMs.

// smPlanner knows which GPUs have their shares as SM partitions.
type smPlanner struct {
	groups map[int]int // GPU → SM groups, for those partitioned
}

// newSMPlanner asks backend how each GPU enforces compute shares, and
// logs it: one line per GPU.
func newSMPlanner(backend gpu.Backend, log *slog.Logger) *smPlanner {
	p := &smPlanner{groups: map[int]int{}}
	cb, ok := backend.(*cuda.Backend)
	if !ok {
		for i := range backend.Devices() {
			log.Info("compute shares", "gpu", i, "mode", "time-slicing", "reason", "the emulated GPU has no SM partitions")
		}
		return p
	}
	for i := range cb.Devices() {
		m := cb.ComputeMode(i)
		if m.Partitioned {
			p.groups[i] = m.Groups
			log.Info("compute shares", "gpu", i, "mode", m.Name(), "sms", m.SMs, "sm_groups", m.Groups, "group_sms", m.GroupSMs)
		} else {
			log.Info("compute shares", "gpu", i, "mode", m.Name(), "reason", m.Reason)
		}
	}
	return p
}

// plan assigns SM partitions on GPU dev to the slices in shares (slice
// → compute share), in the order of their IDs. It is nil when dev is not
// partitioned.
func (p *smPlanner) plan(dev int, shares map[string]float64) map[string]smPartitionMsg {
	groups, ok := p.groups[dev]
	if !ok {
		return nil
	}
	ids := make([]string, 0, len(shares))
	for id := range shares {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	ss := make([]float64, len(ids))
	for i, id := range ids {
		ss[i] = min(max(shares[id], 0.01), 1)
	}
	out := make(map[string]smPartitionMsg, len(ids))
	parts, err := cuda.PlanSMPartitions(groups, ss)
	for i, id := range ids {
		if err != nil {
			out[id] = smPartitionMsg{Device: dev, First: 0, Groups: groups, Gated: true}
			continue
		}
		out[id] = smPartitionMsg{Device: dev, First: parts[i].First, Groups: parts[i].Groups}
	}
	return out
}

// replanLocked plans GPU dev's partitions for the slices of its
// partitioned workers and tells every worker whose partition changed but
// except (whose partition travels in its spec); it returns except's.
// s.mu is held.
func (s *workerSet) replanLocked(dev int, except *worker) *smPartitionMsg {
	shares := map[string]float64{}
	for _, w := range s.workers {
		if w.part != nil && w.adm.Device == dev {
			shares[w.slice] = s.sliceShares[w.slice]
		}
	}
	plan := s.planner.plan(dev, shares)
	var mine *smPartitionMsg
	for _, w := range s.workers {
		m, ok := plan[w.slice]
		if w.part == nil || w.adm.Device != dev || !ok || *w.part == m {
			continue
		}
		*w.part = m
		if w == except {
			mine = &m
			continue
		}
		w.tell(m)
	}
	return mine
}

// partition gives w, whose spec is not yet sent, a partition of its GPU's
// SMs when its GPU has them and it runs in a slice of compute share
// share; others on the GPU move to make room. nil: w is time-sliced.
func (s *workerSet) partition(w *worker, share float64) *smPartitionMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.planner.groups[w.adm.Device]; !ok || w.slice == "" {
		return nil
	}
	s.sliceShares[w.slice] = share
	w.part = &smPartitionMsg{Groups: -1} // no partition yet: replan sets it
	return s.replanLocked(w.adm.Device, w)
}

// smWorker is a worker's side of SM partitions: it puts the session's
// kernels on the SMs kerfd names, and is the gate that paces them only
// while kerfd says the GPU's SMs are shared by time.
type smWorker struct {
	gate    gpu.Gate
	backend *cuda.Backend
	log     *slog.Logger
	paced   atomic.Bool
}

var _ gpu.Gate = (*smWorker)(nil)

// Enter implements gpu.Gate.
func (s *smWorker) Enter() func(time.Duration) {
	if s.paced.Load() {
		return s.gate.Enter()
	}
	return func(time.Duration) {}
}

// apply moves the session's kernels to m's SMs; where that fails they
// stay where they were, paced by the share gate.
func (s *smWorker) apply(m smPartitionMsg) {
	err := errNotPartitioned
	if s.backend != nil {
		err = s.backend.SetSMPartition(m.Device, cuda.SMPartition{First: m.First, Groups: m.Groups})
	}
	s.paced.Store(m.Gated || err != nil)
	if err != nil {
		s.log.Warn("compute share paced by time: the SM partition was refused", "gpu", m.Device, "first", m.First, "groups", m.Groups, "err", err)
	}
}

var errNotPartitioned = errors.New("the worker's backend has no SM partitions")
