package transport

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/transport/abi"
)

// A version 2 local client sends its calls through the call ring; a
// version 1 client keeps to the socket.
func TestCallRingNegotiated(t *testing.T) {
	ts := startServer(t)
	for via, want := range map[string]uint16{"unix": 2, "unix-v1": 1} {
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
		if ringed := c.shm.ringOff != 0 && c.shm.load64(ringWritePos) > 0; ringed != (want == 2) {
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
			c.Memset(p, uint32(i), 4, 1, true, 0)
		}
		if err := c.MemcpyHtoD(p, make([]byte, 1<<20)); err == nil {
			t.Fatalf("%s: a copy after Close succeeded", via)
		}
		if err := c.Synchronize(); abi.ResultOf(err) != abi.ErrDeviceUnavailable {
			t.Fatalf("%s: sync after Close: %v", via, err)
		}
	}
}
