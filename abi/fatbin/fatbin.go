// Package fatbin reads CUDA's module image formats: the fatbin container
// (a header, then entries of PTX text or ELF cubins, each for one
// architecture, PTX possibly LZ4-compressed), the wrapper nvcc places in a
// program's memory to point at a container, and the ELF header of a cubin.
// It tells what an image is, how long it is from its own header (so that
// the shim can copy exactly an image it is given only a pointer to), and
// picks and decompresses a container's PTX for the emulator.
//
// Every image is untrusted tenant input: offsets and sizes are checked in
// uint64, parsing never panics, and nothing is allocated beyond
// abi.MaxModuleImage however large a header claims its contents are. A
// malformed image is an error carrying CUDA_ERROR_INVALID_IMAGE.
//
// It must not read memory through pointers (the shim does that in its
// unsafe files), load or run code, or depend on a backend. The layout is
// our own description of the public format; no NVIDIA file is used.
package fatbin

import (
	"encoding/binary"
	"strconv"

	"github.com/kerf-edge/kerf/abi"
	"github.com/pierrec/lz4/v4"
)

// Container header, 16 bytes, little-endian: magic u32, version u16,
// header size u16 (where the entries start), then the size of the entries
// u64 (everything after the header).
const (
	ContainerMagic   = 0xBA55ED50
	containerVersion = 1
	// HeaderSize is the size of a container header: enough bytes for
	// ContainerLen.
	HeaderSize = 16
)

// Entry header, at least 64 bytes, little-endian. Offsets of the fields
// this package reads:
const (
	entryKind       = 0  // u16
	entryHeaderLen  = 4  // u32: payload starts this far from the entry
	entryPayloadLen = 8  // u32: bytes of payload (padded) before the next entry
	entryPackedLen  = 16 // u32: bytes of compressed payload
	entryISAMinor   = 24 // u16: PTX ISA version
	entryISAMajor   = 26 // u16
	entryArch       = 28 // u32: SM architecture, 80 for sm_80
	entryFlags      = 40 // u64
	entryRawLen     = 56 // u64: decompressed size of a compressed payload
	minEntryHeader  = 64
)

// Entry flags.
const (
	FlagLZ4  = 0x2000 // payload is one LZ4 block
	FlagZstd = 0x8000 // payload is a zstd frame
)

// Kind is what an entry holds.
type Kind uint16

// Entry kinds.
const (
	KindPTX Kind = 1
	KindELF Kind = 2
)

func (k Kind) String() string {
	switch k {
	case KindPTX:
		return "PTX"
	case KindELF:
		return "ELF"
	}
	return "kind " + strconv.Itoa(int(k))
}

// Version is a PTX ISA version.
type Version struct{ Major, Minor uint16 }

// Less orders versions.
func (v Version) Less(w Version) bool {
	return v.Major < w.Major || v.Major == w.Major && v.Minor < w.Minor
}

// Entry is one image of a container.
type Entry struct {
	Kind    Kind
	Arch    uint32  // SM architecture: 80 for sm_80
	Version Version // PTX ISA version of a PTX entry
	Flags   uint64
	// Payload is the entry's bytes as stored (compressed when Flags
	// says so), a view of the container.
	Payload []byte
	// RawLen is the declared decompressed size of a compressed payload.
	RawLen uint64
}

// Container is a parsed fatbin container.
type Container struct {
	Len     uint64 // bytes the container spans, from its header
	Entries []Entry
}

func invalid(format string, args ...any) error {
	return abi.Errorf(abi.ErrInvalidImage, "fatbin: "+format, args...)
}

// ContainerLen returns the length a container's header gives it (header
// and entries), from at least HeaderSize bytes of it. A container longer
// than abi.MaxModuleImage is refused.
func ContainerLen(head []byte) (uint64, error) {
	if len(head) < HeaderSize {
		return 0, invalid("container header truncated at %d bytes", len(head))
	}
	if m := binary.LittleEndian.Uint32(head); m != ContainerMagic {
		return 0, invalid("container magic %#x", m)
	}
	if v := binary.LittleEndian.Uint16(head[4:]); v != containerVersion {
		return 0, invalid("container version %d not supported", v)
	}
	hlen := uint64(binary.LittleEndian.Uint16(head[6:]))
	if hlen < HeaderSize {
		return 0, invalid("container header size %d", hlen)
	}
	body := binary.LittleEndian.Uint64(head[8:])
	if body > abi.MaxModuleImage || hlen+body > abi.MaxModuleImage {
		return 0, invalid("container of %d+%d bytes exceeds %d", hlen, body, abi.MaxModuleImage)
	}
	return hlen + body, nil
}

