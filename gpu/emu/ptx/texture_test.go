package ptx

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/kerf-edge/kerf/abi"
)

// testTextures is a context's object table as the tests build it.
type testTextures struct {
	tex  map[uint64]*Texture
	surf map[uint64]*Surface
}

func (tt *testTextures) Texture(h uint64) (*Texture, bool) { t, ok := tt.tex[h]; return t, ok }
func (tt *testTextures) Surface(h uint64) (*Surface, bool) { s, ok := tt.surf[h]; return s, ok }

// refTex is a reference of the texture fetching formulas of the CUDA C++
// Programming Guide (appendix "Texture Fetching"), written from them
// apart from the interpreter: texels are given as the floats they read.
type refTex struct {
	size   [3]int
	texels [][4]float32 // [slice][y][x]; a slice is a depth slice or a layer
	mode   [3]AddressMode
	linear bool
	norm   bool
	border [4]float32
}

// refFloor is floor(x) as an index; NaN reads 0 and magnitudes are held
// below 2^40 (what the interpreter documents for coordinates a GPU's
// result is unknown for).
func refFloor(x float32) int {
	if math.IsNaN(float64(x)) {
		return 0
	}
	return int(math.Floor(math.Max(math.Min(float64(x), 1<<40), -(1 << 40))))
}

// at returns texel ix after the address modes.
func (r *refTex) at(ix [3]int, n, layer int) [4]float32 {
	var idx [3]int
	for d := 0; d < n; d++ {
		i, size, mode := ix[d], r.size[d], r.mode[d]
		if !r.norm && (mode == AddressWrap || mode == AddressMirror) {
			mode = AddressClamp // wrap and mirror need normalised coordinates
		}
		switch mode {
		case AddressWrap:
			i = ((i % size) + size) % size
		case AddressMirror:
			p := ((i % (2 * size)) + 2*size) % (2 * size)
			if p >= size {
				p = 2*size - 1 - p
			}
			i = p
		case AddressBorder:
			if i < 0 || i >= size {
				return r.border
			}
		default:
			i = max(0, min(i, size-1))
		}
		idx[d] = i
	}
	z := layer
	if n == 3 {
		z = idx[2]
	}
	return r.texels[(z*r.size[1]+idx[1])*r.size[0]+idx[0]]
}

// sample is tex(x), tex(x, y) or tex(x, y, z).
func (r *refTex) sample(c [3]float32, n, layer int) [4]float32 {
	var x [3]float32
	for d := 0; d < n; d++ {
		u := c[d]
		if r.norm {
			switch r.mode[d] {
			case AddressWrap:
				u -= float32(math.Floor(float64(u)))
			case AddressMirror:
				f := math.Floor(float64(u))
				u -= float32(f)
				if math.Mod(f, 2) != 0 {
					u = 1 - u
				}
			}
			u *= float32(r.size[d])
		}
		x[d] = u
	}
	if !r.linear {
		return r.at([3]int{refFloor(x[0]), refFloor(x[1]), refFloor(x[2])}, n, layer)
	}
	// xB = x - 0.5, i = floor(xB), α = frac(xB) in 9-bit fixed point
	// with 8 fractional bits
	var i [3]int
	var a [3]float32
	for d := 0; d < n; d++ {
		xb := x[d] - 0.5
		i[d] = refFloor(xb)
		if !math.IsNaN(float64(xb)) {
			a[d] = float32(math.Round(float64(xb-float32(i[d]))*256)) / 256
		}
	}
	T := func(di, dj, dk int) [4]float32 { return r.at([3]int{i[0] + di, i[1] + dj, i[2] + dk}, n, layer) }
	var out [4]float32
	for k := range out {
		switch n {
		case 1:
			out[k] = (1-a[0])*T(0, 0, 0)[k] + a[0]*T(1, 0, 0)[k]
		case 2:
			al, be := a[0], a[1]
			out[k] = (1-al)*(1-be)*T(0, 0, 0)[k] + al*(1-be)*T(1, 0, 0)[k] +
				(1-al)*be*T(0, 1, 0)[k] + al*be*T(1, 1, 0)[k]
		case 3:
			al, be, ga := a[0], a[1], a[2]
			out[k] = (1-al)*(1-be)*(1-ga)*T(0, 0, 0)[k] + al*(1-be)*(1-ga)*T(1, 0, 0)[k] +
				(1-al)*be*(1-ga)*T(0, 1, 0)[k] + al*be*(1-ga)*T(1, 1, 0)[k] +
				(1-al)*(1-be)*ga*T(0, 0, 1)[k] + al*(1-be)*ga*T(1, 0, 1)[k] +
				(1-al)*be*ga*T(0, 1, 1)[k] + al*be*ga*T(1, 1, 1)[k]
		}
	}
	return out
}

