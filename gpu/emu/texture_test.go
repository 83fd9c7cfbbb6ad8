package emu

import (
	"encoding/binary"
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
