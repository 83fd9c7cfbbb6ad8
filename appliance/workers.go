package appliance

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/profiles/api"
	"github.com/kerf-edge/kerf/slicer"
	"github.com/kerf-edge/kerf/transport"
)

// workerSet is kerfd's account of its live workers: the slicer's Control
// (it resizes a slice through the workers serving it), the sessions and
// shares the API shows, and the counters of sessions that ended. With
// tenants.isolation: inprocess it stays empty.
type workerSet struct {
	grace time.Duration // between telling a worker to stop and killing it
	caps  SessionCaps

	mu      sync.Mutex
	workers map[int]*worker
	totals  map[string]*api.Tenant // counters of ended sessions, per tenant
	// Places held by sessions, from before their worker starts until it
	// has gone, per tenant and per lease; and sessions refused, per
	// tenant and reason.
	byTenant map[string]int
	byLease  map[string]int
	refused  map[refusal]uint64
	// SM partitions: the GPUs that have them, and the compute share of
	// each slice a partitioned worker runs in.
	planner     *smPlanner
	sliceShares map[string]float64
}

// SessionCaps bound the sessions, each in its own worker process, that
// one tenant and one lease hold at once; 0: no cap.
type SessionCaps struct {
	PerTenant int `koanf:"sessions_per_tenant"`
	PerLease  int `koanf:"sessions_per_lease"`
}

// refusal counts sessions refused for one tenant at one cap.
type refusal struct{ tenant, reason string }

// Reasons a session is refused, as the metric labels them.
const (
	refusedTenantCap = "tenant_cap"
	refusedLeaseCap  = "lease_cap"
)

var _ slicer.Control = (*workerSet)(nil)

// defaultStopGrace is the grace of a zero tenants.stop_grace.
const defaultStopGrace = 500 * time.Millisecond

// newWorkerSet makes the set of workers; planner (nil: none) names the
// GPUs whose compute shares are SM partitions.
func newWorkerSet(grace time.Duration, caps SessionCaps, planner *smPlanner) *workerSet {
	if grace <= 0 {
		grace = defaultStopGrace
	}
	if planner == nil {
		planner = &smPlanner{}
	}
	return &workerSet{grace: grace, caps: caps, workers: map[int]*worker{}, totals: map[string]*api.Tenant{},
		byTenant: map[string]int{}, byLease: map[string]int{}, refused: map[refusal]uint64{},
		planner: planner, sliceShares: map[string]float64{}}
}

// reserve takes a place for a session of adm's tenant and lease before
// its worker starts, or refuses it, with CUDA_ERROR_OUT_OF_MEMORY (a
// place comes back when a session ends), when either is at its cap. The
// caller calls release once the worker has gone.
func (s *workerSet) reserve(adm transport.Admission) (release func(), err error) {
	tenant, lease := adm.Tenant.ID, adm.Lease
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.caps.PerTenant > 0 && s.byTenant[tenant] >= s.caps.PerTenant:
		s.refused[refusal{tenant, refusedTenantCap}]++
		return nil, abi.Errorf(abi.ErrOutOfMemory, "tenant %s has %d sessions open, the most tenants.sessions_per_tenant allows", tenant, s.byTenant[tenant])
	case s.caps.PerLease > 0 && lease != "" && s.byLease[lease] >= s.caps.PerLease:
		s.refused[refusal{tenant, refusedLeaseCap}]++
		return nil, abi.Errorf(abi.ErrOutOfMemory, "lease %s has %d sessions open, the most tenants.sessions_per_lease allows", lease, s.byLease[lease])
	}
	s.byTenant[tenant]++
	if lease != "" {
		s.byLease[lease]++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.byTenant[tenant]--; s.byTenant[tenant] <= 0 {
				delete(s.byTenant, tenant)
			}
			if lease != "" {
				if s.byLease[lease]--; s.byLease[lease] <= 0 {
					delete(s.byLease, lease)
				}
			}
		})
	}, nil
}

