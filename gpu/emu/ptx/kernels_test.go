package ptx

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func randF32(r *rand.Rand, n int, lo, hi float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*r.Float32()
	}
	return v
}

func TestVaddSaxpy(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 31, 33, 1000, 4097} {
		for _, bs := range []int{32, 100, 256, 1024} {
			for _, workers := range []int{1, 3} {
				t.Run(fmt.Sprintf("n%d_b%d_w%d", n, bs, workers), func(t *testing.T) {
					mem := newTestMem()
					a, b := randF32(r, n, -10, 10), randF32(r, n, -10, 10)
					da, db, dc := mem.f32s(a), mem.f32s(b), mem.alloc(4*n)
					k := kernel(t, "vadd", "vadd")
					l := launch(k, mem, [3]uint32{ceilDiv(n, bs), 1, 1}, [3]uint32{uint32(bs), 1, 1}, 0, packParams(t, k, da, db, dc, n), workers)
					if err := k.Run(l); err != nil {
						t.Fatal(err)
					}
					for i, c := range mem.getF32(dc, n) {
						if c != a[i]+b[i] {
							t.Fatalf("vadd[%d] = %v, want %v", i, c, a[i]+b[i])
						}
					}
					// saxpy y = alpha*x + y, in place on b
					alpha := float32(1.75)
					k = kernel(t, "vadd", "saxpy")
					l = launch(k, mem, [3]uint32{ceilDiv(n, bs), 1, 1}, [3]uint32{uint32(bs), 1, 1}, 0, packParams(t, k, n, alpha, da, db), workers)
					if err := k.Run(l); err != nil {
						t.Fatal(err)
					}
					for i, y := range mem.getF32(db, n) {
						want := float32(float64(alpha)*float64(a[i]) + float64(b[i]))
						if y != want {
							t.Fatalf("saxpy[%d] = %v, want %v", i, y, want)
						}
					}
				})
			}
		}
	}
}

func TestReduce(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 100, 1000, 5000} {
		for _, bs := range []int{32, 64, 256, 512} {
			t.Run(fmt.Sprintf("n%d_b%d", n, bs), func(t *testing.T) {
				mem := newTestMem()
				in := randF32(r, n, 0, 1)
				grid := ceilDiv(n, 2*bs)
				din, dout := mem.f32s(in), mem.alloc(4*int(grid))
				k := kernel(t, "reduce", "reduce_sum")
				l := launch(k, mem, [3]uint32{grid, 1, 1}, [3]uint32{uint32(bs), 1, 1}, uint32(4*bs), packParams(t, k, din, dout, uint32(n)), 0)
				if err := k.Run(l); err != nil {
					t.Fatal(err)
				}
				out := mem.getF32(dout, int(grid))
				for g := range out {
					var want float64
					for i := g * 2 * bs; i < min(n, (g+1)*2*bs); i++ {
						want += float64(in[i])
					}
					if !closeF32(out[g], float32(want), 1e-5) {
						t.Fatalf("block %d: sum %v, want %v", g, out[g], want)
					}
				}
			})
		}
	}
}

func matmulRef(a, b []float32, m, n, kk int) []float32 {
	c := make([]float32, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var acc float32
			for p := 0; p < kk; p++ {
				acc = float32(float64(a[i*kk+p])*float64(b[p*n+j]) + float64(acc))
			}
			c[i*n+j] = acc
		}
	}
	return c
}

