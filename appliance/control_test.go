package appliance

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/transport"
)

// everyCtlMsg holds one message of each type, with every field set.
func everyCtlMsg() []ctlMsg {
	var cfg Config
	cfg.StateDir = "/var/lib/kerf"
	cfg.GPU.Backend = "emulated"
	cfg.Slicer.ShareQuantum = 20 * time.Millisecond
	return []ctlMsg{
		workerSpec{Config: cfg, Admission: transport.Admission{Tenant: auth.Tenant{ID: "alice"}, Version: 2, Device: 1, MemLimit: 2 << 30, Lease: "l9"},
			Prefix: []byte{1, 2, 3}, Transport: "quic", Peer: "10.0.0.7:4433"},
		setMemLimitMsg{Seq: 7, Bytes: 2 << 30},
		grantMsg{ID: 41, Budget: 2 * time.Millisecond},
		workerReport{Calls: 1, Errors: 2, BytesIn: 3, BytesOut: 4, MemUsed: 5, MemLimit: 6, Busy: 7 * time.Second},
		ackMsg{Seq: 7, Err: "out of memory"},
		acquireMsg{},
		usedMsg{Grant: 41, Used: 2210 * time.Microsecond},
		reserveMsg{Seq: 9, Bytes: 1 << 20},
		reservedMsg{Seq: 9, Code: abi.ErrOutOfMemory, Free: 4 << 20, Err: "lease l1 is full"},
		releaseMsg{Bytes: 1 << 20},
		renewMsg{Grant: 41, Used: 900 * time.Microsecond},
		yieldMsg{Grant: 41, Budget: 1500 * time.Microsecond},
		smPartitionMsg{Device: 1, First: 5, Groups: 11},
		smPartitionMsg{Device: 0, First: 0, Groups: 16, Gated: true},
	}
}

// direction is the set of types a reader of m's direction accepts.
func direction(m ctlMsg) []ctlType {
	switch m.(type) {
	case workerSpec, setMemLimitMsg, grantMsg, reservedMsg, yieldMsg, smPartitionMsg:
		return fromKerfd
	}
	return fromWorker
}

func mustFrame(t testing.TB, m ctlMsg) []byte {
	t.Helper()
	b, err := appendCtlFrame(nil, m)
	if err != nil {
		t.Fatalf("encoding %T: %v", m, err)
	}
	return b
}

func TestEveryCtlMsgRoundTrips(t *testing.T) {
	for _, m := range everyCtlMsg() {
		t.Run(reflect.TypeOf(m).Name(), func(t *testing.T) {
			frame := mustFrame(t, m)
			r := newCtlReader(bytes.NewReader(frame), direction(m))
			got, err := r.read()
			if err != nil {
				t.Fatalf("decoding: %v", err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, m)
			}
			if _, err := r.read(); err != io.EOF {
				t.Fatalf("after the frame: %v, want io.EOF", err)
			}
		})
	}
}

// TestCtlWriterFramesInOrder sends every message through a ctlWriter and
// reads them back from one stream per direction.
func TestCtlWriterFramesInOrder(t *testing.T) {
	var toWorker, toKerfd bytes.Buffer
	kerfd, worker := newCtlWriter(&toWorker), newCtlWriter(&toKerfd)
	var sentToWorker, sentToKerfd []ctlMsg
	for _, m := range everyCtlMsg() {
		w, sent := worker, &sentToKerfd
		if reflect.DeepEqual(direction(m), fromKerfd) {
			w, sent = kerfd, &sentToWorker
		}
		if err := w.send(m); err != nil {
			t.Fatal(err)
		}
		*sent = append(*sent, m)
	}
	for _, c := range []struct {
		stream *bytes.Buffer
		accept []ctlType
		want   []ctlMsg
	}{{&toWorker, fromKerfd, sentToWorker}, {&toKerfd, fromWorker, sentToKerfd}} {
		r := newCtlReader(c.stream, c.accept)
		for _, want := range c.want {
			got, err := r.read()
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("read %#v, %v; want %#v", got, err, want)
			}
		}
		if _, err := r.read(); err != io.EOF {
			t.Fatalf("after the last frame: %v, want io.EOF", err)
		}
	}
}

// TestCtlRejectsEveryTruncation cuts every frame at every length.
func TestCtlRejectsEveryTruncation(t *testing.T) {
	for _, m := range everyCtlMsg() {
		frame := mustFrame(t, m)
		for n := 1; n < len(frame); n++ {
			_, err := newCtlReader(bytes.NewReader(frame[:n]), direction(m)).read()
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("%T cut to %d of %d bytes: %v, want io.ErrUnexpectedEOF", m, n, len(frame), err)
			}
		}
	}
}

// TestCtlRejectsWrongSizes: a fixed-size payload one byte short or long,
// and any payload past its bound, is refused before it is read.
func TestCtlRejectsWrongSizes(t *testing.T) {
	for _, m := range everyCtlMsg() {
		frame := mustFrame(t, m)
		limit := payloadLimit(m.ctlType())
		sizes := []uint32{uint32(limit.max) + 1, 1 << 31, 1<<32 - 1}
		if limit.min > 0 {
			sizes = append(sizes, uint32(limit.min)-1)
		}
		for _, n := range sizes {
			bad := append([]byte(nil), frame...)
			binary.BigEndian.PutUint32(bad[1:], n)
			bad = append(bad, make([]byte, 64)...) // whatever follows
			_, err := newCtlReader(bytes.NewReader(bad), direction(m)).read()
			if !errors.Is(err, errCtlProtocol) {
				t.Errorf("%T claiming %d bytes: %v, want a protocol violation", m, n, err)
			}
		}
	}
}

