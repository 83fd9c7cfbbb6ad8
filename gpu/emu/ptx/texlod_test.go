package ptx

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"
)

// lodKernel reads eight floats per thread from in (%f1-%f8), runs one
// texture instruction on the texture in tex and stores its first three
// results and the fourth (%f9-%f11, %f0) to out.
const lodKernel = `
.version 7.0
.target sm_80
.address_size 64
.visible .entry k(.param .u64 tex, .param .u64 in, .param .u64 out)
{
	.reg .b32 %%r<4>;
	.reg .f32 %%f<12>;
	.reg .b64 %%rd<8>;
	ld.param.u64 %%rd1, [tex];
	ld.param.u64 %%rd2, [in];
	ld.param.u64 %%rd3, [out];
	mov.u32 %%r1, %%tid.x;
	mul.wide.u32 %%rd4, %%r1, 32;
	add.s64 %%rd5, %%rd2, %%rd4;
	ld.global.v4.f32 {%%f1, %%f2, %%f3, %%f4}, [%%rd5];
	ld.global.v4.f32 {%%f5, %%f6, %%f7, %%f8}, [%%rd5+16];
	cvt.rzi.u32.f32 %%r2, %%f4;
	%s
	mul.wide.u32 %%rd4, %%r1, 16;
	add.s64 %%rd6, %%rd3, %%rd4;
	st.global.v4.f32 [%%rd6], {%%f9, %%f10, %%f11, %%f0};
	ret;
}
`

// runLod runs lodKernel with instruction op on texture tx, one thread
// per row of in, and returns each thread's first result.
func runLod(t *testing.T, op string, tx *Texture, in [][8]float32) []float32 {
	t.Helper()
	m, err := Load(fmt.Appendf(nil, lodKernel, op))
	if err != nil {
		t.Fatal(err)
	}
	k, err := m.Kernel("k")
	if err != nil {
		t.Fatal(err)
	}
	mem := newTestMem()
	flat := make([]float32, 0, 8*len(in))
	for _, row := range in {
		flat = append(flat, row[:]...)
	}
	din, dout := mem.f32s(flat), mem.alloc(16*len(in))
	l := launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{uint32(len(in)), 1, 1}, 0, packParams(t, k, uint64(1), din, dout), 1)
	l.Textures = &testTextures{tex: map[uint64]*Texture{1: tx}}
	if err := k.Run(l); err != nil {
		t.Fatal(err)
	}
	out := mem.getF32(dout, 4*len(in))
	res := make([]float32, len(in))
	for i := range res {
		res[i] = out[4*i]
	}
	return res
}

// labelImage is a one-channel f32 image whose texel (x, y) of slice z
// reads base + 100·z + w·y + x.
func labelImage(w, h, slices int, layers uint32, base float32) Image {
	data := make([]byte, 4*w*h*slices)
	for z := 0; z < slices; z++ {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				v := base + float32(100*z+w*y+x)
				binary.LittleEndian.PutUint32(data[4*((z*h+y)*w+x):], math.Float32bits(v))
			}
		}
	}
	return Image{Format: FormatF32, Channels: 1, Dims: 2, Width: uint32(w), Height: uint32(h), Depth: 1,
		Layers: layers, Pitch: uint64(4 * w), SlicePitch: uint64(4 * w * h), Data: data}
}

// mipmapped2D is an 8×8 normalised, point-sampled texture with levels
// of 4×4, 2×2 and 1×1; level L's texels read 1000·L + their label.
func mipmapped2D() *Texture {
	tx := &Texture{Image: labelImage(8, 8, 1, 0, 0), NormalizedCoords: true, MaxMipmapLevelClamp: 3}
	for L, w := 1, 4; w >= 1; L, w = L+1, w/2 {
		tx.Mipmaps = append(tx.Mipmaps, labelImage(w, w, 1, 0, float32(1000*L)))
	}
	return tx
}

