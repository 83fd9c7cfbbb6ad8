package transport

import (
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/kerf-edge/kerf/abi"
)

func TestMemTableContains(t *testing.T) {
	var m memTable
	m.insert(memRange{base: 0x1000, size: 0x100})
	m.insert(memRange{base: 0x3000, size: 0x100, module: 7})
	m.insert(memRange{base: 0x1100, size: 0x100}) // adjacent to the first
	for _, tc := range []struct {
		p, n uint64
		want bool
	}{
		{0x1000, 0x100, true},
		{0x1000, 0x101, false}, // spans two allocations: not one range
		{0x10ff, 1, true},
		{0x1100, 0, true},
		{0x1200, 0, false}, // one past the end
		{0x0fff, 1, false},
		{0x3050, 0xb0, true}, // a module global
		{0x3050, ^uint64(0), false},
		{^uint64(0), 2, false}, // p+n wraps
		{0x2000, 1, false},
	} {
		if got := m.contains(tc.p, tc.n); got != tc.want {
			t.Errorf("contains(%#x, %#x) = %v, want %v", tc.p, tc.n, got, tc.want)
		}
	}
	if m.used != 0x200 {
		t.Fatalf("used %#x: globals must not count", m.used)
	}
	if m.removeAlloc(0x1080) || m.removeAlloc(0x3000) {
		t.Fatal("removed by an interior pointer, or removed a global as an allocation")
	}
	if !m.removeAlloc(0x1000) || m.contains(0x1000, 1) || !m.contains(0x1100, 1) {
		t.Fatal("removal broke the table")
	}
	m.removeModule(7)
	if m.contains(0x3000, 1) {
		t.Fatal("module globals outlived the module")
	}
}

func TestHandleKindsDoNotMix(t *testing.T) {
	var h handleTable
	s := h.add(abi.StreamHandle, "stream", 0)
	f := h.add(abi.FunctionHandle, "fn", 42)
	if _, ok := h.get(s, abi.EventHandle); ok {
		t.Fatal("a stream handle resolved as an event")
	}
	if _, ok := h.get(s&0x00ffffffffffffff|uint64(abi.EventHandle)<<56, abi.EventHandle); ok {
		t.Fatal("relabelled handle resolved")
	}
	h.removeChildren(42)
	if _, ok := h.get(f, abi.FunctionHandle); ok {
		t.Fatal("function outlived its module")
	}
	if o, ok := h.get(s, abi.StreamHandle); !ok || o != "stream" {
		t.Fatal("unrelated handle removed")
	}
}

// contains, whichever range it found last, agrees with a scan of every
// range.
func TestMemTableContainsMatchesScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var m memTable
	for base := uint64(0x1000); len(m.ranges) < 40; base += uint64(rng.IntN(3)) * 0x80 {
		size := uint64(1 + rng.IntN(0x200))
		m.insert(memRange{base: base, size: size})
		base += size
	}
	scan := func(p, n uint64) bool {
		for _, r := range m.ranges {
			if end, carry := bits.Add64(p, n, 0); carry == 0 && p >= r.base && end <= r.base+r.size && p < r.base+r.size {
				return true
			}
		}
		return false
	}
	last := m.ranges[len(m.ranges)-1]
	for range 100000 {
		p := 0x0f00 + uint64(rng.IntN(int(last.base+last.size)))
		n := uint64(rng.IntN(0x300))
		if rng.IntN(50) == 0 {
			n = ^uint64(0) - uint64(rng.IntN(4))
		}
		if got, want := m.contains(p, n), scan(p, n); got != want {
			t.Fatalf("contains(%#x, %#x) = %v, a scan says %v", p, n, got, want)
		}
	}
}
