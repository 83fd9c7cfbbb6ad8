package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/abi"
)

// A local client of version 2 or later sends its calls through the call
// ring; a version 1 client keeps to the socket.
func TestCallRingNegotiated(t *testing.T) {
	ts := startServer(t)
	for via, want := range map[string]uint16{"unix": abi.ProtocolVersion, "unix-v2": 2, "unix-v1": 1} {
		c := ts.dial(t, via, ts.token(t, "v-"+via, 0))
		if c.Device.Version != want {
			t.Fatalf("%s: session runs protocol version %d, want %d", via, c.Device.Version, want)
		}
		p, err := c.MemAlloc(4096)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 1000 {
			if err := c.Memset(p+uint64(i%1024)*4, uint32(i), 4, 1, true, 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Synchronize(); err != nil {
			t.Fatal(err)
		}
		if ringed := c.shm.ringOff != 0 && c.shm.load64(ringWritePos) > 0; ringed != (want >= 2) {
			t.Fatalf("%s: calls went through the ring: %v", via, ringed)
		}
	}
}

// The ring carries a byte stream intact across wrap-arounds, with a reader
// slower than its writer (which then waits for space) and a faster one
// (which then waits on the doorbell).
func TestCallRingStream(t *testing.T) {
	ring, fd, err := newShmRing(shmSlots, 4096)
	if err != nil {
		t.Fatal(err)
	}
	closeFD(fd)
	defer ring.close()
	bellR, bellW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer bellR.Close()
	done, wrote := make(chan struct{}), make(chan struct{})
	defer func() { close(done); <-wrote }() // before the ring is unmapped
	want := randBytes(5*callRingSize+12345, 9)
	go func() {
		defer close(wrote)
		w := &callRingWriter{ring: ring, bell: bellW, done: done}
		rng := rand.New(rand.NewPCG(1, 2))
		for p := want; len(p) > 0; {
			n := min(len(p), 1+rng.IntN(200<<10))
			if k, err := w.Write(p[:n]); k != n || err != nil {
				t.Errorf("write: %d of %d, %v", k, n, err)
				return
			}
			p = p[n:]
			if rng.IntN(8) == 0 {
				time.Sleep(time.Millisecond) // let the reader run dry
			}
		}
		bellW.Close()
	}()
	rd := &callRingReader{ring: ring, bell: bellR}
	rng := rand.New(rand.NewPCG(3, 4))
	var got bytes.Buffer
	buf := make([]byte, 64<<10)
	for {
		n, err := rd.Read(buf[:1+rng.IntN(len(buf))])
		got.Write(buf[:n])
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rng.IntN(16) == 0 {
			time.Sleep(2 * time.Millisecond) // let the ring fill
		}
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("read %d bytes, wrote %d; first difference at %d", got.Len(), len(want), firstDiff(got.Bytes(), want))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// A tenant that moves the ring's write position past what the ring holds
// loses its session; kerfd and its neighbour carry on.
func TestCallRingScribbledPosition(t *testing.T) {
	ts := startServer(t)
	neighbour := ts.dial(t, "unix", ts.token(t, "neighbour", 0))
	np, err := neighbour.MemAlloc(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	c := ts.dial(t, "unix", ts.token(t, "scribbler", 0))
	if _, err := c.MemAlloc(1 << 20); err != nil {
		t.Fatal(err)
	}
	c.wmu.Lock()
	c.shm.store64(ringWritePos, c.shm.load64(ringReadPos)+2*callRingSize)
	c.rw.(io.Writer).Write([]byte{1}) // the doorbell
	c.wmu.Unlock()
	waitFor(t, "the scribbler's session to close", func() bool { return c.Err() != nil })
	if err := c.Synchronize(); abi.ResultOf(err) != abi.ErrDeviceUnavailable {
		t.Fatalf("call after the session closed: %v", err)
	}
	waitFor(t, "the scribbler's memory to be freed", func() bool { return ts.mem.Used() == 1<<20 })
	payload := randBytes(1<<20, 5)
	if err := neighbour.MemcpyHtoD(np, payload); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(payload))
	if err := neighbour.MemcpyDtoH(got, np); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("neighbour: %v", err)
	}
}

// Calls after Close fail; none touches the unmapped ring.
func TestCallAfterClose(t *testing.T) {
	ts := startServer(t)
	for _, via := range transports {
		c := ts.dial(t, via, ts.token(t, "closer-"+via, 0))
		p, err := c.MemAlloc(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		for i := range 3000 { // past the flush threshold
			if err := c.Memset(p, uint32(i), 4, 1, true, 0); abi.ResultOf(err) != abi.ErrDeviceUnavailable {
				t.Fatalf("%s: async memset after Close: %v", via, err)
			}
		}
		if err := c.MemcpyHtoD(p, make([]byte, 1<<20)); err == nil {
			t.Fatalf("%s: a copy after Close succeeded", via)
		}
		if err := c.Synchronize(); abi.ResultOf(err) != abi.ErrDeviceUnavailable {
			t.Fatalf("%s: sync after Close: %v", via, err)
		}
	}
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// FuzzCallRingReader: whatever a tenant writes as the ring's write
// position, the server reads exactly the bytes between its own position
// and that one, or ends the session with a protocol error; it never
// panics and never reads past the ring.
func FuzzCallRingReader(f *testing.F) {
	f.Add([]byte{16, 0, 0, 0, 1, 'a', 'b', 'c', 0, 0, 16, 0, 2})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 3, 0, 0, 0x20, 0, 9})
	f.Fuzz(func(t *testing.T, ops []byte) {
		ring, fd, err := newShmRing(1, 4096)
		if err != nil {
			t.Fatal(err)
		}
		closeFD(fd)
		defer ring.close()
		data := ring.ringData()
		rd := &callRingReader{ring: ring, bell: eofReader{}}
		for len(ops) >= 5 {
			// A step: a write position relative to the reader's (it may
			// go backwards), a read size, and bytes scribbled at the
			// reader's position.
			delta := int64(int32(binary.LittleEndian.Uint32(ops))) * 7
			size := 1 + int(ops[4])*1024
			ops = ops[5:]
			scribble := ops[:min(len(ops), 16)]
			at := int(rd.pos % callRingSize)
			copy(data[at:], scribble)
			from, wpos := rd.pos, rd.pos+uint64(delta)
			ring.store64(ringWritePos, wpos)
			want := make([]byte, min(uint64(size), wpos-from))
			for i := range want {
				want[i] = data[(from+uint64(i))%callRingSize]
			}
			p := make([]byte, size)
			n, err := rd.Read(p)
			switch avail := wpos - from; {
			case avail > callRingSize:
				var pe *protocolError
				if n != 0 || !errors.As(err, &pe) {
					t.Fatalf("write position %d bytes ahead: read %d, %v; want a protocol error", int64(avail), n, err)
				}
				return
			case avail == 0:
				if n != 0 || err != io.EOF {
					t.Fatalf("empty ring: read %d, %v; want the doorbell's EOF", n, err)
				}
				return
			default:
				if err != nil || !bytes.Equal(p[:n], want) || rd.pos != from+uint64(n) {
					t.Fatalf("%d bytes ahead, read of %d: got %d bytes, %v; want %d", avail, size, n, err, len(want))
				}
			}
		}
	})
}