// randTexel returns a float32 texel value, with ±0, denormals, NaN and
// infinities among ordinary values.
func randTexel(rng *rand.Rand) float32 {
	switch rng.Intn(40) {
	case 0:
		return float32(math.NaN())
	case 1:
		return float32(math.Inf(1 - 2*rng.Intn(2)))
	case 2:
		return math.Float32frombits(uint32(rng.Intn(1 << 23))) // denormal
	case 3:
		return float32(math.Copysign(0, -1))
	}
	return rng.Float32()*200 - 100
}

// randCoord returns a coordinate around [lo, hi), with texel centres,
// edges, out-of-range values, NaN and infinities among them.
func randCoord(rng *rand.Rand, hi float32) float32 {
	switch rng.Intn(30) {
	case 0:
		return float32(math.NaN())
	case 1:
		return float32(math.Inf(1 - 2*rng.Intn(2)))
	case 2:
		return float32(rng.Intn(int(hi)+1)) + 0.5
	case 3:
		return float32(math.Copysign(0, -1))
	case 4:
		return 1e30
	}
	return (rng.Float32()*3 - 1) * hi
}

// floatImage builds a 4-channel f32 image of the given extent.
func floatImage(rng *rand.Rand, dims uint8, w, h, d, layers int) (Image, [][4]float32) {
	slices := max(d, layers)
	texels := make([][4]float32, w*h*slices)
	data := make([]byte, 16*len(texels))
	for i := range texels {
		for c := 0; c < 4; c++ {
			v := randTexel(rng)
			texels[i][c] = v
			binary.LittleEndian.PutUint32(data[16*i+4*c:], math.Float32bits(v))
		}
	}
	im := Image{Format: FormatF32, Channels: 4, Dims: dims, Width: uint32(w), Height: uint32(h), Depth: uint32(d),
		Layers: uint32(layers), Pitch: uint64(16 * w), SlicePitch: uint64(16 * w * h), Data: data}
	return im, texels
}

func sameF32(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || a != a && b != b
}

// Textures sampled by nvcc-built kernels match the reference in every
// filter mode, address mode and coordinate mode, bit for bit.
func TestNvccTextureSampling(t *testing.T) {
	m, err := Load(nvccPTX(t, t.TempDir(), []string{"tex_sample"})["tex_sample"])
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(7))
	const n = 512
	type shape struct {
		name    string
		kernel  string
		dims    uint8
		w, h, d int
		layers  int
	}
	shapes := []shape{
		{"1d", "sample1d", 1, 13, 1, 1, 0},
		{"2d", "sample2d", 2, 7, 5, 1, 0},
		{"3d", "sample3d", 3, 4, 3, 5, 0},
		{"2dlayered", "sample2dlayered", 2, 6, 4, 1, 3},
	}
	for _, sh := range shapes {
		k := mustKernel(t, m, sh.kernel)
		for _, linear := range []bool{false, true} {
			for _, norm := range []bool{false, true} {
				for _, mode := range []AddressMode{AddressWrap, AddressClamp, AddressMirror, AddressBorder} {
					name := fmt.Sprintf("%s/linear=%v/norm=%v/mode=%d", sh.name, linear, norm, mode)
					t.Run(name, func(t *testing.T) {
						im, texels := floatImage(rng, sh.dims, sh.w, sh.h, sh.d, sh.layers)
						tex := &Texture{Image: im, Address: [3]AddressMode{mode, mode, mode}, NormalizedCoords: norm,
							Border: [4]float32{0.25, -1, float32(math.Copysign(0, -1)), 7}}
						if linear {
							tex.Filter = FilterLinear
						}
						ref := &refTex{size: [3]int{sh.w, sh.h, sh.d}, texels: texels, mode: tex.Address,
							linear: linear, norm: norm, border: tex.Border}
						hiOf := func(d int) float32 {
							if norm {
								return 1
							}
							return float32(ref.size[d])
						}
						mem := newTestMem()
						var coords [3][]float32
						for d := 0; d < 3; d++ {
							coords[d] = make([]float32, n)
							for i := range coords[d] {
								coords[d][i] = randCoord(rng, hiOf(d))
							}
						}
						layers := make([]uint32, n)
						for i := range layers {
							layers[i] = uint32(rng.Intn(sh.layers + 2))
						}
						out := mem.alloc(16 * n)
						x, y, z := mem.f32s(coords[0]), mem.f32s(coords[1]), mem.f32s(coords[2])
						var params []byte
						switch sh.kernel {
						case "sample1d":
							params = packParams(t, k, uint64(1), x, out, n)
						case "sample2d":
							params = packParams(t, k, uint64(1), x, y, out, n)
						case "sample3d":
							params = packParams(t, k, uint64(1), x, y, z, out, n)
						default:
							params = packParams(t, k, uint64(1), x, y, mem.u32s(layers), out, n)
						}
						l := launch(k, mem, [3]uint32{n / 128, 1, 1}, [3]uint32{128, 1, 1}, 0, params, 2)
						l.Textures = &testTextures{tex: map[uint64]*Texture{1: tex}}
						if err := k.Run(l); err != nil {
							t.Fatal(err)
						}
						got := mem.getF32(out, 4*n)
						bad := 0
						for i := 0; i < n; i++ {
							layer := 0
							if sh.layers > 0 {
								layer = int(min(layers[i], uint32(sh.layers-1)))
							}
							want := ref.sample([3]float32{coords[0][i], coords[1][i], coords[2][i]}, int(sh.dims), layer)
							for c := 0; c < 4; c++ {
								if g := got[4*i+c]; !sameF32(g, want[c]) && bad < 5 {
									bad++
									t.Errorf("coords (%g, %g, %g) layer %d channel %d: got %g, want %g",
										coords[0][i], coords[1][i], coords[2][i], layers[i], c, g, want[c])
								}
							}
						}
					})
				}
			}
		}
	}
}

