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
	// The memory model's attributes (the shim answers them: managed and
	// mapped host memory are its mirrors).
	AttrPageableMemoryAccess                   uint32 = 88
	AttrConcurrentManagedAccess                uint32 = 89
	AttrCanUseHostPointerForRegisteredMem      uint32 = 91
	AttrPageableMemoryAccessUsesHostPageTables uint32 = 100
	AttrDirectManagedMemAccessFromHost         uint32 = 101
	AttrMaxSharedMemoryPerBlockOptin           uint32 = 97
	AttrMaxBlocksPerMultiprocessor             uint32 = 106
	// AttrVirtualMemoryManagementSupported says whether the device serves
	// the virtual memory calls (cuMemCreate, cuMemMap, ...).
	AttrVirtualMemoryManagementSupported uint32 = 102
	// AttrReservedSharedMemoryPerBlock is the shared memory the system
	// keeps per block; absent (0) where the backend does not serve it.
	AttrReservedSharedMemoryPerBlock uint32 = 111
	// The stream-ordered allocator's attributes (the shim answers them:
	// it keeps the memory pools, which share no handles).
	AttrMemoryPoolsSupported           uint32 = 115
	AttrMemoryPoolSupportedHandleTypes uint32 = 119
)

// Compute modes (CUcomputemode).
const (
	ComputeModeDefault    int32 = 0
	ComputeModeProhibited int32 = 2
)

// attrAbsentWhenUnserved are the attributes the CUDA runtime reads for
// cudaGetDeviceProperties that describe features a Kerf slice may lack:
// textures and surfaces (21-30, 42-49, 51-74, 77), L1 caching flags
// (79, 80), the multi-GPU board group (85), host-native atomics, managed
// and pageable memory (86, 88, 89, 91, 100, 101), the double-precision
// ratio (87), compute preemption (90), multi-device cooperative launches
// (96), persisting L2 and access-policy windows (108, 109) and reserved
// shared memory (111). A backend that reports one (the real GPU) is
// believed; where the backend does not serve it, the shim answers 0
// ("absent") instead of failing the runtime's device initialization.
var attrAbsentWhenUnserved = func() map[uint32]bool {
	m := map[uint32]bool{}
	for _, r := range [][2]uint32{{21, 30}, {42, 49}, {51, 74}, {77, 77}, {79, 80}, {85, 91}, {96, 96},
		{100, 101}, {108, 109}, {111, 111}} {
		for a := r[0]; a <= r[1]; a++ {
			m[a] = true
		}
	}
	return m
}()

// AttrAbsentWhenUnserved reports whether the shim answers attribute a with
// 0 when the backend does not serve it.
func AttrAbsentWhenUnserved(a uint32) bool { return attrAbsentWhenUnserved[a] }
