package transport

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/transport/internal/wire"
)

// A status stream tells a lease's holder how the lease is used: each
// slice's memory, what the lease's sessions hold of it, its compute share
// and how much of the GPU's time it took lately, and the processes with a
// session in it. It opens no device and moves no bulk data; the tenant's
// NVML library (intercept/nvml) asks it.

// LeaseReporter is an Allocator that can say how a lease is used.
type LeaseReporter interface {
	// LeaseUse describes tenant's live lease id: its slices, and its
	// sessions that this Server does not serve itself (those handed to
	// other processes).
	LeaseUse(tenant auth.Tenant, id string) (LeaseUse, error)
}

// LeaseUse is a lease as its allocator sees it now.
type LeaseUse struct {
	ID       string
	Slices   []SliceUse
	Sessions []SessionInfo
}

// SliceUse is one slice of a lease with its compute share and
// utilization: the part of the GPU's time its kernels took over the
// allocator's last sample window. Both lie in [0, 1].
type SliceUse struct {
	LeaseSlice
	Share       float64
	Utilization float64
}

// LeaseStatus is what a status stream reports.
type LeaseStatus struct {
	Lease         string
	DriverVersion int // as cuDriverGetVersion reports, e.g. 12040
	Slices        []SliceStatus
	Processes     []LeaseProcess
}

// SliceStatus is one slice of a lease and the device it is on.
type SliceStatus struct {
	SliceUse
	// Used is the memory the lease's sessions hold in the slice.
	Used             uint64
	Name             string
	UUID             [16]byte
	PCI              gpu.PCIAddress
	CCMajor, CCMinor int
}

// LeaseProcess is a process with sessions in a lease, by the process ID
// its own machine gave it.
type LeaseProcess struct {
	Device  int
	PID     int
	MemUsed uint64
}

// statusQueryTimeout bounds one status round trip.
const statusQueryTimeout = 10 * time.Second

// StatusClient asks the server about one lease over a stream of its own.
// Its methods may be called from many goroutines.
type StatusClient struct {
	// Initial is the server's first answer, sent as the stream opened.
	Initial LeaseStatus

	mu       sync.Mutex
	rw       io.Closer
	conn     *wire.Conn
	deadline func(time.Time) error
}

// Status asks for the lease's status now.
func (c *StatusClient) Status() (LeaseStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.deadline(time.Now().Add(statusQueryTimeout))
	defer c.deadline(time.Time{})
	if err := c.conn.WriteFrame(wire.Header{Type: wire.Query}); err != nil {
		return LeaseStatus{}, err
	}
	if err := c.conn.Flush(); err != nil {
		return LeaseStatus{}, err
	}
	return readStatus(c.conn)
}

// Close ends the stream.
func (c *StatusClient) Close() error { return c.rw.Close() }

// OpenStatusUnix opens a status stream on the local server at path, for
// the lease opts.Lease.
func OpenStatusUnix(ctx context.Context, path string, opts Options) (*StatusClient, error) {
	conn, err := dialUnix(ctx, path)
	if err != nil {
		return nil, err
	}
	c, err := openStatus(conn, conn, conn.SetDeadline, opts)
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return c, nil
}

