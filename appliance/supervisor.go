package appliance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kerf-edge/kerf/slicer"
	"github.com/kerf-edge/kerf/transport"
)

// supervisor starts and watches one worker process per tenant session.
type supervisor struct {
	// workerCfg is kerfd's configuration with the backend it settled on,
	// so that workers skip discovery.
	workerCfg Config
	log       *slog.Logger
	exe       string

	// node, when set, names each worker's slice and takes its reports.
	node *node

	mu      sync.Mutex
	workers map[int]*worker
}

var _ slicer.Control = (*supervisor)(nil)

// worker is a running tenant worker, as kerfd sees it.
type worker struct {
	pid     int
	adm     transport.Admission
	via     string
	peer    string
	started time.Time
	cmd     *exec.Cmd

	lease   string
	slice   string            // the slicer slice the session runs in
	control chan ctlMsg       // setMemLimit and grant messages to the worker, in order
	reports chan workerReport // the latest report, for the slicer

	mu     sync.Mutex
	report workerReport
	at     time.Time               // when report arrived
	share  float64                 // achieved compute share: GPU time over wall time, smoothed
	closed bool                    // control is closed: the worker exited
	grants map[uint64]slicer.Grant // out with the worker, by ID
	seq    uint64
	acks   map[uint64]chan string // answers awaited, by sequence number
}

func newSupervisor(cfg Config, kind string, log *slog.Logger) (*supervisor, error) {
	if IsWorker() {
		// A binary re-executed as a worker is starting an appliance instead
		// of serving: a test binary without the hook. Refuse rather than
		// recurse.
		return nil, errors.New("a worker process must not start workers: a test that starts kerfd needs `if appliance.IsWorker() { os.Exit(appliance.RunWorker()) }` in its TestMain")
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding kerfd's executable for workers: %w", err)
	}
	cfg.GPU.Backend = kind
	return &supervisor{workerCfg: cfg, log: log, exe: exe, workers: map[int]*worker{}}, nil
}

// socketPair returns a connected pair: one end as a net.Conn for kerfd,
// the other as a file for the worker.
func socketPair() (net.Conn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	ours := os.NewFile(uintptr(fds[0]), "kerfd-end")
	defer ours.Close()
	conn, err := net.FileConn(ours)
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, err
	}
	return conn, os.NewFile(uintptr(fds[1]), "worker-end"), nil
}

// handoff runs an admitted session in a new worker process and returns
// when the worker has exited. It implements transport.Handoff.
func (s *supervisor) handoff(ctx context.Context, rw io.ReadWriteCloser, peer transport.Peer, adm transport.Admission, buffered []byte) {
	log := s.log.With("tenant", adm.Tenant.ID, "transport", peer.Transport, "peer", peer.Addr)
	defer rw.Close()
	ctrl, ctrlFile, err := socketPair()
	if err != nil {
		log.Error("no control socket for a worker", "err", err)
		return
	}
	defer ctrl.Close()
	files := []*os.File{ctrlFile}
	var relay net.Conn
	sock, shm, local, err := peer.LocalFiles()
	switch {
	case err != nil:
		log.Error("handing over a local session", "err", err)
		ctrlFile.Close()
		return
	case local:
		files = append(files, sock, shm)
	default:
		var end *os.File
		if relay, end, err = socketPair(); err != nil {
			log.Error("no stream socket for a worker", "err", err)
			ctrlFile.Close()
			return
		}
		defer relay.Close()
		files = append(files, end)
	}
	cmd := exec.Command(s.exe)
	cmd.Env = append(os.Environ(), workerEnv+"=1")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.ExtraFiles = files
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	for _, f := range files {
		f.Close() // the worker has its copies
	}
	if err != nil {
		log.Error("starting a worker", "err", err)
		return
	}
	if local {
		rw.Close() // the worker owns the tenant's socket now
	}
	w := &worker{pid: cmd.Process.Pid, adm: adm, via: peer.Transport, peer: peer.Addr, started: time.Now(), cmd: cmd,
		lease: adm.Lease, control: make(chan ctlMsg, 16), reports: make(chan workerReport, 1)}
	if s.node != nil && adm.Lease != "" {
		w.slice = s.node.sliceOf(adm.Lease, adm.Device)
	}
	if ar := s.arbiter(w); ar != nil {
		ar.SetShare(w.slice, max(s.node.sliceShare(w.slice), 0.01))
	}
	s.mu.Lock()
	s.workers[w.pid] = w
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.workers, w.pid)
		s.mu.Unlock()
	}()
	log = log.With("worker", w.pid)
	log.Info("session handed to worker", "device", adm.Device, "memLimit", adm.MemLimit)

	out := newCtlWriter(ctrl)
	spec := workerSpec{Config: s.workerCfg, Admission: adm, Prefix: buffered, Transport: peer.Transport, Peer: peer.Addr}
	if err := out.send(spec); err != nil {
		log.Error("sending the worker its spec", "err", err)
		cmd.Process.Kill()
	}
	reportsDone := make(chan struct{})
	go func() {
		defer close(reportsDone)
		if err := w.readReports(ctrl, s.node); err != nil {
			log.Error("worker broke the control protocol; stopping it", "err", err)
			cmd.Process.Kill()
		}
	}()
	if s.node != nil {
		go w.forwardReports(s.node)
	}
	go w.sendControl(out)
	if relay != nil {
		go func() {
			io.Copy(relay, rw)
			relay.(*net.UnixConn).CloseWrite()
		}()
		go func() {
			io.Copy(rw, relay)
			rw.Close()
		}()
	}
	stop := context.AfterFunc(ctx, func() { cmd.Process.Signal(syscall.SIGTERM) })
	defer stop()
	err = cmd.Wait()
	ctrl.Close()
	<-reportsDone
	close(w.reports)
	if ar := s.arbiter(w); ar != nil {
		w.mu.Lock()
		held := w.grants
		w.grants = nil
		w.mu.Unlock()
		for _, g := range held {
			ar.Report(g, 0) // the worker is gone; its grants go back
		}
		if !s.sliceBusy(w) {
			ar.Remove(w.slice)
		}
	}
	w.mu.Lock()
	close(w.control)
	w.closed = true
	final := w.report
	w.mu.Unlock()
	if s.node != nil {
		s.node.ended(adm.Tenant.ID, final)
	}
	switch {
	case err == nil:
		log.Info("worker finished")
	case ctx.Err() != nil:
		log.Info("worker stopped with kerfd", "status", err)
	default:
		// Only this tenant's session ends; its stream closes with the
		// worker, and its memory went with the process.
		log.Error("tenant worker crashed; its session is closed", "status", err)
	}
}

