package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/abi/fatbin"
	"github.com/kerf-edge/kerf/abi/fatbin/fatbintest"
	"github.com/kerf-edge/kerf/gpu/emu/kernels"
)

// fakeMemory is a program's memory: images by address. Reading past an
// image's bytes fails the test, as it could fault in a real program.
type fakeMemory struct {
	t      *testing.T
	images map[uint64][]byte
}

type fakeImage struct {
	mem *fakeMemory
	b   []byte
}

func (m fakeImage) head(n int) []byte {
	for i := range n {
		if i >= len(m.b) {
			m.mem.t.Fatalf("head read past %d bytes", len(m.b))
		}
		if m.b[i] == 0 {
			return m.b[:i+1]
		}
	}
	return m.b[:n]
}

func (m fakeImage) view(n uint64) []byte {
	if n > uint64(len(m.b)) {
		m.mem.t.Fatalf("view of %d bytes of a %d-byte image", n, len(m.b))
	}
	return m.b[:n]
}

func (m fakeImage) pointee(off uint64) (programImage, bool) {
	p := binary.LittleEndian.Uint64(m.view(off + 8)[off:])
	if p == 0 {
		return nil, false
	}
	b, ok := m.mem.images[p]
	if !ok {
		m.mem.t.Fatalf("pointer %#x to no image", p)
	}
	return fakeImage{m.mem, b}, true
}

func (m fakeImage) textLen(max uint64) (uint64, bool) {
	if i := bytes.IndexByte(m.b, 0); i >= 0 && uint64(i) < max {
		return uint64(i), true
	}
	return 0, false
}

func TestMeasureImage(t *testing.T) {
	garbage := []byte("\xab\xcd trailing bytes that are not the image")
	container := fatbintest.Container(
		fatbintest.PTX(80, kernels.PTX("vadd"), true),
		fatbintest.Entry{Kind: fatbin.KindELF, Arch: 80, Payload: fatbintest.ELF(256)},
	)
	oversized := binary.LittleEndian.AppendUint64(bytes.Clone(container[:8]), abi.MaxModuleImage)
	cubin := fatbintest.ELF(300)
	mem := &fakeMemory{t: t, images: map[uint64][]byte{
		0x2000: append(bytes.Clone(container), garbage...),
		0x3000: []byte(".version 8.0\x00"),
		0x4000: append(oversized, container[16:]...),
	}}
	wrapper := func(p uint64, version uint32) []byte {
		w := fatbintest.Wrapper(p)
		binary.LittleEndian.PutUint32(w[4:], version)
		return w
	}
	tests := []struct {
		name  string
		image []byte
		want  []byte // nil: CUDA_ERROR_INVALID_IMAGE
	}{
		{"ptx", []byte(".version 8.0\n.target sm_80\x00more"), []byte(".version 8.0\n.target sm_80")},
		{"short ptx", []byte("ab\x00"), []byte("ab")},
		{"empty ptx", []byte("\x00"), []byte{}},
		{"ptx without NUL", []byte(".version 8.0"), nil},
		{"container", append(bytes.Clone(container), garbage...), container},
		{"cubin", append(bytes.Clone(cubin), garbage...), cubin},
		{"wrapper", wrapper(0x2000, 1), container},
		{"wrapper version 2", wrapper(0x2000, 2), container},
		{"wrapper version 3", wrapper(0x2000, 3), nil},
		{"wrapper of nothing", wrapper(0, 1), nil},
		{"wrapper of PTX", wrapper(0x3000, 1), nil},
		{"wrapper of an oversized container", wrapper(0x4000, 1), nil},
		{"oversized container", mem.images[0x4000], nil},
		{"32-bit ELF", append([]byte("\x7fELF\x01\x01"), cubin[6:]...), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem.t = t
			img, n, err := measureImage(fakeImage{mem, tt.image})
			if tt.want == nil {
				if abi.ResultOf(err) != abi.ErrInvalidImage {
					t.Fatalf("err = %v, want CUDA_ERROR_INVALID_IMAGE", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := img.view(n); !bytes.Equal(got, tt.want) {
				t.Fatalf("measured %d bytes %q, want %d", n, got[:min(len(got), 16)], len(tt.want))
			}
		})
	}
}

// A C program loads a fatbin container, and the wrapper around it, through
// every module-load entry point and runs vadd from it; malformed images
// get CUDA_ERROR_INVALID_IMAGE and the session goes on (testdata/fatbin.c).
func TestFatbinProgram(t *testing.T) {
	good, bad := writeFatbins(t)
	k := startKerfd(t)
	b := k.bundle(t, "alice")
	for _, via := range vias {
		t.Run(via, func(t *testing.T) {
			kerfRun(t, b, via, 1, 0, "fatbin", good, bad)
		})
	}
}

// writeFatbins writes testdata/fatbin.c's arguments: a container holding
// vadd among entries for other devices, and one whose entry header is
// malformed.
func writeFatbins(t *testing.T) (good, bad string) {
	t.Helper()
	dir := t.TempDir()
	vadd := kernels.PTX("vadd")
	goodImg := fatbintest.Container(
		fatbintest.PTX(90, []byte(".version 8.0\n.target sm_90\nnot for this device\n"), false),
		fatbintest.Entry{Kind: fatbin.KindELF, Arch: 80, Payload: fatbintest.ELF(512)},
		fatbintest.PTX(80, vadd, true),
		fatbintest.PTX(52, vadd, false),
	)
	badImg := fatbintest.Container(fatbintest.PTX(80, vadd, false))
	binary.LittleEndian.PutUint32(badImg[fatbin.HeaderSize+4:], 63) // entry header size
	good, bad = filepath.Join(dir, "good.fatbin"), filepath.Join(dir, "bad.fatbin")
	for path, b := range map[string][]byte{good: goodImg, bad: badImg} {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return good, bad
}
