package wire

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/abi"
)

func TestHeaderRoundTrip(t *testing.T) {
	h := Header{Len: 1234, Type: Reply, Flags: WantReply, Call: abi.CallLaunchKernel, Seq: 1 << 40}
	b := make([]byte, HeaderSize)
	PutHeader(b, h)
	got, err := ParseHeader(b)
	if err != nil || got != h {
		t.Fatalf("got %+v, %v; want %+v", got, err, h)
	}
	PutHeader(b, Header{Len: abi.MaxFrame + 1, Type: Call})
	if _, err := ParseHeader(b); err == nil {
		t.Fatal("oversized frame accepted")
	}
	PutHeader(b, Header{Type: 0})
	if _, err := ParseHeader(b); err == nil {
		t.Fatal("frame type 0 accepted")
	}
}

// sample builds a value set that fits spec, derived from seed bytes.
func sample(spec []abi.Arg, seed []byte) *abi.Values {
	v := &abi.Values{}
	for i, a := range spec {
		var x uint64
		if len(seed) >= 8 {
			x = binary.LittleEndian.Uint64(seed)
			seed = seed[8:]
		}
		switch a.Kind {
		case abi.U32:
			v.Word(x & 0xffffffff)
		case abi.Bytes, abi.String:
			n := min(int(x%64), int(a.Max))
			blob := bytes.Repeat([]byte{byte('a' + i)}, n)
			v.Blob(blob)
		default:
			v.Word(x)
		}
	}
	return v
}

func TestEveryCallRoundTrips(t *testing.T) {
	for _, c := range abi.Calls() {
		for _, spec := range [][]abi.Arg{c.Args, c.Results} {
			in := sample(spec, bytes.Repeat([]byte{0xa5, 3, 0, 0, 0, 0, 0, 0x80}, 16))
			b, err := AppendValues(nil, spec, in)
			if err != nil {
				t.Fatalf("%s: %v", c.Name, err)
			}
			var out abi.Values
			if err := DecodeValues(spec, b, &out); err != nil {
				t.Fatalf("%s: %v", c.Name, err)
			}
			checkEqual(t, c.Name, in, &out)
			// Every strict prefix is rejected, and so is a trailing byte.
			for n := range b {
				if DecodeValues(spec, b[:n], &out) == nil {
					t.Fatalf("%s: %d-byte prefix of %d accepted", c.Name, n, len(b))
				}
			}
			if DecodeValues(spec, append(b, 0), &out) == nil {
				t.Fatalf("%s: trailing byte accepted", c.Name)
			}
		}
	}
}

func checkEqual(t *testing.T, name string, a, b *abi.Values) {
	t.Helper()
	if a.NW != b.NW || a.NB != b.NB || a.Words != b.Words {
		t.Fatalf("%s: words differ: %v/%d vs %v/%d", name, a.Words, a.NW, b.Words, b.NW)
	}
	for i := range a.NB {
		if !bytes.Equal(a.Blobs[i], b.Blobs[i]) {
			t.Fatalf("%s: blob %d differs", name, i)
		}
	}
}

func TestLimitsAreEnforced(t *testing.T) {
	c := abi.Lookup(abi.CallModuleGetFunction)
	v := (&abi.Values{}).Word(1).Blob(make([]byte, abi.MaxName+1))
	if _, err := AppendValues(nil, c.Args, v); err == nil {
		t.Fatal("encoder accepted an over-long name")
	}
	// A decoder must refuse a length over the limit before reading it.
	b := binary.LittleEndian.AppendUint64(nil, 1)
	b = binary.LittleEndian.AppendUint32(b, abi.MaxName+1)
	var out abi.Values
	if err := DecodeValues(c.Args, b, &out); err == nil {
		t.Fatal("decoder accepted an over-long name")
	}
	v = (&abi.Values{}).Word(1).Blob([]byte("a\x00b"))
	if _, err := AppendValues(nil, c.Args, v); err == nil {
		t.Fatal("string with NUL accepted")
	}
}

