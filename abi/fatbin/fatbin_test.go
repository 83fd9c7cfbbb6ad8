package fatbin_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/abi/fatbin"
	"github.com/kerf-edge/kerf/abi/fatbin/fatbintest"
)

var ptxText = []byte(".version 7.8\n.target sm_80\n.address_size 64\n" + strings.Repeat("// padding that compresses well\n", 40))

func sample() []byte {
	return fatbintest.Container(
		fatbintest.PTX(52, ptxText, false),
		fatbintest.PTX(80, ptxText, true),
		fatbintest.Entry{Kind: fatbin.KindELF, Arch: 80, Payload: fatbintest.ELF(256)},
	)
}

func TestRoundTrip(t *testing.T) {
	img := sample()
	c, err := fatbin.Parse(img)
	if err != nil {
		t.Fatal(err)
	}
	if c.Len != uint64(len(img)) {
		t.Fatalf("Len = %d, want %d", c.Len, len(img))
	}
	if n, err := fatbin.ContainerLen(img[:fatbin.HeaderSize]); err != nil || n != uint64(len(img)) {
		t.Fatalf("ContainerLen = %d, %v; want %d", n, err, len(img))
	}
	want := []struct {
		kind fatbin.Kind
		arch uint32
		lz4  bool
		body []byte
	}{
		{fatbin.KindPTX, 52, false, ptxText},
		{fatbin.KindPTX, 80, true, ptxText},
		{fatbin.KindELF, 80, false, fatbintest.ELF(256)},
	}
	if len(c.Entries) != len(want) {
		t.Fatalf("%d entries, want %d", len(c.Entries), len(want))
	}
	for i, w := range want {
		e := c.Entries[i]
		if e.Kind != w.kind || e.Arch != w.arch || (e.Flags&fatbin.FlagLZ4 != 0) != w.lz4 {
			t.Errorf("entry %d: %s sm_%d flags %#x, want %s sm_%d lz4 %v", i, e.Kind, e.Arch, e.Flags, w.kind, w.arch, w.lz4)
		}
		got, err := e.Contents()
		if err != nil || !bytes.Equal(got, w.body) {
			t.Errorf("entry %d contents: %v, %d bytes, want %d", i, err, len(got), len(w.body))
		}
	}
	if w := c.Entries[1]; len(w.Payload) >= len(ptxText) {
		t.Errorf("compressed payload is %d bytes for %d of text", len(w.Payload), len(ptxText))
	}
	// Bytes past the container are not the container's.
	if c2, err := fatbin.Parse(append(img, "trailing"...)); err != nil || c2.Len != c.Len || len(c2.Entries) != 3 {
		t.Fatalf("with trailing bytes: %v", err)
	}
	if c, err := fatbin.Parse(fatbintest.Container()); err != nil || len(c.Entries) != 0 {
		t.Fatalf("empty container: %v", err)
	}
}

func TestPTXPicksBest(t *testing.T) {
	text := func(s string) []byte { return []byte(".version " + s + "\n") }
	entry := func(arch uint32, major, minor uint16, lz4 bool) fatbintest.Entry {
		e := fatbintest.PTX(arch, text(strings.Repeat("x", int(arch))), lz4)
		e.Version = fatbin.Version{Major: major, Minor: minor}
		return e
	}
	img := fatbintest.Container(
		entry(90, 8, 0, false),
		entry(52, 6, 0, false),
		entry(80, 7, 0, true),
		entry(80, 7, 8, true),
		fatbintest.Entry{Kind: fatbin.KindELF, Arch: 80, Payload: fatbintest.ELF(128)},
	)
	c, err := fatbin.Parse(img)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		accept   func(fatbin.Entry) bool
		arch     uint32
		version  fatbin.Version
		wantCode abi.Result
	}{
		{"highest arch", func(fatbin.Entry) bool { return true }, 90, fatbin.Version{Major: 8}, abi.Success},
		{"highest version of the arch", func(e fatbin.Entry) bool { return e.Arch <= 80 }, 80, fatbin.Version{Major: 7, Minor: 8}, abi.Success},
		{"version bound", func(e fatbin.Entry) bool { return e.Version.Major < 7 }, 52, fatbin.Version{Major: 6}, abi.Success},
		{"none", func(e fatbin.Entry) bool { return e.Arch < 50 }, 0, fatbin.Version{}, abi.ErrNoBinaryForGPU},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, got, err := c.PTX(tt.accept)
			if abi.ResultOf(err) != tt.wantCode {
				t.Fatalf("err = %v, want %s", err, tt.wantCode.Name())
			}
			if err != nil {
				return
			}
			if e.Arch != tt.arch || e.Version != tt.version {
				t.Fatalf("picked sm_%d %v, want sm_%d %v", e.Arch, e.Version, tt.arch, tt.version)
			}
			if want := text(strings.Repeat("x", int(tt.arch))); !bytes.Equal(got, want) {
				t.Fatalf("text %q, want %q", got, want)
			}
		})
	}
}

