package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/internal/connguard"
	"github.com/kerf-edge/kerf/transport/internal/wire"
)

// HandshakeTimeout bounds how long a new stream may take to say hello.
const HandshakeTimeout = 10 * time.Second

// Limits bound what a listener holds for connections that have not yet
// authenticated (said a hello with a valid token), so that a flood of idle
// connections cannot take kerfd's descriptors or memory from tenants. Over
// a cap, a new connection is closed at once.
type Limits struct {
	// Unauthenticated caps them per listener (Unix, QUIC); 0: no cap.
	Unauthenticated int
	// PerPeer caps them per peer: a uid on the Unix socket, an IP address
	// on QUIC; 0: no cap.
	PerPeer int
}

// RefusalLogInterval is how often a listener logs that it refuses
// connections or that handshakes fail: the first at once, then one
// summary with a count per interval.
const RefusalLogInterval = 10 * time.Second

// Server runs tenant sessions against a backend.
type Server struct {
	Backend gpu.Backend
	Auth    auth.Authenticator
	Log     *slog.Logger
	// HandshakeTimeout bounds how long a new stream may take to say
	// hello; 0 means the package default.
	HandshakeTimeout time.Duration
	// Handoff, if set, takes every admitted session instead of this
	// process serving it.
	Handoff Handoff
	// Allocator, if set, reserves a slice for every session: leases held
	// by `kerf run`, or a slice for the session alone.
	Allocator Allocator
	// Limits bound each listener's unauthenticated connections.
	Limits Limits
	// LeaseMemory, if set, gives a session that runs in a lease the
	// account of its slice's memory, which every session of the lease on
	// that device shares. It is called once per session, when it opens.
	LeaseMemory func(adm Admission) LeaseMemory

	nextID   atomic.Uint64
	mu       sync.Mutex
	sessions map[uint64]*session
	// leaseStreams are the streams holding a lease, by the lease's ID.
	leaseStreams map[*session]string
	wg           sync.WaitGroup

	// Each listener's guard, and the logs that a flood would fill, each
	// written as at most one line per RefusalLogInterval.
	guardsOnce      sync.Once
	unixGuard       *connguard.Guard
	quicGuard       *connguard.Guard
	handshakeFailed *connguard.LogLimiter
	acceptFailed    *connguard.LogLimiter
	// moduleLoadFailed logs the modules tenants' sessions fail to load,
	// which a tenant could repeat without end.
	moduleLoadFailed *connguard.LogLimiter
	logLimiters      []*connguard.LogLimiter
}

// guards makes the listeners' guards and rate-limited logs on first use.
func (s *Server) guards() {
	s.guardsOnce.Do(func() {
		limiter := func(log *slog.Logger, level slog.Level, msg string) *connguard.LogLimiter {
			l := connguard.NewLogLimiter(log, level, msg, RefusalLogInterval)
			s.logLimiters = append(s.logLimiters, l)
			return l
		}
		const refused = "refused an unauthenticated connection"
		s.unixGuard = connguard.New(s.Limits.Unauthenticated, s.Limits.PerPeer,
			limiter(s.logger().With("transport", "unix"), slog.LevelWarn, refused))
		s.quicGuard = connguard.New(s.Limits.Unauthenticated, s.Limits.PerPeer,
			limiter(s.logger().With("transport", "quic"), slog.LevelWarn, refused))
		s.handshakeFailed = limiter(s.logger(), slog.LevelWarn, "handshake failed")
		s.acceptFailed = limiter(s.logger(), slog.LevelError, "accepting a connection")
		s.moduleLoadFailed = limiter(s.logger(), slog.LevelWarn, "module load failed")
	})
}

// ListenerStats counts one listener's unauthenticated connections.
type ListenerStats = connguard.Stats

// ListenerStats returns the Unix and QUIC listeners' counts of
// connections held before authentication and refused.
func (s *Server) ListenerStats() (unix, quic ListenerStats) {
	s.guards()
	return s.unixGuard.Stats(), s.quicGuard.Stats()
}

// SessionInfo is a snapshot of one live session.
type SessionInfo struct {
	ID        uint64
	Tenant    string
	Device    int
	Transport string
	Peer      string
	Started   time.Time
	Calls     uint64
	Errors    uint64
	BytesIn   uint64
	BytesOut  uint64
	MemUsed   uint64
	MemLimit  uint64
	// Busy is the GPU time the session's kernels took, where the backend
	// meters it (gpu.Meter).
	Busy time.Duration
	// Worker is the pid of the process serving the session, when it is
	// not this one.
	Worker int
	// Lease is the lease the session runs in; PID the client's process ID
	// as its hello gave it (0: none given).
	Lease string
	PID   int
}