// 8- and 16-bit channels read as normalised floats, missing channels as
// (0, 0, 0, 1); tld4 gathers one channel of the bilinear footprint.
func TestNvccTextureFormatsAndGather(t *testing.T) {
	m, err := Load(nvccPTX(t, t.TempDir(), []string{"tex_sample"})["tex_sample"])
	if err != nil {
		t.Fatal(err)
	}
	// a 4x2 image of signed 8-bit pairs
	data := []byte{0, 1, 127, 0x81, 0x80, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100}
	tex := &Texture{Image: Image{Format: FormatS8, Channels: 2, Dims: 2, Width: 4, Height: 2, Depth: 1, Pitch: 8, Data: data}}
	norm := func(b byte) float32 { return max(float32(int8(b))/127, -1) }
	mem := newTestMem()
	xs, ys := []float32{0.5, 2.5, 1.0, 3.9}, []float32{0.5, 0.5, 1.0, 1.5}
	out := mem.alloc(16 * 4)
	k := mustKernel(t, m, "sample2d")
	l := launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{4, 1, 1}, 0, packParams(t, k, uint64(9), mem.f32s(xs), mem.f32s(ys), out, 4), 1)
	l.Textures = &testTextures{tex: map[uint64]*Texture{9: tex}}
	if err := k.Run(l); err != nil {
		t.Fatal(err)
	}
	got := mem.getF32(out, 16)
	for i := range xs {
		xi, yi := int(xs[i]), int(ys[i])
		o := yi*8 + xi*2
		want := []float32{norm(data[o]), norm(data[o+1]), 0, 1}
		for c, w := range want {
			if got[4*i+c] != w {
				t.Errorf("(%g, %g) channel %d: got %g, want %g", xs[i], ys[i], c, got[4*i+c], w)
			}
		}
	}
	// gather the second channel around (2, 1): texels (1..2, 0..1)
	kg := mustKernel(t, m, "gather2d")
	out2 := mem.alloc(16)
	l = launch(kg, mem, [3]uint32{1, 1, 1}, [3]uint32{1, 1, 1}, 0, packParams(t, kg, uint64(9), mem.f32s([]float32{2}), mem.f32s([]float32{1}), 1, out2, 1), 1)
	l.Textures = &testTextures{tex: map[uint64]*Texture{9: tex}}
	if err := kg.Run(l); err != nil {
		t.Fatal(err)
	}
	at := func(x, y int) float32 { return norm(data[y*8+x*2+1]) }
	want := []float32{at(1, 1), at(2, 1), at(2, 0), at(1, 0)}
	if g := mem.getF32(out2, 4); fmt.Sprint(g) != fmt.Sprint(want) {
		t.Errorf("tld4.g: got %v, want %v", g, want)
	}
}

