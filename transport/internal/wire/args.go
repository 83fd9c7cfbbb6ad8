package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/kerf-edge/kerf/abi"
)

//go:generate go run ./gen

// scalarLayout is a call's arguments when all are scalars (most calls,
// and every async one but the launch): their count and encoded size. Such
// arguments encode through the straight-line code generated per call in
// args_gen.go, without walking the catalogue's Arg kinds. (Every call's
// arguments decode into their own struct, generated in calls_gen.go.)
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

// argsSizeError reports a payload that is not the size of a call's
// scalar arguments. It is a plain value, so that the generated decoders
// of scalars stay small enough to inline.
type argsSizeError struct{ got, want int }

func (e argsSizeError) Error() string {
	return fmt.Sprintf("wire: %d bytes of arguments, want %d", e.got, e.want)
}

func errTruncated(name string) error { return fmt.Errorf("wire: truncated %s", name) }

func errNUL(name string) error { return fmt.Errorf("wire: %s contains a NUL byte", name) }

func errTrailing(n int) error { return fmt.Errorf("wire: %d trailing bytes", n) }

// takeBlob splits a length-prefixed blob of at most max bytes, named name,
// off the start of p. The blob aliases p.
func takeBlob(p []byte, name string, max uint32) (blob, rest []byte, err error) {
	if len(p) < 4 {
		return nil, p, fmt.Errorf("wire: truncated length of %s", name)
	}
	n := binary.LittleEndian.Uint32(p)
	p = p[4:]
	if n > max {
		return nil, p, fmt.Errorf("wire: %s is %d bytes, limit %d", name, n, max)
	}
	if uint64(n) > uint64(len(p)) {
		return nil, p, fmt.Errorf("wire: truncated %s: %d of %d bytes", name, len(p), n)
	}
	return p[:n:n], p[n:], nil
}

// takeString is takeBlob for a string, which holds no NUL byte.
func takeString(p []byte, name string, max uint32) (string, []byte, error) {
	blob, rest, err := takeBlob(p, name, max)
	if err == nil && bytes.IndexByte(blob, 0) >= 0 {
		err = errNUL(name)
	}
	if err != nil {
		return "", rest, err
	}
	return string(blob), rest, nil
}