// at2D is what point sampling level L of mipmapped2D reads at (u, v).
func at2D(L int, u, v float32) float32 {
	w := float32(int(8) >> L)
	return float32(1000*L) + w*float32(math.Floor(float64(v*w))) + float32(math.Floor(float64(u*w)))
}

func TestTexLevel(t *testing.T) {
	const u, v = 0.3, 0.6
	cases := []struct {
		name  string
		setup func(*Texture)
		lod   float32
		want  float32
	}{
		{"level0", nil, 0, at2D(0, u, v)},
		{"nearest-down", nil, 1.4, at2D(1, u, v)},
		{"nearest-up", nil, 1.6, at2D(2, u, v)},
		{"last", nil, 3, at2D(3, u, v)},
		{"above-last", nil, 9, at2D(3, u, v)},
		{"below-0", nil, -2, at2D(0, u, v)},
		{"nan", nil, float32(math.NaN()), at2D(0, u, v)},
		{"bias", func(tx *Texture) { tx.MipmapLevelBias = 1 }, 0.2, at2D(1, u, v)},
		{"max-clamp", func(tx *Texture) { tx.MaxMipmapLevelClamp = 1 }, 3, at2D(1, u, v)},
		{"min-clamp", func(tx *Texture) { tx.MinMipmapLevelClamp = 2 }, 0, at2D(2, u, v)},
		{"linear-mix", func(tx *Texture) { tx.MipmapFilter = FilterLinear }, 1.25, 0.75*at2D(1, u, v) + 0.25*at2D(2, u, v)},
		{"linear-whole", func(tx *Texture) { tx.MipmapFilter = FilterLinear }, 2, at2D(2, u, v)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tx := mipmapped2D()
			if c.setup != nil {
				c.setup(tx)
			}
			got := runLod(t, "tex.level.2d.v4.f32.f32 {%f9, %f10, %f11, %f0}, [%rd1, {%f1, %f2}], %f3;", tx,
				[][8]float32{{u, v, c.lod}})
			if got[0] != c.want {
				t.Errorf("lod %v: got %v, want %v", c.lod, got[0], c.want)
			}
		})
	}
	t.Run("plain-tex-reads-level-0", func(t *testing.T) {
		got := runLod(t, "tex.2d.v4.f32.f32 {%f9, %f10, %f11, %f0}, [%rd1, {%f1, %f2}];", mipmapped2D(), [][8]float32{{u, v}})
		if got[0] != at2D(0, u, v) {
			t.Errorf("got %v, want %v", got[0], at2D(0, u, v))
		}
	})
	t.Run("unnormalised", func(t *testing.T) {
		tx := mipmapped2D()
		tx.NormalizedCoords = false
		// (5, 3) in level 0's texels is (1.25, 0.75) in level 2's
		got := runLod(t, "tex.level.2d.v4.f32.f32 {%f9, %f10, %f11, %f0}, [%rd1, {%f1, %f2}], %f3;", tx, [][8]float32{{5, 3, 2}})
		if want := float32(2000 + 2*0 + 1); got[0] != want {
			t.Errorf("got %v, want %v", got[0], want)
		}
	})
}

func TestTexGrad(t *testing.T) {
	const u, v = 0.7, 0.2
	// gradients in normalised units: 1/8 is one texel of level 0
	cases := []struct {
		dx, dy [2]float32
		level  int
	}{
		{[2]float32{1.0 / 8, 0}, [2]float32{0, 1.0 / 8}, 0},
		{[2]float32{2.0 / 8, 0}, [2]float32{0, 0}, 1},
		{[2]float32{0, 0}, [2]float32{0, 4.0 / 8}, 2},
		{[2]float32{3.0 / 8, 3.0 / 8}, [2]float32{1.0 / 8, 0}, 2}, // length 4.24 texels: log2 2.08, nearest 2
		{[2]float32{0, 0}, [2]float32{0, 0}, 0},
		{[2]float32{100, 0}, [2]float32{0, 0}, 3},
	}
	in := make([][8]float32, len(cases))
	for i, c := range cases {
		in[i] = [8]float32{u, v, c.dx[0], c.dx[1], c.dy[0], c.dy[1]}
	}
	got := runLod(t, "tex.grad.2d.v4.f32.f32 {%f9, %f10, %f11, %f0}, [%rd1, {%f1, %f2}], {%f3, %f4}, {%f5, %f6};", mipmapped2D(), in)
	for i, c := range cases {
		if want := at2D(c.level, u, v); got[i] != want {
			t.Errorf("dPdx %v dPdy %v: got %v, want level %d's %v", c.dx, c.dy, got[i], c.level, want)
		}
	}
}