func TestMatMul(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, s := range [][3]int{{1, 1, 1}, {17, 23, 5}, {33, 16, 47}, {64, 64, 64}, {5, 70, 3}, {40, 9, 16}} {
		m, n, kk := s[0], s[1], s[2]
		t.Run(fmt.Sprintf("%dx%dx%d", m, n, kk), func(t *testing.T) {
			mem := newTestMem()
			a, b := randF32(r, m*kk, -1, 1), randF32(r, kk*n, -1, 1)
			da, db, dc := mem.f32s(a), mem.f32s(b), mem.alloc(4*m*n)
			k := kernel(t, "matmul", "matmul")
			l := launch(k, mem, [3]uint32{ceilDiv(n, 16), ceilDiv(m, 16), 1}, [3]uint32{16, 16, 1}, 0, packParams(t, k, da, db, dc, m, n, kk), 2)
			if err := k.Run(l); err != nil {
				t.Fatal(err)
			}
			// the kernel accumulates in the same order with fma: exact
			want := matmulRef(a, b, m, n, kk)
			for i, c := range mem.getF32(dc, m*n) {
				if c != want[i] {
					t.Fatalf("C[%d] = %v, want %v", i, c, want[i])
				}
			}
		})
	}
}

func TestHistogram(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{1, 999, 10000} {
		for _, nbins := range []int{1, 7, 64, 256} {
			for _, shape := range [][2]int{{1, 32}, {4, 96}, {13, 256}} {
				t.Run(fmt.Sprintf("n%d_bins%d_g%d_b%d", n, nbins, shape[0], shape[1]), func(t *testing.T) {
					mem := newTestMem()
					data := make([]uint32, n)
					want := make([]uint32, nbins)
					for i := range data {
						data[i] = r.Uint32()
						want[data[i]%uint32(nbins)]++
					}
					dd := mem.u32s(data)
					for _, kn := range []string{"histogram", "histogram_global"} {
						bins := mem.alloc(4 * nbins)
						k := kernel(t, "histogram", kn)
						grid := uint32(shape[0])
						if kn == "histogram_global" {
							grid = ceilDiv(n, shape[1])
						}
						l := launch(k, mem, [3]uint32{grid, 1, 1}, [3]uint32{uint32(shape[1]), 1, 1}, 0, packParams(t, k, dd, uint32(n), bins, uint32(nbins)), 0)
						if err := k.Run(l); err != nil {
							t.Fatal(err)
						}
						for i, c := range mem.getU32(bins, nbins) {
							if c != want[i] {
								t.Fatalf("%s: bin %d = %d, want %d", kn, i, c, want[i])
							}
						}
					}
				})
			}
		}
	}
}

func TestAtomicSums(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	n := 3000
	mem := newTestMem()
	x := make([]float32, n)
	y := make([]uint32, n)
	var fs float64
	var is int32
	var us uint64
	for i := range x {
		x[i] = float32(r.IntN(100)) // small integers: float sums are exact
		y[i] = uint32(r.Int32N(2000) - 1000)
		fs += float64(x[i])
		is += int32(y[i])
		us += uint64(y[i])
	}
	dx, dy, df, di, du := mem.f32s(x), mem.u32s(y), mem.alloc(4), mem.alloc(4), mem.alloc(8)
	k := kernel(t, "histogram", "atomic_sums")
	l := launch(k, mem, [3]uint32{ceilDiv(n, 128), 1, 1}, [3]uint32{128, 1, 1}, 0, packParams(t, k, dx, dy, uint32(n), df, di, du), 4)
	if err := k.Run(l); err != nil {
		t.Fatal(err)
	}
	if got := mem.getF32(df, 1)[0]; float64(got) != fs {
		t.Errorf("float sum %v, want %v", got, fs)
	}
	if got := int32(mem.getU32(di, 1)[0]); got != is {
		t.Errorf("int sum %v, want %v", got, is)
	}
	if got := mem.getU64(du, 1)[0]; got != us {
		t.Errorf("u64 sum %v, want %v", got, us)
	}
}