// tex1Dfetch over linear memory reads integers, and zero outside (the
// border mode the device gives linear textures); an unknown handle and a
// read of integers as floats fail the launch.
func TestNvccTextureFetchAndFaults(t *testing.T) {
	m, err := Load(nvccPTX(t, t.TempDir(), []string{"tex_sample"})["tex_sample"])
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]byte, 16*8)
	for i := range vals {
		vals[i] = byte(i * 7)
	}
	tex := &Texture{Image: Image{Format: FormatS32, Channels: 4, Dims: 1, Width: 8, Height: 1, Depth: 1, Pitch: 128, Data: vals},
		Address: [3]AddressMode{AddressBorder}}
	k := mustKernel(t, m, "fetch_int")
	mem := newTestMem()
	idx := []uint32{0, 7, 8, 0xffffffff, 3}
	out := mem.alloc(16 * len(idx))
	run := func(h uint64, tt *testTextures) error {
		l := launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{5, 1, 1}, 0, packParams(t, k, h, mem.u32s(idx), out, 5), 1)
		if tt != nil {
			l.Textures = tt
		}
		return k.Run(l)
	}
	if err := run(3, &testTextures{tex: map[uint64]*Texture{3: tex}}); err != nil {
		t.Fatal(err)
	}
	got := mem.getU32(out, 20)
	for i, x := range idx {
		for c := 0; c < 4; c++ {
			var want uint32
			if x < 8 {
				want = binary.LittleEndian.Uint32(vals[16*x+4*uint32(c):])
			}
			if got[4*i+c] != want {
				t.Errorf("fetch %d channel %d: got %#x, want %#x", int32(x), c, got[4*i+c], want)
			}
		}
	}
	wantCode(t, run(4, &testTextures{tex: map[uint64]*Texture{3: tex}}), abi.ErrIllegalAddress)
	wantCode(t, run(3, nil), abi.ErrIllegalAddress)
	f := *tex
	f.Format = FormatF32
	wantCode(t, run(3, &testTextures{tex: map[uint64]*Texture{3: &f}}), abi.ErrIllegalInstruction)
	short := *tex
	short.Data = vals[:100]
	wantCode(t, run(3, &testTextures{tex: map[uint64]*Texture{3: &short}}), abi.ErrIllegalAddress)
}

// suld and sust address x in bytes, with the clamp, zero and trap modes;
// txq and suq report sizes.
func TestNvccSurfaces(t *testing.T) {
	m, err := Load(nvccPTX(t, t.TempDir(), []string{"tex_sample"})["tex_sample"])
	if err != nil {
		t.Fatal(err)
	}
	const w, h = 9, 4
	src := make([]float32, w*h)
	srcBytes := make([]byte, 4*w*h)
	for i := range src {
		src[i] = float32(i) + 0.5
		binary.LittleEndian.PutUint32(srcBytes[4*i:], math.Float32bits(src[i]))
	}
	img := func(b []byte) Image {
		return Image{Format: FormatF32, Channels: 1, Dims: 2, Width: w, Height: h, Depth: 1, Pitch: 4 * w, Data: b}
	}
	dst := make([]byte, 4*w*h)
	tt := &testTextures{surf: map[uint64]*Surface{1: {img(srcBytes)}, 2: {img(dst)}},
		tex: map[uint64]*Texture{3: {Image: img(srcBytes)}}}
	k := mustKernel(t, m, "surf_scale")
	mem := newTestMem()
	l := launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{16, 4, 1}, 0, packParams(t, k, uint64(1), uint64(2), w, h, float32(3)), 1)
	l.Textures = tt
	if err := k.Run(l); err != nil {
		t.Fatal(err)
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v, z := src[y*w+min(x+1, w-1)], float32(0)
			if x+1 < w {
				z = src[y*w+x+1]
			}
			want := v*3 + z
			if g := math.Float32frombits(binary.LittleEndian.Uint32(dst[4*(y*w+x):])); g != want {
				t.Errorf("(%d, %d): got %g, want %g", x, y, g, want)
			}
		}
	}
	// a 3D surface of uchar4, inverted in place
	const sw, sh, sd = 3, 2, 2
	vol := make([]byte, 4*sw*sh*sd)
	for i := range vol {
		vol[i] = byte(i * 13)
	}
	orig := append([]byte(nil), vol...)
	tt.surf[5] = &Surface{Image{Format: FormatU8, Channels: 4, Dims: 3, Width: sw, Height: sh, Depth: sd, Pitch: 4 * sw, SlicePitch: 4 * sw * sh, Data: vol}}
	k3 := mustKernel(t, m, "surf_invert3d")
	l = launch(k3, mem, [3]uint32{1, 1, 1}, [3]uint32{32, 1, 1}, 0, packParams(t, k3, uint64(5), sw, sh, sd), 1)
	l.Textures = tt
	if err := k3.Run(l); err != nil {
		t.Fatal(err)
	}
	for i := range vol {
		want := 255 - orig[i]
		if i%4 == 3 {
			want = orig[i]
		}
		if vol[i] != want {
			t.Fatalf("byte %d: got %d, want %d", i, vol[i], want)
		}
	}
	// the write of a surface read as a 2D one faults on the shape
	l = launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{1, 1, 1}, 0, packParams(t, k, uint64(5), uint64(2), 1, 1, float32(1)), 1)
	l.Textures = tt
	wantCode(t, k.Run(l), abi.ErrIllegalInstruction)
	// sizes
	kq := mustKernel(t, m, "size_query")
	out := mem.alloc(8)
	l = launch(kq, mem, [3]uint32{1, 1, 1}, [3]uint32{1, 1, 1}, 0, packParams(t, kq, uint64(3), uint64(5), out), 1)
	l.Textures = tt
	if err := kq.Run(l); err != nil {
		t.Fatal(err)
	}
	if g := mem.getU32(out, 2); g[0] != w || g[1] != sh {
		t.Errorf("txq.width, suq.height = %v, want [%d %d]", g, w, sh)
	}
}

