package emu

import (
	"math"

	"github.com/kerf-edge/kerf/abi"
)

// Launch limits of the emulated device (those of an sm_80 part, except
// the opt-in shared memory).
const (
	maxThreadsPerBlock = 1024
	maxBlockDimX       = 1024
	maxBlockDimY       = 1024
	maxBlockDimZ       = 64
	maxGridDimX        = math.MaxInt32
	maxGridDimY        = 65535
	maxGridDimZ        = 65535
	sharedPerBlock     = 48 << 10
	sharedPerBlockOpt  = 96 << 10
	sharedPerSM        = 100 << 10
	warpSize           = 32
	regsPerBlock       = 65536
	regsPerSM          = 65536
	threadsPerSM       = 2048
	blocksPerSM        = 32
	constantBytes      = 64 << 10
)

// attribute returns device attribute attr, or false when it is not served.
func (d *device) attribute(attr uint32) (int32, bool) {
	c := &d.cfg
	switch attr {
	case abi.AttrMaxThreadsPerBlock:
		return maxThreadsPerBlock, true
	case abi.AttrMaxBlockDimX:
		return maxBlockDimX, true
	case abi.AttrMaxBlockDimY:
		return maxBlockDimY, true
	case abi.AttrMaxBlockDimZ:
		return maxBlockDimZ, true
	case abi.AttrMaxGridDimX:
		return maxGridDimX, true
	case abi.AttrMaxGridDimY:
		return maxGridDimY, true
	case abi.AttrMaxGridDimZ:
		return maxGridDimZ, true
	case abi.AttrMaxSharedMemoryPerBlock:
		return sharedPerBlock, true
	case abi.AttrTotalConstantMemory:
		return constantBytes, true
	case abi.AttrWarpSize:
		return warpSize, true
	case abi.AttrMaxPitch:
		return math.MaxInt32, true
	case abi.AttrMaxRegistersPerBlock:
		return regsPerBlock, true
	case abi.AttrClockRate:
		return int32(c.ClockKHz), true
	case abi.AttrTextureAlignment:
		return 512, true
	case abi.AttrGPUOverlap, abi.AttrConcurrentKernels, abi.AttrUnifiedAddressing,
		abi.AttrStreamPrioritiesSupported:
		return 1, true
	case abi.AttrMultiprocessorCount:
		return int32(c.SMs), true
	case abi.AttrKernelExecTimeout, abi.AttrIntegrated, abi.AttrCanMapHostMemory,
		abi.AttrECCEnabled, abi.AttrTCCDriver,
		abi.AttrManagedMemory, abi.AttrMultiGPUBoard:
		// No host-mapped or managed memory in the emulator.
		return 0, true
	case abi.AttrCooperativeLaunch, abi.AttrVirtualMemoryManagementSupported:
		return 1, true
	case abi.AttrComputeMode:
		return abi.ComputeModeDefault, true
	case abi.AttrPCIDomainID:
		return int32(d.info.PCI.Domain), true
	case abi.AttrPCIBusID:
		return int32(d.info.PCI.Bus), true
	case abi.AttrPCIDeviceID:
		return int32(d.info.PCI.Device), true
	case abi.AttrMemoryClockRate:
		return int32(c.MemClockKHz), true
	case abi.AttrGlobalMemoryBusWidth:
		return int32(c.BusWidth), true
	case abi.AttrL2CacheSize:
		return int32(c.L2Bytes), true
	case abi.AttrMaxThreadsPerMultiprocessor:
		return threadsPerSM, true
	case abi.AttrAsyncEngineCount:
		return 1, true
	case abi.AttrComputeCapabilityMajor:
		return CCMajor, true
	case abi.AttrComputeCapabilityMinor:
		return CCMinor, true
	case abi.AttrMaxSharedMemoryPerMultiprocessor:
		return sharedPerSM, true
	case abi.AttrMaxRegistersPerMultiprocessor:
		return regsPerSM, true
	case abi.AttrMaxSharedMemoryPerBlockOptin:
		return sharedPerBlockOpt, true
	case abi.AttrMaxBlocksPerMultiprocessor:
		return blocksPerSM, true
	}
	v, ok := textureLimits[attr]
	return v, ok
}

// textureLimits are the texture and surface limits (CUdevice_attribute
// 21-30, 42-74, 77) of an sm_80 part, except surface cube maps, which
// Kerf does not serve (0).
var textureLimits = map[uint32]int32{
	21: 131072, 22: 131072, 23: 65536, 24: 16384, 25: 16384, 26: 16384, 27: 32768, 28: 32768, 29: 2048, 30: 512,
	42: 32768, 43: 2048, 44: 1, 45: 32768, 46: 32768, 47: 8192, 48: 8192, 49: 32768,
	51: 32, 52: 32768, 53: 32768, 54: 2046,
	55: 32768, 56: 131072, 57: 65536, 58: 16384, 59: 16384, 60: 16384, 61: 32768, 62: 2048, 63: 32768, 64: 32768, 65: 2048,
	66: 0, 67: 0, 68: 0,
	69: 1 << 28, 70: 131072, 71: 65000, 72: 2097120, 73: 32768, 74: 32768, 77: 32768,
}
