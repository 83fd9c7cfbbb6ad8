package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/transport/internal/wire"
)

// Allocator reserves slices of the node's GPUs. The slicer implements it;
// the transport only asks. Errors should be *abi.Error: ErrOutOfMemory
// when there is no capacity now (clients retry with backoff), other codes
// when retrying cannot help.
type Allocator interface {
	// Allocate reserves slices for tenant.
	Allocate(tenant auth.Tenant, req AllocRequest) (Lease, error)
	// Lease returns a live lease of tenant by ID.
	Lease(tenant auth.Tenant, id string) (Lease, error)
	// Release frees a lease's slices. It is called exactly once per lease
	// the transport obtained.
	Release(id string)
}

// AllocRequest asks for Count slices on distinct GPUs, each a Fraction of a
// GPU or Memory bytes (neither: the allocator's default slice).
type AllocRequest struct {
	Count     int
	Fraction  float64
	Memory    uint64
	MinMemory uint64
	Model     string
	// Device pins the slice to one device ordinal (a session that brought
	// no lease); -1 lets the allocator place the slices.
	Device int
}

// Lease is a reservation of slices, one per device.
type Lease struct {
	ID     string
	Slices []LeaseSlice
}

// LeaseSlice is one reserved slice.
type LeaseSlice struct {
	Device int
	Memory uint64
}

// slice returns the lease's slice on device dev.
func (l Lease) slice(dev int) (LeaseSlice, bool) {
	for _, s := range l.Slices {
		if s.Device == dev {
			return s, true
		}
	}
	return LeaseSlice{}, false
}

// noCapacity is a refused allocation. When the node is full (out of
// memory), the tenant retries with backoff: kerfd logs each refusal at
// debug level only, so that a waiting tenant does not fill the log.
type noCapacity struct{ error }

func (e noCapacity) Unwrap() error { return e.error }

// retried reports whether err is a refusal the tenant retries.
func retried(err error) bool {
	var nc noCapacity
	return errors.As(err, &nc) && abi.ResultOf(err) == abi.ErrOutOfMemory
}

// serveLease runs a lease stream: one Allocate, one answer, then the lease
// lives until the stream closes, however the holder ends.
func (ss *session) serveLease() error {
	a := ss.srv.Allocator
	if a == nil {
		return ss.refuse(abi.ErrNotSupported, "this server does not allocate slices")
	}
	if ss.peer.Deadline != nil {
		_ = ss.peer.Deadline(time.Now().Add(ss.srv.handshakeTimeout()))
	}
	h, p, err := ss.conn.ReadFrame()
	if err != nil {
		return fmt.Errorf("reading allocation request: %w", err)
	}
	var req wire.AllocateMsg
	if h.Type != wire.Allocate {
		return ss.refuse(abi.ErrInvalidValue, fmt.Sprintf("expected an allocation request, got %s frame", h.Type))
	}
	if err := req.Decode(p); err != nil {
		return ss.refuse(abi.ErrInvalidValue, "bad allocation request: "+abi.Message(err))
	}
	if req.Count == 0 || req.Count > wire.MaxLeaseSlices {
		return ss.refuse(abi.ErrInvalidValue, fmt.Sprintf("%d slices requested: want 1..%d", req.Count, wire.MaxLeaseSlices))
	}
	lease, err := a.Allocate(ss.tenant, AllocRequest{Count: int(req.Count), Fraction: req.Fraction, Memory: req.Memory,
		MinMemory: req.MinMemory, Model: req.Model, Device: -1})
	if err != nil {
		return noCapacity{ss.refuse(abi.ResultOf(err), abi.Message(err))}
	}
	defer a.Release(lease.ID)
	msg := wire.AllocatedMsg{Lease: lease.ID}
	for _, s := range lease.Slices {
		msg.Slices = append(msg.Slices, wire.LeaseSlice{Device: uint32(s.Device), Memory: s.Memory})
	}
	b, err := msg.Append(nil)
	if err == nil {
		err = ss.conn.WriteFrame(wire.Header{Type: wire.Allocated}, b)
	}
	if err == nil {
		err = ss.conn.Flush()
	}
	if err != nil {
		return err
	}
	if ss.peer.Deadline != nil {
		_ = ss.peer.Deadline(time.Time{})
	}
	ss.srv.logger().Info("lease granted", "tenant", ss.tenant.ID, "lease", lease.ID, "slices", len(lease.Slices))
	// Nothing more is expected: the holder keeps the stream open.
	_, err = ss.conn.ReadHeader()
	if err == nil {
		return protoErrorf("frame on a lease stream after the allocation")
	}
	return err
}

