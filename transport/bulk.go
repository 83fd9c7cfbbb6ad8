package transport

import (
	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/transport/internal/wire"
)

// shmMin is the smallest transfer that goes through shared memory on the
// local path; smaller ones travel inline, where one write is cheaper.
const shmMin = 64 << 10

// recvBulk consumes the size bytes of bulk payload that follow call h,
// handing each chunk to sink (if non-nil) at its offset. After sink fails
// it is not called again, but the payload is still consumed so the stream
// stays in step. It returns sink's first error as a CUDA result, and a
// non-nil error when the stream broke or the peer broke the protocol.
func (ss *session) recvBulk(h wire.Header, size uint64, sink func(off uint64, p []byte) error) (abi.Result, error) {
	var off uint64
	code := abi.Success
	for off < size {
		dh, err := ss.conn.ReadHeader()
		if err != nil {
			return 0, err
		}
		if dh.Seq != h.Seq || dh.Call != h.Call {
			return 0, protoErrorf("%s frame for call %d during transfer of call %d", dh.Type, dh.Seq, h.Seq)
		}
		var p []byte
		slot := -1
		switch dh.Type {
		case wire.Data:
			if dh.Len == 0 || uint64(dh.Len) > size-off {
				return 0, protoErrorf("data frame of %d bytes with %d left", dh.Len, size-off)
			}
			if p, err = ss.conn.ReadPayload(dh); err != nil {
				return 0, err
			}
		case wire.ShmData:
			if slot, p, err = ss.readShmChunk(dh, ringUp); err != nil {
				return 0, err
			}
			if uint64(len(p)) > size-off {
				return 0, protoErrorf("shm chunk of %d bytes with %d left", len(p), size-off)
			}
		default:
			return 0, protoErrorf("%s frame during a transfer", dh.Type)
		}
		if sink != nil && code == abi.Success {
			code = abi.ResultOf(sink(off, p))
		}
		if slot >= 0 {
			ss.peer.Shm.release(ringUp, slot)
		}
		off += uint64(len(p))
	}
	ss.bytesIn.Add(size)
	return code, nil
}

// readShmChunk decodes a ShmData reference (u32 slot, u32 length) and
// returns the referenced bytes of the given ring half.
func (ss *session) readShmChunk(h wire.Header, half ringHalf) (int, []byte, error) {
	if ss.peer.Shm == nil {
		return 0, nil, protoErrorf("shm data on a stream without shared memory")
	}
	p, err := ss.conn.ReadPayload(h)
	if err != nil {
		return 0, nil, err
	}
	slot, n, err := decodeShmRef(p, ss.peer.Shm)
	if err != nil {
		return 0, nil, &protocolError{msg: err.Error()}
	}
	return slot, ss.peer.Shm.slot(half, slot)[:n], nil
}

// sendBulk sends size bytes produced by source as data frames (or through
// shared memory on the local path) ahead of the call's reply. A source
// error stops the transfer; the result carries its code.
func (ss *session) sendBulk(h wire.Header, size uint64, source func(off uint64, p []byte) error) (abi.Result, error) {
	shm := ss.peer.Shm
	useShm := shm != nil && size >= shmMin
	var ref [8]byte
	for off := uint64(0); off < size; {
		if useShm {
			slot, err := shm.acquire(ringDown, ss.conn.Flush)
			if err != nil {
				return 0, err
			}
			buf := shm.slot(ringDown, slot)
			n := min(uint64(len(buf)), size-off)
			if err := source(off, buf[:n]); err != nil {
				shm.release(ringDown, slot)
				return abi.ResultOf(err), nil
			}
			if err := ss.conn.WriteFrame(wire.Header{Type: wire.ShmData, Call: h.Call, Seq: h.Seq}, shmRef(&ref, slot, int(n))); err != nil {
				return 0, err
			}
			if err := ss.conn.Flush(); err != nil {
				return 0, err
			}
			off += n
			continue
		}
		if ss.chunk == nil {
			ss.chunk = make([]byte, abi.BulkChunk)
		}
		n := min(uint64(len(ss.chunk)), size-off)
		buf := ss.chunk[:n]
		if err := source(off, buf); err != nil {
			return abi.ResultOf(err), nil
		}
		if err := ss.conn.WriteFrame(wire.Header{Type: wire.Data, Call: h.Call, Seq: h.Seq}, buf); err != nil {
			return 0, err
		}
		off += n
	}
	ss.bytesOut.Add(size)
	return abi.Success, nil
}
