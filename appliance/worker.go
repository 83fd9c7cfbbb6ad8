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
	"syscall"
	"time"

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
const workerEnv = "KERF_WORKER"

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

// workerReport is a worker's periodic account of its session.
type workerReport struct {
	Calls    uint64 `json:"calls"`
	Errors   uint64 `json:"errors"`
	BytesIn  uint64 `json:"bytesIn"`
	BytesOut uint64 `json:"bytesOut"`
	MemUsed  uint64 `json:"memUsed"`
}

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
	line, err := bufio.NewReaderSize(ctrl, 1<<20).ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("reading spec: %w", err)
	}
	var spec workerSpec
	if err := json.Unmarshal(line, &spec); err != nil {
		return fmt.Errorf("bad spec: %w", err)
	}
	log := spec.Config.Logger().With("worker", os.Getpid())
	backend, _, err := newBackend(spec.Config, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	srv := &transport.Server{Backend: backend, Log: log}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// kerfd going away closes the control socket: end the session then.
	go func() {
		var b [1]byte
		ctrl.Read(b[:])
		stop()
	}()
	done := make(chan struct{})
	go reportLoop(ctrl, srv, done)
	defer close(done)

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

// reportLoop sends the session's figures to kerfd until done, then once
// more.
func reportLoop(ctrl net.Conn, srv *transport.Server, done <-chan struct{}) {
	enc := json.NewEncoder(ctrl)
	send := func() error {
		var r workerReport
		for _, s := range srv.Sessions() {
			r = workerReport{Calls: s.Calls, Errors: s.Errors, BytesIn: s.BytesIn, BytesOut: s.BytesOut, MemUsed: s.MemUsed}
		}
		return enc.Encode(r)
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
