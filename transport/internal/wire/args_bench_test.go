package wire

// Encoding and decoding cuMemsetD8Async's arguments, the call kerf bench
// transport pipelines: the precomputed layout (AppendCall with its header)
// and the call's own decoder against the catalogue walk.

import (
	"testing"

	"github.com/kerf-edge/kerf/abi"
)

func memsetArgs() (*abi.Call, *abi.Values, []byte) {
	c := abi.Lookup(abi.CallMemsetAsync)
	v := (&abi.Values{}).Word(1 << 40).Word(7).Word(4).Word(1).Word(0)
	p, _ := AppendValues(nil, c.Args, v)
	return c, v, p
}

func BenchmarkAppendCallMemset(b *testing.B) {
	c, v, _ := memsetArgs()
	buf := make([]byte, 0, 256)
	h := Header{Type: Call, Call: c.ID}
	for b.Loop() {
		buf, _ = AppendCall(buf[:0], h, c, v)
	}
}

func BenchmarkAppendValuesMemset(b *testing.B) {
	c, v, _ := memsetArgs()
	buf := make([]byte, 0, 256)
	for b.Loop() {
		buf, _ = AppendValues(buf[:HeaderSize], c.Args, v)
	}
}

func BenchmarkDecodeMemsetD8AsyncArgs(b *testing.B) {
	_, _, p := memsetArgs()
	var sink uint64
	for b.Loop() {
		a, _ := DecodeMemsetD8AsyncArgs(p)
		sink += a.Count
	}
	_ = sink
}

func BenchmarkDecodeValuesMemset(b *testing.B) {
	c, v, p := memsetArgs()
	for b.Loop() {
		DecodeValues(c.Args, p, v)
	}
}

func BenchmarkPutScalarCallMemset(b *testing.B) {
	c, v, _ := memsetArgs()
	buf := make([]byte, 256)
	h := Header{Type: Call, Call: c.ID}
	for b.Loop() {
		putScalarCall(buf, h, c, v)
	}
}
