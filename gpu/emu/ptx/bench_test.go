package ptx

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
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

// BenchmarkUniform runs clang's matmul and reduction on one worker with
// warp-uniform registers tracked and lane by lane (perLane), one launch
// of each in turn, and reports the median time of a lane-by-lane launch over a tracked
// one (above 1, tracking is faster).
func BenchmarkUniform(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	mem := newTestMem()
	const n, m = 128, 1 << 18
	da, db, dc := mem.f32s(randF32(r, n*n, -1, 1)), mem.f32s(randF32(r, n*n, -1, 1)), mem.alloc(4*n*n)
	din, dout := mem.f32s(randF32(r, m, -1, 1)), mem.alloc(4*m/512)
	for _, tc := range []struct {
		file, name string
		launch     func(k *Kernel) *Launch
	}{
		{"matmul", "matmul", func(k *Kernel) *Launch {
			return launch(k, mem, [3]uint32{n / 16, n / 16, 1}, [3]uint32{16, 16, 1}, 0, packParams(b, k, da, db, dc, n, n, n), 1)
		}},
		{"reduce", "reduce_sum", func(k *Kernel) *Launch {
			return launch(k, mem, [3]uint32{m / 512, 1, 1}, [3]uint32{256, 1, 1}, 1024, packParams(b, k, din, dout, m), 1)
		}},
	} {
		b.Run(tc.file, func(b *testing.B) {
			k := kernel(b, tc.file, tc.name)
			pl := perLane(k)
			lk, lp := tc.launch(k), tc.launch(pl)
			var tk, tp []time.Duration
			type run struct {
				k  *Kernel
				l  *Launch
				ts *[]time.Duration
			}
			runs := []run{{k, lk, &tk}, {pl, lp, &tp}}
			for b.Loop() {
				runs[0], runs[1] = runs[1], runs[0] // each goes first in turn
				for _, x := range runs {
					start := time.Now()
					if err := x.k.Run(x.l); err != nil {
						b.Fatal(err)
					}
					*x.ts = append(*x.ts, time.Since(start))
				}
			}
			b.ReportMetric(float64(median(tp))/float64(median(tk)), "per-lane/tracked")
		})
	}
}

// median returns the median of ds, which it sorts.
func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// BenchmarkKeepSetp runs nvcc's tiled matrix multiply (128x128x128),
// whose tile loop compares the row and column against the bounds each
// time round, with those compares kept and with none kept, in turns,
// and reports the ratio of the median launch times.
func BenchmarkKeepSetp(b *testing.B) {
	const n = 128
	k := nvccTiledMatmul(b)
	r := rand.New(rand.NewPCG(5, 6))
	mem := newTestMem()
	da, db, dc := mem.f32s(randF32(r, n*n, -1, 1)), mem.f32s(randF32(r, n*n, -1, 1)), mem.alloc(4*n*n)
	uk := unkept(k)
	var tk, tu []time.Duration
	type run struct {
		k  *Kernel
		ts *[]time.Duration
	}
	runs := []run{{k, &tk}, {uk, &tu}}
	for b.Loop() {
		runs[0], runs[1] = runs[1], runs[0] // each goes first in turn
		for _, x := range runs {
			l := launch(x.k, mem, [3]uint32{n / 16, n / 16, 1}, [3]uint32{16, 16, 1}, 0, packParams(b, x.k, da, db, dc, n, n, n), 1)
			start := time.Now()
			if err := x.k.Run(l); err != nil {
				b.Fatal(err)
			}
			*x.ts = append(*x.ts, time.Since(start))
		}
	}
	b.ReportMetric(float64(median(tu))/float64(median(tk)), "recomputed/kept")
}
