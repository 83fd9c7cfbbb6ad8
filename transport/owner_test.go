package transport

import (
	"testing"

	"github.com/kerf-edge/kerf/transport/abi"
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
