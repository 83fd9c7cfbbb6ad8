package wire

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/kerf-edge/kerf/transport/abi"
)

// scalarLayout is a call's arguments when all are scalars (most calls,
// and every async one but the launch): their count, each one's width and
// the encoded size. Such arguments encode and decode without walking the
// catalogue's Arg kinds per call.
type scalarLayout struct {
	size  int                  // encoded bytes; 0: not all scalars (or none)
	n     uint8                // words
	width [abi.MaxWords]uint8  // 4 (U32) or 8
	high  [abi.MaxWords]uint64 // bits a U32 word must not set
}

// argLayouts is indexed by call ID, derived from the catalogue at start.
var argLayouts = func() []scalarLayout {
	calls := abi.Calls()
	out := make([]scalarLayout, len(calls)+1)
	for _, c := range calls {
		size := fixedSize(c.Args)
		if size <= 0 || len(c.Args) > abi.MaxWords {
			continue
		}
		l := scalarLayout{size: size, n: uint8(len(c.Args))}
		for i, a := range c.Args {
			l.width[i] = 8
			if a.Kind == abi.U32 {
				l.width[i], l.high[i] = 4, 0xffffffff_00000000
			}
		}
		out[c.ID] = l
	}
	return out
}()

// AppendCall appends a whole Call frame: header h, whose Len it sets, and
// c's arguments from v, encoded as AppendValues(b, c.Args, v) does. On an
// error b is returned unchanged.
func AppendCall(b []byte, h Header, c *abi.Call, v *abi.Values) ([]byte, error) {
	start := len(b)
	if l := &argLayouts[c.ID]; l.size > 0 && v.NW == l.n && v.NB == 0 {
		// Each word is stored as 8 bytes and the offset advanced by its
		// width, so a U32 is overwritten past its 4 bytes by the next
		// word; 4 spare bytes take the last store.
		n := HeaderSize + l.size
		b = slices.Grow(b, n+4)
		f := b[start : start+n+4]
		var over uint64
		off := HeaderSize
		for i, w := range v.Words[:l.n] {
			over |= w & l.high[i]
			binary.LittleEndian.PutUint64(f[off:], w)
			off += int(l.width[i])
		}
		if over == 0 {
			h.Len = uint32(l.size)
			PutHeader(f, h)
			return b[:start+n], nil
		}
		// A U32 out of range: the walk below names the field.
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

// ScalarFrameSize returns the size of c's Call frame when its arguments
// are all scalars, and 0 otherwise.
func ScalarFrameSize(c *abi.Call) int {
	if l := &argLayouts[c.ID]; l.size > 0 {
		return HeaderSize + l.size
	}
	return 0
}

// DecodeArgs decodes c's arguments, as DecodeValues(c.Args, p, v) does.
func DecodeArgs(c *abi.Call, p []byte, v *abi.Values) error {
	l := &argLayouts[c.ID]
	if l.size == 0 {
		return DecodeValues(c.Args, p, v)
	}
	if len(p) != l.size {
		return fmt.Errorf("wire: %d bytes of arguments, want %d", len(p), l.size)
	}
	v.NB = 0
	off := 0
	for i := range l.n {
		if l.width[i] == 4 {
			v.Words[i] = uint64(binary.LittleEndian.Uint32(p[off:]))
		} else {
			v.Words[i] = binary.LittleEndian.Uint64(p[off:])
		}
		off += int(l.width[i])
	}
	v.NW = l.n
	return nil
}
