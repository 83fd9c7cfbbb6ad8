package main

import (
	"testing"

	"github.com/kerf-edge/kerf/abi"
)

// Cube-map arrays are square with six faces per cube, and read as
// layered 2D images marked as cube maps; other shapes are refused.
func TestArrayLayoutCubemap(t *testing.T) {
	for _, c := range []struct {
		name string
		a    arrayInfo
		res  Result
	}{
		{"cube", arrayInfo{width: 4, height: 4, depth: 6, flags: arrayCubemap}, abi.Success},
		{"layered cube", arrayInfo{width: 4, height: 4, depth: 12, flags: arrayCubemap | arrayLayered}, abi.Success},
		{"not square", arrayInfo{width: 4, height: 5, depth: 6, flags: arrayCubemap}, abi.ErrInvalidValue},
		{"five faces", arrayInfo{width: 4, height: 4, depth: 5, flags: arrayCubemap}, abi.ErrInvalidValue},
		{"twelve faces, not layered", arrayInfo{width: 4, height: 4, depth: 12, flags: arrayCubemap}, abi.ErrInvalidValue},
		{"layered, seven faces", arrayInfo{width: 4, height: 4, depth: 7, flags: arrayCubemap | arrayLayered}, abi.ErrInvalidValue},
		{"unknown flag", arrayInfo{width: 4, height: 4, depth: 6, flags: arrayCubemap | 0x100}, abi.ErrInvalidValue},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := c.a
			a.format, a.channels = abi.ArrayFormatF32, 1
			size, res := arrayLayout(&a)
			if res != c.res {
				t.Fatalf("arrayLayout = %v, want %v", res, c.res)
			}
			if res != abi.Success {
				return
			}
			if size != 4*4*4*a.depth {
				t.Errorf("size %d", size)
			}
			a.ptr = 0x1000
			img := a.image()
			if !img.Cube || img.Dims != 2 || img.Layers != a.depth || img.Width != 4 || img.Height != 4 {
				t.Errorf("image %+v", img)
			}
			if err := img.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}
