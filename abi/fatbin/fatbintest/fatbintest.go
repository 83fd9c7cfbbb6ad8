// Package fatbintest builds module images for tests from our own bytes:
// fatbin containers with PTX (plain or LZ4-compressed) and ELF entries,
// wrappers, and minimal cubin-shaped ELF files. It is for tests only; no
// product package may import it.
package fatbintest

import (
	"encoding/binary"
	"fmt"

	"github.com/kerf-edge/kerf/abi/fatbin"
	"github.com/pierrec/lz4/v4"
)

// Entry describes one entry of a container to build.
type Entry struct {
	Kind    fatbin.Kind
	Arch    uint32
	Version fatbin.Version
	Payload []byte // the contents, before compression
	LZ4     bool   // store Payload as one LZ4 block
	Flags   uint64 // flags besides the compression flag
}

// PTX is a PTX entry for sm_arch, ISA 7.8, of text.
func PTX(arch uint32, text []byte, compressed bool) Entry {
	return Entry{Kind: fatbin.KindPTX, Arch: arch, Version: fatbin.Version{Major: 7, Minor: 8}, Payload: text, LZ4: compressed}
}

// entryHeaderLen is the entry header size Container writes.
const entryHeaderLen = 64

// Container builds a fatbin container of entries. It panics if an LZ4
// payload does not compress (a test's input is chosen to).
func Container(entries ...Entry) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, fatbin.ContainerMagic)
	b = le.AppendUint16(b, 1)
	b = le.AppendUint16(b, fatbin.HeaderSize)
	b = le.AppendUint64(b, 0) // patched below
	for _, e := range entries {
		payload, flags, raw := e.Payload, e.Flags, uint64(0)
		if e.Kind == fatbin.KindPTX {
			payload = append(append([]byte(nil), payload...), 0)
		}
		if e.LZ4 {
			var c lz4.Compressor
			dst := make([]byte, lz4.CompressBlockBound(len(payload)))
			n, err := c.CompressBlock(payload, dst)
			if err != nil || n == 0 {
				panic(fmt.Sprintf("fatbintest: %d bytes do not compress: %v", len(payload), err))
			}
			raw, flags, payload = uint64(len(payload)), flags|fatbin.FlagLZ4, dst[:n]
		}
		padded := (len(payload) + 7) &^ 7
		h := make([]byte, entryHeaderLen)
		le.PutUint16(h[0:], uint16(e.Kind))
		le.PutUint16(h[2:], 0x0101)
		le.PutUint32(h[4:], entryHeaderLen)
		le.PutUint32(h[8:], uint32(padded))
		if e.LZ4 {
			le.PutUint32(h[16:], uint32(len(payload)))
		}
		le.PutUint16(h[24:], e.Version.Minor)
		le.PutUint16(h[26:], e.Version.Major)
		le.PutUint32(h[28:], e.Arch)
		le.PutUint64(h[40:], flags|0x11) // 64-bit, Linux
		le.PutUint64(h[56:], raw)
		b = append(b, h...)
		b = append(b, payload...)
		b = append(b, make([]byte, padded-len(payload))...)
	}
	le.PutUint64(b[8:], uint64(len(b)-fatbin.HeaderSize))
	return b
}

// Wrapper builds the wrapper nvcc emits around a container's address.
func Wrapper(container uint64) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, fatbin.WrapperMagic)
	b = le.AppendUint32(b, 1)
	b = le.AppendUint64(b, container)
	return le.AppendUint64(b, 0)
}

// ELF builds a 64-bit little-endian ELF image of n bytes (n >= 128) whose
// one-entry section header table ends it, as a cubin's does.
func ELF(n int) []byte {
	const shentsize = 64
	if n < fatbin.ELFHeaderSize+shentsize {
		panic("fatbintest: ELF too small")
	}
	le := binary.LittleEndian
	b := make([]byte, n)
	copy(b, "\x7fELF\x02\x01\x01")
	le.PutUint16(b[0x10:], 2)                    // ET_EXEC
	le.PutUint16(b[0x12:], 190)                  // EM_CUDA
	le.PutUint32(b[0x14:], 1)                    // EV_CURRENT
	le.PutUint64(b[0x28:], uint64(n-shentsize))  // e_shoff
	le.PutUint16(b[0x34:], fatbin.ELFHeaderSize) // e_ehsize
	le.PutUint16(b[0x3a:], shentsize)            // e_shentsize
	le.PutUint16(b[0x3c:], 1)                    // e_shnum
	for i := fatbin.ELFHeaderSize; i < n-shentsize; i++ {
		b[i] = byte(i*7 + 1) // varied bytes: a copy that drops or moves any shows
	}
	return b
}

// Malformed returns images, by name, whose own headers make them invalid
// (CUDA_ERROR_INVALID_IMAGE) on every load path: a container and a cubin
// that end before their headers say, a container whose header claims more
// than the image limit, and a bare wrapper.
func Malformed() map[string][]byte {
	c := Container(PTX(80, []byte(".version 7.0\n.target sm_70\n"), false))
	huge := binary.LittleEndian.AppendUint64(c[:8:8], 1<<40)
	return map[string][]byte{
		"truncated fatbin": c[:len(c)-1],
		"oversized fatbin": append(huge, c[16:]...),
		"truncated cubin":  ELF(512)[:300],
		"fatbin wrapper":   Wrapper(0x1000),
	}
}
