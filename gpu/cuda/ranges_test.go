package cuda

import (
	"testing"

	"github.com/kerf-edge/kerf/abi"
)

func TestRanges(t *testing.T) {
	r := newRanges()
	r.add(0x1000, 0x100)
	r.add(0x3000, 0x10)
	r.add(0x3000, 0x10) // a global asked for twice
	for _, tc := range []struct {
		name    string
		addr, n uint64
		ok      bool
	}{
		{"whole allocation", 0x1000, 0x100, true},
		{"inside", 0x1080, 0x10, true},
		{"past the end", 0x10f0, 0x11, false},
		{"before the first", 0xfff, 1, false},
		{"between", 0x2000, 1, false},
		{"across two", 0x10ff, 0x2000, false},
		{"overflowing length", 0x1001, ^uint64(0), false},
		{"second range", 0x3008, 8, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := r.check("copy", tc.addr, tc.n)
			if tc.ok != (err == nil) || err != nil && abi.ResultOf(err) != abi.ErrInvalidValue {
				t.Fatalf("check(%#x, %d) = %v, want ok %v", tc.addr, tc.n, err, tc.ok)
			}
		})
	}
	r.remove(0x3000)
	if r.check("copy", 0x3000, 1) != nil {
		t.Fatal("a range added twice is gone after one remove")
	}
	r.remove(0x3000)
	r.remove(0x1000)
	if r.check("copy", 0x3000, 1) == nil || r.check("copy", 0x1000, 1) == nil || len(r.bases) != 0 {
		t.Fatalf("removed ranges still there: %v", r.bases)
	}
}
