package emu

import "testing"

// BenchmarkSpan measures the interpreter's address lookup with many live
// allocations.
func BenchmarkSpan(b *testing.B) {
	be := New(Config{MemoryBytes: 1 << 30})
	c, _ := be.Open(0, 0)
	ctx := c.(*Context)
	defer ctx.Close()
	var ptrs []uint64
	for range 1000 {
		p, err := ctx.MemAlloc(4096)
		if err != nil {
			b.Fatal(err)
		}
		ptrs = append(ptrs, p)
	}
	for i := 0; b.Loop(); i++ {
		p := ptrs[i%len(ptrs)] + uint64(i%4096)
		if _, _, ok := ctx.mem.Span(p); !ok {
			b.Fatal("lookup failed")
		}
	}
}