// admitSlice resolves the slice a session runs in: the one its lease
// holds on its device, or a new lease for the session alone.
func (ss *session) admitSlice(hello *wire.HelloMsg, adm *Admission) error {
	a := ss.srv.Allocator
	if a == nil {
		return nil
	}
	if hello.Lease != "" {
		lease, err := a.Lease(ss.tenant, hello.Lease)
		if err != nil {
			return ss.refuse(abi.ErrNotPermitted, "lease: "+abi.Message(err))
		}
		s, ok := lease.slice(adm.Device)
		if !ok {
			return ss.refuse(abi.ErrInvalidDevice, fmt.Sprintf("device %d is not in lease %s", adm.Device, lease.ID))
		}
		adm.MemLimit = min(nonZero(adm.MemLimit), s.Memory)
		adm.Lease = lease.ID
		return nil
	}
	lease, err := a.Allocate(ss.tenant, AllocRequest{Count: 1, Memory: adm.MemLimit, Device: adm.Device})
	if err != nil {
		return ss.refuse(abi.ResultOf(err), abi.Message(err))
	}
	s, ok := lease.slice(adm.Device)
	if !ok {
		a.Release(lease.ID)
		return ss.refuse(abi.ErrUnknown, "allocator placed the session's slice on another device")
	}
	adm.MemLimit, adm.Lease, adm.ownLease = min(nonZero(adm.MemLimit), s.Memory), lease.ID, true
	return nil
}

func nonZero(x uint64) uint64 {
	if x == 0 {
		return math.MaxUint64
	}
	return x
}

// LeaseHolder keeps a lease for as long as it is open.
type LeaseHolder struct {
	Lease
	rw   io.Closer
	done chan struct{}
}

// Done is closed when the lease ends: closed by the holder, or lost with
// the server.
func (l *LeaseHolder) Done() <-chan struct{} { return l.done }

// Close releases the lease.
func (l *LeaseHolder) Close() error { return l.rw.Close() }

// openLease runs the lease handshake on rw; local is rw on the local
// path, nil elsewhere.
func openLease(rw io.ReadWriteCloser, local *net.UnixConn, opts Options, req AllocRequest) (*LeaseHolder, error) {
	conn := wire.NewConn(rw)
	hello := wire.HelloMsg{MinVersion: abi.MinProtocolVersion, MaxVersion: abi.ProtocolVersion, Token: opts.Token, Device: wire.LeaseDevice, Client: cutName(opts.Name)}
	b, err := hello.Append(nil)
	if err != nil {
		return nil, err
	}
	if req.Count < 1 || req.Count > wire.MaxLeaseSlices {
		return nil, fmt.Errorf("%d slices requested: want 1..%d", req.Count, wire.MaxLeaseSlices)
	}
	al := wire.AllocateMsg{Count: uint32(req.Count), Fraction: req.Fraction, Memory: req.Memory, MinMemory: req.MinMemory, Model: req.Model}
	ab, err := al.Append(nil)
	if err != nil {
		return nil, err
	}
	if err := conn.WriteFrame(wire.Header{Type: wire.Hello}, b); err != nil {
		return nil, err
	}
	if err := conn.WriteFrame(wire.Header{Type: wire.Allocate}, ab); err != nil {
		return nil, err
	}
	if err := conn.Flush(); err != nil {
		return nil, err
	}
	if local != nil {
		// A lease moves no bulk data: a server that sends a ring anyway
		// (as servers did before rings waited for the hello) sees it
		// closed.
		fd, prefix, err := recvShm(local)
		if err != nil {
			return nil, fmt.Errorf("reading the allocation: %w", err)
		}
		if fd >= 0 {
			closeShmFD(fd)
		}
		if prefix != nil {
			conn = wire.NewConn(readWriter(io.MultiReader(bytes.NewReader(prefix), rw), rw))
		}
	}
	h, p, err := conn.ReadFrame()
	if err != nil {
		return nil, fmt.Errorf("reading the allocation: %w", err)
	}
	switch h.Type {
	case wire.Allocated:
	case wire.Error:
		var m wire.ErrorMsg
		if err := m.Decode(p); err != nil {
			return nil, err
		}
		return nil, &abi.Error{Code: m.Code, Msg: m.Message}
	default:
		return nil, fmt.Errorf("expected an allocation, got %s frame", h.Type)
	}
	var msg wire.AllocatedMsg
	if err := msg.Decode(p); err != nil {
		return nil, err
	}
	l := &LeaseHolder{Lease: Lease{ID: msg.Lease}, rw: rw, done: make(chan struct{})}
	for _, s := range msg.Slices {
		l.Slices = append(l.Slices, LeaseSlice{Device: int(s.Device), Memory: s.Memory})
	}
	go func() {
		defer close(l.done)
		var b [1]byte
		_, _ = rw.Read(b[:]) // returns when either side closes
	}()
	return l, nil
}

// OpenLeaseUnix reserves slices on the local server at path.
func OpenLeaseUnix(ctx context.Context, path string, opts Options, req AllocRequest) (*LeaseHolder, error) {
	conn, err := dialUnix(ctx, path)
	if err != nil {
		return nil, err
	}
	l, err := openLease(conn, conn, opts, req)
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return l, nil
}

// OpenLeaseQUIC reserves slices on the server at addr over QUIC.
func OpenLeaseQUIC(ctx context.Context, addr string, opts QUICOptions, req AllocRequest) (*LeaseHolder, error) {
	qs, _, err := dialQUICStream(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	l, err := openLease(qs, nil, opts.Options, req)
	if err != nil {
		qs.Close()
		return nil, err
	}
	qs.SetDeadline(time.Time{})
	return l, nil
}
