package transport

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/transport/internal/wire"
)

// Typed helpers over Call, one per catalogue entry the shim and tools use
// most. Each is a thin shaping of arguments; validation happens in the
// catalogue codec and on the server. The async calls of scalars encode
// their frame in place with their generated encoder (see asyncFrame), the
// hot path of a pipelined burst.

// MemAlloc allocates size bytes of device memory.
func (c *Client) MemAlloc(size uint64) (uint64, error) {
	var res abi.Values
	err := c.Call(abi.CallMemAlloc, vals1(size), &res)
	return res.Words[0], err
}

// MemFree frees an allocation.
func (c *Client) MemFree(p uint64) error { return c.Call(abi.CallMemFree, vals1(p), nil) }

// MemGetInfo returns the slice's free and total bytes.
func (c *Client) MemGetInfo() (free, total uint64, err error) {
	var res abi.Values
	err = c.Call(abi.CallMemGetInfo, nil, &res)
	return res.Words[0], res.Words[1], err
}

// MemGetAddressRange returns the base and size of the caller's
// allocation or module global that contains p, and its buffer ID, unique
// within the session.
func (c *Client) MemGetAddressRange(p uint64) (base, size, bufferID uint64, err error) {
	var res abi.Values
	err = c.Call(abi.CallMemGetAddressRange, vals1(p), &res)
	return res.Words[0], res.Words[1], res.Words[2], err
}

// MemcpyHtoD copies src to device address dst.
func (c *Client) MemcpyHtoD(dst uint64, src []byte) error {
	return c.CallIn(abi.CallMemcpyHtoD, vals1(dst).Word(uint64(len(src))), src, nil)
}

// MemcpyHtoDAsync queues a copy of src to dst on stream; src may be reused
// when it returns.
func (c *Client) MemcpyHtoDAsync(dst uint64, src []byte, stream uint64) error {
	return c.CallIn(abi.CallMemcpyHtoDAsync, vals1(dst).Word(uint64(len(src))).Word(stream), src, nil)
}

// MemcpyDtoH copies from device address src into dst.
func (c *Client) MemcpyDtoH(dst []byte, src uint64) error {
	return c.CallOut(abi.CallMemcpyDtoH, vals1(src).Word(uint64(len(dst))), dst, nil)
}

// MemcpyDtoHAsync queues a copy into dst, which must stay valid until a
// later synchronizing call returns.
func (c *Client) MemcpyDtoHAsync(dst []byte, src uint64, stream uint64) error {
	return c.CallOut(abi.CallMemcpyDtoHAsync, vals1(src).Word(uint64(len(dst))).Word(stream), dst, nil)
}

// MemcpyDtoD copies size bytes between device addresses.
func (c *Client) MemcpyDtoD(dst, src, size uint64) error {
	return c.Call(abi.CallMemcpyDtoD, vals1(dst).Word(src).Word(size), nil)
}

// MemcpyDtoDAsync queues a copy of size bytes between device addresses on
// stream.
func (c *Client) MemcpyDtoDAsync(dst, src, size, stream uint64) error {
	a := wire.MemcpyDtoDAsyncArgs{Dst: dst, Src: src, Size: size, Stream: stream}
	if f, seq := c.asyncFrame(wire.MemcpyDtoDAsyncFrame); f != nil {
		a.PutCall(f, seq)
		return c.commitAsync(wire.MemcpyDtoDAsyncFrame)
	}
	return c.Call(abi.CallMemcpyDtoDAsync, vals1(dst).Word(src).Word(size).Word(stream), nil)
}

// Memset sets count elements of elemSize bytes at dst, on stream if async.
func (c *Client) Memset(dst uint64, value uint32, elemSize uint32, count uint64, async bool, stream uint64) error {
	if async {
		// Built before the frame is reserved, and used after, a holds the
		// arguments across that call in place of their spills. Set field
		// by field, it is built in place: a composite literal would go
		// through a copy, as a's address is taken.
		var a wire.MemsetD8AsyncArgs
		a.Dst, a.Value, a.Elemsize, a.Count, a.Stream = dst, value, elemSize, count, stream
		if f, seq := c.asyncFrame(wire.MemsetD8AsyncFrame); f != nil {
			a.PutCall(f, seq)
			return c.commitAsync(wire.MemsetD8AsyncFrame)
		}
		return c.Call(abi.CallMemsetAsync, vals1(a.Dst).Word(uint64(a.Value)).Word(uint64(a.Elemsize)).Word(a.Count).Word(a.Stream), nil)
	}
	return c.Call(abi.CallMemset, vals1(dst).Word(uint64(value)).Word(uint64(elemSize)).Word(count), nil)
}