// refusals returns the sessions refused at a cap so far, per tenant and
// reason.
func (s *workerSet) refusals() map[refusal]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.refused)
}

// worker is a running tenant worker, as kerfd sees it.
type worker struct {
	pid     int
	adm     transport.Admission
	via     string
	peer    string
	started time.Time
	cmd     *exec.Cmd

	lease   string
	mem     *leaseHolder      // the worker's share of its lease's memory; nil outside a lease
	slice   string            // the slicer slice the session runs in
	ar      *slicer.Arbiter   // the slice's GPU's arbiter; nil without a slice
	control chan ctlMsg       // setMemLimit and grant messages to the worker, in order
	reports chan workerReport // the latest report, for the slicer

	gone     chan struct{} // closed once the process has exited and kerfd has settled what it left
	stopOnce sync.Once

	mu     sync.Mutex
	stopT  time.Time // when the worker was told to stop; zero until then
	report workerReport
	at     time.Time               // when report arrived
	share  float64                 // achieved compute share: GPU time over wall time, smoothed
	closed bool                    // control is closed: the worker exited
	grants map[uint64]slicer.Grant // out with the worker, by ID
	seq    uint64
	acks   map[uint64]chan string // answers awaited, by sequence number

	part *smPartitionMsg // the SMs it was last told to run on; nil: time-sliced. Guarded by workerSet.mu
}

func (s *workerSet) add(w *worker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.workers[w.pid] = w
}

// finish forgets w, whose process has exited and been settled, and wakes
// whoever waits for it to be gone.
func (s *workerSet) finish(w *worker) {
	s.mu.Lock()
	delete(s.workers, w.pid)
	if w.part != nil {
		if !s.sliceBusyLocked(w) {
			delete(s.sliceShares, w.slice)
		}
		s.replanLocked(w.adm.Device, nil) // the others may grow into its SMs
	}
	s.mu.Unlock()
	close(w.gone)
}

// stop tells w to stop (SIGTERM: the worker ends its session, aborting
// its kernels) and kills it if it is still there after the grace. It
// returns at once; later calls do nothing.
func (s *workerSet) stop(w *worker) {
	w.stopOnce.Do(func() {
		w.mu.Lock()
		w.stopT = time.Now()
		w.mu.Unlock()
		w.cmd.Process.Signal(syscall.SIGTERM)
		go func() {
			t := time.NewTimer(s.grace)
			defer t.Stop()
			select {
			case <-w.gone:
			case <-t.C:
				w.cmd.Process.Kill()
			}
		}()
	})
}

// stopping reports whether w was told to stop.
func (w *worker) stopping() bool { return !w.stopAt().IsZero() }

// stopAt is when w was told to stop; zero if it was not.
func (w *worker) stopAt() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stopT
}

// exited settles what w leaves behind once its process is gone and its
// reports are read: its grants go back, its slice leaves the arbiter when
// no other worker runs in it, and its counters join its tenant's totals.
func (s *workerSet) exited(w *worker) {
	if w.ar != nil {
		w.mu.Lock()
		held := w.grants
		w.grants = nil
		w.mu.Unlock()
		for _, g := range held {
			w.ar.Report(g, 0)
		}
		if !s.sliceBusy(w) {
			w.ar.Remove(w.slice)
		}
	}
	w.mu.Lock()
	close(w.control)
	w.closed = true
	final := w.report
	w.mu.Unlock()
	if w.mem != nil {
		w.mem.close()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.totals[w.adm.Tenant.ID]
	if t == nil {
		t = &api.Tenant{Name: w.adm.Tenant.ID}
		s.totals[w.adm.Tenant.ID] = t
	}
	t.Calls += final.Calls
	t.Errors += final.Errors
	t.BytesIn += final.BytesIn
	t.BytesOut += final.BytesOut
	t.GPUSeconds += final.Busy.Seconds()
}

// endedTotals returns a copy of each tenant's counters from ended
// sessions.
func (s *workerSet) endedTotals() map[string]*api.Tenant {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]*api.Tenant, len(s.totals))
	for name, t := range s.totals {
		c := *t
		out[name] = &c
	}
	return out
}

