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
)
