package emu

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/kerf-edge/kerf/abi"
)

// texPTX fetches texel i of texture object t (a 1D s32 image) into
// out[i], and writes i*3 into surface s's element i.
const texPTX = `
.version 7.0
.target sm_80
.address_size 64
.visible .entry fetch(.param .u64 t, .param .u64 s, .param .u64 out)
{
	.reg .b32 %r<8>;
	.reg .b64 %rd<6>;
	ld.param.u64 %rd1, [t];
	ld.param.u64 %rd2, [s];
	ld.param.u64 %rd3, [out];
	cvta.to.global.u64 %rd3, %rd3;
	mov.u32 %r1, %tid.x;
	tex.1d.v4.s32.s32 {%r2, %r3, %r4, %r5}, [%rd1, {%r1}];
	mul.wide.u32 %rd4, %r1, 4;
	add.s64 %rd5, %rd3, %rd4;
	st.global.u32 [%rd5], %r2;
	shl.b32 %r6, %r1, 2;
	mul.lo.u32 %r7, %r1, 3;
	sust.b.1d.b32.trap [%rd2, {%r6}], {%r7};
	ret;
}
`

func texParams(t, s, out uint64) []byte {
	p := binary.LittleEndian.AppendUint64(nil, t)
	p = binary.LittleEndian.AppendUint64(p, s)
	return binary.LittleEndian.AppendUint64(p, out)
}

func image1D(p uint64, n uint64, surface bool) abi.TexObject {
	return abi.TexObject{Surface: surface, Ptr: p, Format: abi.ArrayFormatS32, Channels: 1, Dims: 1,
		Width: n, Height: 1, Depth: 1, Pitch: 4 * n, AddressMode: [3]uint32{3, 3, 3}}
}