// readReports handles the worker's messages until its control socket
// closes. It returns an error only for a message that breaks the
// protocol.
func (w *worker) readReports(ctrl net.Conn) error {
	in := newCtlReader(ctrl, fromWorker)
	for {
		m, err := in.read()
		if errors.Is(err, errCtlProtocol) {
			return err
		}
		if err != nil {
			return nil
		}
		switch m := m.(type) {
		case acquireMsg:
			w.acquire()
		case usedMsg:
			w.used(m)
		case renewMsg:
			w.renew(m)
		case ackMsg:
			w.acked(m)
		case workerReport:
			w.reported(m)
		case reserveMsg:
			w.reserve(m)
		case releaseMsg:
			if w.mem != nil {
				w.mem.Release(m.Bytes)
			}
		}
	}
}

// reserve answers a worker's reservation of its lease's memory.
func (w *worker) reserve(m reserveMsg) {
	ans := reservedMsg{Seq: m.Seq}
	if w.mem == nil {
		ans.Code, ans.Err = abi.ErrNotPermitted, "the session runs in no lease"
	} else if err := w.mem.Reserve(m.Bytes); err != nil {
		ans.Code, ans.Err = abi.ResultOf(err), err.Error()
		var e *abi.Error
		if errors.As(err, &e) {
			ans.Err = e.Msg
		}
	}
	if w.mem != nil {
		ans.Free = w.mem.Available()
	}
	// The reading goroutine sends; control closes only after it returns.
	// A worker that asks while its queue is full waits out reserveWait.
	select {
	case w.control <- ans:
	default:
	}
}

func (w *worker) acked(m ackMsg) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c := w.acks[m.Seq]; c != nil {
		c <- m.Err
		delete(w.acks, m.Seq)
	}
}

// reported keeps r and its achieved share, and queues it for the slicer.
func (w *worker) reported(r workerReport) {
	w.mu.Lock()
	now := time.Now()
	if !w.at.IsZero() {
		if wall := now.Sub(w.at); wall > 0 {
			s := min(max(float64(r.Busy-w.report.Busy)/float64(wall), 0), 1)
			w.share = 0.75*w.share + 0.25*s // about a second's memory at 250 ms reports
		}
	}
	w.report, w.at = r, now
	w.mu.Unlock()
	// The slicer may answer a report with a control message whose ack the
	// reading goroutine must read: hand the report over, latest first,
	// rather than call into the slicer from there.
	select {
	case w.reports <- r:
	default:
		select {
		case <-w.reports:
		default:
		}
		w.reports <- r
	}
}

// forwardReports feeds the worker's reports to the slicer until it exits.
// If the slicer no longer knows the worker's lease (it was released or
// reclaimed as the session started), leaseGone is called once.
func (w *worker) forwardReports(slices *allocator, leaseGone func()) {
	called := false
	for r := range w.reports {
		if w.lease != "" {
			r.MemUsed = slices.mem.used(w.lease, w.adm.Device) // the slice's, for all of its sessions
		}
		if !slices.report(w.lease, w.slice, r) && !called {
			called = true
			leaseGone()
		}
	}
}

// sendControl writes queued messages to the worker until it exits.
func (w *worker) sendControl(out *ctlWriter) {
	for m := range w.control {
		if err := out.send(m); err != nil {
			return
		}
	}
}

// ackWait bounds how long a control message waits for its answer; the
// slicer holds its lock meanwhile.
const ackWait = time.Second

