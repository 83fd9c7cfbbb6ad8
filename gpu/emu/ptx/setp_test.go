package ptx

import (
	"encoding/binary"
	"fmt"
	"testing"
)

// TestSetpIntegers checks setp for every integer type and comparison on
// each pair of edge values of the type, against Go's comparison of the
// same values. Lanes whose guard is false keep their result register.
func TestSetpIntegers(t *testing.T) {
	const kernelSrc = `
.version 7.0
.target sm_70
.address_size 64
.visible .entry t(.param .u64 pa, .param .u64 pb, .param .u64 pc)
{
	.reg .pred %%p<3>;
	.reg .b32 %%r<3>;
	.reg .b64 %%rd<8>;
	.reg .%[1]s %%x<2>;
	ld.param.u64 %%rd1, [pa];
	ld.param.u64 %%rd2, [pb];
	ld.param.u64 %%rd3, [pc];
	mov.u32 %%r0, %%tid.x;
	mul.wide.u32 %%rd4, %%r0, %[2]d;
	add.s64 %%rd5, %%rd1, %%rd4;
	add.s64 %%rd6, %%rd2, %%rd4;
	ld.global.%[1]s %%x0, [%%rd5];
	ld.global.%[1]s %%x1, [%%rd6];
	mov.u32 %%r1, 7;
	and.b32 %%r2, %%r0, 1;
	setp.eq.u32 %%p1, %%r2, 0;
	@%%p1 setp.%[3]s.%[1]s %%p2, %%x0, %%x1;
	@%%p1 selp.u32 %%r1, 1, 0, %%p2;
	mul.wide.u32 %%rd4, %%r0, 4;
	add.s64 %%rd7, %%rd3, %%rd4;
	st.global.u32 [%%rd7], %%r1;
	ret;
}
`
	edges := map[int][]uint64{
		2: {0, 1, 2, 0x7fff, 0x8000, 0x8001, 0xfffe, 0xffff},
		4: {0, 1, 2, 0x7fffffff, 0x80000000, 0x80000001, 0xfffffffe, 0xffffffff},
		8: {0, 1, 2, 1<<63 - 1, 1 << 63, 1<<63 + 1, 1<<64 - 2, 1<<64 - 1},
	}
	for _, typ := range []string{"b16", "u16", "s16", "b32", "u32", "s32", "b64", "u64", "s64"} {
		vt := typeNames[typ]
		size := vt.size()
		var as, bs []uint64
		for _, a := range edges[size] {
			for _, b := range edges[size] {
				as, bs = append(as, a), append(bs, b)
			}
		}
		for _, cmp := range []string{"eq", "ne", "lt", "le", "gt", "ge", "lo", "ls", "hi", "hs"} {
			t.Run(typ+"/"+cmp, func(t *testing.T) {
				m, err := Load(fmt.Appendf(nil, kernelSrc, typ, size, cmp))
				if err != nil {
					t.Fatal(err)
				}
				k, err := m.Kernel("t")
				if err != nil {
					t.Fatal(err)
				}
				mem := newTestMem()
				n := len(as)
				da, db, dc := mem.alloc(size*n), mem.alloc(size*n), mem.alloc(4*n)
				for i := range as {
					putN(mem.bytes(da)[i*size:], size, as[i])
					putN(mem.bytes(db)[i*size:], size, bs[i])
				}
				l := launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{uint32(n), 1, 1}, 0, packParams(t, k, da, db, dc), 1)
				if err := k.Run(l); err != nil {
					t.Fatal(err)
				}
				got := mem.bytes(dc)
				for i := range as {
					want := uint32(7)
					if i%2 == 0 {
						want = uint32(b2i(compareRef(cmpNames[cmp], vt, as[i], bs[i])))
					}
					if g := binary.LittleEndian.Uint32(got[4*i:]); g != want {
						t.Errorf("setp.%s.%s 0x%x, 0x%x = %d, want %d", cmp, typ, as[i], bs[i], g, want)
					}
				}
			})
		}
	}
}

// compareRef is the comparison op of a and b as Go compares integers
// of PTX type t.
func compareRef(op uint8, t vtype, a, b uint64) bool {
	x, y := a, b
	var sx, sy int64
	switch t.size() {
	case 2:
		sx, sy = int64(int16(a)), int64(int16(b))
	case 4:
		sx, sy = int64(int32(a)), int64(int32(b))
	default:
		sx, sy = int64(a), int64(b)
	}
	lt := x < y
	if t.signed() {
		lt = sx < sy
	}
	eq := x == y
	switch op {
	case cmpEq:
		return eq
	case cmpNe:
		return !eq
	case cmpLt:
		return lt
	case cmpLe:
		return lt || eq
	case cmpGt:
		return !lt && !eq
	case cmpGe:
		return !lt
	}
	panic("unknown comparison")
}
