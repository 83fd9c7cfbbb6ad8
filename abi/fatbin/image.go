package fatbin

import (
	"encoding/binary"

	"github.com/kerf-edge/kerf/abi"
)

// Format is the kind of module image a buffer holds, told by its first
// bytes.
type Format int

// Module image formats.
const (
	FormatPTX       Format = iota // none of the magics: taken for PTX text
	FormatELF                     // a cubin
	FormatContainer               // a fatbin container
	FormatWrapper                 // nvcc's wrapper around a container pointer
)

func (f Format) String() string {
	switch f {
	case FormatELF:
		return "ELF"
	case FormatContainer:
		return "fatbin container"
	case FormatWrapper:
		return "fatbin wrapper"
	}
	return "PTX"
}

// MagicLen is how many leading bytes FormatOf reads. No magic holds a zero
// byte, so a reader may stop at a NUL: a shorter head is PTX text.
const MagicLen = 4

// The wrapper nvcc emits in a program's memory, 24 bytes: magic u32,
// version u32 (1, or 2 with prelinked containers), the container's address
// u64, the address of a file name or of prelinked containers u64.
const (
	WrapperMagic = 0x466243B1
	WrapperSize  = 24
	// WrapperContainerOffset is where a wrapper holds its container's
	// address.
	WrapperContainerOffset = 8
)

// ELF header fields this package reads: a 64-bit little-endian image.
const (
	elfMagic = 0x464C457F // "\x7fELF"
	// ELFHeaderSize is the size of a 64-bit ELF header: enough bytes for
	// ELFLen.
	ELFHeaderSize = 64
	elfClass64    = 2
	elfLittle     = 1
)

// FormatOf tells an image's format from its first MagicLen bytes.
func FormatOf(head []byte) Format {
	if len(head) < MagicLen {
		return FormatPTX
	}
	switch binary.LittleEndian.Uint32(head) {
	case ContainerMagic:
		return FormatContainer
	case WrapperMagic:
		return FormatWrapper
	case elfMagic:
		return FormatELF
	}
	return FormatPTX
}

// WrapperContainer checks a wrapper, from its first WrapperSize bytes, and
// returns its container's address (never zero).
func WrapperContainer(w []byte) (uint64, error) {
	if len(w) < WrapperSize || FormatOf(w) != FormatWrapper {
		return 0, invalid("not a fatbin wrapper")
	}
	if v := binary.LittleEndian.Uint32(w[4:]); v != 1 && v != 2 {
		return 0, invalid("wrapper version %d not supported", v)
	}
	p := binary.LittleEndian.Uint64(w[WrapperContainerOffset:])
	if p == 0 {
		return 0, invalid("wrapper names no container")
	}
	return p, nil
}

// ELFLen returns the length of a cubin from its first ELFHeaderSize bytes:
// where the last of its header, program header table and section header
// table ends (a cubin's section table comes last). A cubin longer than
// abi.MaxModuleImage is refused.
func ELFLen(head []byte) (uint64, error) {
	if len(head) < ELFHeaderSize || FormatOf(head) != FormatELF {
		return 0, invalid("ELF header truncated at %d bytes", len(head))
	}
	if head[4] != elfClass64 || head[5] != elfLittle {
		return 0, invalid("ELF class %d, data %d: only 64-bit little-endian cubins", head[4], head[5])
	}
	le := binary.LittleEndian
	n := uint64(le.Uint16(head[0x34:])) // e_ehsize
	if n < ELFHeaderSize {
		return 0, invalid("ELF header size %d", n)
	}
	tables := [2]struct{ off, entsize, num uint64 }{
		{le.Uint64(head[0x20:]), uint64(le.Uint16(head[0x36:])), uint64(le.Uint16(head[0x38:]))}, // program headers
		{le.Uint64(head[0x28:]), uint64(le.Uint16(head[0x3a:])), uint64(le.Uint16(head[0x3c:]))}, // section headers
	}
	for _, t := range tables {
		if t.num == 0 {
			continue
		}
		if t.off > abi.MaxModuleImage { // entsize*num < 2^32: no overflow below
			return 0, invalid("ELF table at %d beyond %d bytes", t.off, abi.MaxModuleImage)
		}
		n = max(n, t.off+t.entsize*t.num)
	}
	if n > abi.MaxModuleImage {
		return 0, invalid("ELF image of %d bytes exceeds %d", n, abi.MaxModuleImage)
	}
	return n, nil
}

// Check tells image's format and checks that the image is whole, so that
// a driver reading it by its own headers stays inside it: a container
// parses within it, an ELF's tables end within it. A wrapper is refused,
// as its addresses name another process's memory. What is not a container,
// ELF or wrapper is left for the loader to judge as PTX text.
func Check(image []byte) (Format, error) {
	f := FormatOf(image)
	switch f {
	case FormatWrapper:
		return f, invalid("a fatbin wrapper holds addresses in the program; load the container it names")
	case FormatContainer:
		_, err := Parse(image)
		return f, err
	case FormatELF:
		n, err := ELFLen(image)
		if err == nil && n > uint64(len(image)) {
			err = invalid("ELF image of %d bytes truncated at %d", n, len(image))
		}
		return f, err
	}
	return f, nil
}