// setMemLimit asks the worker to change its limit. A shrink can be
// refused (the tenant uses more), so it waits for the answer; a grow
// cannot, so it is sent without waiting.
func (w *worker) setMemLimit(bytes uint64) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil // the session ended; nothing holds the slice
	}
	w.seq++
	m := setMemLimitMsg{Seq: w.seq, Bytes: bytes}
	if bytes >= w.report.MemLimit && w.report.MemLimit != 0 {
		select {
		case w.control <- m:
			w.mu.Unlock()
			return nil
		default:
			w.mu.Unlock()
			return errors.New("worker control queue full")
		}
	}
	ack := make(chan string, 1)
	if w.acks == nil {
		w.acks = map[uint64]chan string{}
	}
	w.acks[m.Seq] = ack
	select {
	case w.control <- m:
	default:
		delete(w.acks, m.Seq)
		w.mu.Unlock()
		return errors.New("worker control queue full")
	}
	w.mu.Unlock()
	select {
	case e := <-ack:
		if e != "" {
			return errors.New(e)
		}
		return nil
	case <-time.After(ackWait):
		w.mu.Lock()
		delete(w.acks, m.Seq)
		w.mu.Unlock()
		return fmt.Errorf("worker %d did not answer within %v", w.pid, ackWait)
	}
}

// SetMemLimit implements slicer.Control: it changes the memory limit of
// the sessions in a slice, in place, through their workers, and returns
// a worker's refusal (the tenant uses more), which the slicer keeps
// pending and retries.
func (s *workerSet) SetMemLimit(slice slicer.SliceID, bytes uint64) error {
	s.mu.Lock()
	var ws []*worker
	for _, w := range s.workers {
		if w.slice == string(slice) {
			ws = append(ws, w)
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, w := range ws {
		if err := w.setMemLimit(bytes); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// SetShare implements slicer.Control: the slice's arbiter weight changes at
// once; its next grants follow it.
func (s *workerSet) SetShare(slice slicer.SliceID, share float64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	devs := map[int]bool{}
	for _, w := range s.workers {
		if w.slice == string(slice) && w.ar != nil {
			w.ar.SetShare(w.slice, max(share, 0.01))
		}
		if w.slice == string(slice) && w.part != nil {
			s.sliceShares[w.slice] = share
			devs[w.adm.Device] = true
		}
	}
	for dev := range devs {
		s.replanLocked(dev, nil)
	}
	return nil
}

// sliceBusy reports whether another worker still runs in w's slice.
func (s *workerSet) sliceBusy(w *worker) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sliceBusyLocked(w)
}

// sliceBusyLocked is sliceBusy with s.mu held.
func (s *workerSet) sliceBusyLocked(w *worker) bool {
	for _, o := range s.workers {
		if o != w && o.slice == w.slice {
			return true
		}
	}
	return false
}

// acquire asks the arbiter for a grant for w and sends it when it comes.
// While an ask is outstanding a second one fails, and the grant on its
// way serves both.
func (w *worker) acquire() {
	if w.ar == nil {
		return
	}
	_ = w.ar.AskYield(w.slice, 0, func(g slicer.Grant, err error) {
		if err != nil {
			return
		}
		w.mu.Lock()
		if w.grants == nil {
			w.grants = map[uint64]slicer.Grant{}
		}
		w.grants[g.ID] = g
		closed := w.closed
		sent := false
		if !closed {
			select {
			case w.control <- grantMsg{ID: g.ID, Budget: g.Budget}:
				sent = true
			default:
			}
		}
		if !sent {
			delete(w.grants, g.ID)
		}
		w.mu.Unlock()
		if !sent {
			w.ar.Report(g, 0)
		}
	}, func(g slicer.Grant) {
		w.tell(yieldMsg{Grant: g.ID, Budget: g.Budget})
	})
}

// tell sends m to the worker unless its control queue is full or closed;
// the messages it carries this way only hurry the worker along.
func (w *worker) tell(m ctlMsg) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	select {
	case w.control <- m:
	default:
	}
}

// renew charges the GPU time spent so far under a grant and, while no one
// waits for the GPU, extends it in place; otherwise the worker is told to
// yield, with what is left of the grant.
func (w *worker) renew(m renewMsg) {
	w.mu.Lock()
	g, ok := w.grants[m.Grant]
	w.mu.Unlock()
	if !ok {
		return
	}
	g, extended, err := w.ar.Renew(g, m.Used)
	if err != nil {
		return
	}
	if !extended {
		w.tell(yieldMsg{Grant: g.ID, Budget: g.Budget})
		return
	}
	w.mu.Lock()
	if _, held := w.grants[g.ID]; held {
		w.grants[g.ID] = g
	}
	w.mu.Unlock()
	w.tell(grantMsg{ID: g.ID, Budget: g.Budget})
}

// used returns a grant with the GPU time spent.
func (w *worker) used(m usedMsg) {
	w.mu.Lock()
	g, ok := w.grants[m.Grant]
	delete(w.grants, m.Grant)
	w.mu.Unlock()
	if ok {
		w.ar.Report(g, m.Used)
	}
}

// shares returns the achieved compute share of each slice with a worker.
func (s *workerSet) shares() map[string]float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]float64{}
	for _, w := range s.workers {
		w.mu.Lock()
		out[w.slice] += w.share
		w.mu.Unlock()
	}
	return out
}