// cubeRef is the CUDA C++ Programming Guide's table of cube map faces:
// the major axis and its sign pick the face; sc and tc are the
// components (index and sign) that become s and t.
var cubeRef = [6]struct {
	axis   int
	sign   float32
	sc, tc int
	ss, ts float32
}{
	{0, 1, 2, 1, -1, -1},
	{0, -1, 2, 1, 1, -1},
	{1, 1, 0, 2, 1, 1},
	{1, -1, 0, 2, 1, -1},
	{2, 1, 0, 1, 1, -1},
	{2, -1, 0, 1, -1, -1},
}

// cubeTexel is the texel label a point-sampled n×n cube map of
// labelImage faces reads for direction d.
func cubeTexel(d [3]float32, n int, cube int) float32 {
	major := 0
	for a := 1; a < 3; a++ {
		if math.Abs(float64(d[a])) > math.Abs(float64(d[major])) {
			major = a
		}
	}
	for f, r := range cubeRef {
		if r.axis != major || (d[major] >= 0) != (r.sign > 0) {
			continue
		}
		m := float32(math.Abs(float64(d[major])))
		s := (r.ss*d[r.sc]/m + 1) / 2
		tt := (r.ts*d[r.tc]/m + 1) / 2
		x := min(max(int(math.Floor(float64(s*float32(n)))), 0), n-1)
		y := min(max(int(math.Floor(float64(tt*float32(n)))), 0), n-1)
		return float32(100*(6*cube+f) + n*y + x)
	}
	panic("no face")
}