// Sessions lists the live sessions.
func (s *Server) Sessions() []SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SessionInfo, 0, len(s.sessions))
	for _, ss := range s.sessions {
		out = append(out, ss.info())
	}
	return out
}

// SetMemLimit changes the memory limit of every live session in place (a
// worker process serves one). Shrinking below what a session uses is
// refused for that session.
func (s *Server) SetMemLimit(limit uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, ss := range s.sessions {
		if err := ss.ctx.SetMemLimit(limit); err != nil {
			errs = append(errs, fmt.Errorf("session %d: %w", ss.id, err))
			continue
		}
		ss.openLimit = limit // a context reset keeps it
	}
	return errors.Join(errs...)
}

// CloseTenant ends every session of tenant id, as when its token is
// revoked, and closes the streams holding its leases, which frees them.
func (s *Server) CloseTenant(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ss := range s.sessions {
		if ss.tenant.ID == id {
			ss.closeStream()
			n++
		}
	}
	for ss := range s.leaseStreams {
		if ss.tenant.ID == id {
			ss.closeStream()
			n++
		}
	}
	return n
}

// Wait blocks until every session has ended, then writes the summaries
// of refusals not yet logged.
func (s *Server) Wait() {
	s.wg.Wait()
	s.guards()
	for _, l := range s.logLimiters {
		l.Flush()
	}
}

func (s *Server) logger() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// Admission is a handshake that passed: who the tenant is, which device
// it opens and under what memory limit.
type Admission struct {
	Tenant  auth.Tenant
	Version uint16
	Device  int
	// MemLimit is the effective limit: the smaller of the token's, the
	// client's request and the slice's; 0 means the whole device.
	MemLimit uint64
	// Lease is the slice reservation the session runs in (with an
	// Allocator).
	Lease string
	// PID is the client's process ID, as its hello gives it; 0 if none.
	PID int

	ownLease     bool // the lease was taken for this session alone
	leaseStream  bool // the stream holds a lease rather than a device
	statusStream bool // the stream reports on Lease rather than opening a device
}

// Handoff takes an admitted session away from this process, as kerfd does
// to run each tenant in a worker process. It owns rw from then on;
// buffered holds bytes already read past the hello.
type Handoff func(ctx context.Context, rw io.ReadWriteCloser, peer Peer, adm Admission, buffered []byte)

// ServeStream runs one session on rw until the peer leaves, the stream
// fails or ctx ends: the handshake, then (unless Handoff takes it) the
// calls. It closes rw. Bad input ends only this session, with a logged
// reason; it never affects other sessions.
func (s *Server) ServeStream(ctx context.Context, rw io.ReadWriteCloser, peer Peer) {
	s.serve(ctx, rw, peer, nil, nil)
}

// ServeAdmitted runs a session whose handshake was done elsewhere; prefix
// holds bytes the other side read past the hello.
func (s *Server) ServeAdmitted(ctx context.Context, rw io.ReadWriteCloser, peer Peer, adm Admission, prefix []byte) {
	s.serve(ctx, rw, peer, &adm, prefix)
}

// handshakeBufSize is a stream's read and write buffer until its hello
// authenticates: room for the largest hello, and no more. Lease and
// status streams keep it on both ends: they carry small frames only (a
// larger one is read through a buffer of its own size).
const handshakeBufSize = 4096