// cuda::barrier's arrive_and_wait (mbarrier arrive and test_wait, with
// nanosleep between tests) holds every warp of a block until all have
// arrived, phase after phase.
func TestNvccMbarrier(t *testing.T) {
	m, err := Load(nvccPTX(t, t.TempDir(), []string{"barrier_phases"})["barrier_phases"])
	if err != nil {
		t.Fatal(err)
	}
	k := mustKernel(t, m, "rotate")
	const rounds = 5
	for _, threads := range []int{32, 96, 256} {
		mem := newTestMem()
		a, b := mem.alloc(4*threads), mem.alloc(4*threads)
		l := launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{uint32(threads), 1, 1}, 0, packParams(t, k, a, b, rounds), 1)
		l.Globals = globalsOf(mem, m)
		if err := k.Run(l); err != nil {
			t.Fatal(err)
		}
		got := mem.getU32(a, threads)
		for i, g := range got {
			if want := uint32((i+rounds)%threads + rounds); g != want {
				t.Fatalf("%d threads: a[%d] = %d, want %d", threads, i, g, want)
			}
		}
	}
}

// grid.sync() holds every block of a cooperative launch until all have
// arrived, round after round; outside a cooperative launch it traps, as
// on a GPU.
func TestNvccGridSync(t *testing.T) {
	m, err := Load(nvccPTX(t, t.TempDir(), []string{"grid_sync"})["grid_sync"])
	if err != nil {
		t.Fatal(err)
	}
	k := mustKernel(t, m, "grid_rounds")
	const blocks, threads, rounds = 6, 64, 4
	const n = blocks*threads - 5
	in := make([]uint32, n)
	for i := range in {
		in[i] = uint32(i%7 + 1)
	}
	run := func(coop bool) (*testMem, uint64, error) {
		mem := newTestMem()
		pin, totals, out := mem.u32s(in), mem.alloc(4*rounds), mem.alloc(4*n)
		l := launch(k, mem, [3]uint32{blocks, 1, 1}, [3]uint32{threads, 1, 1}, 0, packParams(t, k, pin, totals, out, n, rounds), 2)
		l.Globals = globalsOf(mem, m)
		if coop {
			l.Cooperative, l.GridWorkspace = true, mem.alloc(8)
		}
		return mem, out, k.Run(l)
	}
	mem, out, err := run(true)
	if err != nil {
		t.Fatal(err)
	}
	// each round v becomes sum - v, where sum is the total of the
	// round's v over the grid (padding threads hold 0)
	want := make([]int64, blocks*threads)
	for i := range in {
		want[i] = int64(in[i])
	}
	for range rounds {
		var sum int64
		for _, v := range want {
			sum += v
		}
		for i := range want {
			want[i] = sum - want[i]
		}
	}
	for i, g := range mem.getU32(out, n) {
		if int32(g) != int32(want[i]) {
			t.Fatalf("out[%d] = %d, want %d", i, int32(g), int32(want[i]))
		}
	}
	_, _, err = run(false)
	wantCode(t, err, abi.ErrIllegalInstruction)
}
