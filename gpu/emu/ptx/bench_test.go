package ptx

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkMatmul runs the tiled 128×128 matmul kernel on one worker:
// the interpreter's hot loop of shared loads, fma and branches.
func BenchmarkMatmul(b *testing.B) {
	const n = 128
	r := rand.New(rand.NewPCG(5, 6))
	mem := newTestMem()
	da, db, dc := mem.f32s(randF32(r, n*n, -1, 1)), mem.f32s(randF32(r, n*n, -1, 1)), mem.alloc(4*n*n)
	k := kernel(b, "matmul", "matmul")
	l := launch(k, mem, [3]uint32{n / 16, n / 16, 1}, [3]uint32{16, 16, 1}, 0, packParams(b, k, da, db, dc, n, n, n), 1)
	var st Stats
	for b.Loop() {
		var err error
		if st, err = k.RunStats(l); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(st.WarpInstructions)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mwarpinstr/s")
}
