package transport

import (
	"encoding/binary"
	"math"
	"math/bits"
	"strings"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/transport/internal/wire"
)

// The session's method for each catalogue call, named after the call and
// taking its decoded argument struct (see handlers). Each checks what the
// tenant names against what the session owns before the backend sees it,
// and returns the call's CUDA result, with its results in ss.res. The
// synchronous copies and memset run as their async forms on stream 0,
// the legacy default stream.

func (ss *session) ctxSynchronize(wire.CtxSynchronizeArgs) abi.Result {
	return abi.ResultOf(ss.ctx.Synchronize())
}

func (ss *session) deviceGetAttribute(a wire.DeviceGetAttributeArgs) abi.Result {
	v, err := ss.ctx.Attribute(a.Attrib)
	ss.res.Word(uint64(uint32(v)))
	return abi.ResultOf(err)
}

func (ss *session) memAlloc(a wire.MemAllocArgs) abi.Result {
	if a.Bytesize == 0 {
		return abi.ErrInvalidValue
	}
	if ss.leaseMem != nil {
		// The lease's other sessions draw from the same slice.
		if err := ss.leaseMem.Reserve(a.Bytesize); err != nil {
			code := abi.ResultOf(err)
			ss.errText = strings.TrimPrefix(err.Error(), code.Name()+": ")
			return code
		}
	}
	p, err := ss.ctx.MemAlloc(a.Bytesize)
	if err != nil {
		if ss.leaseMem != nil {
			ss.leaseMem.Release(a.Bytesize)
		}
		return abi.ResultOf(err)
	}
	ss.mem.insert(memRange{base: p, size: a.Bytesize})
	ss.memUsed.Store(ss.mem.used)
	ss.res.Word(p)
	return abi.Success
}

func (ss *session) memFree(a wire.MemFreeArgs) abi.Result {
	before := ss.mem.used
	if !ss.mem.removeAlloc(a.Dptr) {
		return abi.ErrInvalidValue
	}
	if ss.leaseMem != nil {
		ss.leaseMem.Release(before - ss.mem.used)
	}
	ss.memUsed.Store(ss.mem.used)
	return abi.ResultOf(ss.ctx.MemFree(a.Dptr))
}

func (ss *session) memGetInfo(wire.MemGetInfoArgs) abi.Result {
	free, total := ss.ctx.MemInfo()
	if ss.leaseMem != nil {
		free = min(free, ss.leaseMem.Available()) // the lease's other sessions hold part of the slice
	}
	ss.res.Word(free).Word(total)
	return abi.Success
}

// memGetAddressRange answers for a pointer inside one of the session's
// ranges only, with the backend's range cut to that one: a tenant learns
// nothing of memory it does not own.
func (ss *session) memGetAddressRange(a wire.MemGetAddressRangeArgs) abi.Result {
	r, ok := ss.mem.owner(a.Ptr)
	if !ok {
		return abi.ErrNotFound
	}
	base, size, err := ss.ctx.AddressRange(a.Ptr)
	if err != nil {
		return abi.ResultOf(err)
	}
	end, carry := bits.Add64(base, size, 0)
	if carry != 0 {
		end = math.MaxUint64
	}
	base, end = max(base, r.base), min(end, r.base+r.size)
	ss.res.Word(base).Word(end - base).Word(r.id)
	return abi.Success
}

func (ss *session) memcpyHtoD(h wire.Header, a wire.MemcpyHtoDArgs) (abi.Result, error) {
	return ss.memcpyHtoDAsync(h, wire.MemcpyHtoDAsyncArgs{Dst: a.Dst, Size: a.Size})
}

// memcpyHtoDAsync receives the call's bulk data into device memory, in
// stream order. A refused copy still reads the data, to keep the stream
// in step.
func (ss *session) memcpyHtoDAsync(h wire.Header, a wire.MemcpyHtoDAsyncArgs) (abi.Result, error) {
	dst, size := a.Dst, a.Size
	s, ok := ss.handles.stream(a.Stream)
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
}

func (ss *session) memcpyDtoH(h wire.Header, a wire.MemcpyDtoHArgs) (abi.Result, error) {
	return ss.memcpyDtoHAsync(h, wire.MemcpyDtoHAsyncArgs{Src: a.Src, Size: a.Size})
}

