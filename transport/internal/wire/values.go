package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/kerf-edge/kerf/abi"
)

// AppendValues encodes v as shaped by spec. It fails if v does not match
// spec or a blob exceeds its maximum.
func AppendValues(b []byte, spec []abi.Arg, v *abi.Values) ([]byte, error) {
	// First pass: check v against spec and size the output, so the
	// second pass writes in place without growing b field by field.
	need, nw, nb := 0, uint8(0), uint8(0)
	for i := range spec {
		a := &spec[i]
		switch a.Kind {
		case abi.U32:
			if nw >= v.NW {
				return b, fmt.Errorf("wire: missing value for %s", a.Name)
			}
			if v.Words[nw] > 0xffffffff {
				return b, fmt.Errorf("wire: %s = %d does not fit in 32 bits", a.Name, v.Words[nw])
			}
			need, nw = need+4, nw+1
		case abi.U64, abi.DevPtr, abi.Handle:
			if nw >= v.NW {
				return b, fmt.Errorf("wire: missing value for %s", a.Name)
			}
			need, nw = need+8, nw+1
		case abi.Bytes, abi.String:
			if nb >= v.NB {
				return b, fmt.Errorf("wire: missing value for %s", a.Name)
			}
			p := v.Blobs[nb]
			if uint64(len(p)) > uint64(a.Max) {
				return b, fmt.Errorf("wire: %s is %d bytes, limit %d", a.Name, len(p), a.Max)
			}
			if a.Kind == abi.String && bytes.IndexByte(p, 0) >= 0 {
				return b, errNUL(a.Name)
			}
			need, nb = need+4+len(p), nb+1
		default:
			return b, fmt.Errorf("wire: %s has invalid kind %d", a.Name, a.Kind)
		}
	}
	if nw != v.NW || nb != v.NB {
		return b, fmt.Errorf("wire: %d words and %d blobs given, spec takes %d and %d", v.NW, v.NB, nw, nb)
	}
	off := len(b)
	b = slices.Grow(b, need)[:off+need]
	out := b[off:]
	nw, nb = 0, 0
	for i := range spec {
		switch spec[i].Kind {
		case abi.U32:
			binary.LittleEndian.PutUint32(out, uint32(v.Words[nw]))
			out, nw = out[4:], nw+1
		case abi.U64, abi.DevPtr, abi.Handle:
			binary.LittleEndian.PutUint64(out, v.Words[nw])
			out, nw = out[8:], nw+1
		default:
			p := v.Blobs[nb]
			binary.LittleEndian.PutUint32(out, uint32(len(p)))
			copy(out[4:], p)
			out, nb = out[4+len(p):], nb+1
		}
	}
	return b, nil
}

// fixedSize returns the encoded size of spec when it has only fixed-size
// kinds, or -1.
func fixedSize(spec []abi.Arg) int {
	n := 0
	for i := range spec {
		switch spec[i].Kind {
		case abi.U32:
			n += 4
		case abi.U64, abi.DevPtr, abi.Handle:
			n += 8
		default:
			return -1
		}
	}
	return n
}

// DecodeValues decodes p, shaped by spec, into v. The payload must match
// exactly: no short fields, no trailing bytes, blobs within their maximum,
// strings without NUL. Blobs alias p.
func DecodeValues(spec []abi.Arg, p []byte, v *abi.Values) error {
	v.Reset()
	if n := fixedSize(spec); n >= 0 {
		// Scalars only: one length check, then no per-field checks.
		if len(p) != n {
			return fmt.Errorf("wire: %d bytes of arguments, want %d", len(p), n)
		}
		for i := range spec {
			if spec[i].Kind == abi.U32 {
				v.Words[i] = uint64(binary.LittleEndian.Uint32(p))
				p = p[4:]
			} else {
				v.Words[i] = binary.LittleEndian.Uint64(p)
				p = p[8:]
			}
		}
		v.NW = uint8(len(spec))
		return nil
	}
	for i := range spec {
		a := &spec[i]
		switch a.Kind {
		case abi.U32:
			if len(p) < 4 {
				return errTruncated(a.Name)
			}
			v.Words[v.NW] = uint64(binary.LittleEndian.Uint32(p))
			v.NW++
			p = p[4:]
		case abi.U64, abi.DevPtr, abi.Handle:
			if len(p) < 8 {
				return errTruncated(a.Name)
			}
			v.Words[v.NW] = binary.LittleEndian.Uint64(p)
			v.NW++
			p = p[8:]
		case abi.Bytes, abi.String:
			blob, rest, err := takeBlob(p, a.Name, a.Max)
			if err != nil {
				return err
			}
			if a.Kind == abi.String && bytes.IndexByte(blob, 0) >= 0 {
				return errNUL(a.Name)
			}
			v.Blobs[v.NB] = blob
			v.NB++
			p = rest
		default:
			return fmt.Errorf("wire: %s has invalid kind %d", a.Name, a.Kind)
		}
	}
	if len(p) != 0 {
		return errTrailing(len(p))
	}
	return nil
}

// AppendReply encodes a Reply payload: the result code, then the call's
// results when the code is Success. From protocol version 3 on, an error
// reply may go on with its text (AppendErrorText).
func AppendReply(b []byte, c *abi.Call, code abi.Result, res *abi.Values) ([]byte, error) {
	b = binary.LittleEndian.AppendUint32(b, uint32(code))
	if code != abi.Success || len(c.Results) == 0 {
		return b, nil
	}
	return AppendValues(b, c.Results, res)
}

// errorTextSpec is what follows an error reply's code, when anything does.
var errorTextSpec = []abi.Arg{{Name: "text", Kind: abi.String, Max: abi.MaxErrorText}}

// AppendErrorText appends an error reply's text, cut to abi.MaxErrorText
// bytes; an empty text appends nothing.
func AppendErrorText(b []byte, text string) []byte {
	if text == "" {
		return b
	}
	if len(text) > abi.MaxErrorText {
		text = text[:abi.MaxErrorText]
	}
	b, err := AppendValues(b, errorTextSpec, new(abi.Values).Blob([]byte(text)))
	if err != nil {
		panic(err) // the text fits errorTextSpec by construction
	}
	return b
}

// DecodeReply decodes a Reply payload for call c. withText accepts an
// error reply's text (protocol version 3 on), which it returns.
func DecodeReply(c *abi.Call, p []byte, res *abi.Values, withText bool) (abi.Result, string, error) {
	if len(p) < 4 {
		return abi.ErrUnknown, "", fmt.Errorf("wire: truncated reply to %s", c.Name)
	}
	code := abi.Result(binary.LittleEndian.Uint32(p))
	if code != abi.Success {
		res.Reset()
		if len(p) == 4 {
			return code, "", nil
		}
		if !withText {
			return code, "", fmt.Errorf("wire: error reply to %s has %d trailing bytes", c.Name, len(p)-4)
		}
		var v abi.Values
		if err := DecodeValues(errorTextSpec, p[4:], &v); err != nil {
			return code, "", fmt.Errorf("wire: error reply to %s: %w", c.Name, err)
		}
		if len(v.Blobs[0]) == 0 {
			return code, "", fmt.Errorf("wire: error reply to %s has an empty text", c.Name)
		}
		return code, string(v.Blobs[0]), nil
	}
	return code, "", DecodeValues(c.Results, p[4:], res)
}
