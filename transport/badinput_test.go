package transport

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/transport/abi"
	"github.com/kerf-edge/kerf/transport/internal/wire"
)

// rawDial opens a stream and, if hello is set, completes the handshake,
// returning the stream for arbitrary bytes.
func (ts *testServer) rawDial(t *testing.T, via string, tok []byte, hello bool) (io.ReadWriteCloser, *wire.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rw io.ReadWriteCloser
	if isUnix(via) {
		c, err := net.Dial("unix", ts.sock)
		if err != nil {
			t.Fatal(err)
		}
		fd, err := recvFD(c.(*net.UnixConn))
		if err != nil {
			t.Fatal(err)
		}
		closeFD(fd)
		rw = c
	} else {
		c, err := DialQUIC(ctx, ts.quic, QUICOptions{Options: Options{Token: tok}, Fingerprint: ts.fp})
		if err != nil {
			t.Fatal(err)
		}
		// Reuse the client's connection for a second, raw stream.
		qs := c.rw.(*quicStream)
		st, err := qs.conn.OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		rw = &quicStream{Stream: st}
	}
	t.Cleanup(func() { rw.Close() })
	wc := wire.NewConn(rw)
	if hello {
		m := wire.HelloMsg{MinVersion: 1, MaxVersion: 1, Token: tok}
		b, _ := m.Append(nil)
		wc.WriteFrame(wire.Header{Type: wire.Hello}, b)
		wc.Flush()
		if h, _, err := wc.ReadFrame(); err != nil || h.Type != wire.HelloAck {
			t.Fatalf("handshake: %v %v", h.Type, err)
		}
	}
	return rw, wc
}

// closeWrite ends the client's direction of the stream, as a client that
// exits does.
func closeWrite(rw io.ReadWriteCloser) {
	switch c := rw.(type) {
	case *net.UnixConn:
		c.CloseWrite()
	case *quicStream:
		c.Stream.Close()
	}
}

// expectClosed reads until the server closes the stream.
func expectClosed(t *testing.T, rw io.Reader) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, rw)
		done <- err
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("server did not close the stream")
	}
}

