package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/gpu/cuda"
	"github.com/kerf-edge/kerf/internal/kerfenv"
	"github.com/kerf-edge/kerf/transport"
)

// Each tenant session runs in its own worker process: kerfd re-executes
// itself with workerEnv set, hands over the tenant's stream and talks to
// the worker over a control socket. A tenant whose kernel or backend
// faults takes down its worker only.
//
// Descriptors passed to a worker (exec.Cmd.ExtraFiles):
//
//	3  control socket: the control protocol (control.go)
//	4  the tenant stream: the tenant's own Unix socket, or one end of a
//	   socket pair that kerfd relays to a QUIC stream
//	5  the shared-memory ring (local sessions only)
const workerEnv = kerfenv.Worker

const (
	fdControl = 3
	fdStream  = 4
	fdShm     = 5
)

// reportEvery paces worker reports.
const reportEvery = 250 * time.Millisecond

// IsWorker reports whether this process was started as a tenant worker.
func IsWorker() bool { return os.Getenv(workerEnv) == "1" }

// RunWorker serves the one session kerfd handed over, and returns the
// process exit code. kerfd's main (and test binaries) call it first thing
// when IsWorker.
func RunWorker() int {
	if err := runWorker(); err != nil {
		slog.New(slog.NewTextHandler(os.Stderr, nil)).Error("worker failed", "worker", os.Getpid(), "err", err)
		return 1
	}
	return 0
}

func runWorker() error {
	if err := confineSelf(); err != nil {
		return err
	}
	ctrlFile := os.NewFile(fdControl, "control")
	ctrl, err := net.FileConn(ctrlFile)
	ctrlFile.Close()
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	defer ctrl.Close()
	in := newCtlReader(ctrl, fromKerfd)
	first, err := in.read()
	if err != nil {
		return fmt.Errorf("reading spec: %w", err)
	}
	spec, ok := first.(workerSpec)
	if !ok {
		return fmt.Errorf("control socket: message type %d before the spec", first.ctlType())
	}
	if err := applyLimits(spec.Limits); err != nil {
		return err
	}
	log := spec.Config.Logger().With("worker", os.Getpid())
	out := newCtlWriter(ctrl)
	hold := gateHold
	if spec.Config.Slicer.ShareOverlapBelow > 0 {
		hold = gateHoldOverlap
	}
	gate := newShareGate(out.send, hold)
	var pace gpu.Gate = gate
	if spec.Config.Slicer.SharesUnenforced {
		pace = nil
	}
	var sms *smWorker
	if spec.SMPartition != nil && pace != nil {
		sms = &smWorker{gate: pace, log: log}
		pace = sms
	}
	backend, err := workerBackend(spec.Config, pace)
	if err != nil {
		return err
	}
	if sms != nil {
		sms.backend, _ = backend.(*cuda.Backend)
		sms.apply(*spec.SMPartition)
	}
	leaseMem := newCtlLeaseMemory(out.send)
	srv := &transport.Server{Backend: backend, Log: log,
		LeaseMemory: func(transport.Admission) transport.LeaseMemory { return leaseMem }}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	done := make(chan struct{})
	go sendReports(out, srv, done)
	defer close(done)

	// Messages from kerfd until it goes away, which ends the session.
	go func() {
		defer stop()
		for {
			m, err := in.read()
			if err != nil {
				if errors.Is(err, errCtlProtocol) {
					log.Error("control socket", "err", err)
				}
				return
			}
			switch m := m.(type) {
			case grantMsg:
				gate.granted(m)
			case yieldMsg:
				gate.yield(m)
			case reservedMsg:
				leaseMem.reserved(m)
			case smPartitionMsg:
				if sms != nil {
					sms.apply(m)
				}
			case setMemLimitMsg:
				ack := ackMsg{Seq: m.Seq}
				if err := srv.SetMemLimit(m.Bytes); err != nil {
					log.Warn("memory limit not changed", "bytes", m.Bytes, "err", err)
					ack.Err = err.Error()
				}
				out.send(ack)
			default:
				log.Warn("unexpected control message", "type", m.ctlType())
			}
		}
	}()

	stream := os.NewFile(fdStream, "stream")
	if spec.Transport == "unix" {
		return srv.ServeLocalFiles(ctx, stream, os.NewFile(fdShm, "shm"), spec.Admission, spec.Prefix, spec.Peer)
	}
	conn, err := net.FileConn(stream)
	stream.Close()
	if err != nil {
		return err
	}
	srv.ServeAdmitted(ctx, conn, transport.Peer{Transport: spec.Transport, Addr: spec.Peer}, spec.Admission, spec.Prefix)
	return nil
}

// sendReports sends the session's figures to kerfd until done.
func sendReports(out *ctlWriter, srv *transport.Server, done <-chan struct{}) {
	send := func() error {
		var r workerReport
		for _, s := range srv.Sessions() {
			r = workerReport{Calls: s.Calls, Errors: s.Errors, BytesIn: s.BytesIn, BytesOut: s.BytesOut, MemUsed: s.MemUsed, MemLimit: s.MemLimit, Busy: s.Busy}
		}
		return out.send(r)
	}
	t := time.NewTicker(reportEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := send(); err != nil && !errors.Is(err, net.ErrClosed) {
				return
			}
		case <-done:
			return
		}
	}
}
