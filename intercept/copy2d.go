package main

import (
	"math/bits"

	"github.com/kerf-edge/kerf/abi"
)

// Pitched, 2D and 3D copies and 2D memsets. Each is split into the
// linear copies and memsets of the catalogue, one per row (or one per
// run of rows that lie back to back at both ends), so kerfd checks every
// row against the session's own allocations as it checks any copy.

// The CUmemorytype values of a copy's ends beyond host and device.
const (
	memoryTypeArray   = 3
	memoryTypeUnified = 4
)

// pitchAlign is the row pitch cuMemAllocPitch pads rows to, as the
// NVIDIA driver does.
const pitchAlign = 512

// copyEnd is one end of a CUDA_MEMCPY2D or CUDA_MEMCPY3D.
type copyEnd struct {
	x, y, z uint64
	memType uint32
	host    func(off, n uint64) ([]byte, bool) // views the program's memory at the end's host pointer
	hostNil bool
	device  uint64
	pitch   uint64
	height  uint64  // rows per slice (3D only)
	array   uintptr // the program's CUarray, for an array end
}

// copy3D is a 2D copy (depth 1) or a 3D one.
type copy3D struct {
	src, dst             copyEnd
	width, height, depth uint64
}

// resolve turns a unified end into a host or device one, by the buffer
// its address is in.
func (e *copyEnd) resolve(addr uint64) {
	if e.memType != memoryTypeUnified {
		return
	}
	if info, res := pointerLookup(addr); res == abi.Success && info.memType == memoryTypeDevice {
		e.memType = memoryTypeDevice
		e.device = addr
		return
	}
	e.memType = memoryTypeHost
}

// arrayEnd turns an array end into the device end of the array's
// memory, after checking that c's region lies inside the array.
func (e *copyEnd) arrayEnd(dv *device, c *copy3D) Result {
	o, res := arrayOf(e.array)
	if res != abi.Success {
		return res
	}
	if o.dev != dv {
		return abi.ErrInvalidValue
	}
	a := o.array
	xEnd, c1 := bits.Add64(e.x, c.width, 0)
	yEnd, c2 := bits.Add64(e.y, c.height, 0)
	zEnd, c3 := bits.Add64(e.z, c.depth, 0)
	if c1|c2|c3 != 0 || xEnd > a.pitch || yEnd > a.rows() || zEnd > a.slices() {
		return abi.ErrInvalidValue
	}
	e.memType, e.device, e.pitch, e.height = memoryTypeDevice, a.ptr, a.pitch, a.rows()
	return abi.Success
}

// offset returns the byte offset of row y of slice z, column x, with
// uint64 overflow reported.
func (e *copyEnd) offset(y, z uint64) (uint64, bool) {
	hi, rows := bits.Mul64(z+e.z, e.height)
	if hi != 0 {
		return 0, false
	}
	rows, c := bits.Add64(rows, y+e.y, 0)
	if c != 0 {
		return 0, false
	}
	hi, off := bits.Mul64(rows, e.pitch)
	if hi != 0 {
		return 0, false
	}
	off, c = bits.Add64(off, e.x, 0)
	return off, c == 0
}

// memcpy3D runs c in stream (ordered after its work; the synchronous
// forms pass async false and return once the copy is done).
func memcpy3D(c *copy3D, addrSrc, addrDst uint64, stream uintptr, async bool) Result {
	dv, s, res := streamFor(stream)
	if res != abi.Success {
		return res
	}
	if res := c.check(dv, addrSrc, addrDst); res != abi.Success {
		return res
	}
	if async {
		return submit(stream, dv, s, nodeMemcpy, func(dv *device, s uint64) Result { return c.run(dv, s, true) })
	}
	return c.run(dv, s, false)
}

// check resolves c's unified ends by their addresses (an array end to
// its memory on dv) and checks its shape.
func (c *copy3D) check(dv *device, addrSrc, addrDst uint64) Result {
	c.src.resolve(addrSrc)
	c.dst.resolve(addrDst)
	for _, e := range []*copyEnd{&c.src, &c.dst} {
		switch e.memType {
		case memoryTypeArray:
			if res := e.arrayEnd(dv, c); res != abi.Success {
				return res
			}
		case memoryTypeHost, memoryTypeDevice:
		default:
			return abi.ErrInvalidValue
		}
		if e.memType == memoryTypeHost && e.hostNil {
			return abi.ErrInvalidValue
		}
		if (c.height > 1 || c.depth > 1) && e.pitch < e.x+c.width {
			return abi.ErrInvalidValue
		}
	}
	return abi.Success
}