// memcpyDtoHAsync sends device memory as the call's bulk data, in stream
// order.
func (ss *session) memcpyDtoHAsync(h wire.Header, a wire.MemcpyDtoHAsyncArgs) (abi.Result, error) {
	src := a.Src
	s, ok := ss.handles.stream(a.Stream)
	if !ok {
		return abi.ErrInvalidHandle, nil
	}
	if code := ss.checkRange(src, a.Size); code != abi.Success {
		return code, nil
	}
	return ss.sendBulk(h, a.Size, func(off uint64, p []byte) error { return ss.ctx.MemcpyDtoH(p, src+off, s) })
}

func (ss *session) memcpyDtoD(a wire.MemcpyDtoDArgs) abi.Result {
	return ss.memcpyDtoDAsync(wire.MemcpyDtoDAsyncArgs{Dst: a.Dst, Src: a.Src, Size: a.Size})
}

// memcpyDtoDAsync copies between two ranges the session owns.
func (ss *session) memcpyDtoDAsync(a wire.MemcpyDtoDAsyncArgs) abi.Result {
	s, ok := ss.handles.stream(a.Stream)
	if !ok {
		return abi.ErrInvalidHandle
	}
	if code := ss.checkRange(a.Dst, a.Size); code != abi.Success {
		return code
	}
	if code := ss.checkRange(a.Src, a.Size); code != abi.Success {
		return code
	}
	return abi.ResultOf(ss.ctx.MemcpyDtoD(a.Dst, a.Src, a.Size, s))
}

func (ss *session) memsetD8(a wire.MemsetD8Args) abi.Result {
	return ss.memset(&wire.MemsetD8AsyncArgs{Dst: a.Dst, Value: a.Value, Elemsize: a.Elemsize, Count: a.Count})
}

func (ss *session) memsetD8Async(a wire.MemsetD8AsyncArgs) abi.Result { return ss.memset(&a) }

// memset sets count elements of elemsize (1, 2 or 4) bytes, at an address
// aligned to elemsize, to value. It takes its arguments by pointer: a
// struct of five fields is kept in memory either way, and the burst
// loop's fast path decodes straight into it.
func (ss *session) memset(a *wire.MemsetD8AsyncArgs) abi.Result {
	s, ok := ss.handles.stream(a.Stream)
	if !ok {
		return abi.ErrInvalidHandle
	}
	elem := a.Elemsize
	if elem != 1 && elem != 2 && elem != 4 {
		return abi.ErrInvalidValue
	}
	hi, n := bits.Mul64(a.Count, uint64(elem))
	if hi != 0 || a.Dst&uint64(elem-1) != 0 { // elem is a power of two
		return abi.ErrInvalidValue
	}
	if code := ss.checkRange(a.Dst, n); code != abi.Success {
		return code
	}
	return abi.ResultOf(ss.ctx.Memset(a.Dst, a.Value, elem, a.Count, s))
}

func (ss *session) moduleLoadData(h wire.Header, a wire.ModuleLoadDataArgs) (abi.Result, error) {
	c := abi.Lookup(abi.CallModuleLoad)
	if a.Size == 0 || a.Size > c.MaxBulk {
		return 0, protoErrorf("%s: image of %d bytes (limit %d)", c.Name, a.Size, c.MaxBulk)
	}
	image := make([]byte, 0, a.Size) // bounded by MaxBulk above
	if _, err := ss.recvBulk(h, a.Size, func(_ uint64, p []byte) error { image = append(image, p...); return nil }); err != nil {
		return 0, err
	}
	m, err := ss.ctx.ModuleLoad(image)
	if err != nil {
		return ss.failed(err), nil
	}
	ss.res.Word(ss.handles.add(abi.ModuleHandle, m, 0))
	return abi.Success, nil
}

// failed records a module load's error for the reply and kerfd's log,
// and returns its CUDA result.
func (ss *session) failed(err error) abi.Result {
	code := abi.ResultOf(err)
	ss.errText = strings.TrimPrefix(err.Error(), code.Name()+": ")
	ss.srv.guards()
	ss.srv.moduleLoadFailed.Log("tenant", ss.tenant.ID, "session", ss.id, "device", ss.device, "result", code.Name(), "err", err)
	return code
}

func (ss *session) moduleUnload(a wire.ModuleUnloadArgs) abi.Result {
	m, ok := ss.handles.module(a.Module)
	if !ok {
		return abi.ErrInvalidHandle
	}
	ss.handles.removeChildren(a.Module)
	ss.handles.remove(a.Module)
	ss.mem.removeModule(a.Module)
	return abi.ResultOf(m.Unload())
}