// OpenStatusQUIC opens a status stream over QUIC, for the lease
// opts.Lease.
func OpenStatusQUIC(ctx context.Context, addr string, opts QUICOptions) (*StatusClient, error) {
	qs, _, err := dialQUICStream(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	c, err := openStatus(qs, nil, qs.SetDeadline, opts.Options)
	if err != nil {
		qs.Close()
		return nil, err
	}
	qs.SetDeadline(time.Time{})
	return c, nil
}

// openStatus says hello on rw and reads the first status; local is rw on
// the local path, nil elsewhere.
func openStatus(rw io.ReadWriteCloser, local *net.UnixConn, deadline func(time.Time) error, opts Options) (*StatusClient, error) {
	if opts.Lease == "" {
		return nil, errors.New("kerf: a status stream needs a lease")
	}
	conn := wire.NewConnSize(rw, handshakeBufSize)
	hello := wire.HelloMsg{MinVersion: abi.MinProtocolVersion, MaxVersion: abi.ProtocolVersion, Token: opts.Token,
		Device: wire.StatusDevice, Lease: opts.Lease, Client: clientDescription(os.Getpid(), opts.Name)}
	b, err := hello.Append(nil)
	if err == nil {
		err = conn.WriteFrame(wire.Header{Type: wire.Hello}, b)
	}
	if err == nil {
		err = conn.Flush()
	}
	if err != nil {
		return nil, fmt.Errorf("kerf: sending hello: %w", err)
	}
	if local != nil {
		// The local server passes a ring only to device sessions; what
		// arrives here is the first byte of the answer.
		fd, prefix, err := recvShm(local)
		if err != nil {
			return nil, fmt.Errorf("kerf: reading the lease status: %w", err)
		}
		if fd >= 0 {
			closeShmFD(fd)
		}
		if prefix != nil {
			conn = wire.NewConnSize(readWriter(io.MultiReader(bytes.NewReader(prefix), rw), rw), handshakeBufSize)
		}
	}
	st, err := readStatus(conn)
	if err != nil {
		return nil, err
	}
	return &StatusClient{Initial: st, rw: rw, conn: conn, deadline: deadline}, nil
}

// readStatus reads a Status frame, or the Error frame that ends the
// stream.
func readStatus(conn *wire.Conn) (LeaseStatus, error) {
	h, p, err := conn.ReadFrame()
	if err != nil {
		return LeaseStatus{}, fmt.Errorf("kerf: reading the lease status: %w", err)
	}
	switch h.Type {
	case wire.Status:
	case wire.Error:
		var m wire.ErrorMsg
		if err := m.Decode(p); err != nil {
			return LeaseStatus{}, err
		}
		return LeaseStatus{}, &abi.Error{Code: m.Code, Msg: m.Message}
	default:
		return LeaseStatus{}, fmt.Errorf("kerf: expected a lease status, got %s frame", h.Type)
	}
	var m wire.StatusMsg
	if err := m.Decode(p); err != nil {
		return LeaseStatus{}, err
	}
	st := LeaseStatus{Lease: m.Lease, DriverVersion: int(m.DriverVersion)}
	for _, s := range m.Slices {
		st.Slices = append(st.Slices, SliceStatus{
			SliceUse: SliceUse{LeaseSlice: LeaseSlice{Device: int(s.Device), Memory: s.Memory}, Share: s.Share, Utilization: s.Utilization},
			Used:     s.Used, Name: s.Name, UUID: s.UUID, PCI: gpu.PCIAddress{Domain: int(s.PCIDomain), Bus: int(s.PCIBus), Device: int(s.PCIDevice)},
			CCMajor: int(s.CCMajor), CCMinor: int(s.CCMinor),
		})
	}
	for _, p := range m.Processes {
		st.Processes = append(st.Processes, LeaseProcess{Device: int(p.Device), PID: int(p.PID), MemUsed: p.MemUsed})
	}
	return st, nil
}

// serveStatus runs a status stream on lease: a status at once, then one
// after every query, until the client leaves or the lease ends.
func (ss *session) serveStatus(lease string) error {
	ss.statusOnly = true
	rep, ok := ss.srv.Allocator.(LeaseReporter)
	if !ok {
		return ss.refuse(abi.ErrNotSupported, "this server does not report on leases")
	}
	for {
		msg, err := ss.srv.leaseStatus(rep, ss.tenant, lease)
		if err != nil {
			return ss.refuse(abi.ErrNotPermitted, "lease: "+err.Error())
		}
		if ss.out, err = msg.Append(ss.out[:0]); err != nil {
			return err
		}
		if err := ss.conn.WriteFrame(wire.Header{Type: wire.Status}, ss.out); err != nil {
			return err
		}
		if err := ss.conn.Flush(); err != nil {
			return err
		}
		h, err := ss.conn.ReadHeader()
		if err != nil {
			return err
		}
		if h.Type != wire.Query || h.Len != 0 {
			return protoErrorf("%s frame of %d bytes on a status stream", h.Type, h.Len)
		}
	}
}

// leaseStatus puts together what the allocator and this server's own
// sessions say of a lease.
func (s *Server) leaseStatus(rep LeaseReporter, tenant auth.Tenant, id string) (wire.StatusMsg, error) {
	use, err := rep.LeaseUse(tenant, id)
	if err != nil {
		return wire.StatusMsg{}, err
	}
	sessions := append(use.Sessions, s.leaseSessions(id)...)
	devs := s.Backend.Devices()
	msg := wire.StatusMsg{Lease: use.ID}
	onLease := map[int]bool{}
	for _, sl := range use.Slices {
		if sl.Device < 0 || sl.Device >= len(devs) || len(msg.Slices) == wire.MaxLeaseSlices {
			return wire.StatusMsg{}, fmt.Errorf("lease %s names device %d of %d", id, sl.Device, len(devs))
		}
		d := devs[sl.Device]
		st := wire.SliceStatus{Device: uint32(sl.Device), Memory: sl.Memory, Share: unit(sl.Share), Utilization: unit(sl.Utilization),
			UUID: d.UUID, PCIDomain: uint32(d.PCI.Domain), PCIBus: uint32(d.PCI.Bus), PCIDevice: uint32(d.PCI.Device),
			CCMajor: uint32(d.CCMajor), CCMinor: uint32(d.CCMinor), Name: deviceName(d.Name)}
		for _, ss := range sessions {
			if ss.Device == sl.Device {
				st.Used += ss.MemUsed
			}
		}
		msg.DriverVersion = uint32(d.DriverVersion)
		msg.Slices = append(msg.Slices, st)
		onLease[sl.Device] = true
	}
	type proc struct{ device, pid int }
	mem := map[proc]uint64{}
	for _, ss := range sessions {
		if ss.PID > 0 && onLease[ss.Device] {
			mem[proc{ss.Device, ss.PID}] += ss.MemUsed
		}
	}
	for p, m := range mem {
		msg.Processes = append(msg.Processes, wire.ProcessStatus{Device: uint32(p.device), PID: uint32(p.pid), MemUsed: m})
	}
	slices.SortFunc(msg.Processes, func(a, b wire.ProcessStatus) int {
		return cmp.Or(cmp.Compare(a.Device, b.Device), cmp.Compare(a.PID, b.PID))
	})
	msg.Processes = msg.Processes[:min(len(msg.Processes), wire.MaxLeaseProcesses)]
	return msg, nil
}

// leaseSessions lists the sessions this server serves in lease id.
func (s *Server) leaseSessions(id string) []SessionInfo {
	var out []SessionInfo
	for _, si := range s.Sessions() {
		if si.Lease == id {
			out = append(out, si)
		}
	}
	return out
}

// unit clamps a share into [0, 1]; NaN is 0.
func unit(f float64) float64 {
	if !(f > 0) {
		return 0
	}
	return min(f, 1)
}

// deviceName cuts a name to what a status carries, without NULs.
func deviceName(n string) string {
	n = strings.ReplaceAll(n, "\x00", "")
	return n[:min(len(n), wire.MaxDeviceName)]
}

// A session's hello describes its client as "pid N NAME" when the client
// knows its process ID, so that the lease's holder can list its processes.
// The ID is the client's word, reported back to the same tenant only.
const pidPrefix = "pid "

// clientDescription is the hello's client field for process pid: what
// fits of name follows the pid.
func clientDescription(pid int, name string) string {
	return cutName(pidPrefix + strconv.Itoa(pid) + " " + name)
}

// clientPID is the process ID a client description names; 0 if none.
func clientPID(desc string) int {
	rest, ok := strings.CutPrefix(desc, pidPrefix)
	if !ok {
		return 0
	}
	digits, _, _ := strings.Cut(rest, " ")
	pid, err := strconv.ParseUint(digits, 10, 31)
	if err != nil {
		return 0
	}
	return int(pid)
}
