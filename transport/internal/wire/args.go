package wire

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/kerf-edge/kerf/transport/abi"
)

// scalarLayout is a call's arguments when all are scalars (most calls,
// and every async one but the launch): their count, which are 32-bit, and
// the encoded size. Such arguments encode and decode without walking the
// catalogue's Arg kinds per call.
type scalarLayout struct {
	size int    // encoded bytes; 0: not all scalars (or none)
	n    uint8  // words
	u32  uint64 // bit i set: word i is a U32
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
			if a.Kind == abi.U32 {
				l.u32 |= 1 << i
			}
		}
		out[c.ID] = l
	}
	return out
}()

// AppendArgs encodes c's arguments, as AppendValues(b, c.Args, v) does.
func AppendArgs(b []byte, c *abi.Call, v *abi.Values) ([]byte, error) {
	l := argLayouts[c.ID]
	if l.size == 0 || v.NW != l.n || v.NB != 0 {
		return AppendValues(b, c.Args, v)
	}
	for i := range l.n {
		if l.u32&(1<<i) != 0 && v.Words[i] > 0xffffffff {
			return AppendValues(b, c.Args, v) // which names the field
		}
	}
	b = slices.Grow(b, l.size)
	for i, w := range v.Words[:l.n] {
		if l.u32&(1<<i) != 0 {
			b = binary.LittleEndian.AppendUint32(b, uint32(w))
		} else {
			b = binary.LittleEndian.AppendUint64(b, w)
		}
	}
	return b, nil
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
	v.NB = 0
	for i := range l.n {
		if l.u32&(1<<i) != 0 {
			v.Words[i] = uint64(binary.LittleEndian.Uint32(p))
			p = p[4:]
		} else {
			v.Words[i] = binary.LittleEndian.Uint64(p)
			p = p[8:]
		}
	}
	v.NW = l.n
	return nil
}
