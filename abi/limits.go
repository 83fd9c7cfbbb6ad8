package abi

// Context limits (CUlimit), as cuCtxSetLimit and cuCtxGetLimit name them.
const (
	LimitStackSize                    uint32 = 0
	LimitPrintfFIFOSize               uint32 = 1
	LimitMallocHeapSize               uint32 = 2
	LimitDevRuntimeSyncDepth          uint32 = 3
	LimitDevRuntimePendingLaunchCount uint32 = 4
	LimitMaxL2FetchGranularity        uint32 = 5
	LimitPersistingL2CacheSize        uint32 = 6
)

// Cache configurations (CUfunc_cache), as cuCtxSetCacheConfig and
// cuFuncSetCacheConfig take them.
const (
	CachePreferNone   uint32 = 0
	CachePreferShared uint32 = 1
	CachePreferL1     uint32 = 2
	CachePreferEqual  uint32 = 3
)

// Shared memory bank sizes (CUsharedconfig). Devices of compute
// capability 5.0 and later have four-byte banks only: a setting is
// accepted and changes nothing.
const (
	SharedBankDefault   uint32 = 0
	SharedBankFourByte  uint32 = 1
	SharedBankEightByte uint32 = 2
)

// Context creation flags (CUctx_flags) that cuCtxGetFlags reports and
// cuDevicePrimaryCtxSetFlags accepts: a scheduling policy in the low
// three bits, then the host-mapping, local-memory-resize and
// coredump/sync-memops bits.
const (
	CtxSchedMask          uint32 = 0x07
	CtxSchedBlockingSync  uint32 = 0x04
	CtxMapHost            uint32 = 0x08
	CtxLmemResizeToMax    uint32 = 0x10
	CtxCoredumpEnable     uint32 = 0x20
	CtxUserCoredumpEnable uint32 = 0x40
	CtxSyncMemops         uint32 = 0x80
	CtxFlagsMask          uint32 = 0xff
)

// CtxAPIVersion is what cuCtxGetApiVersion reports for every context: the
// context API of CUDA 3.2 and later.
const CtxAPIVersion = 3020
