// Package gpu defines the contract between kerfd's forwarding server and
// the GPU backends that execute tenant calls: gpu/emu (the PTX emulator)
// and gpu/cuda (the NVIDIA driver). It holds interfaces and plain types
// only; it must not import the transport or any backend.
//
// Every method may be called with tenant-controlled values that the
// transport has already checked against the call catalogue (sizes, handle
// ownership, pointer ranges), but a backend must still fail safely, with an
// *abi.Error, on anything it cannot do. Backends never panic on input.
package gpu

import (
	"time"

	"github.com/kerf-edge/kerf/abi"
)

// Backend serves one or more devices.
type Backend interface {
	// Devices describes the devices this backend serves, by ordinal.
	Devices() []DeviceInfo
	// Open creates a tenant context on device ordinal dev whose
	// allocations may total at most memLimit bytes (0: the whole device).
	Open(dev int, memLimit uint64) (Context, error)
}

// DeviceInfo describes one device as a tenant sees it.
type DeviceInfo struct {
	Name          string
	UUID          [16]byte
	TotalMem      uint64
	CCMajor       int
	CCMinor       int
	SMs           int
	Emulated      bool
	DriverVersion int // as cuDriverGetVersion reports, e.g. 12040
	// PCI is where the device sits on the host's PCI bus, as the device
	// attributes CU_DEVICE_ATTRIBUTE_PCI_{DOMAIN,BUS,DEVICE}_ID say.
	PCI PCIAddress
}

// PCIAddress is a device's PCI domain, bus and device (slot) numbers.
type PCIAddress struct {
	Domain, Bus, Device int
}

// Stream is a backend stream. A nil Stream is the legacy default stream,
// which synchronizes with every blocking stream of its context.
type Stream interface {
	Synchronize() error
	// Query returns nil when idle and abi.ErrNotReady while work is pending.
	Query() error
	WaitEvent(ev Event) error
	Destroy() error
}

// Event is a backend event.
type Event interface {
	Record(s Stream) error
	// Query returns nil once completed and abi.ErrNotReady before.
	Query() error
	Synchronize() error
	// ElapsedSince returns the milliseconds from start to this event.
	ElapsedSince(start Event) (float32, error)
	Destroy() error
}

// Module is a loaded PTX, cubin or fatbin image.
type Module interface {
	Function(name string) (Function, error)
	// Global returns the address and size of a module global.
	Global(name string) (ptr, size uint64, err error)
	Unload() error
}

// Function is a kernel.
type Function interface {
	// Attribute answers every CUfunction_attribute the device defines.
	Attribute(attr uint32) (int32, error)
	// SetAttribute sets a settable attribute, as cuFuncSetAttribute does:
	// the dynamic shared memory limit (up to the device's opt-in maximum
	// less the kernel's static shared memory), which later launches are
	// then held to, and the preferred shared memory carveout (-1 to 100).
	// Anything else is refused with abi.ErrInvalidValue.
	SetAttribute(attr uint32, value int32) error
	Params() ([]abi.ParamInfo, error)
}

// Context is one tenant's context on one device. All methods taking a
// Stream are ordered within that stream. Methods that take a []byte must
// not keep it after they return.
type Context interface {
	Device() DeviceInfo
	Attribute(attr uint32) (int32, error)

	MemAlloc(size uint64) (uint64, error)
	MemFree(ptr uint64) error
	// MemInfo reports the context's view: total is its limit, free is the
	// limit minus what it uses, never more than the device has free; both
	// are 0 once the context is closed. Backends keep the account in a
	// Quota.
	MemInfo() (free, total uint64)
	// AddressRange returns the base and size of the allocation or module
	// global that contains ptr, as cuMemGetAddressRange does, or
	// abi.ErrNotFound when none of the context's does.
	AddressRange(ptr uint64) (base, size uint64, err error)
	// SetMemLimit changes the limit in place (0: the whole device).
	// Shrinking below current use is refused with abi.ErrOutOfMemory.
	SetMemLimit(limit uint64) error

	MemcpyHtoD(dst uint64, src []byte, s Stream) error
	// MemcpyDtoH returns once dst holds the bytes, after prior work in s.
	MemcpyDtoH(dst []byte, src uint64, s Stream) error
	MemcpyDtoD(dst, src, size uint64, s Stream) error
	// Memset sets count elements of elemSize (1, 2 or 4) bytes to value.
	Memset(dst uint64, value uint32, elemSize uint32, count uint64, s Stream) error

	ModuleLoad(image []byte) (Module, error)
	Launch(f Function, cfg abi.LaunchConfig, params []byte, s Stream) error

	StreamCreate(flags uint32, priority int32) (Stream, error)
	EventCreate(flags uint32) (Event, error)

	// Synchronize waits for all work and returns the first error of the
	// context's asynchronous work, if any.
	Synchronize() error
	// Close waits for work, frees every resource of the context and
	// makes the context unusable.
	Close() error
}