// Texture and surface objects read and write their context's memory;
// objects over memory the context does not hold are refused, handles
// are the context's own, and an object whose memory was freed fails the
// kernel that reads it.
func TestTextureObjects(t *testing.T) {
	b := New(Config{MemoryBytes: 16 << 20})
	c := open(t, b, 0, 0)
	m := must(c.ModuleLoad([]byte(texPTX)))(t)
	f := must(m.Function("fetch"))(t)
	const n = 8
	img := must(c.MemAlloc(4 * n))(t)
	src := make([]byte, 4*n)
	for i := range n {
		binary.LittleEndian.PutUint32(src[4*i:], uint32(100+i))
	}
	ok(t, c.MemcpyHtoD(img, src, nil))
	surfMem := must(c.MemAlloc(4 * n))(t)
	out := must(c.MemAlloc(4 * n))(t)

	tex := must(c.TexObjectCreate(image1D(img, n, false)))(t)
	surf := must(c.TexObjectCreate(image1D(surfMem, n, true)))(t)
	ok(t, c.Launch(f, abi.LaunchConfig{Grid: one(1), Block: one(n)}, texParams(tex, surf, out), nil))
	got := make([]byte, 4*n)
	ok(t, c.MemcpyDtoH(got, out, nil))
	if !bytesEqual(got, src) {
		t.Fatalf("texture reads %v, want %v", got, src)
	}
	ok(t, c.MemcpyDtoH(got, surfMem, nil))
	for i := range n {
		if v := binary.LittleEndian.Uint32(got[4*i:]); v != uint32(3*i) {
			t.Fatalf("surface element %d = %d", i, v)
		}
	}

	// beyond the allocation, or not in the context at all
	_, err := c.TexObjectCreate(image1D(img, n+1, false))
	wantCode(t, err, abi.ErrInvalidValue)
	_, err = c.TexObjectCreate(image1D(0x1000, n, false))
	wantCode(t, err, abi.ErrInvalidValue)
	// a handle of the other kind, and another context's handle
	wantCode(t, c.TexObjectDestroy(tex, true), abi.ErrInvalidValue)
	c2 := open(t, b, 0, 0)
	wantCode(t, c2.TexObjectDestroy(tex, false), abi.ErrInvalidValue)
	m2 := must(c2.ModuleLoad([]byte(texPTX)))(t)
	out2 := must(c2.MemAlloc(4 * n))(t)
	ok(t, c2.Launch(must(m2.Function("fetch"))(t), abi.LaunchConfig{Grid: one(1), Block: one(n)}, texParams(tex, surf, out2), nil))
	wantCode(t, c2.Synchronize(), abi.ErrIllegalAddress)

	// the image's memory freed under a live object
	ok(t, c.TexObjectDestroy(surf, true))
	wantCode(t, c.TexObjectDestroy(surf, true), abi.ErrInvalidValue)
	surf = must(c.TexObjectCreate(image1D(surfMem, n, true)))(t)
	ok(t, c.MemFree(img))
	ok(t, c.Launch(f, abi.LaunchConfig{Grid: one(1), Block: one(n)}, texParams(tex, surf, out), nil))
	wantCode(t, c.Synchronize(), abi.ErrIllegalAddress)
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

// cubeLodPTX reads texture t, a cube map, as tex.level.cube does: thread
// i takes the direction and level of detail (x, y, z, lod) at in[4i]
// and writes the first channel read to out[i].
const cubeLodPTX = `
.version 7.0
.target sm_80
.address_size 64
.visible .entry look(.param .u64 t, .param .u64 in, .param .u64 out)
{
	.reg .b32 %r<2>;
	.reg .f32 %f<12>;
	.reg .b64 %rd<8>;
	ld.param.u64 %rd1, [t];
	ld.param.u64 %rd2, [in];
	ld.param.u64 %rd3, [out];
	cvta.to.global.u64 %rd2, %rd2;
	cvta.to.global.u64 %rd3, %rd3;
	mov.u32 %r1, %tid.x;
	mul.wide.u32 %rd4, %r1, 16;
	add.s64 %rd5, %rd2, %rd4;
	ld.global.v4.f32 {%f1, %f2, %f3, %f4}, [%rd5];
	tex.level.cube.v4.f32.f32 {%f9, %f10, %f11, %f0}, [%rd1, {%f1, %f2, %f3, %f3}], %f4;
	mul.wide.u32 %rd6, %r1, 4;
	add.s64 %rd7, %rd3, %rd6;
	st.global.f32 [%rd7], %f9;
	ret;
}
`

// A mipmapped cube map: each level follows the one before in memory, as
// abi.TexObject lays it out, and tex.level.cube reads the face the
// direction points to at the nearest level. A description whose levels
// run past the allocation is refused.
func TestTextureCubeMipmapped(t *testing.T) {
	b := New(Config{MemoryBytes: 16 << 20})
	c := open(t, b, 0, 0)
	f := must(must(c.ModuleLoad([]byte(cubeLodPTX)))(t).Function("look"))(t)
	d := abi.TexObject{Format: abi.ArrayFormatF32, Channels: 1, Dims: 2, Width: 4, Height: 4, Depth: 1, Layers: 6,
		Pitch: 16, SlicePitch: 64, Flags: abi.TexNormalizedCoords, Cube: true, Levels: 3,
		MaxLevelClamp: math.Float32bits(2)}
	d.Ptr = 1 // a stand-in while the extent is measured
	size, okExt := d.Extent()
	if !okExt || size != 6*4*(16+4+1) {
		t.Fatalf("extent %d, %v", size, okExt)
	}
	img := must(c.MemAlloc(size))(t)
	d.Ptr = img
	// every texel of level l, face f holds 10*l+f
	data := make([]byte, size)
	for l := range d.Levels {
		li := d.LevelImage(l)
		for f := range uint64(6) {
			for y := range li.Height {
				for x := range li.Width {
					off := li.Ptr - img + f*li.SlicePitch + y*li.Pitch + 4*x
					binary.LittleEndian.PutUint32(data[off:], math.Float32bits(float32(10*l)+float32(f)))
				}
			}
		}
	}
	ok(t, c.MemcpyHtoD(img, data, nil))
	looks := [][4]float32{{1, 0.1, 0.2, 0}, {-1, 0.1, 0.2, 1}, {0.1, 1, 0.2, 2}, {0.1, -1, 0.2, 0.9}, {0, 0.1, 1, 1.6}, {0.2, 0.1, -1, 7}}
	want := []float32{0, 11, 22, 13, 24, 25}
	in := make([]byte, 0, 16*len(looks))
	for _, l := range looks {
		for _, v := range l {
			in = binary.LittleEndian.AppendUint32(in, math.Float32bits(v))
		}
	}
	inMem := must(c.MemAlloc(uint64(len(in))))(t)
	ok(t, c.MemcpyHtoD(inMem, in, nil))
	out := must(c.MemAlloc(uint64(4 * len(looks))))(t)
	tex := must(c.TexObjectCreate(d))(t)
	ok(t, c.Launch(f, abi.LaunchConfig{Grid: one(1), Block: one(uint32(len(looks)))}, texParams(tex, inMem, out), nil))
	got := make([]byte, 4*len(looks))
	ok(t, c.MemcpyDtoH(got, out, nil))
	for i, w := range want {
		if v := math.Float32frombits(binary.LittleEndian.Uint32(got[4*i:])); v != w {
			t.Errorf("lookup %v reads %v, want %v", looks[i], v, w)
		}
	}
	ok(t, c.TexObjectDestroy(tex, false))

	d.Levels = 4 // 4×4 halves to 1×1 in three levels; a fourth is refused
	_, err := c.TexObjectCreate(d)
	wantCode(t, err, abi.ErrInvalidValue)
	d.Levels, d.Ptr = 3, img+4 // the last level runs past the allocation
	_, err = c.TexObjectCreate(d)
	wantCode(t, err, abi.ErrInvalidValue)
}
