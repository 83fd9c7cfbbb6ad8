package transport

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/transport/internal/wire"
)

// session is one tenant stream: one backend context and one ordered
// submission sequence. Only its own goroutine touches its tables.
type session struct {
	srv     *Server
	id      uint64
	rw      io.ReadWriteCloser
	conn    *wire.Conn
	sock    io.Reader // rw's read side, after any bytes read before a handoff
	peer    Peer
	started time.Time
	tenant  auth.Tenant
	device  int
	// openLimit is the context's memory limit, as opened or last set; a
	// context reset opens the new one with it. Written under the
	// server's lock once the session is registered.
	openLimit uint64
	version   uint16 // the protocol version negotiated
	ctx       gpu.Context
	lease     string
	// leaseMem is the lease's shared account of the slice's memory; nil
	// outside a lease or without one.
	leaseMem LeaseMemory
	// ended is closed once the session has closed its context and left
	// the server's table.
	ended chan struct{}
	pid   int // the client's process ID, from its hello
	// statusOnly marks a status stream, which opens no device.
	statusOnly bool

	handles handleTable
	mem     memTable
	vmt     vmTable // virtual memory
	// texObjects are the texture and surface objects the session
	// created: true for a surface
	texObjects map[uint64]bool
	// latched is the first error of an async call since the last sync
	// call; the next sync call returns it instead of running.
	latched abi.Result
	// errText is the text of the running call's error, which its reply
	// carries from protocol version 3 on; finish clears it.
	errText string

	res   abi.Values
	out   []byte
	chunk []byte

	calls, errs, bytesIn, bytesOut, memUsed atomic.Uint64
	closeOnce                               sync.Once
	// aborter is ctx when it can cut its kernels short (gpu.Aborter), for
	// closeStream, which may run on another goroutine.
	aborter atomic.Value
}

// setContext makes ctx the session's backend context.
func (ss *session) setContext(ctx gpu.Context) {
	ss.ctx = ctx
	if a, ok := ctx.(gpu.Aborter); ok {
		ss.aborter.Store(a)
	}
}

// closeStream ends the session from any goroutine: the stream closes, and
// the backend context's kernels are aborted, so that a session blocked in
// a long kernel ends too.
func (ss *session) closeStream() {
	ss.closeOnce.Do(func() {
		ss.rw.Close()
		if a, ok := ss.aborter.Load().(gpu.Aborter); ok {
			a.Abort()
		}
	})
}

func (ss *session) info() SessionInfo {
	return SessionInfo{
		ID: ss.id, Tenant: ss.tenant.ID, Device: ss.device, Transport: ss.peer.Transport, Peer: ss.peer.Addr,
		Started: ss.started, Calls: ss.calls.Load(), Errors: ss.errs.Load(),
		BytesIn: ss.bytesIn.Load(), BytesOut: ss.bytesOut.Load(), MemUsed: ss.memUsed.Load(), MemLimit: ss.memLimit(), Busy: ss.busy(),
		Lease: ss.lease, PID: ss.pid,
	}
}

func (ss *session) memLimit() uint64 {
	if ss.ctx == nil {
		return 0
	}
	_, total := ss.ctx.MemInfo()
	return total
}

func (ss *session) busy() time.Duration {
	if m, ok := ss.ctx.(gpu.Meter); ok {
		return m.BusyTime()
	}
	return 0
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe) || errors.Is(err, io.ErrUnexpectedEOF)
}

func (ss *session) run(adm Admission) error {
	if err := ss.open(adm); err != nil {
		return err
	}
	if shm := ss.peer.Shm; shm != nil && shm.ringOff != 0 && adm.Version >= 2 {
		// The client now writes to the call ring; what the socket brings
		// is doorbells.
		ss.conn = wire.NewConn(struct {
			io.Reader
			io.Writer
		}{&callRingReader{ring: shm, bell: ss.sock}, ss.rw})
	}
	ss.srv.register(ss)
	defer ss.srv.unregister(ss)
	defer func() {
		// The backend frees everything the tenant left behind.
		_ = ss.ctx.Close()
		if ss.leaseMem != nil {
			ss.leaseMem.Release(ss.mem.used)
		}
		ss.memUsed.Store(0)
	}()
	for {
		if ss.conn.Buffered() == 0 && ss.conn.Pending() > 0 {
			if err := ss.conn.Flush(); err != nil {
				return err
			}
		}
		h, p, err := ss.conn.ReadFrame()
		if err != nil {
			return err
		}
		switch h.Type {
		case wire.Call:
			if err := ss.handleCall(h, abi.Lookup(h.Call), p); err != nil {
				return err
			}
			if err := ss.handleBuffered(); err != nil {
				return err
			}
		case wire.Data, wire.ShmData:
			// Bulk data whose call was refused before it was read.
			return protoErrorf("%s frame for call %d outside a transfer", h.Type, h.Seq)
		default:
			return protoErrorf("unexpected %s frame", h.Type)
		}
	}
}