func (ss *session) moduleGetFunction(a wire.ModuleGetFunctionArgs) abi.Result {
	m, ok := ss.handles.module(a.Module)
	if !ok {
		return abi.ErrInvalidHandle
	}
	f, err := m.Function(a.Name)
	if err != nil {
		return abi.ResultOf(err)
	}
	ss.res.Word(ss.handles.add(abi.FunctionHandle, f, a.Module))
	return abi.Success
}

func (ss *session) moduleGetGlobal(a wire.ModuleGetGlobalArgs) abi.Result {
	m, ok := ss.handles.module(a.Module)
	if !ok {
		return abi.ErrInvalidHandle
	}
	p, size, err := m.Global(a.Name)
	if err != nil {
		return abi.ResultOf(err)
	}
	if !ss.mem.contains(p, size) {
		ss.mem.insert(memRange{base: p, size: size, module: a.Module})
	}
	ss.res.Word(p).Word(size)
	return abi.Success
}

func (ss *session) funcGetAttribute(a wire.FuncGetAttributeArgs) abi.Result {
	f, ok := ss.handles.function(a.Function)
	if !ok {
		return abi.ErrInvalidHandle
	}
	v, err := f.Attribute(a.Attrib)
	ss.res.Word(uint64(uint32(v)))
	return abi.ResultOf(err)
}

// ctxReset replaces the session's context with a fresh one of the same
// device and memory limit. Everything of the old one goes with it; handle
// numbers go on from where they were, so no stale handle names a new
// object. The swap holds the server's lock, under which other goroutines
// read the session's context (Sessions, SetMemLimit).
func (ss *session) ctxReset(wire.DevicePrimaryCtxResetArgs) abi.Result {
	_ = ss.ctx.Synchronize() // its sticky error goes with it
	used := ss.mem.used
	ss.mem = memTable{lastID: ss.mem.lastID}
	ss.handles = handleTable{next: ss.handles.next}
	ss.vmt = vmTable{}
	ss.srv.mu.Lock()
	_ = ss.ctx.Close()
	ctx, err := ss.srv.Backend.Open(ss.device, ss.openLimit)
	if err == nil {
		ss.setContext(ctx)
	}
	ss.srv.mu.Unlock()
	if ss.leaseMem != nil {
		ss.leaseMem.Release(used)
	}
	ss.memUsed.Store(0)
	if err != nil {
		// Only the closed context is left, which refuses every call: the
		// session ends after this reply.
		ss.closeStream()
		return abi.ResultOf(err)
	}
	return abi.Success
}

// ctxSetLimit sets a limit of the session's context where its backend
// has it; a backend without limits refuses them all.
func (ss *session) ctxSetLimit(a wire.CtxSetLimitArgs) abi.Result {
	ls, ok := ss.ctx.(gpu.LimitSetter)
	if !ok {
		return abi.ErrUnsupportedLimit
	}
	return abi.ResultOf(ls.SetLimit(a.Limit, a.Value))
}

func (ss *session) funcSetAttribute(a wire.FuncSetAttributeArgs) abi.Result {
	f, ok := ss.handles.function(a.Function)
	if !ok {
		return abi.ErrInvalidHandle
	}
	return abi.ResultOf(f.SetAttribute(a.Attrib, int32(a.Value)))
}

func (ss *session) funcGetParamInfo(a wire.FuncGetParamInfoArgs) abi.Result {
	f, ok := ss.handles.function(a.Function)
	if !ok {
		return abi.ErrInvalidHandle
	}
	params, err := f.Params()
	if err != nil {
		return abi.ResultOf(err)
	}
	if len(params) > int(abi.Lookup(abi.CallFuncGetParamLayout).Results[0].Max)/8 {
		return abi.ErrNotSupported
	}
	layout := make([]byte, 0, 8*len(params))
	for _, p := range params {
		layout = binary.LittleEndian.AppendUint32(layout, p.Offset)
		layout = binary.LittleEndian.AppendUint32(layout, p.Size)
	}
	ss.res.Blob(layout)
	return abi.Success
}

func (ss *session) launchKernel(a wire.LaunchKernelArgs) abi.Result {
	f, ok := ss.handles.function(a.Function)
	s, sok := ss.handles.stream(a.Stream)
	if !ok || !sok {
		return abi.ErrInvalidHandle
	}
	cfg := abi.LaunchConfig{
		Grid:        abi.Dim3{X: a.GridX, Y: a.GridY, Z: a.GridZ},
		Block:       abi.Dim3{X: a.BlockX, Y: a.BlockY, Z: a.BlockZ},
		SharedBytes: a.SharedMemBytes,
	}
	return abi.ResultOf(ss.ctx.Launch(f, cfg, a.Params, s))
}

