package emu

import (
	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/gpu/emu/ptx"
)

var _ gpu.CooperativeLauncher = (*Context)(nil)

// gridWorkspaceAddr is where a cooperative launch's grid.sync() counter
// lies: below every device allocation, and private to the launch, whose
// Memory maps it to the launch's own 8 bytes.
const gridWorkspaceAddr = vaBase - 4096

// LaunchCooperative queues a launch whose blocks all run at once, as
// cuLaunchCooperativeKernel does. A grid larger than the device holds
// at once is refused with abi.ErrCooperativeTooLarge.
func (c *Context) LaunchCooperative(f gpu.Function, cfg abi.LaunchConfig, params []byte, s gpu.Stream) error {
	return c.launch(f, cfg, params, s, true)
}

// cooperative makes l a cooperative launch of fn, after checking that
// its blocks fit on the device at once.
func (c *Context) cooperative(fn *Function, cfg abi.LaunchConfig, l *ptx.Launch) error {
	blocks := uint64(cfg.Grid.X) * uint64(cfg.Grid.Y) * uint64(cfg.Grid.Z)
	threads := uint64(cfg.Block.X) * uint64(cfg.Block.Y) * uint64(cfg.Block.Z)
	if most := uint64(c.dev.cfg.SMs) * residentBlocks(threads, uint64(fn.info.shared)+uint64(cfg.SharedBytes), fn.numRegs()); blocks > most {
		return abi.Errorf(abi.ErrCooperativeTooLarge, "kernel %s: %d blocks, the device holds %d of them at once", fn.name, blocks, most)
	}
	l.Cooperative, l.GridWorkspace = true, gridWorkspaceAddr
	l.Memory = &coopMemory{view: &c.mem, ws: make([]byte, 16)[:8]}
	return nil
}

// residentBlocks is how many blocks of threads threads, shared bytes of
// shared memory and regs registers per thread one SM holds at once: the
// occupancy calculator's rule without its allocation units, so never
// fewer blocks than the shim's calculator, which holds programs to the
// exact rule, reports. This bound keeps a launch's goroutines in check.
func residentBlocks(threads, shared uint64, regs int) uint64 {
	warps := (threads + warpSize - 1) / warpSize
	n := min(uint64(blocksPerSM), threadsPerSM/(warps*warpSize))
	if shared > 0 {
		n = min(n, sharedPerSM/shared)
	}
	if regs > 0 {
		n = min(n, regsPerSM/(uint64(regs)*warps*warpSize))
	}
	return n
}

// coopMemory is a context's memory as a cooperative launch sees it: with
// the launch's grid workspace at gridWorkspaceAddr.
type coopMemory struct {
	view *memView
	ws   []byte
}

func (m *coopMemory) Span(addr uint64) (uint64, []byte, bool) {
	if addr-gridWorkspaceAddr < uint64(len(m.ws)) {
		return gridWorkspaceAddr, m.ws, true
	}
	return m.view.Span(addr)
}