// put returns a copy of b with v written at off.
func put[T uint16 | uint32 | uint64](b []byte, off int, v T) []byte {
	b = bytes.Clone(b)
	switch v := any(v).(type) {
	case uint16:
		binary.LittleEndian.PutUint16(b[off:], v)
	case uint32:
		binary.LittleEndian.PutUint32(b[off:], v)
	case uint64:
		binary.LittleEndian.PutUint64(b[off:], v)
	}
	return b
}

func TestMalformedContainers(t *testing.T) {
	plain := fatbintest.Container(fatbintest.PTX(80, ptxText, false))
	packed := fatbintest.Container(fatbintest.PTX(80, ptxText, true))
	const e = fatbin.HeaderSize // first entry
	packedLen := int(binary.LittleEndian.Uint32(packed[e+16:]))
	tests := []struct {
		name string
		img  []byte
	}{
		{"empty", nil},
		{"magic only", plain[:4]},
		{"bad magic", put(plain, 0, uint32(0xBA55ED51))},
		{"version 2", put(plain, 4, uint16(2))},
		{"header size 8", put(plain, 6, uint16(8))},
		{"header size past end", put(plain, 6, uint16(0xffff))},
		{"body overflows uint64", put(plain, 8, ^uint64(0))},
		{"body over the image limit", put(plain, 8, uint64(abi.MaxModuleImage))},
		{"body longer than the bytes", put(plain, 8, uint64(len(plain)))},
		{"body shorter than an entry header", put(plain, 8, uint64(63))},
		{"entry header size 0", put(plain, e+4, uint32(0))},
		{"entry header size 63", put(plain, e+4, uint32(63))},
		{"entry header past end", put(plain, e+4, ^uint32(0))},
		{"payload past end", put(plain, e+8, uint32(len(plain)))},
		{"payload size max", put(plain, e+8, ^uint32(0))},
		{"compressed larger than payload", put(packed, e+16, uint32(packedLen+8))},
	}
	for n := range len(plain) {
		tests = append(tests, struct {
			name string
			img  []byte
		}{fmt.Sprintf("prefix %d", n), plain[:n]})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := fatbin.Parse(tt.img)
			if abi.ResultOf(err) != abi.ErrInvalidImage {
				t.Fatalf("Parse = %v, %v; want CUDA_ERROR_INVALID_IMAGE", c, err)
			}
			if f, err := fatbin.Check(tt.img); f == fatbin.FormatContainer && err == nil {
				t.Fatalf("Check = %v, %v", f, err)
			}
		})
	}

	// Entries that parse but do not decompress.
	bad := []struct {
		name string
		img  []byte
		code abi.Result
	}{
		{"declared size 0", put(packed, e+56, uint64(0)), abi.ErrInvalidImage},
		{"declared size over the limit", put(packed, e+56, uint64(abi.MaxModuleImage+1)), abi.ErrInvalidImage},
		{"declared size beyond LZ4's ratio", put(packed, e+56, uint64(255*packedLen+17)), abi.ErrInvalidImage},
		{"declared size short", put(packed, e+56, uint64(len(ptxText)/2)), abi.ErrInvalidImage},
		{"truncated block", put(packed, e+16, uint32(packedLen/2)), abi.ErrInvalidImage},
		{"zstd", put(plain, e+40, uint64(fatbin.FlagZstd)), abi.ErrNotSupported},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			c, err := fatbin.Parse(tt.img)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.PTX(func(fatbin.Entry) bool { return true }); abi.ResultOf(err) != tt.code {
				t.Fatalf("PTX: %v, want %s", err, tt.code.Name())
			}
		})
	}
}

