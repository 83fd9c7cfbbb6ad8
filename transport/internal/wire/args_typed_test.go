package wire

import (
	"testing"

	"github.com/kerf-edge/kerf/transport/abi"
)

// typedDecoders wraps each call's own decoder from args_gen.go so that
// the tests can hold them against DecodeValues.
var typedDecoders = map[abi.CallID]func(p []byte) ([]uint64, bool){
	abi.CallMemsetAsync: func(p []byte) ([]uint64, bool) {
		a, b, c, d, e, ok := MemsetD8AsyncArgs(p)
		return []uint64{a, b, c, d, e}, ok
	},
	abi.CallMemcpyDtoDAsync: func(p []byte) ([]uint64, bool) {
		a, b, c, d, ok := MemcpyDtoDAsyncArgs(p)
		return []uint64{a, b, c, d}, ok
	},
	abi.CallEventRecord: func(p []byte) ([]uint64, bool) {
		a, b, ok := EventRecordArgs(p)
		return []uint64{a, b}, ok
	},
	abi.CallStreamWaitEvent: func(p []byte) ([]uint64, bool) {
		a, b, c, ok := StreamWaitEventArgs(p)
		return []uint64{a, b, c}, ok
	},
}

// Every async call of scalars has its own decoder, and the tests know it.
func TestTypedDecodersCoverAsyncScalarCalls(t *testing.T) {
	for _, c := range abi.Calls() {
		_, known := typedDecoders[c.ID]
		want := c.Mode == abi.Async && c.Bulk == abi.NoBulk && argLayouts[c.ID].size > 0
		if known != want {
			t.Errorf("%s: typed decoder under test %v, want %v (regenerate, then list it in typedDecoders)", c.Name, known, want)
		}
	}
}

// checkTypedDecoder holds c's own decoder, if it has one, against
// DecodeValues on p.
func checkTypedDecoder(t *testing.T, c *abi.Call, p []byte) {
	dec := typedDecoders[c.ID]
	if dec == nil {
		return
	}
	var ref abi.Values
	errRef := DecodeValues(c.Args, p, &ref)
	got, ok := dec(p)
	if ok != (errRef == nil) {
		t.Fatalf("%s: own decoder ok=%v, DecodeValues %v", c.Name, ok, errRef)
	}
	if !ok {
		return
	}
	for i, w := range got {
		if w != ref.Words[i] {
			t.Fatalf("%s: own decoder gave %v, DecodeValues %v", c.Name, got, ref.Words[:ref.NW])
		}
	}
}

func TestTypedDecodersMatchCatalogue(t *testing.T) {
	for id := range typedDecoders {
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