// gpuTimeByTenant returns each tenant's GPU time so far, as its worker
// last reported it (a tenant with several workers: their sum, as of the
// latest).
func (s *workerSet) gpuTimeByTenant() map[string]GPUTime {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]GPUTime{}
	for _, w := range s.workers {
		w.mu.Lock()
		r := out[w.adm.Tenant.ID]
		r.Busy += w.report.Busy
		if w.at.After(r.At) {
			r.At = w.at
		}
		out[w.adm.Tenant.ID] = r
		w.mu.Unlock()
	}
	return out
}

// endLease stops the workers serving a lease and returns once every one
// of them is gone, so that its slices can be handed out again.
func (s *workerSet) endLease(lease string) {
	for _, w := range s.end(func(w *worker) bool { return w.lease == lease }) {
		<-w.gone
	}
}

// end stops the workers that match and returns them.
func (s *workerSet) end(match func(*worker) bool) []*worker {
	s.mu.Lock()
	var ws []*worker
	for _, w := range s.workers {
		if match(w) {
			ws = append(ws, w)
		}
	}
	s.mu.Unlock()
	for _, w := range ws {
		s.stop(w)
	}
	return ws
}

// sessions lists the sessions running in workers.
func (s *workerSet) sessions() []transport.SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]transport.SessionInfo, 0, len(s.workers))
	for _, w := range s.workers {
		w.mu.Lock()
		r := w.report
		w.mu.Unlock()
		out = append(out, transport.SessionInfo{
			ID: uint64(w.pid), Tenant: w.adm.Tenant.ID, Device: w.adm.Device, Transport: w.via, Peer: w.peer,
			Started: w.started, Calls: r.Calls, Errors: r.Errors, BytesIn: r.BytesIn, BytesOut: r.BytesOut, MemUsed: r.MemUsed, Worker: w.pid,
			Lease: w.lease, PID: w.adm.PID, Busy: r.Busy,
		})
	}
	return out
}

// closeTenant ends every worker of a tenant and returns how many there
// were.
func (s *workerSet) closeTenant(id string) int {
	return len(s.end(func(w *worker) bool { return w.adm.Tenant.ID == id }))
}

var descSessionsRefused = prometheus.NewDesc("kerf_tenant_sessions_refused_total",
	"Sessions refused at their hello because the tenant or its lease held as many as tenants.limits allows, by reason (tenant_cap, lease_cap).",
	[]string{"tenant", "reason"}, nil)

// refusalCollector serves the worker set's refusals as a metric.
type refusalCollector struct{ s *workerSet }

func (c refusalCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descSessionsRefused }

func (c refusalCollector) Collect(ch chan<- prometheus.Metric) {
	for r, n := range c.s.refusals() {
		ch <- prometheus.MustNewConstMetric(descSessionsRefused, prometheus.CounterValue, float64(n), r.tenant, r.reason)
	}
}