func TestStencil(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	m, err := Load(kernelsPTX("stencil"))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := m.Kernel("stencil5")
	for _, s := range [][2]int{{1, 1}, {3, 5}, {37, 19}, {64, 64}} {
		for _, blk := range [][2]int{{8, 8}, {16, 4}, {32, 1}, {5, 7}} {
			w, h := s[0], s[1]
			t.Run(fmt.Sprintf("%dx%d_b%dx%d", w, h, blk[0], blk[1]), func(t *testing.T) {
				mem := newTestMem()
				globals := map[string]uint64{}
				for _, g := range m.Globals() {
					a := mem.alloc(int(g.Size))
					copy(mem.bytes(a), g.Init)
					globals[g.Name] = a
				}
				in := randF32(r, w*h, -5, 5)
				din, dout := mem.f32s(in), mem.alloc(4*w*h)
				l := launch(k, mem, [3]uint32{ceilDiv(w, blk[0]), ceilDiv(h, blk[1]), 1}, [3]uint32{uint32(blk[0]), uint32(blk[1]), 1}, 0, packParams(t, k, din, dout, w, h), 0)
				l.Globals = globals
				if err := k.Run(l); err != nil {
					t.Fatal(err)
				}
				out := mem.getF32(dout, w*h)
				for y := 0; y < h; y++ {
					for x := 0; x < w; x++ {
						i := y*w + x
						want := in[i]
						if x > 0 && y > 0 && x < w-1 && y < h-1 {
							f := float32(0.125 * float64(in[i-1]))
							f = float32(0.5*float64(in[i]) + float64(f))
							f = float32(0.125*float64(in[i+1]) + float64(f))
							f = float32(0.125*float64(in[i-w]) + float64(f))
							want = float32(0.125*float64(in[i+w]) + float64(f))
						}
						if out[i] != want {
							t.Fatalf("(%d,%d) = %v, want %v", x, y, out[i], want)
						}
					}
				}
				if c := mem.getU32(globals["kerf_stencil_calls"], 1)[0]; c != 1 {
					t.Fatalf("kerf_stencil_calls = %d, want 1", c)
				}
			})
		}
	}
}

func TestWarpReduce(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, n := range []int{1, 31, 32, 33, 1000} {
		for _, bs := range []int{32, 96, 256} {
			t.Run(fmt.Sprintf("n%d_b%d", n, bs), func(t *testing.T) {
				mem := newTestMem()
				grid := ceilDiv(n, bs)
				x := make([]float32, n)
				xi := make([]uint32, n)
				var fs float64
				for i := range x {
					x[i] = float32(r.IntN(64))
					xi[i] = uint32(r.Int32N(1 << 20))
					fs += float64(x[i])
				}
				dx, dxi, dsum := mem.f32s(x), mem.u32s(xi), mem.alloc(4)
				nw := int(grid) * bs / 32
				dws := mem.alloc(4 * nw)
				k := kernel(t, "warpreduce", "warp_reduce")
				if err := k.Run(launch(k, mem, [3]uint32{grid, 1, 1}, [3]uint32{uint32(bs), 1, 1}, 0, packParams(t, k, dx, dsum, uint32(n)), 0)); err != nil {
					t.Fatal(err)
				}
				if got := mem.getF32(dsum, 1)[0]; float64(got) != fs {
					t.Fatalf("sum %v, want %v", got, fs)
				}
				k = kernel(t, "warpreduce", "warp_reduce_int")
				if err := k.Run(launch(k, mem, [3]uint32{grid, 1, 1}, [3]uint32{uint32(bs), 1, 1}, 0, packParams(t, k, dxi, dws, uint32(n)), 0)); err != nil {
					t.Fatal(err)
				}
				got := mem.getU32(dws, nw)
				for wi := 0; wi < nw; wi++ {
					var want uint32
					for i := wi * 32; i < min(n, wi*32+32); i++ {
						want += xi[i]
					}
					if got[wi] != want {
						t.Fatalf("warp %d: %d, want %d", wi, got[wi], want)
					}
				}
			})
		}
	}
}