func (s *Server) serve(ctx context.Context, rw io.ReadWriteCloser, peer Peer, adm *Admission, prefix []byte) {
	s.wg.Add(1)
	defer s.wg.Done()
	s.guards()
	var r io.Reader = rw
	if len(prefix) > 0 {
		r = io.MultiReader(bytes.NewReader(prefix), rw)
	}
	ss := &session{srv: s, rw: rw, sock: r, peer: peer, started: time.Now(), ended: make(chan struct{})}
	ss.id = s.nextID.Add(1)
	stop := context.AfterFunc(ctx, ss.closeStream)
	defer stop()
	var err error
	admitted := true
	if adm == nil {
		// Until the hello authenticates, the stream has a small buffer
		// and nothing else: no shared memory, no backend context.
		ss.conn = wire.NewConnSize(readWriter(r, rw), handshakeBufSize)
		var a Admission
		a, err = ss.admit()
		admitted = err == nil
		if peer.handshakeDone != nil {
			peer.handshakeDone(admitted)
		}
		if a.ownLease {
			defer s.Allocator.Release(a.Lease)
		}
		if admitted && !a.leaseStream && !a.statusStream && peer.local != nil {
			var release func()
			release, err = ss.offerShm()
			defer release()
		}
		switch {
		case err != nil:
		case a.leaseStream:
			err = ss.serveLease(a.Version)
		case a.statusStream:
			err = ss.serveStatus(a.Lease)
		case s.Handoff != nil:
			if !stop() {
				return // ctx ended during the handshake; closeStream ran
			}
			s.Handoff(ctx, rw, ss.peer, a, ss.conn.TakeBuffered())
			return
		default:
			ss.growConn()
			err = ss.run(a)
		}
	} else {
		ss.conn = wire.NewConn(readWriter(r, rw))
		err = ss.run(*adm)
	}
	ss.closeStream()
	switch {
	case !admitted:
		// A flood of connections that never authenticate ends here:
		// logged as summaries, not a line each.
		s.handshakeFailed.Log("transport", peer.Transport, "peer", peer.Addr, "reason", err)
	case ss.statusOnly && (err == nil || errors.Is(err, io.EOF) || isClosed(err)):
		s.sessionLog(ss).Debug("status stream ended")
	case err == nil || errors.Is(err, io.EOF) || isClosed(err):
		s.sessionLog(ss).Info("session ended", "calls", ss.calls.Load())
	case retried(err):
		s.sessionLog(ss).Debug("allocation refused; the tenant retries", "reason", err)
	default:
		s.sessionLog(ss).Warn("session closed", "reason", err, "calls", ss.calls.Load())
	}
}

func (s *Server) sessionLog(ss *session) *slog.Logger {
	return s.logger().With("session", ss.id, "tenant", ss.tenant.ID, "transport", ss.peer.Transport, "peer", ss.peer.Addr)
}

// growConn gives an admitted session full-size buffers, keeping what the
// handshake's buffer read past the hello.
func (ss *session) growConn() {
	r := ss.sock
	if b := ss.conn.TakeBuffered(); len(b) > 0 {
		r = io.MultiReader(bytes.NewReader(b), r)
	}
	ss.sock = r
	ss.conn = wire.NewConn(readWriter(r, ss.rw))
}

func readWriter(r io.Reader, w io.Writer) io.ReadWriter {
	return struct {
		io.Reader
		io.Writer
	}{r, w}
}

// Peer describes where a stream comes from.
type Peer struct {
	Transport string // "quic", "unix"
	Addr      string
	// Shm is the local path's shared-memory ring, nil elsewhere.
	Shm *shmRing
	// local and shmFD are the local path's socket and ring descriptor,
	// kept so the session can be handed to another process.
	local *net.UnixConn
	shmFD int
	// Deadline sets a read deadline on the stream, if it supports one.
	Deadline func(time.Time) error
	// handshakeDone, if set, learns how the handshake ended: the
	// listener's guard stops counting the connection as unauthenticated.
	handshakeDone func(admitted bool)
}

func (s *Server) register(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions == nil {
		s.sessions = make(map[uint64]*session)
	}
	s.sessions[ss.id] = ss
}

func (s *Server) unregister(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, ss.id)
	close(ss.ended)
}

// protocolError ends a session: the peer broke the protocol.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return "protocol: " + e.msg }

func protoErrorf(format string, args ...any) error {
	return &protocolError{msg: fmt.Sprintf(format, args...)}
}