// readReports handles the worker's messages until its control socket
// closes. It returns an error only for a message that breaks the
// protocol.
func (w *worker) readReports(ctrl net.Conn, n *node) error {
	in := newCtlReader(ctrl, fromWorker)
	for {
		m, err := in.read()
		if errors.Is(err, errCtlProtocol) {
			return err
		}
		if err != nil {
			return nil
		}
		var r workerReport
		switch m := m.(type) {
		case acquireMsg:
			w.acquire(n)
			continue
		case usedMsg:
			w.used(n, m)
			continue
		case ackMsg:
			w.mu.Lock()
			if c := w.acks[m.Seq]; c != nil {
				c <- m.Err
				delete(w.acks, m.Seq)
			}
			w.mu.Unlock()
			continue
		case workerReport:
			r = m
		}
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
		if n != nil {
			// The slicer may answer a report with a control message whose
			// ack this goroutine must read: hand the report over, latest
			// first, rather than call into the slicer from here.
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
	}
}

// forwardReports feeds the worker's reports to the slicer until it exits.
func (w *worker) forwardReports(n *node) {
	for r := range w.reports {
		n.report(w.lease, w.slice, r)
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
func (s *supervisor) SetMemLimit(slice slicer.SliceID, bytes uint64) error {
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
func (s *supervisor) SetShare(slice slicer.SliceID, share float64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.workers {
		if w.slice == string(slice) {
			if ar := s.arbiterLocked(w); ar != nil {
				ar.SetShare(w.slice, max(share, 0.01))
			}
		}
	}
	return nil
}

// arbiter is the share arbiter of w's GPU, nil when w has no slice.
func (s *supervisor) arbiter(w *worker) *slicer.Arbiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.arbiterLocked(w)
}

func (s *supervisor) arbiterLocked(w *worker) *slicer.Arbiter {
	if s.node == nil || w.slice == "" {
		return nil
	}
	return s.node.shares.byGPU[w.adm.Device]
}

// sliceBusy reports whether another worker still runs in w's slice.
func (s *supervisor) sliceBusy(w *worker) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
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
func (w *worker) acquire(n *node) {
	if n == nil || w.slice == "" {
		return
	}
	ar := n.shares.byGPU[w.adm.Device]
	_ = ar.Ask(w.slice, 0, func(g slicer.Grant, err error) {
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
			ar.Report(g, 0)
		}
	})
}

// used returns a grant with the GPU time spent.
func (w *worker) used(n *node, m usedMsg) {
	if n == nil {
		return
	}
	w.mu.Lock()
	g, ok := w.grants[m.Grant]
	delete(w.grants, m.Grant)
	w.mu.Unlock()
	if ok {
		n.shares.byGPU[w.adm.Device].Report(g, m.Used)
	}
}

// shares returns the achieved compute share of each slice with a worker.
func (s *supervisor) shares() map[string]float64 {
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

// busyReport is a tenant's GPU time so far, as of a report.
type busyReport struct {
	busy time.Duration
	at   time.Time // when kerfd received the report
}

// busyByTenant returns each tenant's GPU time so far, as its worker last
// reported it (a tenant with several workers: their sum, as of the
// latest).
func (s *supervisor) busyByTenant() map[string]busyReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]busyReport{}
	for _, w := range s.workers {
		w.mu.Lock()
		r := out[w.adm.Tenant.ID]
		r.busy += w.report.Busy
		if w.at.After(r.at) {
			r.at = w.at
		}
		out[w.adm.Tenant.ID] = r
		w.mu.Unlock()
	}
	return out
}

// closeLease ends the workers serving a lease.
func (s *supervisor) closeLease(lease string) int {
	return s.terminate(func(w *worker) bool { return w.lease == lease })
}

// terminate sends SIGTERM to the workers that match and returns how many.
func (s *supervisor) terminate(match func(*worker) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, w := range s.workers {
		if match(w) {
			w.cmd.Process.Signal(syscall.SIGTERM)
			n++
		}
	}
	return n
}

// sessions lists the sessions running in workers.
func (s *supervisor) sessions() []transport.SessionInfo {
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
		})
	}
	return out
}

// closeTenant ends every worker of a tenant.
func (s *supervisor) closeTenant(id string) int {
	return s.terminate(func(w *worker) bool { return w.adm.Tenant.ID == id })
}
