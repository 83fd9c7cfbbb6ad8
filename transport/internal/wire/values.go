package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/kerf-edge/kerf/transport/abi"
)

// AppendValues encodes v as shaped by spec. It fails if v does not match
// spec or a blob exceeds its maximum.
func AppendValues(b []byte, spec []abi.Arg, v *abi.Values) ([]byte, error) {
	var nw, nb uint8
	for i := range spec {
		a := &spec[i]
		switch a.Kind {
		case abi.U32:
			if nw >= v.NW {
				return b, fmt.Errorf("wire: missing value for %s", a.Name)
			}
			x := v.Words[nw]
			if x > 0xffffffff {
				return b, fmt.Errorf("wire: %s = %d does not fit in 32 bits", a.Name, x)
			}
			b = binary.LittleEndian.AppendUint32(b, uint32(x))
			nw++
		case abi.U64, abi.DevPtr, abi.Handle:
			if nw >= v.NW {
				return b, fmt.Errorf("wire: missing value for %s", a.Name)
			}
			b = binary.LittleEndian.AppendUint64(b, v.Words[nw])
			nw++
		case abi.Bytes, abi.String:
			if nb >= v.NB {
				return b, fmt.Errorf("wire: missing value for %s", a.Name)
			}
			p := v.Blobs[nb]
			if uint64(len(p)) > uint64(a.Max) {
				return b, fmt.Errorf("wire: %s is %d bytes, limit %d", a.Name, len(p), a.Max)
			}
			if a.Kind == abi.String && bytes.IndexByte(p, 0) >= 0 {
				return b, fmt.Errorf("wire: %s contains a NUL byte", a.Name)
			}
			b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
			b = append(b, p...)
			nb++
		default:
			return b, fmt.Errorf("wire: %s has invalid kind %d", a.Name, a.Kind)
		}
	}
	if nw != v.NW || nb != v.NB {
		return b, fmt.Errorf("wire: %d words and %d blobs given, spec takes %d and %d", v.NW, v.NB, nw, nb)
	}
	return b, nil
}

// DecodeValues decodes p, shaped by spec, into v. The payload must match
// exactly: no short fields, no trailing bytes, blobs within their maximum,
// strings without NUL. Blobs alias p.
func DecodeValues(spec []abi.Arg, p []byte, v *abi.Values) error {
	v.Reset()
	for i := range spec {
		a := &spec[i]
		switch a.Kind {
		case abi.U32:
			if len(p) < 4 {
				return fmt.Errorf("wire: truncated %s", a.Name)
			}
			v.Words[v.NW] = uint64(binary.LittleEndian.Uint32(p))
			v.NW++
			p = p[4:]
		case abi.U64, abi.DevPtr, abi.Handle:
			if len(p) < 8 {
				return fmt.Errorf("wire: truncated %s", a.Name)
			}
			v.Words[v.NW] = binary.LittleEndian.Uint64(p)
			v.NW++
			p = p[8:]
		case abi.Bytes, abi.String:
			if len(p) < 4 {
				return fmt.Errorf("wire: truncated length of %s", a.Name)
			}
			n := binary.LittleEndian.Uint32(p)
			p = p[4:]
			if n > a.Max {
				return fmt.Errorf("wire: %s is %d bytes, limit %d", a.Name, n, a.Max)
			}
			if uint64(n) > uint64(len(p)) {
				return fmt.Errorf("wire: truncated %s: %d of %d bytes", a.Name, len(p), n)
			}
			blob := p[:n:n]
			if a.Kind == abi.String && bytes.IndexByte(blob, 0) >= 0 {
				return fmt.Errorf("wire: %s contains a NUL byte", a.Name)
			}
			v.Blobs[v.NB] = blob
			v.NB++
			p = p[n:]
		default:
			return fmt.Errorf("wire: %s has invalid kind %d", a.Name, a.Kind)
		}
	}
	if len(p) != 0 {
		return fmt.Errorf("wire: %d trailing bytes", len(p))
	}
	return nil
}

// AppendReply encodes a Reply payload: the result code, then the call's
// results when the code is Success.
func AppendReply(b []byte, c *abi.Call, code abi.Result, res *abi.Values) ([]byte, error) {
	b = binary.LittleEndian.AppendUint32(b, uint32(code))
	if code != abi.Success || len(c.Results) == 0 {
		return b, nil
	}
	return AppendValues(b, c.Results, res)
}

// DecodeReply decodes a Reply payload for call c.
func DecodeReply(c *abi.Call, p []byte, res *abi.Values) (abi.Result, error) {
	if len(p) < 4 {
		return abi.ErrUnknown, fmt.Errorf("wire: truncated reply to %s", c.Name)
	}
	code := abi.Result(binary.LittleEndian.Uint32(p))
	if code != abi.Success {
		res.Reset()
		if len(p) != 4 {
			return code, fmt.Errorf("wire: error reply to %s has %d trailing bytes", c.Name, len(p)-4)
		}
		return code, nil
	}
	return code, DecodeValues(c.Results, p[4:], res)
}