func TestHandshakeMessagesRoundTrip(t *testing.T) {
	h := HelloMsg{MinVersion: 1, MaxVersion: 3, Token: []byte("kerf_abc"), Device: 2, Client: "app"}
	b, err := h.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	var h2 HelloMsg
	if err := h2.Decode(b); err != nil || h2.Client != h.Client || !bytes.Equal(h2.Token, h.Token) || h2.Device != 2 || h2.MaxVersion != 3 {
		t.Fatalf("hello: %+v, %v", h2, err)
	}
	a := HelloAckMsg{Version: 1, Session: 9, Name: "dev", TotalMem: 1 << 30, CCMajor: 8, SMs: 4, Emulated: true, DriverVersion: 12040, ShmSlots: 8, ShmSlotSize: 1 << 20}
	a.UUID[3] = 7
	if b, err = a.Append(nil); err != nil {
		t.Fatal(err)
	}
	var a2 HelloAckMsg
	if err := a2.Decode(b); err != nil || a2 != a {
		t.Fatalf("ack: %+v, %v", a2, err)
	}
	al := AllocateMsg{Count: 2, Fraction: 0.25, MinMemory: 1 << 30, Model: "H100"}
	if b, err = al.Append(nil); err != nil {
		t.Fatal(err)
	}
	var al2 AllocateMsg
	if err := al2.Decode(b); err != nil || al2 != al {
		t.Fatalf("allocate: %+v, %v", al2, err)
	}
	ad := AllocatedMsg{Lease: "l-1", Slices: []LeaseSlice{{0, 1 << 30}, {3, 2 << 30}}}
	if b, err = ad.Append(nil); err != nil {
		t.Fatal(err)
	}
	var ad2 AllocatedMsg
	if err := ad2.Decode(b); err != nil || ad2.Lease != "l-1" || len(ad2.Slices) != 2 || ad2.Slices[1] != ad.Slices[1] {
		t.Fatalf("allocated: %+v, %v", ad2, err)
	}
	e := ErrorMsg{Code: abi.ErrNotPermitted, Message: "no"}
	if b, err = e.Append(nil); err != nil {
		t.Fatal(err)
	}
	var e2 ErrorMsg
	if err := e2.Decode(b); err != nil || e2 != e {
		t.Fatalf("error: %+v, %v", e2, err)
	}
}

func FuzzParseHeader(f *testing.F) {
	b := make([]byte, HeaderSize)
	PutHeader(b, Header{Len: 8, Type: Call, Call: abi.CallMemAlloc, Seq: 1})
	f.Add(b)
	f.Fuzz(func(t *testing.T, p []byte) {
		h, err := ParseHeader(p)
		if err != nil {
			return
		}
		if h.Len > abi.MaxFrame {
			t.Fatalf("accepted %d-byte frame", h.Len)
		}
		out := make([]byte, HeaderSize)
		PutHeader(out, h)
		if !bytes.Equal(out, p[:HeaderSize]) {
			t.Fatal("header does not round-trip")
		}
	})
}

// FuzzDecodeValues decodes arbitrary bytes against every catalogue shape:
// no panic, and whatever decodes re-encodes to the same bytes.
func FuzzDecodeValues(f *testing.F) {
	for _, c := range abi.Calls() {
		b, _ := AppendValues(nil, c.Args, sample(c.Args, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}))
		f.Add(uint16(c.ID), false, b)
	}
	f.Fuzz(func(t *testing.T, id uint16, results bool, p []byte) {
		c := abi.Lookup(abi.CallID(id))
		if c == nil {
			return
		}
		spec := c.Args
		if results {
			spec = c.Results
		}
		var v abi.Values
		if err := DecodeValues(spec, p, &v); err != nil {
			return
		}
		out, err := AppendValues(nil, spec, &v)
		if err != nil {
			t.Fatalf("%s: decoded values do not re-encode: %v", c.Name, err)
		}
		if !bytes.Equal(out, p) {
			t.Fatalf("%s: round trip changed the bytes", c.Name)
		}
	})
}