func TestTexCube(t *testing.T) {
	const n = 4
	rng := rand.New(rand.NewSource(3))
	dirs := [][3]float32{{1, 0, 0}, {-1, 0, 0}, {0, 1, 0}, {0, -1, 0}, {0, 0, 1}, {0, 0, -1},
		{1, 0.5, -0.75}, {-0.2, 0.9, 0.3}, {0.1, -0.2, -0.99}, {0.99, 0.99, 0.5}}
	for len(dirs) < 64 {
		dirs = append(dirs, [3]float32{rng.Float32()*2 - 1, rng.Float32()*2 - 1, rng.Float32()*2 - 1})
	}
	in := make([][8]float32, len(dirs))
	for i, d := range dirs {
		in[i] = [8]float32{d[0], d[1], d[2], float32(i % 2)}
	}
	t.Run("cube", func(t *testing.T) {
		im := labelImage(n, n, 6, 6, 0)
		im.Cube = true
		got := runLod(t, "tex.cube.v4.f32.f32 {%f9, %f10, %f11, %f0}, [%rd1, {%f1, %f2, %f3, %f3}];", &Texture{Image: im}, in)
		for i, d := range dirs {
			if want := cubeTexel(d, n, 0); got[i] != want {
				t.Errorf("direction %v: got %v, want %v", d, got[i], want)
			}
		}
	})
	t.Run("acube", func(t *testing.T) {
		im := labelImage(n, n, 12, 12, 0)
		im.Cube = true
		got := runLod(t, "tex.acube.v4.f32.f32 {%f9, %f10, %f11, %f0}, [%rd1, {%r2, %f1, %f2, %f3}];", &Texture{Image: im}, in)
		for i, d := range dirs {
			if want := cubeTexel(d, n, i%2); got[i] != want {
				t.Errorf("cube %d, direction %v: got %v, want %v", i%2, d, got[i], want)
			}
		}
	})
	t.Run("level", func(t *testing.T) {
		im := labelImage(n, n, 6, 6, 0)
		im.Cube = true
		lv := labelImage(n/2, n/2, 6, 6, 0)
		lv.Cube = true
		tx := &Texture{Image: im, Mipmaps: []Image{lv}, MaxMipmapLevelClamp: 1}
		lod := make([][8]float32, len(in))
		for i := range in {
			lod[i] = in[i]
			lod[i][3] = float32(i % 2) // level
		}
		got := runLod(t, "tex.level.cube.v4.f32.f32 {%f9, %f10, %f11, %f0}, [%rd1, {%f1, %f2, %f3, %f3}], %f4;", tx, lod)
		for i, d := range dirs {
			if want := cubeTexel(d, n>>(i%2), 0); got[i] != want {
				t.Errorf("level %d, direction %v: got %v, want %v", i%2, d, got[i], want)
			}
		}
	})
	t.Run("shape", func(t *testing.T) {
		// a 2D texture is not a cube map, nor a cube map a 2D texture
		m, err := Load(fmt.Appendf(nil, lodKernel, "tex.cube.v4.f32.f32 {%f9, %f10, %f11, %f0}, [%rd1, {%f1, %f2, %f3, %f3}];"))
		if err != nil {
			t.Fatal(err)
		}
		k, _ := m.Kernel("k")
		mem := newTestMem()
		din, dout := mem.f32s(make([]float32, 8)), mem.alloc(16)
		l := launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{1, 1, 1}, 0, packParams(t, k, uint64(1), din, dout), 1)
		l.Textures = &testTextures{tex: map[uint64]*Texture{1: {Image: labelImage(n, n, 1, 0, 0)}}}
		if err := k.Run(l); err == nil || !strings.Contains(err.Error(), "another shape") {
			t.Errorf("tex.cube on a 2D texture: %v", err)
		}
	})
}

func TestTexLodDecode(t *testing.T) {
	for _, c := range []struct{ op, want string }{
		{"tex.grad.cube.v4.f32.f32 {%f9, %f10, %f11, %f0}, [%rd1, {%f1, %f2, %f3, %f3}], {%f1, %f2, %f3, %f3}, {%f1, %f2, %f3, %f3};", "gradients on cube maps"},
		{"tex.grad.2d.v4.f32.f32 {%f9, %f10, %f11, %f0}, [%rd1, {%f1, %f2}], {%f3}, {%f5, %f6};", "2-element gradients"},
		{"tex.level.2d.v4.f32.f32 {%f9, %f10, %f11, %f0}, [%rd1, {%f1, %f2}];", "tex.level"},
		{"tex.level.2d.v4.f32.s32 {%f9, %f10, %f11, %f0}, [%rd1, {%r1, %r2}], %f3;", "tex.level"},
		{"suld.b.cube.b32.trap {%r3}, [%rd1, {%r1, %r1, %r1, %r1}];", "suld"},
	} {
		_, err := Load(fmt.Appendf(nil, lodKernel, c.op))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error naming %q", c.op, err, c.want)
		}
	}
}

func TestMipmapShapeChecked(t *testing.T) {
	tx := mipmapped2D()
	if !tx.valid() {
		t.Fatal("a well-formed mipmapped texture is refused")
	}
	tx.Mipmaps[1] = labelImage(3, 3, 1, 0, 0) // level 2 of 8×8 is 2×2
	if tx.valid() {
		t.Error("a level of the wrong size is accepted")
	}
	im := labelImage(4, 4, 5, 5, 0)
	im.Cube = true
	if (&Texture{Image: im}).valid() {
		t.Error("a cube map of 5 faces is accepted")
	}
}

