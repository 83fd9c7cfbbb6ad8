package ptx

import (
	"encoding/binary"
	"errors"
	"math"
	"sort"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu/emu/kernels"
)

// testMem is a Memory of a few allocations in a sorted slice, with
// unmapped gaps between them.
type testMem struct {
	allocs []testAlloc
	next   uint64
}

type testAlloc struct {
	base uint64
	data []byte
}

func newTestMem() *testMem { return &testMem{next: 0x7f00_0000_0000} }

func (m *testMem) Span(addr uint64) (uint64, []byte, bool) {
	i := sort.Search(len(m.allocs), func(i int) bool {
		return m.allocs[i].base+uint64(len(m.allocs[i].data)) > addr
	})
	if i == len(m.allocs) || addr < m.allocs[i].base {
		return 0, nil, false
	}
	return m.allocs[i].base, m.allocs[i].data, true
}

func (m *testMem) alloc(n int) uint64 {
	base := m.next
	m.allocs = append(m.allocs, testAlloc{base: base, data: make([]byte, n)})
	m.next += (uint64(n) + 4096 + 255) &^ 255
	return base
}

func (m *testMem) bytes(addr uint64) []byte {
	_, b, ok := m.Span(addr)
	if !ok {
		panic("bad test address")
	}
	return b
}

func (m *testMem) f32s(v []float32) uint64 {
	a := m.alloc(4 * len(v))
	b := m.bytes(a)
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return a
}

func (m *testMem) u32s(v []uint32) uint64 {
	a := m.alloc(4 * len(v))
	b := m.bytes(a)
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	return a
}

func (m *testMem) getF32(a uint64, n int) []float32 {
	b := m.bytes(a)
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func (m *testMem) getU32(a uint64, n int) []uint32 {
	b := m.bytes(a)
	out := make([]uint32, n)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return out
}

func (m *testMem) getU64(a uint64, n int) []uint64 {
	b := m.bytes(a)
	out := make([]uint64, n)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return out
}

// packParams lays out args (uint64, uint32, int32, int, float32) as k.Params says.
func packParams(t testing.TB, k *Kernel, args ...any) []byte {
	t.Helper()
	if len(args) != len(k.Params) {
		t.Fatalf("%s: %d args for %d params", k.Name, len(args), len(k.Params))
	}
	buf := make([]byte, k.ParamSize)
	for i, a := range args {
		p := k.Params[i]
		var v uint64
		switch x := a.(type) {
		case uint64:
			v = x
		case uint32:
			v = uint64(x)
		case int32:
			v = uint64(uint32(x))
		case int:
			v = uint64(uint32(int32(x)))
		case float32:
			v = uint64(math.Float32bits(x))
		default:
			t.Fatalf("bad arg type %T", a)
		}
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], v)
		copy(buf[p.Offset:p.Offset+p.Size], b[:p.Size])
	}
	return buf
}

var moduleCache = map[string]*Module{}

func kernel(t testing.TB, file, name string) *Kernel {
	t.Helper()
	m, ok := moduleCache[file]
	if !ok {
		var err error
		m, err = Load(kernels.PTX(file))
		if err != nil {
			t.Fatalf("load %s: %v", file, err)
		}
		moduleCache[file] = m
	}
	k, err := m.Kernel(name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func launch(k *Kernel, mem Memory, grid, block [3]uint32, dyn uint32, params []byte, workers int) *Launch {
	return &Launch{Grid: grid, Block: block, DynamicShared: dyn, Params: params, Memory: mem, Workers: workers}
}

func ceilDiv(a, b int) uint32 { return uint32((a + b - 1) / b) }

func wantCode(t *testing.T, err error, code abi.Result) {
	t.Helper()
	var e *abi.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("got error %v, want %s", err, code.Name())
	}
}

func closeF32(a, b float32, tol float64) bool {
	d := math.Abs(float64(a) - float64(b))
	return d <= tol*math.Max(1, math.Abs(float64(b)))
}

func kernelsPTX(n string) []byte { return kernels.PTX(n) }
