package abi

// Device attributes (CUdevice_attribute) that Kerf answers. The numbers
// are the driver's public ABI; the names and declarations are our own.
// Attributes not listed here are not served.
const (
	AttrMaxThreadsPerBlock               uint32 = 1
	AttrMaxBlockDimX                     uint32 = 2
	AttrMaxBlockDimY                     uint32 = 3
	AttrMaxBlockDimZ                     uint32 = 4
	AttrMaxGridDimX                      uint32 = 5
	AttrMaxGridDimY                      uint32 = 6
	AttrMaxGridDimZ                      uint32 = 7
	AttrMaxSharedMemoryPerBlock          uint32 = 8
	AttrTotalConstantMemory              uint32 = 9
	AttrWarpSize                         uint32 = 10
	AttrMaxPitch                         uint32 = 11
	AttrMaxRegistersPerBlock             uint32 = 12
	AttrClockRate                        uint32 = 13 // kHz
	AttrTextureAlignment                 uint32 = 14
	AttrGPUOverlap                       uint32 = 15
	AttrMultiprocessorCount              uint32 = 16
	AttrKernelExecTimeout                uint32 = 17
	AttrIntegrated                       uint32 = 18
	AttrCanMapHostMemory                 uint32 = 19
	AttrComputeMode                      uint32 = 20
	AttrConcurrentKernels                uint32 = 31
	AttrECCEnabled                       uint32 = 32
	AttrPCIBusID                         uint32 = 33
	AttrPCIDeviceID                      uint32 = 34
	AttrTCCDriver                        uint32 = 35
	AttrMemoryClockRate                  uint32 = 36 // kHz
	AttrGlobalMemoryBusWidth             uint32 = 37 // bits
	AttrL2CacheSize                      uint32 = 38 // bytes
	AttrMaxThreadsPerMultiprocessor      uint32 = 39
	AttrAsyncEngineCount                 uint32 = 40
	AttrUnifiedAddressing                uint32 = 41
	AttrPCIDomainID                      uint32 = 50
	AttrComputeCapabilityMajor           uint32 = 75
	AttrComputeCapabilityMinor           uint32 = 76
	AttrStreamPrioritiesSupported        uint32 = 78
	AttrMaxSharedMemoryPerMultiprocessor uint32 = 81
	AttrMaxRegistersPerMultiprocessor    uint32 = 82
	AttrManagedMemory                    uint32 = 83
	AttrMultiGPUBoard                    uint32 = 84
	AttrCooperativeLaunch                uint32 = 95
	AttrMaxSharedMemoryPerBlockOptin     uint32 = 97
	AttrMaxBlocksPerMultiprocessor       uint32 = 106
)

// Compute modes (CUcomputemode).
const (
	ComputeModeDefault    int32 = 0
	ComputeModeProhibited int32 = 2
)
