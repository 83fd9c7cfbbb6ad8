package transport

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
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

// CapacityReporter is an Allocator that tells a tenant which GPUs it may
// use and what is free on them (kerf list-gpus).
type CapacityReporter interface {
	Capacity(tenant auth.Tenant) (Capacity, error)
}

// Capacity is what a tenant may use on this node.
type Capacity struct {
	GPUs []GPUCapacity `json:"gpus"`
	// The tenant's policy (its own, or the default): MaxGPUs (fractions
	// counted; 0 none), IdleTimeout (0 never) and MaxMemory (bytes in use
	// across its leases; 0 none).
	MaxGPUs     float64       `json:"maxGPUs,omitempty"`
	IdleTimeout time.Duration `json:"idleTimeout,omitempty"`
	MaxMemory   uint64        `json:"maxMemory,omitempty"`
	// HeldGPUs is what the tenant holds now, fractions counted.
	HeldGPUs float64 `json:"heldGPUs"`
}

// GPUCapacity is one GPU as a tenant sees it.
type GPUCapacity struct {
	Device int    `json:"device"`
	Name   string `json:"name"`
	Memory uint64 `json:"memory"`
	Slices int    `json:"slices"`
	// FreeSlices are slices no lease holds; FreeFraction their sum, as
	// a fraction of the GPU; LargestFree the biggest of them.
	FreeSlices        int     `json:"freeSlices"`
	FreeFraction      float64 `json:"freeFraction"`
	LargestFree       float64 `json:"largestFree"`
	LargestFreeMemory uint64  `json:"largestFreeMemory"`
}

// LeaseMemory is the memory of one slice of a lease, shared by every
// session of the lease on that device, in whichever process serves it:
// a session reserves what it allocates before the backend allocates it,
// and releases what it frees. Reserve refuses with
// CUDA_ERROR_OUT_OF_MEMORY past the slice (or the tenant's cap).
// Available is what is left for any session of the lease.
type LeaseMemory interface {
	Reserve(n uint64) error
	Release(n uint64)
	Available() uint64
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
	// Reservation, when set, takes up the slices a pool reserved on this
	// node for the tenant (after a Redirect); the other fields are unused.
	Reservation string
	// Redirects reports that the client follows a Redirect (protocol
	// version 5 on); an Allocator must not return one otherwise.
	Redirects bool
}

// Redirect is the answer to an allocation when the node's pool reserved
// the slices on another member: the tenant asks that member (Node, at
// QUIC address Addr) for Reservation. An Allocator returns it as its
// error; a client receives it as the error of OpenLease*.
type Redirect struct {
	Node, Addr, Reservation string
}