func (ss *session) streamCreate(a wire.StreamCreateArgs) abi.Result {
	s, err := ss.ctx.StreamCreate(a.Flags, int32(a.Priority))
	if err != nil {
		return abi.ResultOf(err)
	}
	ss.res.Word(ss.handles.add(abi.StreamHandle, s, 0))
	return abi.Success
}

func (ss *session) streamDestroy(a wire.StreamDestroyArgs) abi.Result {
	if a.Stream == 0 {
		return abi.ErrInvalidHandle
	}
	s, ok := ss.handles.stream(a.Stream)
	if !ok {
		return abi.ErrInvalidHandle
	}
	ss.handles.remove(a.Stream)
	return abi.ResultOf(s.Destroy())
}

func (ss *session) streamSynchronize(a wire.StreamSynchronizeArgs) abi.Result {
	return ss.onStream(a.Stream, gpu.Stream.Synchronize)
}

func (ss *session) streamQuery(a wire.StreamQueryArgs) abi.Result {
	return ss.onStream(a.Stream, gpu.Stream.Query)
}

// onStream runs op on the session's stream h. On the legacy stream 0 it
// waits for the whole context instead, even to query it (see docs).
func (ss *session) onStream(h uint64, op func(gpu.Stream) error) abi.Result {
	s, ok := ss.handles.stream(h)
	if !ok {
		return abi.ErrInvalidHandle
	}
	if s == nil {
		return abi.ResultOf(ss.ctx.Synchronize())
	}
	return abi.ResultOf(op(s))
}

func (ss *session) streamWaitEvent(a wire.StreamWaitEventArgs) abi.Result {
	s, ok := ss.handles.stream(a.Stream)
	ev, eok := ss.handles.event(a.Event)
	if !ok || !eok {
		return abi.ErrInvalidHandle
	}
	if s == nil {
		return abi.ResultOf(ev.Synchronize())
	}
	return abi.ResultOf(s.WaitEvent(ev))
}

func (ss *session) eventCreate(a wire.EventCreateArgs) abi.Result {
	ev, err := ss.ctx.EventCreate(a.Flags)
	if err != nil {
		return abi.ResultOf(err)
	}
	ss.res.Word(ss.handles.add(abi.EventHandle, ev, 0))
	return abi.Success
}

func (ss *session) eventRecord(a wire.EventRecordArgs) abi.Result {
	ev, ok := ss.handles.event(a.Event)
	s, sok := ss.handles.stream(a.Stream)
	if !ok || !sok {
		return abi.ErrInvalidHandle
	}
	return abi.ResultOf(ev.Record(s))
}

func (ss *session) eventQuery(a wire.EventQueryArgs) abi.Result {
	return ss.onEvent(a.Event, gpu.Event.Query)
}

func (ss *session) eventSynchronize(a wire.EventSynchronizeArgs) abi.Result {
	return ss.onEvent(a.Event, gpu.Event.Synchronize)
}

// onEvent runs op on the session's event h.
func (ss *session) onEvent(h uint64, op func(gpu.Event) error) abi.Result {
	ev, ok := ss.handles.event(h)
	if !ok {
		return abi.ErrInvalidHandle
	}
	return abi.ResultOf(op(ev))
}

func (ss *session) eventElapsedTime(a wire.EventElapsedTimeArgs) abi.Result {
	start, ok := ss.handles.event(a.Start)
	end, eok := ss.handles.event(a.End)
	if !ok || !eok {
		return abi.ErrInvalidHandle
	}
	ms, err := end.ElapsedSince(start)
	ss.res.Word(uint64(math.Float32bits(ms)))
	return abi.ResultOf(err)
}

func (ss *session) eventDestroy(a wire.EventDestroyArgs) abi.Result {
	ev, ok := ss.handles.event(a.Event)
	if !ok {
		return abi.ErrInvalidHandle
	}
	ss.handles.remove(a.Event)
	return abi.ResultOf(ev.Destroy())
}

// checkRange checks that [p, p+n) lies in memory the session owns.
func (ss *session) checkRange(p, n uint64) abi.Result {
	if !ss.mem.contains(p, n) {
		return abi.ErrInvalidValue
	}
	return abi.Success
}