func TestELFLen(t *testing.T) {
	img := fatbintest.ELF(300)
	if n, err := fatbin.ELFLen(img[:fatbin.ELFHeaderSize]); err != nil || n != 300 {
		t.Fatalf("ELFLen = %d, %v; want 300", n, err)
	}
	if f, err := fatbin.Check(img); f != fatbin.FormatELF || err != nil {
		t.Fatalf("Check = %v, %v", f, err)
	}
	// Program headers past the section table make the image longer.
	if n, err := fatbin.ELFLen(put(put(put(img, 0x20, uint64(400)), 0x36, uint16(56)), 0x38, uint16(2))); err != nil || n != 512 {
		t.Fatalf("with program headers: %d, %v; want 512", n, err)
	}
	bad := []struct {
		name string
		img  []byte
	}{
		{"truncated header", img[:63]},
		{"32-bit", append([]byte{0x7f, 'E', 'L', 'F', 1, 1}, img[6:]...)},
		{"big-endian", append([]byte{0x7f, 'E', 'L', 'F', 2, 2}, img[6:]...)},
		{"header size 0", put(img, 0x34, uint16(0))},
		{"section table far away", put(img, 0x28, ^uint64(0)-10)},
		{"section table past the limit", put(img, 0x28, uint64(abi.MaxModuleImage))},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if n, err := fatbin.ELFLen(tt.img); abi.ResultOf(err) != abi.ErrInvalidImage {
				t.Fatalf("ELFLen = %d, %v", n, err)
			}
		})
	}
	if _, err := fatbin.Check(img[:299]); abi.ResultOf(err) != abi.ErrInvalidImage {
		t.Fatalf("Check of a truncated ELF: %v", err)
	}
}

func TestWrapper(t *testing.T) {
	w := fatbintest.Wrapper(0x7000_1000)
	if p, err := fatbin.WrapperContainer(w); err != nil || p != 0x7000_1000 {
		t.Fatalf("WrapperContainer = %#x, %v", p, err)
	}
	if f, err := fatbin.Check(w); f != fatbin.FormatWrapper || abi.ResultOf(err) != abi.ErrInvalidImage {
		t.Fatalf("Check = %v, %v; a wrapper is never loadable by itself", f, err)
	}
	for name, b := range map[string][]byte{
		"truncated": w[:20],
		"version 3": put(w, 4, uint32(3)),
		"null":      fatbintest.Wrapper(0),
		"container": fatbintest.Container(),
	} {
		if _, err := fatbin.WrapperContainer(b); abi.ResultOf(err) != abi.ErrInvalidImage {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestFormatOf(t *testing.T) {
	for _, tt := range []struct {
		head []byte
		want fatbin.Format
	}{
		{[]byte(".version 8.0"), fatbin.FormatPTX},
		{[]byte("\x7fEL"), fatbin.FormatPTX},
		{fatbintest.ELF(128), fatbin.FormatELF},
		{fatbintest.Container(), fatbin.FormatContainer},
		{fatbintest.Wrapper(1), fatbin.FormatWrapper},
	} {
		if got := fatbin.FormatOf(tt.head); got != tt.want {
			t.Errorf("FormatOf(%q) = %v, want %v", tt.head[:min(len(tt.head), 4)], got, tt.want)
		}
	}
}

// FuzzParse feeds arbitrary bytes to every reader of the package: none may
// panic, and decompression allocates no more than the input can justify.
func FuzzParse(f *testing.F) {
	f.Add(sample())
	f.Add(fatbintest.Container(fatbintest.PTX(80, ptxText, true)))
	f.Add(fatbintest.ELF(128))
	f.Add(fatbintest.Wrapper(8))
	f.Add([]byte(".version 8.0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fatbin.FormatOf(b)
		fatbin.ContainerLen(b)
		fatbin.ELFLen(b)
		fatbin.WrapperContainer(b)
		fatbin.Check(b)
		c, err := fatbin.Parse(b)
		if err != nil {
			return
		}
		if c.Len > uint64(len(b)) {
			t.Fatalf("container of %d bytes in %d", c.Len, len(b))
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for _, e := range c.Entries {
			out, err := e.Contents()
			if err == nil && e.Flags&fatbin.FlagLZ4 != 0 && uint64(len(out)) > e.RawLen {
				t.Fatalf("decompressed %d bytes, declared %d", len(out), e.RawLen)
			}
		}
		c.PTX(func(fatbin.Entry) bool { return true })
		runtime.ReadMemStats(&after)
		// Decompressing every entry twice: at most 255 bytes out per
		// byte in, each time, and some slack for the runtime.
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 2*255*uint64(len(b))+1<<20 {
			t.Fatalf("decompressing %d bytes allocated %d", len(b), grew)
		}
	})
}