// Parse reads the container at the start of b. Bytes after the length its
// header gives are ignored.
func Parse(b []byte) (*Container, error) {
	n, err := ContainerLen(b)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(b)) {
		return nil, invalid("container of %d bytes truncated at %d", n, len(b))
	}
	c := &Container{Len: n}
	b = b[:n]
	for off := uint64(binary.LittleEndian.Uint16(b[6:])); off < n; {
		e, next, err := parseEntry(b, off)
		if err != nil {
			return nil, err
		}
		c.Entries = append(c.Entries, e)
		off = next
	}
	return c, nil
}

// parseEntry reads the entry at off of container b and returns it with
// the offset of the next entry.
func parseEntry(b []byte, off uint64) (Entry, uint64, error) {
	end := uint64(len(b))
	if end-off < minEntryHeader {
		return Entry{}, 0, invalid("entry at %d: header truncated", off)
	}
	h := b[off:]
	hlen := uint64(binary.LittleEndian.Uint32(h[entryHeaderLen:]))
	stored := uint64(binary.LittleEndian.Uint32(h[entryPayloadLen:]))
	packed := uint64(binary.LittleEndian.Uint32(h[entryPackedLen:]))
	if hlen < minEntryHeader || hlen > end-off {
		return Entry{}, 0, invalid("entry at %d: header size %d", off, hlen)
	}
	e := Entry{
		Kind:    Kind(binary.LittleEndian.Uint16(h[entryKind:])),
		Arch:    binary.LittleEndian.Uint32(h[entryArch:]),
		Version: Version{binary.LittleEndian.Uint16(h[entryISAMajor:]), binary.LittleEndian.Uint16(h[entryISAMinor:])},
		Flags:   binary.LittleEndian.Uint64(h[entryFlags:]),
		RawLen:  binary.LittleEndian.Uint64(h[entryRawLen:]),
	}
	start := off + hlen
	// The payload region runs to the next entry; a compressed payload
	// lies at its start.
	region := stored
	if e.compressed() {
		if packed > stored {
			return Entry{}, 0, invalid("entry at %d: %d compressed bytes in a %d-byte payload", off, packed, stored)
		}
		stored = packed
	}
	if region > end-start {
		return Entry{}, 0, invalid("entry at %d: payload of %d bytes overruns the container", off, region)
	}
	e.Payload = b[start : start+stored : start+stored]
	return e, start + region, nil
}

func (e Entry) compressed() bool { return e.Flags&(FlagLZ4|FlagZstd) != 0 }

// Contents returns the entry's payload decompressed. PTX text loses its
// trailing NUL padding. A compressed payload's declared size is trusted
// only up to abi.MaxModuleImage and what its compressed size can hold.
func (e Entry) Contents() ([]byte, error) {
	out := e.Payload
	switch {
	case e.Flags&FlagZstd != 0:
		return nil, abi.Errorf(abi.ErrNotSupported, "fatbin: zstd-compressed %s entry for sm_%d", e.Kind, e.Arch)
	case e.Flags&FlagLZ4 != 0:
		var err error
		if out, err = lz4Block(e.Payload, e.RawLen); err != nil {
			return nil, err
		}
	}
	if e.Kind == KindPTX {
		for len(out) > 0 && out[len(out)-1] == 0 {
			out = out[:len(out)-1]
		}
	}
	return out, nil
}

// lz4MaxRatio bounds how much an LZ4 block can expand: a 255-byte run of
// length bytes yields at most 255 output bytes.
const lz4MaxRatio = 255

func lz4Block(src []byte, raw uint64) ([]byte, error) {
	if raw == 0 || raw > abi.MaxModuleImage || raw > lz4MaxRatio*uint64(len(src))+16 {
		return nil, invalid("LZ4 payload of %d bytes declares %d bytes decompressed", len(src), raw)
	}
	dst := make([]byte, raw)
	n, err := lz4.UncompressBlock(src, dst)
	if err != nil {
		return nil, invalid("LZ4 payload: %v", err)
	}
	return dst[:n], nil
}

// PTX returns the PTX entry that accept admits with the highest
// architecture, then the highest ISA version, and its text decompressed.
// With no such entry the error carries CUDA_ERROR_NO_BINARY_FOR_GPU, as
// the driver's does.
func (c *Container) PTX(accept func(Entry) bool) (Entry, []byte, error) {
	best := -1
	for i, e := range c.Entries {
		if e.Kind != KindPTX || !accept(e) {
			continue
		}
		if b := c.Entries[max(best, 0)]; best < 0 || e.Arch > b.Arch || e.Arch == b.Arch && b.Version.Less(e.Version) {
			best = i
		}
	}
	if best < 0 {
		return Entry{}, nil, abi.Errorf(abi.ErrNoBinaryForGPU, "fatbin: no usable PTX among %d entries", len(c.Entries))
	}
	e := c.Entries[best]
	text, err := e.Contents()
	return e, text, err
}
