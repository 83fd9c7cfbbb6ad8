package transport

import (
	"bytes"
	"io"
	"testing"

	"github.com/kerf-edge/kerf/transport/abi"
	"github.com/kerf-edge/kerf/transport/hostmem"
	"github.com/kerf-edge/kerf/transport/internal/wire"
)

// These split an async call's cost between the two ends, without a
// socket: what each side spends per call bounds the pipelined rate.

func BenchmarkClientEncodeAsync(b *testing.B) {
	c := &Client{conn: wire.NewConn(struct {
		io.Reader
		io.Writer
	}{nil, io.Discard}), pending: map[uint64]*pending{}, flushc: make(chan struct{}, 1), done: make(chan struct{})}
	c.flushing.Store(true) // no flusher runs here
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
		body, _ := wire.AppendValues(nil, call.Args, &v)
		hdr := make([]byte, wire.HeaderSize)
		wire.PutHeader(hdr, wire.Header{Len: uint32(len(body)), Type: wire.Call, Call: call.ID, Seq: uint64(i)})
		frames.Write(hdr)
		frames.Write(body)
	}
	stream := frames.Bytes()
	ss := &session{srv: &Server{}, ctx: ctx}
	ss.mem.insert(memRange{base: p, size: 4096})
	b.ResetTimer()
	for i := 0; i < b.N; {
		ss.conn = wire.NewConn(struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(stream), io.Discard})
		for j := 0; j < 4096 && i < b.N; j, i = j+1, i+1 {
			h, err := ss.conn.ReadHeader()
			if err != nil {
				b.Fatal(err)
			}
			pl, _ := ss.conn.ReadPayload(h)
			if err := ss.handleCall(h, call, pl); err != nil || ss.latched != abi.Success {
				b.Fatal(err, ss.latched)
			}
		}
	}
}
