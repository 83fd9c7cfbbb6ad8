package emu

import (
	"encoding/binary"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/gpu/emu/kernels"
	"github.com/kerf-edge/kerf/gpu/gputest"
)

// emuKernels are the conformance suite's launches: vadd over 32 floats,
// and oob_write, which writes 64 MiB past its buffer.
var emuKernels = &gputest.Kernels{
	Ok: gputest.Kernel{Image: kernels.PTX("vadd.ptx"), Name: "vadd", Launch: func(t *testing.T, c gpu.Context) (abi.LaunchConfig, []byte) {
		var params []byte
		for range 3 {
			params = binary.LittleEndian.AppendUint64(params, conformanceAlloc(t, c, 128))
		}
		return abi.LaunchConfig{Grid: one(1), Block: one(32)}, binary.LittleEndian.AppendUint32(params, 32)
	}},
	Fault: gputest.Kernel{Image: kernels.PTX("oob.ptx"), Name: "oob_write", Launch: func(t *testing.T, c gpu.Context) (abi.LaunchConfig, []byte) {
		params := binary.LittleEndian.AppendUint64(nil, conformanceAlloc(t, c, 128))
		return abi.LaunchConfig{Grid: one(1), Block: one(32)}, binary.LittleEndian.AppendUint32(params, 0)
	}},
}

func conformanceAlloc(t *testing.T, c gpu.Context, n uint64) uint64 {
	t.Helper()
	p, err := c.MemAlloc(n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConformance(t *testing.T) {
	gputest.Run(t, func(*testing.T) gpu.Backend { return New(Config{MemoryBytes: 64 << 20, SMs: 2}) },
		gputest.Options{Kernels: emuKernels})
}
