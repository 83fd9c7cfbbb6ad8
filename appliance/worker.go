package appliance

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

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
//	3  control socket: kerfd sends one workerSpec line; the worker sends
//	   workerReport lines
//	4  the tenant stream: the tenant's own Unix socket, or one end of a
//	   socket pair that kerfd relays to a QUIC stream
//	5  the shared-memory ring (local sessions only)
const workerEnv = kerfenv.Worker

const (
	fdControl = 3
	fdStream  = 4
	fdShm     = 5
)

// workerSpec tells a worker what to serve.
type workerSpec struct {
	Config    Config
	Admission transport.Admission
	Prefix    []byte
	Transport string
	Peer      string
}

// workerReport is a worker's periodic account of its session, or (with
// Op "ack") its answer to a control message.
type workerReport struct {
	Op       string `json:"op,omitempty"`
	Seq      uint64 `json:"seq,omitempty"`
	Err      string `json:"err,omitempty"`
	Calls    uint64 `json:"calls"`
	Errors   uint64 `json:"errors"`
	BytesIn  uint64 `json:"bytesIn"`
	BytesOut uint64 `json:"bytesOut"`
	MemUsed  uint64 `json:"memUsed"`
	MemLimit uint64 `json:"memLimit"`
	BusyNs   int64  `json:"busyNs"`           // GPU time the session's kernels took
	UsedNs   int64  `json:"usedNs,omitempty"` // with Op "used": a grant's time spent
}

// ctrlMsg is a message from kerfd to a worker, after the spec.
type ctrlMsg struct {
	Op       string `json:"op"`
	Seq      uint64 `json:"seq"`
	Bytes    uint64 `json:"bytes,omitempty"`
	BudgetNs int64  `json:"budgetNs,omitempty"`
}

// opAck answers a control message.
const opAck = "ack"

// opSetMemLimit changes the session's memory limit in place.
const opSetMemLimit = "setMemLimit"

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
	ctrlFile := os.NewFile(fdControl, "control")
	ctrl, err := net.FileConn(ctrlFile)
	ctrlFile.Close()
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	defer ctrl.Close()
	in := bufio.NewReaderSize(ctrl, 1<<20)
	line, err := in.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("reading spec: %w", err)
	}
	var spec workerSpec
	if err := json.Unmarshal(line, &spec); err != nil {
		return fmt.Errorf("bad spec: %w", err)
	}
	log := spec.Config.Logger().With("worker", os.Getpid())
	out := &reporter{enc: json.NewEncoder(ctrl)}
	gate := newShareGate(out.send)
	backend, err := workerBackend(spec.Config, gate)
	if err != nil {
		return err
	}
	srv := &transport.Server{Backend: backend, Log: log}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	done := make(chan struct{})
	go out.loop(srv, done)
	defer close(done)

	// Messages from kerfd until it goes away, which ends the session.
	go func() {
		defer stop()
		dec := json.NewDecoder(in)
		for {
			var m ctrlMsg
			if err := dec.Decode(&m); err != nil {
				return
			}
			switch m.Op {
			case opGrant:
				gate.granted(m)
			case opSetMemLimit:
				ack := workerReport{Op: opAck, Seq: m.Seq}
				if err := srv.SetMemLimit(m.Bytes); err != nil {
					log.Warn("memory limit not changed", "bytes", m.Bytes, "err", err)
					ack.Err = err.Error()
				}
				out.send(ack)
			default:
				log.Warn("unknown control message", "op", m.Op)
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

// reporter writes a worker's messages to kerfd, one at a time.
type reporter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (r *reporter) send(m workerReport) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.enc.Encode(m)
}

// loop sends the session's figures to kerfd until done.
func (out *reporter) loop(srv *transport.Server, done <-chan struct{}) {
	send := func() error {
		var r workerReport
		for _, s := range srv.Sessions() {
			r = workerReport{Calls: s.Calls, Errors: s.Errors, BytesIn: s.BytesIn, BytesOut: s.BytesOut, MemUsed: s.MemUsed, MemLimit: s.MemLimit, BusyNs: int64(s.Busy)}
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