func FuzzDecodeReply(f *testing.F) {
	c := abi.Lookup(abi.CallMemGetInfo)
	b, _ := AppendReply(nil, c, abi.Success, (&abi.Values{}).Word(1).Word(2))
	f.Add(uint16(c.ID), b, false)
	f.Add(uint16(abi.CallFuncGetParamLayout), []byte{0, 0, 0, 0, 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}, false)
	b, _ = AppendReply(nil, c, abi.ErrInvalidPTX, nil)
	f.Add(uint16(abi.CallModuleLoad), AppendErrorText(b, "line 3: bad"), true)
	f.Fuzz(func(t *testing.T, id uint16, p []byte, withText bool) {
		c := abi.Lookup(abi.CallID(id))
		if c == nil {
			return
		}
		var v abi.Values
		code, text, err := DecodeReply(c, p, &v, withText)
		if err != nil {
			return
		}
		if text != "" && !withText {
			t.Fatalf("%s: text %q without withText", c.Name, text)
		}
		out, err := AppendReply(nil, c, code, &v)
		out = AppendErrorText(out, text)
		if err != nil || !bytes.Equal(out, p) {
			t.Fatalf("%s: reply does not round-trip: %v", c.Name, err)
		}
	})
}

// TestErrorReplyText holds an error reply's text to its version and its
// bound: refused before version 3, cut to abi.MaxErrorText, and any
// prefix or trailing byte refused.
func TestErrorReplyText(t *testing.T) {
	c := abi.Lookup(abi.CallModuleLoad)
	b, _ := AppendReply(nil, c, abi.ErrInvalidPTX, nil)
	long := strings.Repeat("x", abi.MaxErrorText+10)
	p := AppendErrorText(b, long)
	code, text, err := DecodeReply(c, p, &abi.Values{}, true)
	if err != nil || code != abi.ErrInvalidPTX || text != long[:abi.MaxErrorText] {
		t.Fatalf("DecodeReply = %v, %d bytes of text, %v", code, len(text), err)
	}
	if _, _, err := DecodeReply(c, p, &abi.Values{}, false); err == nil {
		t.Fatal("a text before version 3 was accepted")
	}
	for n := 5; n < len(p); n++ {
		if _, _, err := DecodeReply(c, p[:n], &abi.Values{}, true); err == nil {
			t.Fatalf("a reply cut to %d of %d bytes was accepted", n, len(p))
		}
	}
	if _, _, err := DecodeReply(c, append(p, 0), &abi.Values{}, true); err == nil {
		t.Fatal("a trailing byte was accepted")
	}
}

func FuzzHandshake(f *testing.F) {
	h := HelloMsg{MinVersion: 1, MaxVersion: 1, Token: []byte("kerf_x"), Client: "c"}
	b, _ := h.Append(nil)
	f.Add(b)
	a := HelloAckMsg{Version: 1, Name: "n"}
	b, _ = a.Append(nil)
	f.Add(b)
	e := ErrorMsg{Code: 1, Message: "m"}
	b, _ = e.Append(nil)
	f.Add(b)
	f.Fuzz(func(t *testing.T, p []byte) {
		var h HelloMsg
		if h.Decode(p) == nil {
			if out, err := h.Append(nil); err != nil || !bytes.Equal(out, p) {
				t.Fatalf("hello does not round-trip: %v", err)
			}
		}
		var a HelloAckMsg
		if a.Decode(p) == nil {
			if out, err := a.Append(nil); err != nil || !bytes.Equal(out, p) {
				t.Fatalf("hello-ack does not round-trip: %v", err)
			}
		}
		var al AllocateMsg
		if al.Decode(p) == nil {
			if out, err := al.Append(nil); err != nil || !bytes.Equal(out, p) {
				t.Fatalf("allocate does not round-trip: %v", err)
			}
		}
		var ad AllocatedMsg
		if ad.Decode(p) == nil {
			if out, err := ad.Append(nil); err != nil || !bytes.Equal(out, p) {
				t.Fatalf("allocated does not round-trip: %v", err)
			}
		}
		var e ErrorMsg
		if e.Decode(p) == nil {
			if out, err := e.Append(nil); err != nil || !bytes.Equal(out, p) {
				t.Fatalf("error does not round-trip: %v", err)
			}
		}
		var r ReservationMsg
		if r.Decode(p) == nil {
			if out, err := r.Append(nil); err != nil || !bytes.Equal(out, p) {
				t.Fatalf("reservation does not round-trip: %v", err)
			}
		}
	})
}

