package emu

import (
	"encoding/binary"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/abi/fatbin/fatbintest"
)

const gridSyncSource = `#include <cooperative_groups.h>
extern "C" __global__ void sum_all(int *data, int *total) {
  cooperative_groups::grid_group g = cooperative_groups::this_grid();
  atomicAdd(total, data[g.thread_rank()]);
  g.sync();
  data[g.thread_rank()] = *total;
}
`

// A cooperative launch runs every block at once, so grid.sync() works;
// a grid larger than the device holds at once is refused at launch; a
// plain launch of the same kernel traps in grid.sync(), as on a GPU.
func TestCooperativeLaunch(t *testing.T) {
	img := fatbintest.Nvcc(t, gridSyncSource, "arch=compute_80,code=compute_80")
	c := open(t, New(Config{MemoryBytes: 16 << 20, SMs: 2}), 0, 0)
	if v, err := c.Attribute(abi.AttrCooperativeLaunch); err != nil || v != 1 {
		t.Fatalf("cooperative launch attribute %d, %v", v, err)
	}
	f := must(must(c.ModuleLoad(img))(t).Function("sum_all"))(t)
	// 2 SMs hold 4 blocks of 256 threads at once
	const blocks, threads = 4, 256
	data := must(c.MemAlloc(4 * blocks * threads))(t)
	total := must(c.MemAlloc(4))(t)
	ones := make([]byte, 4*blocks*threads)
	for i := range blocks * threads {
		binary.LittleEndian.PutUint32(ones[4*i:], 1)
	}
	ok(t, c.MemcpyHtoD(data, ones, nil))
	ok(t, c.Memset(total, 0, 4, 1, nil))
	params := binary.LittleEndian.AppendUint64(ptrParam(data), total)
	cfg := abi.LaunchConfig{Grid: one(blocks), Block: one(threads)}
	ok(t, c.LaunchCooperative(f, cfg, params, nil))
	got := make([]byte, 4*blocks*threads)
	ok(t, c.MemcpyDtoH(got, data, nil))
	for i := range blocks * threads {
		if v := binary.LittleEndian.Uint32(got[4*i:]); v != blocks*threads {
			t.Fatalf("data[%d] = %d, want %d", i, v, blocks*threads)
		}
	}
	// 2 SMs never hold more than 2 x 32 blocks
	wantCode(t, c.LaunchCooperative(f, abi.LaunchConfig{Grid: one(65), Block: one(32)}, params, nil), abi.ErrCooperativeTooLarge)
	ok(t, c.Launch(f, cfg, params, nil))
	wantCode(t, c.Synchronize(), abi.ErrIllegalInstruction)
}