// run issues c's rows into stream s of dv.
func (c *copy3D) run(dv *device, s uint64, async bool) Result {
	if c.width == 0 || c.height == 0 || c.depth == 0 {
		return abi.Success
	}
	if res := toDevice(dv); res != abi.Success {
		return res
	}
	// Rows that lie back to back at both ends go as one copy.
	rows, run := c.height, c.width
	if c.src.pitch == c.width && c.dst.pitch == c.width {
		hi, n := bits.Mul64(c.width, c.height)
		if hi != 0 {
			return abi.ErrInvalidValue
		}
		rows, run = 1, n
	}
	if c.src.memType == memoryTypeHost && c.dst.memType == memoryTypeHost {
		// Host to host: after the stream's earlier work, on this thread.
		if err := dv.cl.StreamSynchronize(s); err != nil {
			return abi.ResultOf(err)
		}
	}
	for z := range c.depth {
		for y := range rows {
			so, ok1 := c.src.offset(y, z)
			do, ok2 := c.dst.offset(y, z)
			if !ok1 || !ok2 {
				return abi.ErrInvalidValue
			}
			if res := copyRow(dv, c, so, do, run, s, async); res != abi.Success {
				return res
			}
		}
	}
	return abi.Success
}

// copyRow copies n bytes from offset so of c's source to offset do of
// its destination.
func copyRow(dv *device, c *copy3D, so, do, n uint64, s uint64, async bool) Result {
	var err error
	switch {
	case c.src.memType == memoryTypeHost && c.dst.memType == memoryTypeDevice:
		b, ok := c.src.host(so, n)
		if !ok {
			return abi.ErrInvalidValue
		}
		if async {
			err = dv.cl.MemcpyHtoDAsync(c.dst.device+do, b, s)
		} else {
			err = dv.cl.MemcpyHtoD(c.dst.device+do, b)
		}
	case c.src.memType == memoryTypeDevice && c.dst.memType == memoryTypeHost:
		b, ok := c.dst.host(do, n)
		if !ok {
			return abi.ErrInvalidValue
		}
		if async {
			err = dv.cl.MemcpyDtoHAsync(b, c.src.device+so, s)
		} else {
			err = dv.cl.MemcpyDtoH(b, c.src.device+so)
		}
	case c.src.memType == memoryTypeDevice && c.dst.memType == memoryTypeDevice:
		if async {
			err = dv.cl.MemcpyDtoDAsync(c.dst.device+do, c.src.device+so, n, s)
		} else {
			err = dv.cl.MemcpyDtoD(c.dst.device+do, c.src.device+so, n)
		}
	default:
		src, ok1 := c.src.host(so, n)
		dst, ok2 := c.dst.host(do, n)
		if !ok1 || !ok2 {
			return abi.ErrInvalidValue
		}
		copy(dst, src)
	}
	return abi.ResultOf(err)
}

// memsetD2D sets height rows of width elements of elemSize bytes, pitch
// bytes apart, to value.
func memsetD2D(dst, pitch uint64, value, elemSize uint32, width, height uint64, stream uintptr, async bool) Result {
	dv, s, res := streamFor(stream)
	if res != abi.Success {
		return res
	}
	work, res := memsetWork(dst, pitch, value, elemSize, width, height, async)
	switch {
	case res != abi.Success:
		return res
	case !async:
		return work(dv, s)
	}
	return submit(stream, dv, s, nodeMemset, work)
}

// memsetWork checks a 2D memset; the work it returns issues its rows.
func memsetWork(dst, pitch uint64, value, elemSize uint32, width, height uint64, async bool) (streamWork, Result) {
	hi, rowBytes := bits.Mul64(width, uint64(elemSize))
	if hi != 0 || height > 1 && pitch < rowBytes {
		return nil, abi.ErrInvalidValue
	}
	return func(dv *device, s uint64) Result {
		return memsetRows(dv, s, dst, pitch, value, elemSize, width, height, async)
	}, abi.Success
}

func memsetRows(dv *device, s uint64, dst, pitch uint64, value, elemSize uint32, width, height uint64, async bool) Result {
	rowBytes := width * uint64(elemSize) // checked by memsetWork
	if width == 0 || height == 0 {
		return abi.Success
	}
	if res := toDevice(dv); res != abi.Success {
		return res
	}
	rows, count := height, width
	if pitch == rowBytes {
		if hi, _ := bits.Mul64(width, height); hi != 0 {
			return abi.ErrInvalidValue
		}
		rows, count = 1, width*height
	}
	for y := range rows {
		hi, off := bits.Mul64(y, pitch)
		at, c := bits.Add64(dst, off, 0)
		if hi != 0 || c != 0 {
			return abi.ErrInvalidValue
		}
		if err := dv.cl.Memset(at, value, elemSize, count, async, s); err != nil {
			return abi.ResultOf(err)
		}
	}
	return abi.Success
}

// memAllocPitch allocates height rows of width bytes, each padded to
// pitchAlign, for elements of 4, 8 or 16 bytes.
func memAllocPitch(width, height uint64, elemSize uint32) (ptr, pitch uint64, res Result) {
	if width == 0 || height == 0 || elemSize != 4 && elemSize != 8 && elemSize != 16 {
		return 0, 0, abi.ErrInvalidValue
	}
	pitch, c := bits.Add64(width, pitchAlign-1, 0)
	pitch &^= pitchAlign - 1
	hi, size := bits.Mul64(pitch, height)
	if c != 0 || hi != 0 {
		return 0, 0, abi.ErrOutOfMemory
	}
	ptr, res = memAlloc(size)
	return ptr, pitch, res
}
