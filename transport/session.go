package transport

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	"math/bits"
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
	ctx     gpu.Context

	handles handleTable
	mem     memTable
	// latched is the first error of an async call since the last sync
	// call; the next sync call returns it instead of running.
	latched abi.Result

	args, res abi.Values
	out       []byte
	chunk     []byte

	calls, errs, bytesIn, bytesOut, memUsed atomic.Uint64
	closeOnce                               sync.Once
}

func (ss *session) closeStream() { ss.closeOnce.Do(func() { ss.rw.Close() }) }

func (ss *session) info() SessionInfo {
	return SessionInfo{
		ID: ss.id, Tenant: ss.tenant.ID, Device: ss.device, Transport: ss.peer.Transport, Peer: ss.peer.Addr,
		Started: ss.started, Calls: ss.calls.Load(), Errors: ss.errs.Load(),
		BytesIn: ss.bytesIn.Load(), BytesOut: ss.bytesOut.Load(), MemUsed: ss.memUsed.Load(), MemLimit: ss.memLimit(), Busy: ss.busy(),
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
	wantReply := h.Flags&wire.WantReply != 0
	if c == nil {
		ss.srv.logger().Debug("unknown call", "session", ss.id, "call", h.Call)
		return ss.finish(h, nil, wantReply, abi.ErrNotSupported)
	}
	if wantReply != (c.Mode == abi.Sync) {
		return protoErrorf("%s sent as %s", c.Name, map[bool]string{true: "sync", false: "async"}[wantReply])
	}
	if err := wire.DecodeArgs(c, p, &ss.args); err != nil {
		// The size of a bulk transfer is unknown, so the stream cannot be
		// resynchronised: the call is malformed beyond repair.
		if c.Bulk == abi.BulkIn {
			return protoErrorf("%s: %v", c.Name, err)
		}
		return ss.finish(h, c, wantReply, abi.ErrInvalidValue)
	}
	if wantReply && ss.latched != abi.Success {
		code := ss.latched
		ss.latched = abi.Success
		if c.Bulk == abi.BulkIn {
			if _, err := ss.recvBulk(h, ss.args.Words[c.SizeArg()], nil); err != nil {
				return err
			}
		}
		return ss.reply(h, c, code)
	}
	ss.res.Reset()
	code, err := ss.exec(h, c)
	if err != nil {
		return err
	}
	return ss.finish(h, c, wantReply, code)
}

// finish replies to a sync call, or latches an async call's error.
func (ss *session) finish(h wire.Header, c *abi.Call, wantReply bool, code abi.Result) error {
	if code != abi.Success {
		ss.errs.Add(1)
	}
	if !wantReply {
		if ss.latched == abi.Success {
			ss.latched = code
		}
		return nil
	}
	return ss.reply(h, c, code)
}

func (ss *session) reply(h wire.Header, c *abi.Call, code abi.Result) error {
	var err error
	if c == nil {
		ss.out = binary.LittleEndian.AppendUint32(ss.out[:0], uint32(code))
	} else if ss.out, err = wire.AppendReply(ss.out[:0], c, code, &ss.res); err != nil {
		return err // a backend result that breaks the catalogue is our bug
	}
	return ss.conn.WriteFrame(wire.Header{Type: wire.Reply, Call: h.Call, Seq: h.Seq}, ss.out)
}

// exec runs a decoded call. It returns the CUDA result, or an error that
// ends the session.
func (ss *session) exec(h wire.Header, c *abi.Call) (abi.Result, error) {
	a := &ss.args.Words
	switch c.ID {
	case abi.CallCtxSynchronize:
		return abi.ResultOf(ss.ctx.Synchronize()), nil

	case abi.CallDeviceGetAttribute:
		v, err := ss.ctx.Attribute(uint32(a[0]))
		ss.res.Word(uint64(uint32(v)))
		return abi.ResultOf(err), nil

	case abi.CallMemAlloc:
		if a[0] == 0 {
			return abi.ErrInvalidValue, nil
		}
		p, err := ss.ctx.MemAlloc(a[0])
		if err != nil {
			return abi.ResultOf(err), nil
		}
		ss.mem.insert(memRange{base: p, size: a[0]})
		ss.memUsed.Store(ss.mem.used)
		ss.res.Word(p)
		return abi.Success, nil

	case abi.CallMemFree:
		if !ss.mem.removeAlloc(a[0]) {
			return abi.ErrInvalidValue, nil
		}
		ss.memUsed.Store(ss.mem.used)
		return abi.ResultOf(ss.ctx.MemFree(a[0])), nil

	case abi.CallMemGetInfo:
		free, total := ss.ctx.MemInfo()
		ss.res.Word(free).Word(total)
		return abi.Success, nil

	case abi.CallMemcpyHtoD, abi.CallMemcpyHtoDAsync:
		dst, size := a[0], a[1]
		s, ok := ss.handles.stream(ss.streamArg(2))
		code := ss.checkRange(dst, size)
		if !ok {
			code = abi.ErrInvalidHandle
		}
		var sink func(off uint64, p []byte) error
		if code == abi.Success {
			sink = func(off uint64, p []byte) error { return ss.ctx.MemcpyHtoD(dst+off, p, s) }
		}
		sinkCode, err := ss.recvBulk(h, size, sink)
		if err != nil {
			return 0, err
		}
		if code == abi.Success {
			code = sinkCode
		}
		return code, nil

	case abi.CallMemcpyDtoH, abi.CallMemcpyDtoHAsync:
		src, size := a[0], a[1]
		s, ok := ss.handles.stream(ss.streamArg(2))
		if !ok {
			return abi.ErrInvalidHandle, nil
		}
		if code := ss.checkRange(src, size); code != abi.Success {
			return code, nil
		}
		return ss.sendBulk(h, size, func(off uint64, p []byte) error { return ss.ctx.MemcpyDtoH(p, src+off, s) })

	case abi.CallMemcpyDtoD, abi.CallMemcpyDtoDAsync:
		return ss.memcpyDtoD(a[0], a[1], a[2], ss.streamArg(3)), nil

	case abi.CallMemset, abi.CallMemsetAsync:
		return ss.memset(a[0], a[1], a[2], a[3], ss.streamArg(4)), nil

	case abi.CallModuleLoad:
		size := a[0]
		if size == 0 || size > c.MaxBulk {
			return 0, protoErrorf("%s: image of %d bytes (limit %d)", c.Name, size, c.MaxBulk)
		}
		image := make([]byte, 0, size) // bounded by MaxModuleImage above
		if _, err := ss.recvBulk(h, size, func(_ uint64, p []byte) error { image = append(image, p...); return nil }); err != nil {
			return 0, err
		}
		m, err := ss.ctx.ModuleLoad(image)
		if err != nil {
			return abi.ResultOf(err), nil
		}
		ss.res.Word(ss.handles.add(abi.ModuleHandle, m, 0))
		return abi.Success, nil

	case abi.CallModuleUnload:
		m, ok := ss.handles.module(a[0])
		if !ok {
			return abi.ErrInvalidHandle, nil
		}
		ss.handles.removeChildren(a[0])
		ss.handles.remove(a[0])
		ss.mem.removeModule(a[0])
		return abi.ResultOf(m.Unload()), nil

	case abi.CallModuleGetFunction:
		m, ok := ss.handles.module(a[0])
		if !ok {
			return abi.ErrInvalidHandle, nil
		}
		f, err := m.Function(string(ss.args.Blobs[0]))
		if err != nil {
			return abi.ResultOf(err), nil
		}
		ss.res.Word(ss.handles.add(abi.FunctionHandle, f, a[0]))
		return abi.Success, nil

	case abi.CallModuleGetGlobal:
		m, ok := ss.handles.module(a[0])
		if !ok {
			return abi.ErrInvalidHandle, nil
		}
		p, size, err := m.Global(string(ss.args.Blobs[0]))
		if err != nil {
			return abi.ResultOf(err), nil
		}
		if !ss.mem.contains(p, size) {
			ss.mem.insert(memRange{base: p, size: size, module: a[0]})
		}
		ss.res.Word(p).Word(size)
		return abi.Success, nil

	case abi.CallFuncGetAttribute:
		f, ok := ss.handles.function(a[0])
		if !ok {
			return abi.ErrInvalidHandle, nil
		}
		v, err := f.Attribute(uint32(a[1]))
		ss.res.Word(uint64(uint32(v)))
		return abi.ResultOf(err), nil

	case abi.CallFuncGetParamLayout:
		f, ok := ss.handles.function(a[0])
		if !ok {
			return abi.ErrInvalidHandle, nil
		}
		params, err := f.Params()
		if err != nil {
			return abi.ResultOf(err), nil
		}
		if len(params) > int(c.Results[0].Max)/8 {
			return abi.ErrNotSupported, nil
		}
		layout := make([]byte, 0, 8*len(params))
		for _, p := range params {
			layout = binary.LittleEndian.AppendUint32(layout, p.Offset)
			layout = binary.LittleEndian.AppendUint32(layout, p.Size)
		}
		ss.res.Blob(layout)
		return abi.Success, nil

	case abi.CallLaunchKernel:
		f, ok := ss.handles.function(a[0])
		s, sok := ss.handles.stream(a[8])
		if !ok || !sok {
			return abi.ErrInvalidHandle, nil
		}
		cfg := abi.LaunchConfig{
			Grid:        abi.Dim3{X: uint32(a[1]), Y: uint32(a[2]), Z: uint32(a[3])},
			Block:       abi.Dim3{X: uint32(a[4]), Y: uint32(a[5]), Z: uint32(a[6])},
			SharedBytes: uint32(a[7]),
		}
		return abi.ResultOf(ss.ctx.Launch(f, cfg, ss.args.Blobs[0], s)), nil

	case abi.CallStreamCreate:
		s, err := ss.ctx.StreamCreate(uint32(a[0]), int32(uint32(a[1])))
		if err != nil {
			return abi.ResultOf(err), nil
		}
		ss.res.Word(ss.handles.add(abi.StreamHandle, s, 0))
		return abi.Success, nil

	case abi.CallStreamDestroy, abi.CallStreamSynchronize, abi.CallStreamQuery:
		if c.ID == abi.CallStreamDestroy && a[0] == 0 {
			return abi.ErrInvalidHandle, nil
		}
		s, ok := ss.handles.stream(a[0])
		if !ok {
			return abi.ErrInvalidHandle, nil
		}
		switch c.ID {
		case abi.CallStreamDestroy:
			ss.handles.remove(a[0])
			return abi.ResultOf(s.Destroy()), nil
		case abi.CallStreamQuery:
			if s == nil {
				return abi.ResultOf(ss.ctx.Synchronize()), nil // legacy stream: see docs
			}
			return abi.ResultOf(s.Query()), nil
		}
		if s == nil {
			return abi.ResultOf(ss.ctx.Synchronize()), nil
		}
		return abi.ResultOf(s.Synchronize()), nil

	case abi.CallStreamWaitEvent:
		return ss.streamWaitEvent(a[0], a[1]), nil

	case abi.CallEventCreate:
		ev, err := ss.ctx.EventCreate(uint32(a[0]))
		if err != nil {
			return abi.ResultOf(err), nil
		}
		ss.res.Word(ss.handles.add(abi.EventHandle, ev, 0))
		return abi.Success, nil

	case abi.CallEventRecord:
		return ss.eventRecord(a[0], a[1]), nil

	case abi.CallEventQuery, abi.CallEventSynchronize, abi.CallEventDestroy:
		ev, ok := ss.handles.event(a[0])
		if !ok {
			return abi.ErrInvalidHandle, nil
		}
		switch c.ID {
		case abi.CallEventQuery:
			return abi.ResultOf(ev.Query()), nil
		case abi.CallEventSynchronize:
			return abi.ResultOf(ev.Synchronize()), nil
		}
		ss.handles.remove(a[0])
		return abi.ResultOf(ev.Destroy()), nil

	case abi.CallEventElapsedTime:
		start, ok := ss.handles.event(a[0])
		end, eok := ss.handles.event(a[1])
		if !ok || !eok {
			return abi.ErrInvalidHandle, nil
		}
		ms, err := end.ElapsedSince(start)
		ss.res.Word(uint64(math.Float32bits(ms)))
		return abi.ResultOf(err), nil
	}
	return abi.ErrNotSupported, nil
}

// execScalarAsync runs an async call whose arguments are all scalars
// straight from p, its frame's payload, with a decoder generated for that
// call: handleBuffered's hot path, which skips the general decoding into
// ss.args. It reports false for other calls and for a payload of the
// wrong size, which take the general way through exec1 (as does the first
// frame of each read), with the same checks.
func (ss *session) execScalarAsync(id abi.CallID, p []byte) (abi.Result, bool) {
	switch id {
	case abi.CallMemsetAsync:
		dst, value, elem, count, stream, ok := wire.MemsetD8AsyncArgs(p)
		if !ok {
			return 0, false
		}
		return ss.memset(dst, uint64(value), uint64(elem), count, stream), true
	case abi.CallMemcpyDtoDAsync:
		dst, src, size, stream, ok := wire.MemcpyDtoDAsyncArgs(p)
		if !ok {
			return 0, false
		}
		return ss.memcpyDtoD(dst, src, size, stream), true
	case abi.CallEventRecord:
		ev, stream, ok := wire.EventRecordArgs(p)
		if !ok {
			return 0, false
		}
		return ss.eventRecord(ev, stream), true
	case abi.CallStreamWaitEvent:
		stream, ev, _, ok := wire.StreamWaitEventArgs(p)
		if !ok {
			return 0, false
		}
		return ss.streamWaitEvent(stream, ev), true
	}
	return 0, false
}

// memset runs cuMemsetD8/16/32 and their async forms.
func (ss *session) memset(dst, value, elem, count, stream uint64) abi.Result {
	s, ok := ss.handles.stream(stream)
	if !ok {
		return abi.ErrInvalidHandle
	}
	if elem != 1 && elem != 2 && elem != 4 {
		return abi.ErrInvalidValue
	}
	hi, n := bits.Mul64(count, elem)
	if hi != 0 || dst&(elem-1) != 0 { // elem is a power of two
		return abi.ErrInvalidValue
	}
	if code := ss.checkRange(dst, n); code != abi.Success {
		return code
	}
	return abi.ResultOf(ss.ctx.Memset(dst, uint32(value), uint32(elem), count, s))
}

// memcpyDtoD runs cuMemcpyDtoD and its async form.
func (ss *session) memcpyDtoD(dst, src, size, stream uint64) abi.Result {
	s, ok := ss.handles.stream(stream)
	if !ok {
		return abi.ErrInvalidHandle
	}
	if code := ss.checkRange(dst, size); code != abi.Success {
		return code
	}
	if code := ss.checkRange(src, size); code != abi.Success {
		return code
	}
	return abi.ResultOf(ss.ctx.MemcpyDtoD(dst, src, size, s))
}

func (ss *session) eventRecord(event, stream uint64) abi.Result {
	ev, ok := ss.handles.event(event)
	s, sok := ss.handles.stream(stream)
	if !ok || !sok {
		return abi.ErrInvalidHandle
	}
	return abi.ResultOf(ev.Record(s))
}

func (ss *session) streamWaitEvent(stream, event uint64) abi.Result {
	s, ok := ss.handles.stream(stream)
	ev, eok := ss.handles.event(event)
	if !ok || !eok {
		return abi.ErrInvalidHandle
	}
	if s == nil {
		return abi.ResultOf(ev.Synchronize())
	}
	return abi.ResultOf(s.WaitEvent(ev))
}

// streamArg returns the stream handle at word i, or 0 (the legacy default
// stream) for the synchronous forms, which carry none.
func (ss *session) streamArg(i int) uint64 {
	if i < int(ss.args.NW) {
		return ss.args.Words[i]
	}
	return 0
}

// checkRange checks that [p, p+n) lies in memory the session owns.
func (ss *session) checkRange(p, n uint64) abi.Result {
	if !ss.mem.contains(p, n) {
		return abi.ErrInvalidValue
	}
	return abi.Success
}
