package wire

import (
	"fmt"
	"slices"

	"github.com/kerf-edge/kerf/abi"
)

//go:generate go run ./gen

// scalarLayout is a call's arguments when all are scalars (most calls,
// and every async one but the launch): their count and encoded size. Such
// arguments encode and decode through the straight-line code generated
// per call in args_gen.go, without walking the catalogue's Arg kinds.
type scalarLayout struct {
	size int   // encoded bytes; 0: not all scalars (or none)
	n    uint8 // words
}

// argLayouts is indexed by call ID, derived from the catalogue at start.
var argLayouts = func() []scalarLayout {
	calls := abi.Calls()
	out := make([]scalarLayout, len(calls)+1)
	for _, c := range calls {
		if size := fixedSize(c.Args); size > 0 && len(c.Args) <= abi.MaxWords {
			out[c.ID] = scalarLayout{size: size, n: uint8(len(c.Args))}
		}
	}
	return out
}()

// AppendCall appends a whole Call frame: header h, whose Len it sets, and
// c's arguments from v, encoded as AppendValues(b, c.Args, v) does. On an
// error b is returned unchanged.
func AppendCall(b []byte, h Header, c *abi.Call, v *abi.Values) ([]byte, error) {
	start := len(b)
	if n := scalarFrameSize(c); n > 0 {
		b = slices.Grow(b, n)
		if putScalarCall(b[start:start+n], h, c, v) {
			return b[:start+n], nil
		}
	}
	b = append(b, make([]byte, HeaderSize)...)
	b, err := AppendValues(b, c.Args, v)
	if err != nil {
		return b[:start], err
	}
	if len(b)-start-HeaderSize > maxPayload {
		return b[:start], fmt.Errorf("wire: %s arguments of %d bytes exceed the frame limit", c.Name, len(b)-start-HeaderSize)
	}
	h.Len = uint32(len(b) - start - HeaderSize)
	PutHeader(b[start:], h)
	return b, nil
}

// putScalarCall encodes a Call frame of scalar arguments (header h, whose
// Len it sets, and v) at the start of f, which must hold
// scalarFrameSize(c) bytes. It reports false, having written nothing of
// use, when c's arguments are not all scalars or v does not fit them;
// AppendCall then says why.
func putScalarCall(f []byte, h Header, c *abi.Call, v *abi.Values) bool {
	l := argLayouts[c.ID]
	if l.size == 0 || v.NW != l.n || v.NB != 0 || len(f) < HeaderSize+l.size ||
		!putScalarArgs(c.ID, f[HeaderSize:], &v.Words) {
		return false
	}
	h.Len = uint32(l.size)
	PutHeader(f, h)
	return true
}

// scalarFrameSize returns the size of c's Call frame when its arguments
// are all scalars, and 0 otherwise.
func scalarFrameSize(c *abi.Call) int {
	if l := &argLayouts[c.ID]; l.size > 0 {
		return HeaderSize + l.size
	}
	return 0
}

// DecodeArgs decodes c's arguments, as DecodeValues(c.Args, p, v) does.
func DecodeArgs(c *abi.Call, p []byte, v *abi.Values) error {
	l := argLayouts[c.ID]
	if l.size == 0 {
		return DecodeValues(c.Args, p, v)
	}
	if len(p) != l.size {
		return fmt.Errorf("wire: %d bytes of arguments, want %d", len(p), l.size)
	}
	getScalarArgs(c.ID, p, &v.Words)
	v.NW, v.NB = l.n, 0
	return nil
}