func TestBadInputClosesOnlyThatSession(t *testing.T) {
	header := func(h wire.Header) []byte {
		b := make([]byte, wire.HeaderSize)
		wire.PutHeader(b, h)
		return b
	}
	cases := []struct {
		name   string
		hello  bool
		send   func(rw io.Writer)
		vanish bool // the client then goes away
	}{
		{"garbage before hello", false, func(w io.Writer) { w.Write([]byte("GET / HTTP/1.1\r\n\r\n0123456789")) }, false},
		{"garbage after hello", true, func(w io.Writer) { w.Write([]byte("\xff\xff\xff\xff\x09\x00\x00\x00garbage!")) }, false},
		{"oversized frame", true, func(w io.Writer) {
			w.Write(header(wire.Header{Len: abi.MaxFrame + 1, Type: wire.Call, Call: abi.CallMemAlloc}))
		}, false},
		{"unknown frame type", true, func(w io.Writer) { w.Write(header(wire.Header{Type: 77})) }, false},
		{"truncated frame", true, func(w io.Writer) {
			w.Write(header(wire.Header{Len: 100, Type: wire.Call, Call: abi.CallMemAlloc, Flags: wire.WantReply}))
			w.Write([]byte{1, 2, 3})
		}, true},
		{"stray data frame", true, func(w io.Writer) { w.Write(append(header(wire.Header{Len: 4, Type: wire.Data, Seq: 9}), 1, 2, 3, 4)) }, false},
		{"vanish mid-transfer", true, func(w io.Writer) {
			// Allocate, then announce 8 MiB and send only 1 MiB.
			var size [8]byte
			binary.LittleEndian.PutUint64(size[:], 8<<20)
			w.Write(append(header(wire.Header{Len: 8, Type: wire.Call, Call: abi.CallMemAlloc, Flags: wire.WantReply, Seq: 1}), size[:]...))
			args := make([]byte, 16)
			binary.LittleEndian.PutUint64(args[8:], 8<<20) // dst 0 is invalid; the payload is still owed
			w.Write(append(header(wire.Header{Len: 16, Type: wire.Call, Call: abi.CallMemcpyHtoD, Flags: wire.WantReply, Seq: 2}), args...))
			w.Write(append(header(wire.Header{Len: 1 << 20, Type: wire.Data, Call: abi.CallMemcpyHtoD, Seq: 2}), make([]byte, 1<<20)...))
		}, true},
		{"bulk larger than announced", true, func(w io.Writer) {
			args := make([]byte, 16)
			binary.LittleEndian.PutUint64(args[8:], 10)
			w.Write(append(header(wire.Header{Len: 16, Type: wire.Call, Call: abi.CallMemcpyHtoD, Flags: wire.WantReply, Seq: 1}), args...))
			w.Write(append(header(wire.Header{Len: 20, Type: wire.Data, Call: abi.CallMemcpyHtoD, Seq: 1}), make([]byte, 20)...))
		}, false},
		{"module image over limit", true, func(w io.Writer) {
			var size [8]byte
			binary.LittleEndian.PutUint64(size[:], abi.MaxModuleImage+1)
			w.Write(append(header(wire.Header{Len: 8, Type: wire.Call, Call: abi.CallModuleLoad, Flags: wire.WantReply, Seq: 1}), size[:]...))
		}, false},
	}
	ts := startServer(t)
	for _, via := range transports {
		neighbour := ts.dial(t, via, ts.token(t, "neighbour-"+via, 0))
		np, err := neighbour.MemAlloc(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		payload := randBytes(1<<20, 3)
		for _, tc := range cases {
			t.Run(via+"/"+tc.name, func(t *testing.T) {
				rw, _ := ts.rawDial(t, via, ts.token(t, "bad", 0), tc.hello)
				tc.send(rw)
				if tc.vanish {
					closeWrite(rw)
				}
				expectClosed(t, rw)
				// The neighbour carries on, data intact.
				if err := neighbour.MemcpyHtoD(np, payload); err != nil {
					t.Fatalf("neighbour failed: %v", err)
				}
				got := make([]byte, len(payload))
				if err := neighbour.MemcpyDtoH(got, np); err != nil || string(got) != string(payload) {
					t.Fatalf("neighbour data: %v", err)
				}
			})
		}
		// Only the neighbour's megabyte remains allocated.
		waitFor(t, "bad sessions to release memory", func() bool { return ts.mem.Used() == 1<<20 })
		neighbour.Close()
		waitFor(t, "neighbour to release memory", func() bool { return ts.mem.Used() == 0 })
	}
}

func TestSilentClientTimesOut(t *testing.T) {
	ts := startServerB(t, func(s *Server) { s.HandshakeTimeout = 200 * time.Millisecond })
	for _, via := range []string{"unix"} {
		rw, _ := ts.rawDial(t, via, nil, false)
		expectClosed(t, rw)
	}
}

// A client that floods sync calls without reading replies is held back by
// flow control: the server's memory stays bounded.
func TestFloodIsBounded(t *testing.T) {
	ts := startServer(t)
	rw, _ := ts.rawDial(t, "unix", ts.token(t, "flood", 0), true)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	frame := make([]byte, wire.HeaderSize)
	wire.PutHeader(frame, wire.Header{Type: wire.Call, Call: abi.CallMemGetInfo, Flags: wire.WantReply})
	batch := make([]byte, 0, 64<<10)
	for len(batch)+len(frame) <= cap(batch) {
		batch = append(batch, frame...)
	}
	sent := 0
	rw.(net.Conn).SetWriteDeadline(time.Now().Add(2 * time.Second))
	for sent < 256<<20 {
		n, err := rw.Write(batch)
		sent += n
		if err != nil {
			break // the server stopped reading: flow control works
		}
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if sent >= 256<<20 {
		t.Fatalf("server accepted %d MiB of calls without its replies being read", sent>>20)
	}
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 32<<20 {
		t.Fatalf("heap grew by %d MiB under a flood of %d MiB", grew>>20, sent>>20)
	}
}