// runNvcc runs nvcc's kernel name of tex_lod.cu on texture tx, one
// thread per row of in, and returns each thread's first result.
func runNvcc(t *testing.T, m *Module, name string, tx *Texture, in [][8]float32) []float32 {
	t.Helper()
	k, err := m.Kernel(name)
	if err != nil {
		t.Fatal(err)
	}
	mem := newTestMem()
	flat := make([]float32, 0, 8*len(in))
	for _, row := range in {
		flat = append(flat, row[:]...)
	}
	din, dout := mem.f32s(flat), mem.alloc(16*len(in))
	l := launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{uint32(len(in)), 1, 1}, 0, packParams(t, k, uint64(1), din, dout, len(in)), 1)
	l.Textures = &testTextures{tex: map[uint64]*Texture{1: tx}}
	if err := k.Run(l); err != nil {
		t.Fatal(err)
	}
	out := mem.getF32(dout, 4*len(in))
	res := make([]float32, len(in))
	for i := range res {
		res[i] = out[4*i]
	}
	return res
}

// nvcc's texCubemap, texCubemapLayered, texCubemapLod, tex2DLod and
// tex2DGrad read what the references say.
func TestNvccCubeAndMipmaps(t *testing.T) {
	m, err := Load(nvccPTX(t, t.TempDir(), []string{"tex_lod"})["tex_lod"])
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	rng := rand.New(rand.NewSource(11))
	var dirs [][3]float32
	var in [][8]float32
	for i := 0; i < 64; i++ {
		d := [3]float32{rng.Float32()*2 - 1, rng.Float32()*2 - 1, rng.Float32()*2 - 1}
		dirs = append(dirs, d)
		in = append(in, [8]float32{d[0], d[1], d[2], float32(i % 2)})
	}
	cube := func(layers int, levels bool) *Texture {
		im := labelImage(n, n, layers, uint32(layers), 0)
		im.Cube = true
		tx := &Texture{Image: im}
		if levels {
			lv := labelImage(n/2, n/2, layers, uint32(layers), 0)
			lv.Cube = true
			tx.Mipmaps, tx.MaxMipmapLevelClamp = []Image{lv}, 1
		}
		return tx
	}
	for _, c := range []struct {
		kernel string
		tx     *Texture
		want   func(i int) float32
	}{
		{"cube", cube(6, false), func(i int) float32 { return cubeTexel(dirs[i], n, 0) }},
		{"cube_layered", cube(12, false), func(i int) float32 { return cubeTexel(dirs[i], n, i%2) }},
		{"cube_lod", cube(6, true), func(i int) float32 { return cubeTexel(dirs[i], n>>(i%2), 0) }},
	} {
		got := runNvcc(t, m, c.kernel, c.tx, in)
		for i := range in {
			if got[i] != c.want(i) {
				t.Errorf("%s %v: got %v, want %v", c.kernel, in[i][:4], got[i], c.want(i))
			}
		}
	}
	lods := [][8]float32{{0.3, 0.6, 0}, {0.3, 0.6, 1.4}, {0.3, 0.6, 1.6}, {0.9, 0.1, 3}, {0.9, 0.1, 7}}
	for i, g := range runNvcc(t, m, "lod2d", mipmapped2D(), lods) {
		L := min(int(math.Floor(float64(lods[i][2])+0.5)), 3)
		if want := at2D(L, lods[i][0], lods[i][1]); g != want {
			t.Errorf("tex2DLod %v: got %v, want %v", lods[i][:3], g, want)
		}
	}
	grads := [][8]float32{{0.7, 0.2, 1.0 / 8, 0, 0, 1.0 / 8}, {0.7, 0.2, 0, 4.0 / 8, 0, 0}, {0.7, 0.2, 0, 0, 2.0 / 8, 0}}
	for i, g := range runNvcc(t, m, "grad2d", mipmapped2D(), grads) {
		if want := at2D([]int{0, 2, 1}[i], 0.7, 0.2); g != want {
			t.Errorf("tex2DGrad %v: got %v, want %v", grads[i][:6], g, want)
		}
	}
}
