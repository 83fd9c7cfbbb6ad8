// Package argshape says how a catalogue call's arguments appear as a Go
// struct: the struct's name, its fields' names, Go types and tags, in
// the catalogue's order. The wire generator writes the argument structs by
// it, and tests hold structs against the catalogue with Check. It holds no
// codec and must not import the wire package.
package argshape

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/kerf-edge/kerf/abi"
)

// TypeName names a call after its CUDA name: cuMemsetD8Async gives
// MemsetD8Async, cuMemcpyDtoDAsync_v2 MemcpyDtoDAsync. Its argument struct
// is TypeName + "Args".
func TypeName(c *abi.Call) string {
	n := strings.TrimPrefix(c.Name, "cu")
	if i := strings.IndexByte(n, '_'); i >= 0 {
		n = n[:i]
	}
	return n
}

// FieldName is an argument's catalogue name, exported: sharedMemBytes
// gives SharedMemBytes.
func FieldName(a abi.Arg) string { return strings.ToUpper(a.Name[:1]) + a.Name[1:] }

// Tag is the value of a field's "arg" tag: the argument's kind, with a
// handle's kind or a blob's limit.
func Tag(a abi.Arg) string {
	switch a.Kind {
	case abi.Handle:
		return "handle " + a.Handle.String()
	case abi.Bytes, abi.String:
		return fmt.Sprintf("%s max=%d", a.Kind, a.Max)
	}
	return a.Kind.String()
}

// GoType is the Go type of a field of kind k, or nil for an invalid kind.
func GoType(k abi.Kind) reflect.Type {
	switch k {
	case abi.U32:
		return reflect.TypeFor[uint32]()
	case abi.U64, abi.DevPtr, abi.Handle:
		return reflect.TypeFor[uint64]()
	case abi.Bytes:
		return reflect.TypeFor[[]byte]()
	case abi.String:
		return reflect.TypeFor[string]()
	}
	return nil
}

// Check reports how t differs from the argument struct of c: its name,
// and its fields' names, Go types, tags and order.
func Check(t reflect.Type, c *abi.Call) error {
	if want := TypeName(c) + "Args"; t.Kind() != reflect.Struct || t.Name() != want {
		return fmt.Errorf("%s: arguments are a %s, want struct %s", c.Name, t, want)
	}
	if t.NumField() != len(c.Args) {
		return fmt.Errorf("%s: %s has %d fields, the catalogue %d arguments", c.Name, t, t.NumField(), len(c.Args))
	}
	for i, a := range c.Args {
		f := t.Field(i)
		if f.Name != FieldName(a) || f.Type != GoType(a.Kind) || f.Tag.Get("arg") != Tag(a) {
			return fmt.Errorf("%s: field %d is %s %s %q, want %s %s %q",
				c.Name, i, f.Name, f.Type, f.Tag.Get("arg"), FieldName(a), GoType(a.Kind), Tag(a))
		}
	}
	return nil
}