func (r *Redirect) Error() string {
	return fmt.Sprintf("the pool reserved the slices on %s (%s) as %s", r.Node, r.Addr, r.Reservation)
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
func (ss *session) serveLease(version uint16) error {
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
	var areq AllocRequest
	switch h.Type {
	case wire.ListGPUs:
		return ss.serveCapacity()
	case wire.Allocate:
		var req wire.AllocateMsg
		if err := req.Decode(p); err != nil {
			return ss.refuse(abi.ErrInvalidValue, "bad allocation request: "+abi.Message(err))
		}
		if req.Count == 0 || req.Count > wire.MaxLeaseSlices {
			return ss.refuse(abi.ErrInvalidValue, fmt.Sprintf("%d slices requested: want 1..%d", req.Count, wire.MaxLeaseSlices))
		}
		areq = AllocRequest{Count: int(req.Count), Fraction: req.Fraction, Memory: req.Memory, MinMemory: req.MinMemory, Model: req.Model, Device: -1,
			Redirects: version >= 5}
	case wire.Claim:
		var req wire.ReservationMsg
		if err := req.Decode(p); err != nil {
			return ss.refuse(abi.ErrInvalidValue, "bad claim: "+abi.Message(err))
		}
		areq = AllocRequest{Device: -1, Reservation: req.Reservation}
	default:
		return ss.refuse(abi.ErrInvalidValue, fmt.Sprintf("expected an allocation request, got %s frame", h.Type))
	}
	lease, err := a.Allocate(ss.tenant, areq)
	if rd := (*Redirect)(nil); errors.As(err, &rd) {
		return ss.redirect(rd)
	}
	if err != nil {
		return noCapacity{ss.refuse(abi.ResultOf(err), abi.Message(err))}
	}
	defer func() {
		// The lease's sessions end before its slices are free.
		ss.srv.endLeaseSessions(lease.ID)
		a.Release(lease.ID)
	}()
	ss.srv.holdLease(ss, lease.ID)
	defer ss.srv.dropLease(ss)
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

// redirect answers an allocation with the member where the pool reserved
// the slices; the stream ends after it.
func (ss *session) redirect(rd *Redirect) error {
	msg := wire.ReservationMsg{Node: rd.Node, Addr: rd.Addr, Reservation: rd.Reservation}
	b, err := msg.Append(nil)
	if err != nil {
		return ss.refuse(abi.ErrUnknown, err.Error())
	}
	if err := ss.conn.WriteFrame(wire.Header{Type: wire.Redirect}, b); err != nil {
		return err
	}
	ss.srv.logger().Info("allocation redirected", "tenant", ss.tenant.ID, "node", rd.Node, "reservation", rd.Reservation)
	return ss.conn.Flush()
}

// serveCapacity answers ListGPUs with what the tenant may use.
func (ss *session) serveCapacity() error {
	cr, ok := ss.srv.Allocator.(CapacityReporter)
	if !ok {
		return ss.refuse(abi.ErrNotSupported, "this server does not report capacity")
	}
	c, err := cr.Capacity(ss.tenant)
	if err != nil {
		return ss.refuse(abi.ResultOf(err), err.Error())
	}
	j, err := json.Marshal(c)
	if err != nil {
		return err
	}
	msg := wire.CapacityMsg{JSON: j}
	b, err := msg.Append(nil)
	if err != nil {
		return ss.refuse(abi.ErrUnknown, err.Error())
	}
	if err := ss.conn.WriteFrame(wire.Header{Type: wire.GPUs}, b); err != nil {
		return err
	}
	return ss.conn.Flush()
}

// holdLease records that ss is the stream holding lease id, so that
// ending the lease (CloseLease, CloseTenant) closes it.
func (s *Server) holdLease(ss *session, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leaseStreams == nil {
		s.leaseStreams = map[*session]string{}
	}
	s.leaseStreams[ss] = id
}

func (s *Server) dropLease(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.leaseStreams, ss)
}

// CloseLease ends lease id: the stream holding it closes (so the
// Allocator's Release follows), and so does every session of it served
// in this process; it returns once those sessions have closed their
// contexts.
func (s *Server) CloseLease(id string) {
	s.mu.Lock()
	for ss, l := range s.leaseStreams {
		if l == id {
			ss.closeStream()
		}
	}
	s.mu.Unlock()
	s.endLeaseSessions(id)
}

// endLeaseSessions ends the sessions of lease id served in this process
// and returns once each has closed its backend context.
func (s *Server) endLeaseSessions(id string) {
	s.mu.Lock()
	var ended []chan struct{}
	for _, ss := range s.sessions {
		if ss.lease == id {
			ss.closeStream()
			ended = append(ended, ss.ended)
		}
	}
	s.mu.Unlock()
	for _, c := range ended {
		<-c
	}
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
	ask, ab, err := allocation(req)
	if err != nil {
		return nil, err
	}
	p, err := leaseExchange(rw, local, opts, ask, ab, wire.Allocated)
	if err != nil {
		return nil, err
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

// allocation is the frame asking for req: a Claim of its reservation, or
// an Allocate.
func allocation(req AllocRequest) (wire.Type, []byte, error) {
	if req.Reservation != "" {
		c := wire.ReservationMsg{Reservation: req.Reservation}
		b, err := c.Append(nil)
		return wire.Claim, b, err
	}
	if req.Count < 1 || req.Count > wire.MaxLeaseSlices {
		return 0, nil, fmt.Errorf("%d slices requested: want 1..%d", req.Count, wire.MaxLeaseSlices)
	}
	al := wire.AllocateMsg{Count: uint32(req.Count), Fraction: req.Fraction, Memory: req.Memory, MinMemory: req.MinMemory, Model: req.Model}
	b, err := al.Append(nil)
	return wire.Allocate, b, err
}

// leaseExchange says hello on a lease stream, sends one frame of type
// ask and returns the payload of the answer, which must be of type want.
func leaseExchange(rw io.ReadWriter, local *net.UnixConn, opts Options, ask wire.Type, payload []byte, want wire.Type) ([]byte, error) {
	conn := wire.NewConnSize(rw, handshakeBufSize)
	hello := wire.HelloMsg{MinVersion: abi.MinProtocolVersion, MaxVersion: cmp.Or(opts.maxVersion, abi.ProtocolVersion), Token: opts.Token, Device: wire.LeaseDevice, Client: cutName(opts.Name)}
	b, err := hello.Append(nil)
	if err != nil {
		return nil, err
	}
	if err := conn.WriteFrame(wire.Header{Type: wire.Hello}, b); err != nil {
		return nil, err
	}
	if err := conn.WriteFrame(wire.Header{Type: ask}, payload); err != nil {
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
			conn = wire.NewConnSize(readWriter(io.MultiReader(bytes.NewReader(prefix), rw), rw), handshakeBufSize)
		}
	}
	h, p, err := conn.ReadFrame()
	if err != nil {
		return nil, fmt.Errorf("reading the answer to %s: %w", ask, err)
	}
	switch h.Type {
	case want:
		return p, nil
	case wire.Error:
		var m wire.ErrorMsg
		if err := m.Decode(p); err != nil {
			return nil, err
		}
		return nil, &abi.Error{Code: m.Code, Msg: m.Message}
	case wire.Redirect:
		var m wire.ReservationMsg
		if err := m.Decode(p); err != nil {
			return nil, err
		}
		return nil, &Redirect{Node: m.Node, Addr: m.Addr, Reservation: m.Reservation}
	}
	return nil, fmt.Errorf("expected %s, got %s frame", want, h.Type)
}

// listGPUs asks for the tenant's capacity on rw.
func listGPUs(rw io.ReadWriter, local *net.UnixConn, opts Options) (Capacity, error) {
	var c Capacity
	p, err := leaseExchange(rw, local, opts, wire.ListGPUs, nil, wire.GPUs)
	if err != nil {
		return c, err
	}
	var m wire.CapacityMsg
	if err := m.Decode(p); err != nil {
		return c, err
	}
	if err := json.Unmarshal(m.JSON, &c); err != nil {
		return c, fmt.Errorf("the server's capacity: %w", err)
	}
	return c, nil
}

// ListGPUsUnix asks the local server which GPUs the token's tenant may
// use and what is free on them.
func ListGPUsUnix(ctx context.Context, path string, opts Options) (Capacity, error) {
	conn, err := dialUnix(ctx, path)
	if err != nil {
		return Capacity{}, err
	}
	defer conn.Close()
	return listGPUs(conn, conn, opts)
}

// ListGPUsQUIC is ListGPUsUnix over QUIC.
func ListGPUsQUIC(ctx context.Context, addr string, opts QUICOptions) (Capacity, error) {
	qs, _, err := dialQUICStream(ctx, addr, opts)
	if err != nil {
		return Capacity{}, err
	}
	defer qs.Close()
	return listGPUs(qs, nil, opts.Options)
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
