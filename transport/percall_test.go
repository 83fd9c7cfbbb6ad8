package transport

import (
	"bytes"
	"io"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu/hostmem"
	"github.com/kerf-edge/kerf/transport/internal/wire"
)

// These split an async call's cost between the two ends, without a
// socket: what each side spends per call bounds the pipelined rate.

func BenchmarkClientEncodeAsync(b *testing.B) {
	c := &Client{conn: wire.NewConn(struct {
		io.Reader
		io.Writer
	}{nil, io.Discard}), pending: map[uint64]*pending{}, flushc: make(chan struct{}, 1), done: make(chan struct{})}
	c.flushQueued = true // no flusher runs here
	for i := range b.N {
		if err := c.Memset(1<<40+uint64(i%1024)*4, uint32(i), 4, 1, true, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkServerExecAsync(b *testing.B) {
	mem := hostmem.New(1 << 20)
	ctx, _ := mem.Open(0, 0)
	p, _ := ctx.MemAlloc(4096)
	frames := new(bytes.Buffer)
	call := abi.Lookup(abi.CallMemsetAsync)
	for i := range 4096 {
		var v abi.Values
		v.Word(p + uint64(i%1024)*4).Word(uint64(i)).Word(4).Word(1).Word(0)
		frame, err := wire.AppendCall(nil, wire.Header{Type: wire.Call, Call: call.ID, Seq: uint64(i)}, call, &v)
		if err != nil {
			b.Fatal(err)
		}
		frames.Write(frame)
	}
	ss := &session{srv: &Server{}, ctx: ctx, conn: wire.NewConn(struct {
		io.Reader
		io.Writer
	}{&loopReader{b: frames.Bytes()}, io.Discard})}
	ss.mem.insert(memRange{base: p, size: 4096})
	b.ResetTimer()
	// As session.run does: a frame read, then those already buffered.
	for ss.calls.Load() < uint64(b.N) {
		h, pl, err := ss.conn.ReadFrame()
		if err != nil {
			b.Fatal(err)
		}
		if err := ss.handleCall(h, call, pl); err != nil {
			b.Fatal(err)
		}
		if err := ss.handleBuffered(); err != nil || ss.latched != abi.Success {
			b.Fatal(err, ss.latched)
		}
	}
}

// loopReader reads b over and over.
type loopReader struct {
	b   []byte
	off int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.b[r.off:])
		n += c
		r.off = (r.off + c) % len(r.b)
	}
	return n, nil
}