func TestCtlRejectsGarbage(t *testing.T) {
	frame := func(typ ctlType, payload []byte) []byte {
		b := []byte{byte(typ), 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
		return append(b, payload...)
	}
	negative := binary.BigEndian.AppendUint64(make([]byte, 8), 1<<63)
	for _, c := range []struct {
		name   string
		in     []byte
		accept []ctlType
	}{
		{"unknown type", frame(0, nil), fromWorker},
		{"type past the last", frame(ctlSMPartition+1, nil), fromWorker},
		{"spec from a worker", mustFrame(t, everyCtlMsg()[0]), fromWorker},
		{"grant from a worker", mustFrame(t, grantMsg{ID: 1, Budget: time.Millisecond}), fromWorker},
		{"report from kerfd", mustFrame(t, workerReport{}), fromKerfd},
		{"negative used", frame(ctlUsed, negative), fromWorker},
		{"negative renewal", frame(ctlRenew, negative), fromWorker},
		{"yield from a worker", mustFrame(t, yieldMsg{Grant: 1}), fromWorker},
		{"SM partition from a worker", mustFrame(t, smPartitionMsg{Groups: 1}), fromWorker},
		{"SM partition past the bound", frame(ctlSMPartition, append(binary.BigEndian.AppendUint64(make([]byte, 16), maxSMGroups+1), make([]byte, 8)...)), fromKerfd},
		{"SM partition gated neither 0 nor 1", frame(ctlSMPartition, append(make([]byte, 24), 0, 0, 0, 0, 0, 0, 0, 2)), fromKerfd},
		{"negative busy", frame(ctlReport, append(make([]byte, 48), negative[8:]...)), fromWorker},
		{"negative budget", frame(ctlGrant, negative), fromKerfd},
		{"spec not JSON", frame(ctlSpec, []byte("{not json")), fromKerfd},
		{"spec with trailing bytes", frame(ctlSpec, []byte(`{} {}`)), fromKerfd},
		{"ack error too long", frame(ctlAck, make([]byte, 8+maxAckErrLen+1)), fromWorker},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := newCtlReader(bytes.NewReader(c.in), c.accept).read()
			if !errors.Is(err, errCtlProtocol) {
				t.Fatalf("read %#v, %v; want a protocol violation", m, err)
			}
		})
	}
}

// TestCtlAckErrorIsCut: a refusal longer than the bound is sent cut, not
// dropped.
func TestCtlAckErrorIsCut(t *testing.T) {
	long := strings.Repeat("x", 3*maxAckErrLen)
	m, err := newCtlReader(bytes.NewReader(mustFrame(t, ackMsg{Seq: 1, Err: long})), fromWorker).read()
	if err != nil || m.(ackMsg).Err != long[:maxAckErrLen] {
		t.Fatalf("read %d bytes of error, %v", len(m.(ackMsg).Err), err)
	}
}

// FuzzCtlFromWorker feeds kerfd's reader what a worker could send. Every
// message it accepts encodes back to exactly the bytes it came from.
func FuzzCtlFromWorker(f *testing.F) {
	for _, m := range everyCtlMsg() {
		f.Add(mustFrame(f, m))
	}
	var stream []byte
	for _, m := range everyCtlMsg()[3:] {
		stream = append(stream, mustFrame(f, m)...)
	}
	f.Add(stream)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newCtlReader(bytes.NewReader(data), fromWorker)
		var again []byte
		for {
			m, err := r.read()
			if err != nil {
				break
			}
			if !reflect.DeepEqual(direction(m), fromWorker) {
				t.Fatalf("accepted %T from a worker", m)
			}
			if again, err = appendCtlFrame(again, m); err != nil {
				t.Fatalf("re-encoding %#v: %v", m, err)
			}
		}
		if !bytes.HasPrefix(data, again) {
			t.Fatalf("messages re-encode to %x, not a prefix of %x", again, data)
		}
	})
}

// FuzzCtlFromKerfd feeds a worker's reader arbitrary bytes: it must not
// fail other than with an error, and what it accepts must round-trip.
// The seeds leave out the spec: a seed of its size slows the fuzzer to a
// crawl, and mutating a type byte reaches the spec decoder anyway.
func FuzzCtlFromKerfd(f *testing.F) {
	for _, m := range everyCtlMsg()[1:3] {
		f.Add(mustFrame(f, m))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newCtlReader(bytes.NewReader(data), fromKerfd)
		for {
			m, err := r.read()
			if err != nil {
				return
			}
			back, err := newCtlReader(bytes.NewReader(mustFrame(t, m)), fromKerfd).read()
			if err != nil || !reflect.DeepEqual(back, m) {
				t.Fatalf("round trip of %#v: %#v, %v", m, back, err)
			}
		}
	})
}
