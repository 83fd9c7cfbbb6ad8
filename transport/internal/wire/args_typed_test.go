package wire

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/transport/internal/wire/argshape"
)

// The generated argument structs and their codecs are held here against
// the catalogue and against its general codec (DecodeValues, AppendCall),
// through the tables in calls_gen_test.go.

// structValues returns an argument struct's fields, in order, as the
// catalogue codec holds them.
func structValues(a any) *abi.Values {
	v := &abi.Values{}
	s := reflect.ValueOf(a)
	for i := range s.NumField() {
		switch f := s.Field(i); f.Kind() {
		case reflect.Uint32, reflect.Uint64:
			v.Word(f.Uint())
		case reflect.String:
			v.Blob([]byte(f.String()))
		default:
			v.Blob(f.Bytes())
		}
	}
	return v
}

// Every call has its own decoder, into a struct whose fields are the
// catalogue's arguments.
func TestArgStructsMatchCatalogue(t *testing.T) {
	calls := abi.Calls()
	if len(argDecoders) != len(calls)+1 {
		t.Fatalf("%d decoders for %d calls: regenerate", len(argDecoders)-1, len(calls))
	}
	for _, c := range calls {
		decode := argDecoders[c.ID]
		if decode == nil {
			t.Errorf("%s: no decoder", c.Name)
			continue
		}
		a, _ := decode(nil)
		if err := argshape.Check(reflect.TypeOf(a), c); err != nil {
			t.Error(err)
		}
	}
}

// Every async call of scalars, and no other call, has an encoder of its
// own frame: the client pipelines them.
func TestEncodersCoverAsyncScalarCalls(t *testing.T) {
	for _, c := range abi.Calls() {
		_, has := callEncoders[c.ID]
		want := c.Mode == abi.Async && c.Bulk == abi.NoBulk && argLayouts[c.ID].size > 0
		if has != want {
			t.Errorf("%s: own encoder %v, want %v", c.Name, has, want)
		}
	}
}

// checkDecoder holds c's own decoder against DecodeValues on p, and its
// own encoder, if it has one, against AppendCall. It reports whether p
// decoded.
func checkDecoder(t *testing.T, c *abi.Call, p []byte) bool {
	t.Helper()
	var ref abi.Values
	errRef := DecodeValues(c.Args, p, &ref)
	a, err := argDecoders[c.ID](p)
	if (err == nil) != (errRef == nil) {
		t.Fatalf("%s: own decoder %v, DecodeValues %v", c.Name, err, errRef)
	}
	if err != nil {
		return false
	}
	checkEqual(t, c.Name, structValues(a), &ref)
	enc, ok := callEncoders[c.ID]
	if !ok {
		return true
	}
	h := Header{Type: Call, Call: c.ID, Seq: 0x0102030405060708}
	want, err := AppendCall(nil, h, c, &ref)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != enc.size {
		t.Fatalf("%s: frame of %d bytes, generated size %d", c.Name, len(want), enc.size)
	}
	f := make([]byte, len(want))
	enc.put(a, f, h.Seq)
	if !bytes.Equal(f, want) {
		t.Fatalf("%s: own encoder wrote %x, AppendCall %x", c.Name, f, want)
	}
	return true
}

// Every call's own decoder takes what the catalogue codec writes, and
// refuses every strict prefix, a trailing byte, a blob over its limit and
// a string with a NUL byte.
func TestEveryCallDecodes(t *testing.T) {
	for _, c := range abi.Calls() {
		in := sample(c.Args, bytes.Repeat([]byte{0xa5, 3, 0, 0, 0, 0, 0, 0x80}, 16))
		b, err := AppendValues(nil, c.Args, in)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if !checkDecoder(t, c, b) {
			t.Fatalf("%s: own decoder refused %x", c.Name, b)
		}
		for n := range b {
			if checkDecoder(t, c, b[:n]) {
				t.Fatalf("%s: %d-byte prefix of %d accepted", c.Name, n, len(b))
			}
		}
		if checkDecoder(t, c, append(b, 0)) {
			t.Fatalf("%s: trailing byte accepted", c.Name)
		}
		for _, tc := range blobLimits(c) {
			if checkDecoder(t, c, tc.args) != tc.ok {
				t.Fatalf("%s: %x accepted %v, want %v", c.Name, tc.args, !tc.ok, tc.ok)
			}
		}
	}
}

type blobCase struct {
	args []byte
	ok   bool // whether the arguments decode
}

// blobLimits returns, for each blob argument of c, c's arguments with
// that blob at its limit, which decode, one byte over it and, for a
// string, with a NUL byte, which do not.
func blobLimits(c *abi.Call) []blobCase {
	var out []blobCase
	for i, a := range c.Args {
		if a.Kind.IsWord() {
			continue
		}
		blobs := [][]byte{bytes.Repeat([]byte("a"), int(a.Max)), bytes.Repeat([]byte("a"), int(a.Max)+1)}
		if a.Kind == abi.String {
			blobs = append(blobs, []byte("a\x00b"))
		}
		for k, blob := range blobs {
			var b []byte
			for j, o := range c.Args {
				switch {
				case j == i:
					b = binary.LittleEndian.AppendUint32(b, uint32(len(blob)))
					b = append(b, blob...)
				case o.Kind == abi.U32:
					b = binary.LittleEndian.AppendUint32(b, 1)
				case o.Kind.IsWord():
					b = binary.LittleEndian.AppendUint64(b, 1)
				default:
					b = binary.LittleEndian.AppendUint32(b, 0)
				}
			}
			out = append(out, blobCase{b, k == 0})
		}
	}
	return out
}
