package abi

// Stream flags accepted by cuStreamCreate.
const (
	StreamDefault     uint32 = 0x0
	StreamNonBlocking uint32 = 0x1
)

// Event flags accepted by cuEventCreate.
const (
	EventDefault       uint32 = 0x0
	EventBlockingSync  uint32 = 0x1
	EventDisableTiming uint32 = 0x2
	EventInterprocess  uint32 = 0x4
)

// Event record flags accepted by cuEventRecordWithFlags. External records
// matter only to stream capture, which Kerf does not offer; outside it
// they are plain records.
const (
	EventRecordDefault  uint32 = 0x0
	EventRecordExternal uint32 = 0x1
)

// Function attributes (CUfunction_attribute).
const (
	FuncAttrMaxThreadsPerBlock uint32 = 0
	FuncAttrSharedSizeBytes    uint32 = 1
	FuncAttrConstSizeBytes     uint32 = 2
	FuncAttrLocalSizeBytes     uint32 = 3
	FuncAttrNumRegs            uint32 = 4
	FuncAttrPTXVersion         uint32 = 5
	FuncAttrBinaryVersion      uint32 = 6
	FuncAttrCacheModeCA        uint32 = 7
	FuncAttrMaxDynamicShared   uint32 = 8
	// FuncAttrPreferredCarveout is the preferred share of the L1/shared
	// memory split given to shared memory, in percent, or -1 (no
	// preference).
	FuncAttrPreferredCarveout uint32 = 9
	// The thread-block-cluster attributes (compute capability 9.0 and
	// later): whether a cluster size must be given at launch, the
	// compiled-in cluster width, height and depth, whether non-portable
	// cluster sizes are allowed, and the cluster scheduling policy.
	FuncAttrClusterSizeMustBeSet    uint32 = 10
	FuncAttrRequiredClusterWidth    uint32 = 11
	FuncAttrRequiredClusterHeight   uint32 = 12
	FuncAttrRequiredClusterDepth    uint32 = 13
	FuncAttrNonPortableClusterSize  uint32 = 14
	FuncAttrClusterSchedulingPolicy uint32 = 15
	NumFuncAttrs                    uint32 = 16
)

// Shared memory carveout bounds (CUshared_carveout): a percentage, or -1
// for the default.
const (
	CarveoutDefault int32 = -1
	CarveoutMax     int32 = 100
)

// Virtual memory access flags (CUmemAccess_flags): a device reads and
// writes a mapping once its access is set, and nothing before.
const (
	MemAccessNone      uint32 = 0
	MemAccessReadWrite uint32 = 3
)

// Granularity options (CUmemAllocationGranularity_flags).
const (
	GranularityMinimum     uint32 = 0
	GranularityRecommended uint32 = 1
)
