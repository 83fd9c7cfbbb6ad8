package transport

import (
	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/transport/internal/wire"
)

// launchCooperativeKernel launches a kernel whose blocks all run at once,
// on a backend that can.
func (ss *session) launchCooperativeKernel(a wire.LaunchCooperativeKernelArgs) abi.Result {
	f, ok := ss.handles.function(a.Function)
	s, sok := ss.handles.stream(a.Stream)
	if !ok || !sok {
		return abi.ErrInvalidHandle
	}
	cl, ok := ss.ctx.(gpu.CooperativeLauncher)
	if !ok {
		ss.errText = "this device does not run cooperative launches"
		return abi.ErrNotSupported
	}
	cfg := abi.LaunchConfig{
		Grid:        abi.Dim3{X: a.GridX, Y: a.GridY, Z: a.GridZ},
		Block:       abi.Dim3{X: a.BlockX, Y: a.BlockY, Z: a.BlockZ},
		SharedBytes: a.SharedMemBytes,
	}
	return abi.ResultOf(cl.LaunchCooperative(f, cfg, a.Params, s))
}
