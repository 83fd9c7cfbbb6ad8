// Package tenantkit holds what tests and benchmarks do as a tenant of
// kerfd through the Go transport client: load one of the emulator's test
// kernels, prepare a matmul launch, lay out float32 inputs. It is imported
// by _test.go files and bench/ only, and holds no product logic.
package tenantkit

import (
	"encoding/binary"
	"math"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu/emu/kernels"
	"github.com/kerf-edge/kerf/transport"
)

// LoadKernel loads test kernel name (gpu/emu/kernels) on c and returns its
// function and parameter layout.
func LoadKernel(c *transport.Client, name string) (uint64, []abi.ParamInfo, error) {
	mod, err := c.ModuleLoad(kernels.PTX(name))
	if err != nil {
		return 0, nil, err
	}
	fn, err := c.ModuleGetFunction(mod, name)
	if err != nil {
		return 0, nil, err
	}
	layout, err := c.FuncParams(fn)
	return fn, layout, err
}

// NewMatmul prepares an n×n matmul (n a multiple of 16) on c and returns a
// function that launches it.
func NewMatmul(c *transport.Client, n uint32) (func() error, error) {
	fn, layout, err := LoadKernel(c, "matmul")
	if err != nil {
		return nil, err
	}
	var bufs [3]uint64
	for i := range bufs {
		if bufs[i], err = c.MemAlloc(uint64(4 * n * n)); err != nil {
			return nil, err
		}
	}
	params := make([]byte, layout[len(layout)-1].Offset+layout[len(layout)-1].Size)
	for i, l := range layout {
		if l.Size == 8 {
			binary.LittleEndian.PutUint64(params[l.Offset:], bufs[i%3])
		} else {
			binary.LittleEndian.PutUint32(params[l.Offset:], n)
		}
	}
	cfg := abi.LaunchConfig{Grid: abi.Dim3{X: n / 16, Y: n / 16, Z: 1}, Block: abi.Dim3{X: 16, Y: 16, Z: 1}}
	return func() error { return c.LaunchKernel(fn, cfg, 0, params) }, nil
}

// F32Bytes lays f out as little-endian bytes, as a device holds it.
func F32Bytes(f []float32) []byte {
	b := make([]byte, 4*len(f))
	for i, v := range f {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}