// handleBuffered handles the whole call frames already in the read buffer
// in place, without a read per frame: a pipelined burst of async calls
// arrives so. It stops before a frame that is incomplete, not a call, or a
// call with bulk data (which reads on from the stream), leaving it to run.
func (ss *session) handleBuffered() error {
	buf := ss.conn.PeekBuffered()
	off, calls := 0, uint64(0)
	defer func() {
		ss.conn.Consume(off)
		ss.calls.Add(calls)
	}()
	for {
		h, ok := wire.ParseCallHeader(buf[off:])
		if !ok {
			return nil
		}
		end := off + wire.HeaderSize + int(h.Len)
		if end > len(buf) {
			return nil
		}
		p := buf[off+wire.HeaderSize : end]
		if h.Flags == 0 {
			if code, ok := ss.execScalarAsync(h.Call, p); ok {
				calls++
				off = end
				if code != abi.Success {
					ss.finish(h, nil, false, code)
				}
				continue
			}
		}
		c := abi.Lookup(h.Call)
		if c != nil && c.Bulk != abi.NoBulk {
			return nil
		}
		calls++
		err := ss.exec1(h, c, p)
		off = end
		if err != nil {
			return err
		}
	}
}

// handleCall validates and executes call h, whose catalogue entry the
// caller looked up (nil: unknown id). A non-nil error ends the session
// (protocol violation or broken stream); CUDA errors are replied or
// latched.
func (ss *session) handleCall(h wire.Header, c *abi.Call, p []byte) error {
	ss.calls.Add(1)
	return ss.exec1(h, c, p)
}

// exec1 is handleCall without the call count, which handleBuffered keeps
// for a whole burst.
func (ss *session) exec1(h wire.Header, c *abi.Call, p []byte) error {
	wantReply := wantsReply(h)
	var hd *handler
	if c != nil {
		hd = handlerFor(c.ID)
	}
	if hd == nil {
		ss.srv.logger().Debug("unknown call", "session", ss.id, "call", h.Call)
		return ss.finish(h, nil, wantReply, abi.ErrNotSupported)
	}
	if wantReply != (c.Mode == abi.Sync) {
		return protoErrorf("%s sent as %s", c.Name, map[bool]string{true: "sync", false: "async"}[wantReply])
	}
	return hd.exec(ss, h, c, p)
}

// finish replies to a sync call, or latches an async call's error.
func (ss *session) finish(h wire.Header, c *abi.Call, wantReply bool, code abi.Result) error {
	if code != abi.Success {
		ss.errs.Add(1)
	}
	text := ss.errText
	ss.errText = ""
	if !wantReply {
		if ss.latched == abi.Success {
			ss.latched = code
		}
		return nil
	}
	return ss.replyText(h, c, code, text)
}

func (ss *session) reply(h wire.Header, c *abi.Call, code abi.Result) error {
	return ss.replyText(h, c, code, "")
}

// replyText answers call c with code and, for an error on a session at
// protocol version 3 or later, text.
func (ss *session) replyText(h wire.Header, c *abi.Call, code abi.Result, text string) error {
	var err error
	if c == nil {
		ss.out = binary.LittleEndian.AppendUint32(ss.out[:0], uint32(code))
	} else if ss.out, err = wire.AppendReply(ss.out[:0], c, code, &ss.res); err != nil {
		return err // a backend result that breaks the catalogue is our bug
	}
	if code != abi.Success && ss.version >= 3 {
		ss.out = wire.AppendErrorText(ss.out, text)
	}
	if c != nil && ss.version >= 4 && abi.FlushesPrintf(c.ID) {
		if err := ss.sendPrintf(h); err != nil {
			return err
		}
	}
	return ss.conn.WriteFrame(wire.Header{Type: wire.Reply, Call: h.Call, Seq: h.Seq}, ss.out)
}

// sendPrintf sends the context's buffered device printf output, in
// printf frames of at most abi.BulkChunk bytes, ahead of call h's reply.
func (ss *session) sendPrintf(h wire.Header) error {
	pb, ok := ss.ctx.(gpu.PrintfBuffer)
	if !ok {
		return nil
	}
	out := pb.TakePrintf()
	for len(out) > 0 {
		n := min(len(out), abi.BulkChunk)
		if err := ss.conn.WriteFrame(wire.Header{Type: wire.Printf, Call: h.Call, Seq: h.Seq}, out[:n]); err != nil {
			return err
		}
		out = out[n:]
	}
	return nil
}

// execScalarAsync runs an async call whose arguments are all scalars
// straight from p, its frame's payload, with the call's generated decoder
// inlined and its method called directly: handleBuffered's hot path, which
// skips the handler table. It reports false for other calls and for a
// payload of the wrong size, which take the general way through exec1
// (as does the first frame of each read), with the same checks.
//
// Go keeps a struct of up to four fields in registers and a larger one in
// memory, so the memset's five arguments are decoded in place and passed
// by pointer, and the others by value.
func (ss *session) execScalarAsync(id abi.CallID, p []byte) (abi.Result, bool) {
	switch id {
	case abi.CallMemsetAsync:
		var a wire.MemsetD8AsyncArgs
		if a.Decode(p) != nil {
			return 0, false
		}
		return ss.memset(&a), true
	case abi.CallMemcpyDtoDAsync:
		a, err := wire.DecodeMemcpyDtoDAsyncArgs(p)
		if err != nil {
			return 0, false
		}
		return ss.memcpyDtoDAsync(a), true
	case abi.CallEventRecord:
		a, err := wire.DecodeEventRecordArgs(p)
		if err != nil {
			return 0, false
		}
		return ss.eventRecord(a), true
	case abi.CallStreamWaitEvent:
		a, err := wire.DecodeStreamWaitEventArgs(p)
		if err != nil {
			return 0, false
		}
		return ss.streamWaitEvent(a), true
	}
	return 0, false
}