// FuzzConn reads frames from arbitrary bytes, as split by the fuzzer.
func FuzzConn(f *testing.F) {
	b := make([]byte, HeaderSize)
	PutHeader(b, Header{Len: 4, Type: Data})
	f.Add(append(b, 1, 2, 3, 4))
	f.Fuzz(func(t *testing.T, p []byte) {
		c := NewConn(struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(p), io.Discard})
		for range 64 {
			h, payload, err := c.ReadFrame()
			if err != nil {
				return
			}
			if uint32(len(payload)) != h.Len {
				t.Fatalf("payload %d bytes, header says %d", len(payload), h.Len)
			}
		}
	})
}

// FuzzDecodeArgs: every call's own decoder decodes exactly as the
// catalogue's spec does, its own encoder (if any) writes the frame
// AppendCall writes, and AppendCall encodes the arguments back into a
// frame of the same bytes.
func FuzzDecodeArgs(f *testing.F) {
	for _, c := range abi.Calls() {
		b, _ := AppendValues(nil, c.Args, sample(c.Args, []byte{1, 2, 3}))
		f.Add(uint16(c.ID), b)
	}
	f.Fuzz(func(t *testing.T, id uint16, p []byte) {
		c := abi.Lookup(abi.CallID(id))
		if c == nil || !checkDecoder(t, c, p) {
			return
		}
		var v abi.Values
		if err := DecodeValues(c.Args, p, &v); err != nil {
			t.Fatal(err)
		}
		h := Header{Type: Call, Flags: WantReply, Call: c.ID, Seq: uint64(id) << 40}
		out, err := AppendCall([]byte("prefix"), h, c, &v)
		if err != nil || string(out[:6]) != "prefix" || !bytes.Equal(out[6+HeaderSize:], p) {
			t.Fatalf("%s: AppendCall gave %x, %v; want the prefix, a header and %x", c.Name, out, err, p)
		}
		h.Len = uint32(len(p))
		if got, err := ParseHeader(out[6:]); err != nil || got != h {
			t.Fatalf("%s: AppendCall wrote header %+v, %v; want %+v", c.Name, got, err, h)
		}
	})
}

// AppendCall refuses what AppendValues refuses, with its message, and
// leaves the buffer as it was.
func TestAppendCallRefusals(t *testing.T) {
	c := abi.Lookup(abi.CallMemsetAsync)
	for _, v := range []*abi.Values{
		(&abi.Values{}).Word(1).Word(1 << 32).Word(4).Word(1).Word(0), // value past 32 bits
		(&abi.Values{}).Word(1).Word(2).Word(4).Word(1),               // a word short
		(&abi.Values{}).Word(1).Word(2).Word(4).Word(1).Word(0).Blob([]byte("x")),
	} {
		out, errFast := AppendCall([]byte("kept"), Header{Type: Call, Call: c.ID}, c, v)
		_, errRef := AppendValues(nil, c.Args, v)
		if errFast == nil || errRef == nil || errFast.Error() != errRef.Error() || string(out) != "kept" {
			t.Errorf("%+v: AppendCall %q, %v; AppendValues %v", v, out, errFast, errRef)
		}
	}
}

// countingWriter records each Write's size and fails once failAfter
// writes have been made (0: never).
type countingWriter struct {
	bytes.Buffer
	writes    []int
	failAfter int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.failAfter > 0 && len(w.writes) == w.failAfter {
		return 0, io.ErrClosedPipe
	}
	w.writes = append(w.writes, len(p))
	return w.Buffer.Write(p)
}