// admit reads Hello, negotiates the version, authenticates and checks the
// device.
func (ss *session) admit() (Admission, error) {
	if ss.peer.Deadline != nil {
		_ = ss.peer.Deadline(time.Now().Add(ss.srv.handshakeTimeout()))
		defer ss.peer.Deadline(time.Time{})
	}
	h, err := ss.conn.ReadHeader()
	if err != nil {
		return Admission{}, fmt.Errorf("reading hello: %w", err)
	}
	if h.Type != wire.Hello {
		return Admission{}, ss.refuse(abi.ErrInvalidValue, fmt.Sprintf("expected hello, got %s frame", h.Type))
	}
	if h.Len > wire.MaxHello {
		return Admission{}, ss.refuse(abi.ErrInvalidValue, fmt.Sprintf("hello of %d bytes: the limit is %d", h.Len, wire.MaxHello))
	}
	p, err := ss.conn.ReadPayload(h)
	if err != nil {
		return Admission{}, fmt.Errorf("reading hello: %w", err)
	}
	var hello wire.HelloMsg
	if err := hello.Decode(p); err != nil {
		return Admission{}, ss.refuse(abi.ErrInvalidValue, "bad hello: "+abi.Message(err))
	}
	if hello.MaxVersion < abi.MinProtocolVersion || hello.MinVersion > abi.ProtocolVersion || hello.MinVersion > hello.MaxVersion {
		return Admission{}, ss.refuse(abi.ErrSystemDriverMismatch, fmt.Sprintf(
			"protocol version mismatch: client speaks %d..%d, server speaks %d..%d",
			hello.MinVersion, hello.MaxVersion, abi.MinProtocolVersion, abi.ProtocolVersion))
	}
	if ss.srv.Auth == nil {
		return Admission{}, ss.refuse(abi.ErrNotPermitted, "server has no authenticator")
	}
	tenant, err := ss.srv.Auth.Authenticate(hello.Token)
	if err != nil {
		return Admission{}, ss.refuse(abi.ErrNotPermitted, "authentication failed: "+abi.Message(err))
	}
	ss.tenant = tenant
	version := min(hello.MaxVersion, abi.ProtocolVersion)
	if hello.Device == wire.LeaseDevice {
		return Admission{Tenant: tenant, Version: version, leaseStream: true}, nil
	}
	if hello.Device == wire.StatusDevice {
		if hello.Lease == "" {
			return Admission{}, ss.refuse(abi.ErrInvalidValue, "a status stream names no lease")
		}
		return Admission{Tenant: tenant, Version: version, Lease: hello.Lease, statusStream: true}, nil
	}
	devs := ss.srv.Backend.Devices()
	if int64(hello.Device) >= int64(len(devs)) {
		return Admission{}, ss.refuse(abi.ErrInvalidDevice, fmt.Sprintf("device %d does not exist (%d devices)", hello.Device, len(devs)))
	}
	limit := tenant.MemLimit
	if hello.MemLimit != 0 && (limit == 0 || hello.MemLimit < limit) {
		limit = hello.MemLimit
	}
	adm := Admission{Tenant: tenant, Version: version, Device: int(hello.Device), MemLimit: limit, PID: clientPID(hello.Client)}
	if err := ss.admitSlice(&hello, &adm); err != nil {
		return Admission{}, err
	}
	return adm, nil
}

func (s *Server) handshakeTimeout() time.Duration {
	if s.HandshakeTimeout != 0 {
		return s.HandshakeTimeout
	}
	return HandshakeTimeout
}

// open creates the backend context and accepts the session.
func (ss *session) open(adm Admission) error {
	ss.tenant, ss.device, ss.version, ss.lease, ss.pid = adm.Tenant, adm.Device, adm.Version, adm.Lease, adm.PID
	if adm.Lease != "" && ss.srv.LeaseMemory != nil {
		ss.leaseMem = ss.srv.LeaseMemory(adm)
	}
	ss.openLimit = adm.MemLimit
	ctx, err := ss.srv.Backend.Open(adm.Device, adm.MemLimit)
	if err != nil {
		return ss.refuse(abi.ResultOf(err), "opening device: "+abi.Message(err))
	}
	ss.setContext(ctx)
	info := ctx.Device()
	_, total := ctx.MemInfo()
	ack := wire.HelloAckMsg{
		Version: adm.Version, Session: ss.id, Name: info.Name, UUID: info.UUID, TotalMem: total,
		CCMajor: uint32(info.CCMajor), CCMinor: uint32(info.CCMinor), SMs: uint32(info.SMs),
		Emulated: info.Emulated, DriverVersion: uint32(info.DriverVersion),
	}
	if shm := ss.peer.Shm; shm != nil {
		ack.ShmSlots, ack.ShmSlotSize = uint32(shm.slots), uint32(shm.slotSize)
	}
	b, err := ack.Append(ss.out[:0])
	if err != nil {
		return err
	}
	if err := ss.conn.WriteFrame(wire.Header{Type: wire.HelloAck}, b); err != nil {
		return err
	}
	return ss.conn.Flush()
}

// refuse sends a fatal Error frame and returns it as the session's end.
// msg does not repeat the code's name (abi.Message).
func (ss *session) refuse(code abi.Result, msg string) error {
	m := wire.ErrorMsg{Code: code, Message: msg}
	if b, err := m.Append(nil); err == nil {
		_ = ss.conn.WriteFrame(wire.Header{Type: wire.Error}, b)
		_ = ss.conn.Flush()
	}
	return &abi.Error{Code: code, Msg: msg}
}
