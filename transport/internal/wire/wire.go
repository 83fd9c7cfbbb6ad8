// Package wire encodes and decodes Kerf's length-prefixed binary frames.
//
// It owns byte layout only: frame headers, the table-driven argument codec,
// each call's argument struct and its decoder (generated from the
// catalogue) and the handshake messages. It does no I/O beyond reading and writing
// frames on a buffered stream, and it never allocates more than
// abi.MaxFrame for one frame, whatever the peer claims.
package wire

import (
	"encoding/binary"
	"fmt"

	"github.com/kerf-edge/kerf/abi"
)

// Type is a frame type.
type Type uint8

const (
	Hello     Type = iota + 1 // client → server: version range, token, device
	HelloAck                  // server → client: negotiated version, device
	Call                      // client → server: one catalogue call
	Reply                     // server → client: result of a Sync call
	Data                      // either way: a chunk of a call's bulk payload
	ShmData                   // either way: a chunk of bulk payload in shared memory
	Error                     // either way: a fatal error; the stream closes after it
	Allocate                  // client → server on a lease stream: reserve slices
	Allocated                 // server → client: the lease
	ListGPUs                  // client → server on a lease stream: what may I use?
	GPUs                      // server → client: the tenant's GPUs and their free capacity
	Query                     // client → server on a status stream: describe the lease again
	Status                    // server → client: the lease's slices and processes
	Printf                    // server → client: device printf output, before a synchronising call's reply
	Redirect                  // server → client on a lease stream: the pool reserved the slices on another node
	Claim                     // client → server on a lease stream: take up a reservation the pool made here
	numTypes
)

var typeNames = [...]string{Hello: "hello", HelloAck: "hello-ack", Call: "call", Reply: "reply", Data: "data",
	ShmData: "shm-data", Error: "error", Allocate: "allocate", Allocated: "allocated",
	ListGPUs: "list-gpus", GPUs: "gpus", Query: "query", Status: "status", Printf: "printf",
	Redirect: "redirect", Claim: "claim"}

func (t Type) String() string {
	if t > 0 && t < numTypes {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Flags on a Call frame.
const (
	// WantReply marks a call whose sender waits for a Reply. The server
	// uses it for calls it does not know, so that an unknown Sync call
	// still gets CUDA_ERROR_NOT_SUPPORTED.
	WantReply uint8 = 1 << iota
)

// HeaderSize is the fixed size of a frame header.
const HeaderSize = 16

const maxPayload = abi.MaxFrame

// Header precedes every frame:
//
//	u32 length of the payload that follows the header
//	u8  type
//	u8  flags
//	u16 call id (Call, Reply, Data: the call the frame belongs to)
//	u64 sequence number of the call
type Header struct {
	Len   uint32
	Type  Type
	Flags uint8
	Call  abi.CallID
	Seq   uint64
}

// PutHeader writes h into b[:HeaderSize].
func PutHeader(b []byte, h Header) {
	_ = b[HeaderSize-1]
	binary.LittleEndian.PutUint32(b[0:], h.Len)
	b[4] = byte(h.Type)
	b[5] = h.Flags
	binary.LittleEndian.PutUint16(b[6:], uint16(h.Call))
	binary.LittleEndian.PutUint64(b[8:], h.Seq)
}

// ParseHeader reads a header and checks its type and length bound before
// any payload is read or allocated. The error is built out of line.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, headerError(b)
	}
	h := getHeader(b)
	if h.Type-1 >= numTypes-1 || h.Len > abi.MaxFrame {
		return h, headerError(b)
	}
	return h, nil
}

// headerError says what is wrong with the header in b.
func headerError(b []byte) error {
	if len(b) < HeaderSize {
		return fmt.Errorf("wire: short header: %d bytes", len(b))
	}
	t, n := Type(b[4]), binary.LittleEndian.Uint32(b)
	if t == 0 || t >= numTypes {
		return fmt.Errorf("wire: unknown frame type %d", uint8(t))
	}
	return fmt.Errorf("wire: %s frame of %d bytes exceeds the %d-byte limit", t, n, abi.MaxFrame)
}

// ParseCallHeader is ParseHeader for the hot path: it parses the header at
// the start of b when it is a Call frame within the length limit, and
// reports false for anything else (ParseHeader then says why). It inlines.
func ParseCallHeader(b []byte) (Header, bool) {
	if len(b) < HeaderSize {
		return Header{}, false
	}
	h := getHeader(b)
	return h, h.Type == Call && h.Len <= abi.MaxFrame
}

// getHeader reads the header fields from b, which holds HeaderSize bytes
// or more, without checking them.
func getHeader(b []byte) Header {
	b = b[:HeaderSize]
	return Header{
		Len:   binary.LittleEndian.Uint32(b[0:]),
		Type:  Type(b[4]),
		Flags: b[5],
		Call:  abi.CallID(binary.LittleEndian.Uint16(b[6:])),
		Seq:   binary.LittleEndian.Uint64(b[8:]),
	}
}