// The write buffer keeps frames whole and in order, across scalar calls
// encoded in place and payloads larger than the buffer; only the rest of
// such a payload is written in one piece larger than the buffer.
func TestConnWrites(t *testing.T) {
	out := &countingWriter{}
	c := NewConn(struct {
		io.Reader
		io.Writer
	}{nil, out})
	memset := abi.Lookup(abi.CallMemsetAsync)
	big := bytes.Repeat([]byte("0123456789abcdef"), abi.BulkChunk/16)
	v := (&abi.Values{}).Word(1 << 40).Word(7).Word(4).Word(1).Word(0)
	var want []Header
	for i := range 2000 {
		h := Header{Type: Call, Call: memset.ID, Seq: uint64(i)}
		if err := c.WriteCall(h, memset, v); err != nil {
			t.Fatal(err)
		}
		want = append(want, Header{Len: 32, Type: Call, Call: memset.ID, Seq: uint64(i)})
		if i%500 == 7 {
			h := Header{Type: Data, Call: memset.ID, Seq: uint64(i)}
			if err := c.WriteFrame(h, big[:100], big); err != nil {
				t.Fatal(err)
			}
			want = append(want, Header{Len: uint32(100 + len(big)), Type: Data, Call: memset.ID, Seq: uint64(i)})
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, n := range out.writes {
		if n > BufSize && n > len(big) {
			t.Fatalf("a write of %d bytes: more than the buffer and than one payload", n)
		}
	}
	r := NewConn(struct {
		io.Reader
		io.Writer
	}{&out.Buffer, nil})
	for i, w := range want {
		h, p, err := r.ReadFrame()
		if err != nil || h != w {
			t.Fatalf("frame %d: %+v, %v; want %+v", i, h, err, w)
		}
		if h.Type == Data && (!bytes.Equal(p[:100], big[:100]) || !bytes.Equal(p[100:], big)) {
			t.Fatalf("frame %d: payload changed", i)
		}
	}
	if _, _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("after the frames: %v, want EOF", err)
	}
}

// After a failed write, every write reports the failure.
func TestConnWriteErrorSticks(t *testing.T) {
	c := NewConn(struct {
		io.Reader
		io.Writer
	}{nil, &countingWriter{failAfter: 1}})
	memset := abi.Lookup(abi.CallMemsetAsync)
	v := (&abi.Values{}).Word(1 << 40).Word(7).Word(4).Word(1).Word(0)
	if err := c.WriteCall(Header{Type: Call, Call: memset.ID}, memset, v); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	c.WriteCall(Header{Type: Call, Call: memset.ID}, memset, v)
	if err := c.Flush(); err != io.ErrClosedPipe {
		t.Fatalf("flush: %v, want the writer's error", err)
	}
	if err := c.WriteCall(Header{Type: Call, Call: memset.ID}, memset, v); err != io.ErrClosedPipe {
		t.Fatalf("write after the failure: %v", err)
	}
	if err := c.WriteFrame(Header{Type: Data}, []byte("x")); err != io.ErrClosedPipe {
		t.Fatalf("frame after the failure: %v", err)
	}
}

func TestMaxHelloFitsTheLargestHello(t *testing.T) {
	m := HelloMsg{MinVersion: 0xffff, MaxVersion: 0xffff, Token: bytes.Repeat([]byte{'t'}, abi.MaxToken), Device: LeaseDevice,
		MemLimit: ^uint64(0), Lease: strings.Repeat("l", MaxLeaseID), Client: strings.Repeat("c", 128)}
	b, err := m.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxHello {
		t.Fatalf("largest hello is %d bytes, MaxHello %d", len(b), MaxHello)
	}
	m.Client += "c"
	if _, err := m.Append(nil); err == nil {
		t.Fatal("a hello over its limits encoded")
	}
}

// A Conn with small buffers, as lease and status streams have, writes and
// reads frames larger than its buffers as well as smaller ones.
func TestSmallConnCarriesLargeFrames(t *testing.T) {
	var buf bytes.Buffer
	w := NewConnSize(struct {
		io.Reader
		io.Writer
	}{nil, &buf}, 64)
	sizes := []int{0, 10, 64 - HeaderSize, 64, 1000, 5, 70000, 3}
	for i, n := range sizes {
		if err := w.WriteFrame(Header{Type: Data, Seq: uint64(i)}, bytes.Repeat([]byte{byte(i + 1)}, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	r := NewConnSize(struct {
		io.Reader
		io.Writer
	}{&buf, nil}, 64)
	for i, n := range sizes {
		h, p, err := r.ReadFrame()
		if err != nil || h.Seq != uint64(i) || !bytes.Equal(p, bytes.Repeat([]byte{byte(i + 1)}, n)) {
			t.Fatalf("frame %d of %d bytes: %+v, %d bytes, %v", i, n, h, len(p), err)
		}
	}
	if _, _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("after the frames: %v, want EOF", err)
	}
}
