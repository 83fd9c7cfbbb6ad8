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
	"time"

	"golang.org/x/sys/unix"

	"github.com/kerf-edge/kerf/internal/connguard"
	"github.com/kerf-edge/kerf/transport"
)

// supervisor starts one worker process per tenant session and watches it
// until it exits. The live workers are kept in a workerSet.
type supervisor struct {
	// workerCfg is kerfd's configuration with the backend it settled on,
	// so that workers skip discovery.
	workerCfg Config
	log       *slog.Logger
	exe       string
	jail      workerJail // how workers are confined

	workers *workerSet
	slices  *allocator // names each worker's slice and takes its reports
	shares  *arbiters  // pace each GPU's kernels
	// refusedLog logs sessions refused at a cap, which a tenant could
	// repeat without end.
	refusedLog *connguard.LogLimiter
}

func newSupervisor(cfg Config, kind string, jail workerJail, log *slog.Logger, workers *workerSet, slices *allocator, shares *arbiters) (*supervisor, error) {
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
	refused := connguard.NewLogLimiter(log, slog.LevelWarn, "refused a session over a cap", refusalLogInterval)
	return &supervisor{workerCfg: cfg, log: log, exe: exe, jail: jail, workers: workers, slices: slices, shares: shares, refusedLog: refused}, nil
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

// workerProc is a worker process and kerfd's ends of its sockets.
type workerProc struct {
	cmd   *exec.Cmd
	ctrl  net.Conn
	relay net.Conn // the tenant stream's other end; nil when the worker has the tenant's own socket
	// tenant is kerfd's copy of the tenant's own socket, watched for the
	// tenant hanging up; -1 with a relay.
	tenant int
}

// start execs a worker with the descriptors worker.go describes. The
// caller closes ctrl and relay.
func (s *supervisor) start(peer transport.Peer) (workerProc, error) {
	st := workerProc{tenant: -1}
	ctrl, ctrlFile, err := socketPair()
	if err != nil {
		return st, fmt.Errorf("control socket: %w", err)
	}
	files := []*os.File{ctrlFile}
	defer func() {
		for _, f := range files {
			f.Close() // the worker has its copies
		}
	}()
	sock, shm, local, err := peer.LocalFiles()
	switch {
	case err != nil:
		ctrl.Close()
		return st, fmt.Errorf("handing over a local session: %w", err)
	case local:
		files = append(files, sock, shm)
		st.tenant, err = unix.FcntlInt(sock.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			ctrl.Close()
			return st, fmt.Errorf("keeping a copy of the tenant's socket: %w", err)
		}
	default:
		relay, end, err := socketPair()
		if err != nil {
			ctrl.Close()
			return st, fmt.Errorf("stream socket: %w", err)
		}
		files = append(files, end)
		st.relay = relay
	}
	cmd := s.jail.command(s.exe, files)
	if err := cmd.Start(); err != nil {
		ctrl.Close()
		if st.relay != nil {
			st.relay.Close()
		}
		if st.tenant >= 0 {
			unix.Close(st.tenant)
		}
		return st, fmt.Errorf("starting a worker: %w", err)
	}
	st.cmd, st.ctrl = cmd, ctrl
	return st, nil
}

// handoff runs an admitted session in a new worker process and returns
// when the worker has exited. It implements transport.Handoff.
//
// The worker ends with its tenant: when the tenant's stream ends (the
// relay sees either side finish, or the tenant hangs up its own socket),
// when ctx ends, or when the worker set ends it (a lease released or
// reclaimed, a token revoked), the worker is told to stop (SIGTERM, which
// aborts its kernels) and killed if it is still there after the grace.
func (s *supervisor) handoff(ctx context.Context, rw io.ReadWriteCloser, peer transport.Peer, adm transport.Admission, buffered []byte) {
	log := s.log.With("tenant", adm.Tenant.ID, "transport", peer.Transport, "peer", peer.Addr)
	defer rw.Close()
	release, err := s.workers.reserve(adm)
	if err != nil {
		s.refusedLog.Log("tenant", adm.Tenant.ID, "lease", adm.Lease, "reason", err)
		transport.RefuseAdmitted(rw, err)
		return
	}
	defer release() // after the worker has gone (deferred below)
	proc, err := s.start(peer)
	if err != nil {
		log.Error("no worker for a session", "err", err)
		return
	}
	defer proc.ctrl.Close()
	if proc.relay == nil {
		rw.Close() // the worker owns the tenant's socket now
	}
	w := s.newWorker(proc.cmd, peer, adm)
	s.workers.add(w)
	defer s.workers.finish(w)
	log = log.With("worker", w.pid)
	log.Info("session handed to worker", "device", adm.Device, "memLimit", adm.MemLimit)

	out := newCtlWriter(proc.ctrl)
	spec := workerSpec{Config: s.workerCfg, Admission: adm, Prefix: buffered, Transport: peer.Transport, Peer: peer.Addr, Limits: s.jail.limits,
		SMPartition: s.workers.partition(w, s.slices.sliceShare(w.slice))}
	if err := out.send(spec); err != nil {
		log.Error("sending the worker its spec", "err", err)
		proc.cmd.Process.Kill()
	}
	reportsDone := make(chan struct{})
	go func() {
		defer close(reportsDone)
		if err := w.readReports(proc.ctrl); err != nil {
			log.Error("worker broke the control protocol; stopping it", "err", err)
			proc.cmd.Process.Kill()
		}
	}()
	go w.forwardReports(s.slices, func() {
		log.Info("the session's lease is gone; stopping its worker")
		s.workers.stop(w)
	})
	go w.sendControl(out)
	exited := make(chan struct{})
	if proc.relay != nil {
		relayStream(rw, proc.relay, func() { s.workers.stop(w) })
	} else if err := watchHangup(proc.tenant, exited, func() { s.workers.stop(w) }); err != nil {
		log.Warn("not watching the tenant's socket; its worker ends when it notices", "err", err)
	}
	stop := context.AfterFunc(ctx, func() { s.workers.stop(w) })
	defer stop()
	err = proc.cmd.Wait()
	close(exited)
	proc.ctrl.Close()
	<-reportsDone
	close(w.reports)
	s.workers.exited(w)
	switch {
	case err == nil:
		log.Info("worker finished")
	case w.stopping():
		log.Info("worker stopped", "status", err, "took", time.Since(w.stopAt()).Round(time.Millisecond))
	default:
		// Only this tenant's session ends; its stream closes with the
		// worker, and its memory went with the process.
		log.Error("tenant worker crashed; its session is closed", "status", err)
	}
}

// relayStream copies between the tenant's stream and the worker's end of
// the relay. As soon as either direction ends, both are closed, so a
// worker writing to a tenant that has gone gets an error instead of
// blocking, and ended is called.
func relayStream(tenant io.ReadWriteCloser, worker net.Conn, ended func()) {
	var once sync.Once
	end := func() {
		once.Do(func() {
			worker.Close()
			tenant.Close()
			ended()
		})
	}
	go func() {
		io.Copy(worker, tenant)
		end()
	}()
	go func() {
		io.Copy(tenant, worker)
		end()
	}()
}

// watchHangup calls hungUp once the peer of the Unix socket sock hangs
// up, unless done is closed first; it takes ownership of sock. It polls
// for the hang-up only, so it reads nothing the worker should, and it
// holds one thread, blocked in poll(2), per local worker.
func watchHangup(sock int, done <-chan struct{}, hungUp func()) error {
	wake, woken, err := os.Pipe()
	if err != nil {
		unix.Close(sock)
		return err
	}
	go func() {
		<-done
		woken.Close() // wakes the poll below with POLLHUP
	}()
	wakeFd := int(wake.Fd())
	go func() {
		defer unix.Close(sock)
		defer wake.Close()
		fds := []unix.PollFd{{Fd: int32(sock), Events: unix.POLLRDHUP}, {Fd: int32(wakeFd), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, -1)
			if err != nil && err != unix.EINTR {
				return
			}
			if fds[1].Revents != 0 {
				return
			}
			if fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
				hungUp()
				fds[0].Fd = -1 // wait for done alone
			}
		}
	}()
	return nil
}

// newWorker describes a started worker: its slice, when the session runs
// in a lease, and that slice's arbiter, which learns its share now.
func (s *supervisor) newWorker(cmd *exec.Cmd, peer transport.Peer, adm transport.Admission) *worker {
	w := &worker{pid: cmd.Process.Pid, adm: adm, via: peer.Transport, peer: peer.Addr, started: time.Now(), cmd: cmd,
		lease: adm.Lease, control: make(chan ctlMsg, 16), reports: make(chan workerReport, 1), gone: make(chan struct{})}
	if adm.Lease != "" {
		w.slice = s.slices.sliceOf(adm.Lease, adm.Device)
		w.mem = s.slices.mem.open(adm)
	}
	if w.slice != "" {
		w.ar = s.shares.byGPU[adm.Device]
	}
	if w.ar != nil {
		w.ar.SetShare(w.slice, max(s.slices.sliceShare(w.slice), 0.01))
	}
	return w
}