func TestShuffles(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, bs := range []int{32, 64, 96} {
		mem := newTestMem()
		n := 3 * bs
		in := make([]uint32, n)
		for i := range in {
			in[i] = r.Uint32()
		}
		din, dout := mem.u32s(in), mem.alloc(16*n)
		k := kernel(t, "warpreduce", "shuffles")
		if err := k.Run(launch(k, mem, [3]uint32{3, 1, 1}, [3]uint32{uint32(bs), 1, 1}, 0, packParams(t, k, din, dout), 0)); err != nil {
			t.Fatal(err)
		}
		out := mem.getU32(dout, 4*n)
		for i := 0; i < n; i++ {
			lane := i % 32
			w0 := i - lane
			up := in[i]
			if lane >= 1 {
				up = in[i-1]
			}
			idx := w0 + (lane &^ 7) | ((lane & 7) ^ 5)
			want := [4]uint32{up, in[w0+(lane^3)], in[idx], uint32(lane)}
			for j := range want {
				if out[4*i+j] != want[j] {
					t.Fatalf("block %d thread %d out %d: %d, want %d", bs, i, j, out[4*i+j], want[j])
				}
			}
		}
	}
}

func TestMixed(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	n := 1000
	mem := newTestMem()
	x := randF32(r, n, -3000, 3000)
	a := make([]uint32, n)
	b := make([]uint32, n)
	for i := range a {
		a[i] = uint32(r.Int32N(2_000_000) - 1_000_000)
		switch i % 5 {
		case 0:
			b[i] = 0
		case 1:
			b[i] = uint32(r.Int32N(20) - 10)
		default:
			b[i] = uint32(r.Int32())
		}
		if i%7 == 0 {
			a[i] = 0x7fffffff
		}
	}
	x[0], x[1], x[2] = 0, float32(math.Copysign(0, -1)), 2.5
	dx, da, db := mem.f32s(x), mem.u32s(a), mem.u32s(b)
	di, df, dl := mem.alloc(32*n), mem.alloc(8*n), mem.alloc(16*n)
	k := kernel(t, "mixed", "mixed")
	if err := k.Run(launch(k, mem, [3]uint32{ceilDiv(n, 128), 1, 1}, [3]uint32{128, 1, 1}, 0, packParams(t, k, dx, da, db, di, df, dl, uint32(n)), 0)); err != nil {
		t.Fatal(err)
	}
	iout, fout, lout := mem.getU32(di, 8*n), mem.getF32(df, 2*n), mem.getU64(dl, 2*n)
	for i := 0; i < n; i++ {
		ai, bi := int32(a[i]), int32(b[i])
		xf := x[i]
		f := float32(float64(xf)*2.5 + float64(float32(ai)))
		f = min(max(f, -1000), 1000)
		var q, rr int32
		var uq, ur uint32
		if bi != 0 {
			q, rr = ai/bi, ai%bi
			uq, ur = uint32(ai)/uint32(bi), uint32(ai)%uint32(bi)
		}
		ax := xf
		if xf < 0 {
			ax = -xf
		}
		wantI := [8]uint32{uint32(q), uint32(rr), uq, ur, uint32(int32(xf)), uint32(min(ai, bi)), uint32(max(ai, bi)), uint32(ax)}
		for j, w := range wantI {
			if iout[8*i+j] != w {
				t.Fatalf("i=%d iout[%d] = %d, want %d (a=%d b=%d x=%v)", i, j, int32(iout[8*i+j]), int32(w), ai, bi, xf)
			}
		}
		wantF := [2]float32{f, float32(float64(float32(q))*0.5 + float64(float32(uint32(bi))))}
		for j, w := range wantF {
			if fout[2*i+j] != w {
				t.Fatalf("i=%d fout[%d] = %v, want %v", i, j, fout[2*i+j], w)
			}
		}
		la := int64(ai) * 1000003
		lb := int64(bi)
		if lb == 0 {
			lb = 7
		}
		if lout[2*i] != uint64(la/lb) || lout[2*i+1] != uint64(la%lb) {
			t.Fatalf("i=%d lout = %d %d, want %d %d", i, int64(lout[2*i]), int64(lout[2*i+1]), la/lb, la%lb)
		}
	}
}
