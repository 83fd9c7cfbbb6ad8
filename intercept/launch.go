package main

import (
	"github.com/kerf-edge/kerf/abi"
)

// paramSource packs a launch's parameters from the program's memory: its
// kernelParams array or its `extra` buffer. The export layer implements it.
type paramSource interface {
	// pack returns the parameter buffer for layout, whose packed size is
	// total bytes.
	pack(layout []abi.ParamInfo, total int) ([]byte, Result)
}

// launchAttr is one cuLaunchKernelEx attribute: its id and the first
// three 32-bit words of its value.
type launchAttr struct {
	id   int32
	vals [3]uint32
}

// Launch attribute ids (CUlaunchAttributeID).
const (
	attrIgnore                = 0
	attrAccessPolicyWindow    = 1
	attrCooperative           = 2
	attrSynchronizationPolicy = 3
	attrClusterDimension      = 4
	attrClusterSchedulingPref = 5
	attrProgrammaticStreamSer = 6
	attrProgrammaticEvent     = 7
	attrPriority              = 8
	attrMemSyncDomainMap      = 9
	attrMemSyncDomain         = 10
)

// checkAttrs accepts the attributes that are only hints (or that ask for
// ordering at least as strict as the shim's) and refuses those that would
// change what the kernel computes.
func checkAttrs(attrs []launchAttr) Result {
	for _, a := range attrs {
		switch a.id {
		case attrIgnore, attrAccessPolicyWindow, attrSynchronizationPolicy, attrClusterSchedulingPref,
			attrProgrammaticStreamSer, attrPriority, attrMemSyncDomainMap, attrMemSyncDomain:
		case attrCooperative:
		case attrClusterDimension:
			if a.vals != [3]uint32{1, 1, 1} && a.vals != [3]uint32{0, 0, 0} {
				return abi.ErrNotSupported
			}
		default:
			return abi.ErrNotSupported
		}
	}
	return abi.Success
}

// checkCooperative refuses a cooperative grid larger than the device
// holds at once by the occupancy calculator, the rule CUDA applies and
// programs size their grids by.
func checkCooperative(fkey uintptr, grid, block abi.Dim3, shared uint32) Result {
	d, f, res := occupancyInputs(fkey)
	if res != abi.Success {
		return res
	}
	threads := int64(block.X) * int64(block.Y) * int64(block.Z)
	blocks := uint64(grid.X) * uint64(grid.Y) * uint64(grid.Z)
	if most := activeBlocks(d, f, threads, uint64(shared)) * d.sms; most <= 0 || blocks > uint64(most) {
		return abi.ErrCooperativeTooLarge
	}
	return abi.Success
}

// cooperativeAttr reports whether attrs ask for a cooperative launch.
func cooperativeAttr(attrs []launchAttr) bool {
	for _, a := range attrs {
		if a.id == attrCooperative && a.vals[0] != 0 {
			return true
		}
	}
	return false
}

// checkShape returns the error CUDA reports at launch time for a shape the
// device cannot run.
func checkShape(lim launchLimits, grid, block abi.Dim3, shared uint32) Result {
	g := [3]uint32{grid.X, grid.Y, grid.Z}
	b := [3]uint32{block.X, block.Y, block.Z}
	threads := uint64(1)
	for i := range 3 {
		if g[i] == 0 || b[i] == 0 || g[i] > lim.grid[i] || b[i] > lim.block[i] {
			return abi.ErrInvalidValue
		}
		threads *= uint64(b[i])
	}
	if threads > uint64(lim.threads) {
		return abi.ErrInvalidValue
	}
	if shared > lim.sharedOptin {
		return abi.ErrInvalidValue
	}
	return abi.Success
}

// launch implements cuLaunchKernel and cuLaunchKernelEx. Everything CUDA
// reports at once is checked here, before the fire-and-forget call.
func launch(fkey uintptr, grid, block abi.Dim3, shared uint32, stream uintptr, src paramSource, attrs []launchAttr, coop bool) Result {
	if _, res := drv.ready(); res != abi.Success {
		return res
	}
	f, ok := drv.lookup(fkey, kindFunction)
	if fkey == 0 || !ok {
		return abi.ErrInvalidHandle
	}
	dv, s, res := streamOf(stream)
	if res != abi.Success {
		return res
	}
	if dv != f.dev {
		return abi.ErrInvalidHandle
	}
	if res := checkAttrs(attrs); res != abi.Success {
		return res
	}
	coop = coop || cooperativeAttr(attrs)
	if coop {
		if res := checkCooperative(fkey, grid, block, shared); res != abi.Success {
			return res
		}
	}
	k, res := kernelSpecOf(f, grid, block, shared, src, coop)
	if res != abi.Success {
		return res
	}
	return submitNode(stream, dv, s, nodeKernel, k.work(), k)
}

// kernelSpec is a checked kernel launch with its packed parameters: a
// kernel node's parameters.
type kernelSpec struct {
	f           *object
	grid, block abi.Dim3
	shared      uint32
	params      []byte
	coop        bool
}

// kernelSpecOf checks a launch of f and packs its parameters, now.
func kernelSpecOf(f *object, grid, block abi.Dim3, shared uint32, src paramSource, coop bool) (*kernelSpec, Result) {
	if res := checkShape(f.dev.lim, grid, block, shared); res != abi.Success {
		return nil, res
	}
	layout, res := f.params()
	if res != abi.Success {
		return nil, res
	}
	var params []byte
	if src == nil {
		if len(layout) > 0 {
			return nil, abi.ErrInvalidValue
		}
	} else if params, res = src.pack(layout, f.layoutSize); res != abi.Success {
		return nil, res
	}
	if len(params) > abi.MaxKernelParams {
		return nil, abi.ErrInvalidValue
	}
	return &kernelSpec{f: f, grid: grid, block: block, shared: shared, params: params, coop: coop}, abi.Success
}

// work launches k into a stream, cooperatively when k.coop.
func (k *kernelSpec) work() streamWork {
	f, params, coop := k.f, k.params, k.coop
	cfg := abi.LaunchConfig{Grid: k.grid, Block: k.block, SharedBytes: k.shared}
	return func(dv *device, s uint64) Result {
		if res := toDevice(dv); res != abi.Success {
			return res
		}
		if coop {
			return abi.ResultOf(dv.cl.LaunchCooperativeKernel(f.wire, cfg, s, params))
		}
		return abi.ResultOf(dv.cl.LaunchKernel(f.wire, cfg, s, params))
	}
}

// packExtra checks an `extra` buffer's size against the layout.
func packExtra(size uint64, total int) Result {
	if size > abi.MaxKernelParams || size < uint64(total) {
		return abi.ErrInvalidValue
	}
	return abi.Success
}
