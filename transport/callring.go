package transport

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"
)

// The call ring carries a local session's client-to-server byte stream
// from protocol version 2 on: the client copies its frames into shared
// memory and the server copies them out, so a pipelined call costs no
// system call and no kernel copy. The socket then carries, from client to
// server, only doorbell bytes: the server waits on it when the ring is
// empty, so an idle session holds no thread and still sees its client
// leave. Replies keep to the socket.
//
// Positions only grow; a byte lives at its position mod callRingSize. The
// server keeps its read position to itself and checks the client's write
// position against it, and it copies bytes out before parsing them, so a
// tenant that scribbles on the ring can only break its own stream.

// callRingSize is the ring's data size.
const callRingSize = 1 << 20

// Offsets of the ring's control words in the header page, one cache line
// each, after the slot states (at most 32 slot states fit below them).
const (
	ringWritePos   = 2048       // u64, written by the client
	ringReadPos    = 2048 + 64  // u64, written by the server
	ringReaderIdle = 2048 + 128 // u32: 1 while the server waits on the socket
	ringWriterFull = 2048 + 192 // u32: 1 while the client waits for space
)

// ringWriteWait is how long the client sleeps at a time on a full ring
// before it looks whether the session ended.
const ringWriteWait = 10 * time.Millisecond

var errRingClosed = errors.New("session ended while the call ring was full")

func (r *shmRing) ringData() []byte { return r.mem[r.ringOff : r.ringOff+callRingSize] }

// callRingWriter is the client's end: an io.Writer for wire.Conn.
type callRingWriter struct {
	ring *shmRing
	pos  uint64
	bell io.Writer       // the socket
	done <-chan struct{} // closed when the session ends
}

func (w *callRingWriter) Write(p []byte) (int, error) {
	total := len(p)
	data := w.ring.ringData()
	for len(p) > 0 {
		free := callRingSize - (w.pos - w.ring.load64(ringReadPos))
		if free == 0 {
			if err := w.waitSpace(); err != nil {
				return total - len(p), err
			}
			continue
		}
		chunk := p[:min(uint64(len(p)), free)]
		at := int(w.pos % callRingSize)
		if n := copy(data[at:], chunk); n < len(chunk) {
			copy(data, chunk[n:])
		}
		w.pos += uint64(len(chunk))
		w.ring.store64(ringWritePos, w.pos)
		p = p[len(chunk):]
		if w.ring.swapState(ringReaderIdle, 0) == 1 {
			if _, err := w.bell.Write([]byte{1}); err != nil {
				return total - len(p), err
			}
		}
	}
	return total, nil
}

// waitSpace waits until the server frees part of the ring.
func (w *callRingWriter) waitSpace() error {
	full := func() bool { return w.pos-w.ring.load64(ringReadPos) >= callRingSize }
	for spins := 0; full(); spins++ {
		select {
		case <-w.done:
			return errRingClosed
		default:
		}
		if spins < 16 {
			runtime.Gosched()
			continue
		}
		w.ring.storeState(ringWriterFull, 1)
		if full() {
			w.ring.futexWait(ringWriterFull, 1, ringWriteWait)
		}
	}
	return nil
}

// callRingReader is the server's end: an io.Reader for wire.Conn.
type callRingReader struct {
	ring *shmRing
	pos  uint64
	bell io.Reader // the socket
	dong [64]byte
}

func (rd *callRingReader) Read(p []byte) (int, error) {
	data := rd.ring.ringData()
	for {
		avail := rd.ring.load64(ringWritePos) - rd.pos
		if avail > callRingSize {
			return 0, protoErrorf("call ring: write position is %d bytes past the read position (ring of %d)", avail, callRingSize)
		}
		if avail > 0 {
			n := min(uint64(len(p)), avail)
			at := int(rd.pos % callRingSize)
			if k := copy(p[:n], data[at:]); uint64(k) < n {
				copy(p[k:n], data)
			}
			rd.pos += n
			rd.ring.store64(ringReadPos, rd.pos)
			if rd.ring.swapState(ringWriterFull, 0) == 1 {
				rd.ring.futexWake(ringWriterFull)
			}
			return int(n), nil
		}
		// Say we wait, then look again: the client either sees the flag
		// and rings, or wrote before we looked.
		rd.ring.storeState(ringReaderIdle, 1)
		if rd.ring.load64(ringWritePos) != rd.pos {
			continue
		}
		if _, err := rd.bell.Read(rd.dong[:]); err != nil {
			if rd.ring.load64(ringWritePos) != rd.pos {
				continue // what the client wrote before it left
			}
			return 0, err
		}
	}
}

// checkRingGeometry says whether the slot states fit below the ring's
// control words.
func checkRingGeometry(slots int) error {
	if 2*slots*shmStateSize > ringWritePos {
		return fmt.Errorf("%d shm slots leave no room for the call ring's control words", slots)
	}
	return nil
}