// ModuleLoad loads a PTX, cubin or fatbin image.
func (c *Client) ModuleLoad(image []byte) (uint64, error) {
	var res abi.Values
	err := c.CallIn(abi.CallModuleLoad, vals1(uint64(len(image))), image, &res)
	return res.Words[0], err
}

// ModuleGetFunction looks up a kernel.
func (c *Client) ModuleGetFunction(module uint64, name string) (uint64, error) {
	var res abi.Values
	err := c.Call(abi.CallModuleGetFunction, vals1(module).Blob([]byte(name)), &res)
	return res.Words[0], err
}

// FuncParams returns a kernel's parameter layout.
func (c *Client) FuncParams(fn uint64) ([]abi.ParamInfo, error) {
	var res abi.Values
	if err := c.Call(abi.CallFuncGetParamLayout, vals1(fn), &res); err != nil {
		return nil, err
	}
	b := res.Blobs[0]
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("parameter layout of %d bytes", len(b))
	}
	out := make([]abi.ParamInfo, len(b)/8)
	for i := range out {
		out[i] = abi.ParamInfo{Offset: binary.LittleEndian.Uint32(b[8*i:]), Size: binary.LittleEndian.Uint32(b[8*i+4:])}
	}
	return out, nil
}

// LaunchKernel queues a kernel launch.
func (c *Client) LaunchKernel(fn uint64, cfg abi.LaunchConfig, stream uint64, params []byte) error {
	return c.Call(abi.CallLaunchKernel, launchValues(fn, cfg, stream, params), nil)
}

// LaunchCooperativeKernel launches a kernel whose blocks all run at once;
// it waits for kerfd to accept the launch, not for the kernel.
func (c *Client) LaunchCooperativeKernel(fn uint64, cfg abi.LaunchConfig, stream uint64, params []byte) error {
	return c.Call(abi.CallLaunchCooperativeKernel, launchValues(fn, cfg, stream, params), nil)
}

func launchValues(fn uint64, cfg abi.LaunchConfig, stream uint64, params []byte) *abi.Values {
	v := vals1(fn).Word(uint64(cfg.Grid.X)).Word(uint64(cfg.Grid.Y)).Word(uint64(cfg.Grid.Z))
	v.Word(uint64(cfg.Block.X)).Word(uint64(cfg.Block.Y)).Word(uint64(cfg.Block.Z))
	return v.Word(uint64(cfg.SharedBytes)).Word(stream).Blob(params)
}

// StreamCreate creates a stream.
func (c *Client) StreamCreate(flags uint32) (uint64, error) {
	var res abi.Values
	err := c.Call(abi.CallStreamCreate, vals1(uint64(flags)).Word(0), &res)
	return res.Words[0], err
}

// StreamSynchronize waits for a stream (0: the legacy default stream).
func (c *Client) StreamSynchronize(stream uint64) error {
	return c.Call(abi.CallStreamSynchronize, vals1(stream), nil)
}

// Synchronize waits for all of the context's work.
func (c *Client) Synchronize() error { return c.Call(abi.CallCtxSynchronize, nil, nil) }

// EventCreate creates an event.
func (c *Client) EventCreate(flags uint32) (uint64, error) {
	var res abi.Values
	err := c.Call(abi.CallEventCreate, vals1(uint64(flags)), &res)
	return res.Words[0], err
}

// EventRecord queues an event record on stream.
func (c *Client) EventRecord(ev, stream uint64) error {
	a := wire.EventRecordArgs{Event: ev, Stream: stream}
	if f, seq := c.asyncFrame(wire.EventRecordFrame); f != nil {
		a.PutCall(f, seq)
		return c.commitAsync(wire.EventRecordFrame)
	}
	return c.Call(abi.CallEventRecord, vals1(ev).Word(stream), nil)
}

// StreamWaitEvent makes later work on stream wait for ev (stream 0: the
// legacy default stream).
func (c *Client) StreamWaitEvent(stream, ev uint64, flags uint32) error {
	a := wire.StreamWaitEventArgs{Stream: stream, Event: ev, Flags: flags}
	if f, seq := c.asyncFrame(wire.StreamWaitEventFrame); f != nil {
		a.PutCall(f, seq)
		return c.commitAsync(wire.StreamWaitEventFrame)
	}
	return c.Call(abi.CallStreamWaitEvent, vals1(stream).Word(ev).Word(uint64(flags)), nil)
}

// EventElapsedTime returns the milliseconds between two events.
func (c *Client) EventElapsedTime(start, end uint64) (float32, error) {
	var res abi.Values
	err := c.Call(abi.CallEventElapsedTime, vals1(start).Word(end), &res)
	return math.Float32frombits(uint32(res.Words[0])), err
}

func vals1(w uint64) *abi.Values { v := &abi.Values{}; return v.Word(w) }
