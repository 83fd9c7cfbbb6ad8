package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/internal/testkit"
	"github.com/kerf-edge/kerf/transport/internal/wire"
)

// rawDial opens a stream and, if hello is set, completes the handshake,
// returning the stream for arbitrary bytes. On "unix" the handshake asks
// for protocol version 2, so the bytes written after it go through the
// call ring; "unix-v1" keeps them on the socket.
func (ts *testServer) rawDial(t *testing.T, via string, tok []byte, hello bool) (io.ReadWriteCloser, *wire.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rw io.ReadWriteCloser
	shmFD := -1
	if isUnix(via) {
		c, err := net.Dial("unix", ts.sock)
		if err != nil {
			t.Fatal(err)
		}
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
		if via == "unix" {
			m.MaxVersion = 2
		}
		b, _ := m.Append(nil)
		wc.WriteFrame(wire.Header{Type: wire.Hello}, b)
		wc.Flush()
		if isUnix(via) {
			fd, _, err := recvShm(rw.(*net.UnixConn))
			if err != nil || fd < 0 {
				t.Fatalf("no shared memory after the hello: %v", err)
			}
			shmFD = fd
			t.Cleanup(func() { closeFD(shmFD) })
		}
		h, p, err := wc.ReadFrame()
		if err != nil || h.Type != wire.HelloAck {
			t.Fatalf("handshake: %v %v", h.Type, err)
		}
		var ack wire.HelloAckMsg
		if err := ack.Decode(p); err != nil {
			t.Fatal(err)
		}
		if ack.Version >= 2 {
			ring, err := mapShmRing(shmFD, int(ack.ShmSlots), int(ack.ShmSlotSize), true)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ring.close() }) // after rw closes: cleanups run last first
			sock, done := rw.(*net.UnixConn), make(chan struct{})
			rw = &ringStream{UnixConn: sock, w: &callRingWriter{ring: ring, bell: sock, done: done}, done: done}
		}
	}
	return rw, wc
}

// ringStream writes through a session's call ring and reads its socket.
// Close also releases a writer waiting for room in the ring.
type ringStream struct {
	*net.UnixConn
	w         *callRingWriter
	done      chan struct{}
	closeOnce sync.Once
}

func (s *ringStream) Write(p []byte) (int, error) { return s.w.Write(p) }

func (s *ringStream) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	return s.UnixConn.Close()
}

// closeWrite ends the client's direction of the stream, as a client that
// exits does.
func closeWrite(rw io.ReadWriteCloser) {
	switch c := rw.(type) {
	case *net.UnixConn:
		c.CloseWrite()
	case *ringStream:
		c.CloseWrite() // the doorbell's end of file
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

// A local client that never completes its hello is dropped after the
// handshake timeout without ever getting a ring, and gives its place
// under the cap back: one that says nothing (as a client older than
// rings-after-authentication does, waiting for its ring before its
// hello) and one stalled halfway through its hello.
func TestSilentClientTimesOut(t *testing.T) {
	ts := startServerB(t, func(s *Server) { s.HandshakeTimeout = 200 * time.Millisecond })
	rings := shmDescriptors(t)
	var header [wire.HeaderSize]byte
	wire.PutHeader(header[:], wire.Header{Type: wire.Hello, Len: 100})
	for _, tc := range []struct {
		name string
		sent []byte
	}{
		{"silent", nil},
		{"half a hello", append(header[:], make([]byte, 10)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("unix", ts.sock)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(tc.sent); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(testkit.WaitTimeout))
			fd, prefix, err := recvShm(c.(*net.UnixConn))
			if fd >= 0 {
				closeFD(fd)
			}
			if fd >= 0 || len(prefix) != 0 || !errors.Is(err, io.EOF) {
				t.Fatalf("got descriptor %d, bytes %q, %v; want the connection closed with nothing sent", fd, prefix, err)
			}
			if got := shmDescriptors(t); got != rings {
				t.Fatalf("%d shared-memory rings held after the client was dropped", got-rings)
			}
			waitFor(t, "its place to be given back", func() bool {
				unix, _ := ts.srv.ListenerStats()
				return unix.Unauthenticated == 0
			})
		})
	}
}

// A client that floods sync calls without reading replies is held back by
// flow control, on the socket and through the call ring: the server's
// memory stays bounded.
func TestFloodIsBounded(t *testing.T) {
	for _, via := range []string{"unix-v1", "unix"} {
		t.Run(via, func(t *testing.T) { testFloodIsBounded(t, via) })
	}
}

func testFloodIsBounded(t *testing.T, via string) {
	ts := startServer(t)
	rw, _ := ts.rawDial(t, via, ts.token(t, "flood", 0), true)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	frame := make([]byte, wire.HeaderSize)
	wire.PutHeader(frame, wire.Header{Type: wire.Call, Call: abi.CallMemGetInfo, Flags: wire.WantReply})
	batch := make([]byte, 0, 64<<10)
	for len(batch)+len(frame) <= cap(batch) {
		batch = append(batch, frame...)
	}
	// The flood runs until a write fails (the socket's deadline) or blocks
	// (a full ring) for a second.
	var progress atomic.Int64
	flooded := make(chan struct{})
	rw.(net.Conn).SetWriteDeadline(time.Now().Add(2 * time.Second))
	go func() {
		defer close(flooded)
		for progress.Load() < 256<<20 {
			n, err := rw.Write(batch)
			progress.Add(int64(n))
			if err != nil {
				return // the server stopped reading: flow control works
			}
		}
	}()
	for last := int64(-1); last != progress.Load(); {
		last = progress.Load()
		select {
		case <-flooded:
		case <-time.After(time.Second):
		}
	}
	sent := int(progress.Load())
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if sent >= 256<<20 {
		t.Fatalf("server accepted %d MiB of calls without its replies being read", sent>>20)
	}
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 32<<20 {
		t.Fatalf("heap grew by %d MiB under a flood of %d MiB", grew>>20, sent>>20)
	}
	rw.Close() // releases a writer waiting on the ring
	<-flooded
}
