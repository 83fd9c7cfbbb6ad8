package wire

import (
	"bytes"
	"slices"
	"testing"

	"github.com/kerf-edge/kerf/abi"
)

// typedCodec wraps a call's own encoder and decoder from args_gen.go
// so that the tests can hold them against the catalogue's codec.
type typedCodec struct {
	size int // the frame's size
	put  func(f []byte, seq uint64, w []uint64)
	get  func(p []byte) ([]uint64, bool)
}

var typedCodecs = map[abi.CallID]typedCodec{
	abi.CallMemsetAsync: {
		MemsetD8AsyncFrame,
		func(f []byte, seq uint64, w []uint64) {
			PutMemsetD8Async(f, seq, w[0], uint32(w[1]), uint32(w[2]), w[3], w[4])
		},
		func(p []byte) ([]uint64, bool) {
			a, b, c, d, e, ok := MemsetD8AsyncArgs(p)
			return []uint64{a, uint64(b), uint64(c), d, e}, ok
		},
	},
	abi.CallMemcpyDtoDAsync: {
		MemcpyDtoDAsyncFrame,
		func(f []byte, seq uint64, w []uint64) { PutMemcpyDtoDAsync(f, seq, w[0], w[1], w[2], w[3]) },
		func(p []byte) ([]uint64, bool) {
			a, b, c, d, ok := MemcpyDtoDAsyncArgs(p)
			return []uint64{a, b, c, d}, ok
		},
	},
	abi.CallEventRecord: {
		EventRecordFrame,
		func(f []byte, seq uint64, w []uint64) { PutEventRecord(f, seq, w[0], w[1]) },
		func(p []byte) ([]uint64, bool) {
			a, b, ok := EventRecordArgs(p)
			return []uint64{a, b}, ok
		},
	},
	abi.CallStreamWaitEvent: {
		StreamWaitEventFrame,
		func(f []byte, seq uint64, w []uint64) { PutStreamWaitEvent(f, seq, w[0], w[1], uint32(w[2])) },
		func(p []byte) ([]uint64, bool) {
			a, b, c, ok := StreamWaitEventArgs(p)
			return []uint64{a, b, uint64(c)}, ok
		},
	},
}

// Every async call of scalars has its own codec, and the tests know it.
func TestTypedDecodersCoverAsyncScalarCalls(t *testing.T) {
	for _, c := range abi.Calls() {
		_, known := typedCodecs[c.ID]
		want := c.Mode == abi.Async && c.Bulk == abi.NoBulk && argLayouts[c.ID].size > 0
		if known != want {
			t.Errorf("%s: typed codec under test %v, want %v (regenerate, then list it in typedCodecs)", c.Name, known, want)
		}
	}
}

// checkTypedDecoder holds c's own decoder, if it has one, against
// DecodeValues on p, and its encoder against AppendCall.
func checkTypedDecoder(t *testing.T, c *abi.Call, p []byte) {
	codec, ok := typedCodecs[c.ID]
	if !ok {
		return
	}
	var ref abi.Values
	errRef := DecodeValues(c.Args, p, &ref)
	got, ok := codec.get(p)
	if ok != (errRef == nil) {
		t.Fatalf("%s: own decoder ok=%v, DecodeValues %v", c.Name, ok, errRef)
	}
	if !ok {
		return
	}
	if !slices.Equal(got, ref.Words[:ref.NW]) {
		t.Fatalf("%s: own decoder gave %v, DecodeValues %v", c.Name, got, ref.Words[:ref.NW])
	}
	h := Header{Type: Call, Call: c.ID, Seq: 0x0102030405060708}
	want, err := AppendCall(nil, h, c, &ref)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != codec.size {
		t.Fatalf("%s: frame of %d bytes, generated size %d", c.Name, len(want), codec.size)
	}
	f := make([]byte, len(want))
	codec.put(f, h.Seq, got)
	if !bytes.Equal(f, want) {
		t.Fatalf("%s: own encoder wrote %x, AppendCall %x", c.Name, f, want)
	}
}

func TestTypedDecodersMatchCatalogue(t *testing.T) {
	for id := range typedCodecs {
		c := abi.Lookup(id)
		seed := []byte{1, 2, 3, 4, 5, 6, 7, 8, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8, 9, 0, 0, 0, 0, 0, 0, 0x80}
		b, err := AppendValues(nil, c.Args, sample(c.Args, append(seed, seed...)))
		if err != nil {
			t.Fatal(err)
		}
		checkTypedDecoder(t, c, b)
		checkTypedDecoder(t, c, b[:len(b)-1])
		checkTypedDecoder(t, c, append(b, 0))
	}
}