// Aborter is implemented by contexts whose running work can be cut
// short: Abort, safe from any goroutine and at any time, ends the
// context's kernels as soon as the backend can and fails the rest of
// its queued kernels, without waiting. A server aborts a context whose
// tenant has gone, so that Close does not wait for kernels nobody will
// read. The emulator implements it; on a real GPU, ending the worker
// process ends its kernels.
type Aborter interface {
	Abort()
}

// PrintfBuffer is implemented by contexts that keep their kernels'
// printf output for the tenant, as a GPU keeps it in the context's
// printf FIFO until a synchronising call flushes it. The emulator
// implements it; a real GPU's driver prints to the worker's own stdout.
type PrintfBuffer interface {
	// SetPrintfFIFOSize sets the buffer's size in bytes, as
	// cuCtxSetLimit(CU_LIMIT_PRINTF_FIFO_SIZE) does; what is buffered
	// stays. A printf whose text does not fit is dropped.
	SetPrintfFIFOSize(size uint64)
	// TakePrintf returns the output buffered since the last call, in the
	// order it was printed, and empties the buffer. Servers call it at
	// the points where CUDA flushes the FIFO: context, stream and event
	// synchronisation, blocking copies and module unload.
	TakePrintf() []byte
}

// LimitSetter is implemented by contexts whose limits a tenant may set,
// as cuCtxSetLimit does (CU_LIMIT_STACK_SIZE, CU_LIMIT_PRINTF_FIFO_SIZE,
// CU_LIMIT_MALLOC_HEAP_SIZE). The shim has checked the value against the
// device; a limit the context does not have gets
// CUDA_ERROR_UNSUPPORTED_LIMIT.
type LimitSetter interface {
	SetLimit(limit uint32, value uint64) error
}

// TextureObjects is implemented by contexts that serve texture and
// surface objects (the emulator). An object reads, and a surface also
// writes, an image in the context's device memory that the transport
// has checked lies in one of the caller's allocations; the handle it
// returns is what the tenant's kernels name. A handle of another
// context's is no object of this one's.
type TextureObjects interface {
	TexObjectCreate(d abi.TexObject) (uint64, error)
	// TexObjectDestroy destroys a texture (surface false) or surface
	// object; a handle of the other kind is abi.ErrInvalidValue.
	TexObjectDestroy(obj uint64, surface bool) error
}

// CooperativeLauncher is implemented by contexts that run cooperative
// launches (cuLaunchCooperativeKernel): every block of the grid at once,
// so that blocks may wait for each other; a grid larger than the device
// holds at once is abi.ErrCooperativeTooLarge, returned at once.
type CooperativeLauncher interface {
	LaunchCooperative(f Function, cfg abi.LaunchConfig, params []byte, s Stream) error
}

// VirtualMemory is implemented by contexts that serve the virtual memory
// calls (cuMemAddressReserve, cuMemCreate, cuMemMap, cuMemSetAccess, ...).
// The transport has checked every range against the caller's own
// reservations, mappings and physical memory, and that sizes, offsets and
// addresses are multiples of Granularity; a backend still fails safely.
// Physical memory is counted against the context's quota while it lives.
type VirtualMemory interface {
	// Granularity returns the minimum (recommended false) or recommended
	// granularity of physical memory and mappings.
	Granularity(recommended bool) uint64
	// AddressReserve reserves size bytes of device addresses aligned to
	// align, a power of two no smaller than the granularity.
	AddressReserve(size, align uint64) (uint64, error)
	// AddressFree frees a reservation in which nothing is mapped.
	AddressFree(ptr, size uint64) error
	// MemCreate makes size bytes of physical memory.
	MemCreate(size uint64) (PhysicalMemory, error)
	// MemMap maps size bytes of m, from offset, at ptr; they are not
	// accessible until SetAccess.
	MemMap(ptr, size, offset uint64, m PhysicalMemory) error
	// MemUnmap unmaps the mapping at ptr of size bytes, after the
	// context's work so far.
	MemUnmap(ptr, size uint64) error
	// SetAccess lets the context's kernels and copies read and write the
	// mapping at ptr of size bytes.
	SetAccess(ptr, size uint64) error
}

// PhysicalMemory is memory made by VirtualMemory.MemCreate. Release
// frees it, once no mapping uses it (the transport unmaps first).
type PhysicalMemory interface {
	Release() error
}

// Meter is implemented by contexts that meter the GPU time their kernels
// take (both Kerf backends do); compute shares are measured with it.
type Meter interface {
	BusyTime() time.Duration
}

// Gate paces a context's kernels by its compute share: Enter blocks until
// the context may run a kernel, and the returned func is told the GPU time
// the kernel took. A backend that takes a Gate calls it around every
// kernel it executes.
type Gate interface {
	Enter() (done func(used time.Duration))
}

// Errorf is shorthand for abi.Errorf, for backends.
func Errorf(code abi.Result, format string, args ...any) error {
	return abi.Errorf(code, format, args...)
}
