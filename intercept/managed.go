package main

import (
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/kerf-edge/kerf/abi"
)

// Managed memory (cuMemAllocManaged) and host memory mapped into the
// device (CU_MEMHOSTALLOC_DEVICEMAP, CU_MEMHOSTREGISTER_DEVICEMAP) are
// mirrors: a device allocation on kerfd and host memory in the program,
// kept coherent by the shim at the boundaries CUDA gives devices without
// concurrent managed access (CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS
// 0, as the shim reports):
//
//   - before the device's first work after the host had the memory (a
//     launch, copy or memset, issued or replayed by a graph), every
//     mirror's host bytes are copied to the device;
//   - at the synchronising calls (cuCtxSynchronize, cuStreamSynchronize,
//     cuEventSynchronize, a synchronous device-to-host copy), the device's
//     work is waited for and every mirror's device bytes are copied back.
//
// The host must not touch the memory between a launch and the next of
// those calls, as on such a device. The copies move every mirror of the
// device each time, so a program pays for its managed bytes twice per
// launch-and-synchronise cycle. Managed memory and mapped host
// allocations are mapped into the program at the device address kerfd
// chose, so one pointer serves host and kernels; when the program already
// uses that address range the allocation fails with
// CUDA_ERROR_OUT_OF_MEMORY. Registered memory keeps its own address; its
// device pointer (cuMemHostGetDevicePointer) is the mirror's.

// Mirror kinds.
const (
	mirrorManaged = iota + 1
	mirrorMappedHost
	mirrorRegistered
)

// Unset locations in advice (CU_DEVICE_INVALID).
const deviceInvalid = -2

type mirror struct {
	kind  int
	host  uintptr // where the program reads and writes it
	dev   uint64  // the device allocation behind it
	size  uint64
	flags uint32 // the allocation's or registration's flags

	// Advice and prefetches, as cuMemRangeGetAttribute reports them.
	readMostly   bool
	preferred    int
	accessedBy   []int
	lastPrefetch int
}

type deviceMirrors struct {
	mu          sync.Mutex // held while copying
	list        []*mirror
	deviceOwned bool
}

var mirrors struct {
	mu    sync.Mutex
	byDev map[*device]*deviceMirrors
	count atomic.Int32 // mirrors of every device; 0 skips the boundaries
}

func mirrorsOf(dv *device) *deviceMirrors {
	mirrors.mu.Lock()
	defer mirrors.mu.Unlock()
	if mirrors.byDev == nil {
		mirrors.byDev = map[*device]*deviceMirrors{}
	}
	m := mirrors.byDev[dv]
	if m == nil {
		m = &deviceMirrors{}
		mirrors.byDev[dv] = m
	}
	return m
}

// toDevice hands dv's mirrors to the device before work is issued to it.
func toDevice(dv *device) Result {
	if mirrors.count.Load() == 0 {
		return abi.Success
	}
	m := mirrorsOf(dv)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.deviceOwned {
		return abi.Success
	}
	for _, mr := range m.list {
		b, ok := mirrorBytes(mr)
		if !ok {
			return abi.ErrInvalidValue
		}
		if err := dv.cl.MemcpyHtoD(mr.dev, b); err != nil {
			return abi.ResultOf(err)
		}
	}
	m.deviceOwned = true
	return abi.Success
}

// toHost waits for dv's work and hands its mirrors back to the host.
func toHost(dv *device) Result {
	if mirrors.count.Load() == 0 {
		return abi.Success
	}
	m := mirrorsOf(dv)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.deviceOwned {
		return abi.Success
	}
	if err := dv.cl.Synchronize(); err != nil {
		return abi.ResultOf(err)
	}
	for _, mr := range m.list {
		b, ok := mirrorBytes(mr)
		if !ok {
			return abi.ErrInvalidValue
		}
		if err := dv.cl.MemcpyDtoH(b, mr.dev); err != nil {
			return abi.ResultOf(err)
		}
	}
	m.deviceOwned = false
	return abi.Success
}

// addMirror starts keeping mr coherent. The host's bytes are the ones
// that count until the device's next work.
func addMirror(dv *device, mr *mirror) {
	m := mirrorsOf(dv)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.deviceOwned {
		// Copy the host's bytes now; the device's other mirrors stay its.
		if b, ok := mirrorBytes(mr); ok {
			_ = dv.cl.MemcpyHtoD(mr.dev, b) // a failure shows at the next copy
		}
	}
	m.list = append(m.list, mr)
	mirrors.count.Add(1)
}

// takeMirror stops keeping the mirror that match selects, and returns it.
func takeMirror(dv *device, match func(*mirror) bool) *mirror {
	m := mirrorsOf(dv)
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, mr := range m.list {
		if match(mr) {
			m.list = append(m.list[:i], m.list[i+1:]...)
			mirrors.count.Add(-1)
			return mr
		}
	}
	return nil
}

// dropMirrors forgets dv's mirrors, whose device memory a reset freed,
// and unmaps the host memory the shim mapped for them.
func dropMirrors(dv *device) {
	m := mirrorsOf(dv)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, mr := range m.list {
		if mr.kind != mirrorRegistered {
			unmapHostAt(mr.dev, mr.size)
		}
	}
	mirrors.count.Add(-int32(len(m.list)))
	m.list, m.deviceOwned = nil, false
}

// findMirror returns the mirror of any device whose host range (or, with
// byDevice, device range) holds [p, p+n), and its device.
func findMirror(p, n uint64, byDevice bool) (*device, *mirror) {
	mirrors.mu.Lock()
	defer mirrors.mu.Unlock()
	for dv, m := range mirrors.byDev {
		m.mu.Lock()
		for _, mr := range m.list {
			base := uint64(mr.host)
			if byDevice {
				base = mr.dev
			}
			if p >= base && p-base < mr.size && n <= mr.size-(p-base) {
				m.mu.Unlock()
				return dv, mr
			}
		}
		m.mu.Unlock()
	}
	return nil, nil
}

// newMappedMirror allocates size bytes on the current device and maps
// host memory at the same address.
func newMappedMirror(size uint64, kind int, flags uint32) (uint64, Result) {
	dv, res := currentDevice()
	if res != abi.Success {
		return 0, res
	}
	if size == 0 {
		return 0, abi.ErrInvalidValue
	}
	if res := unsafeInCapture(); res != abi.Success {
		return 0, res
	}
	if size > maxHostSpan {
		return 0, abi.ErrOutOfMemory
	}
	p, err := dv.cl.MemAlloc(size)
	if err != nil {
		return 0, abi.ResultOf(err)
	}
	if !mapHostAt(p, size) {
		_ = dv.cl.MemFree(p)
		say("managed or mapped host memory: the program already uses the address range [%#x, %#x) that kerfd gave the allocation", p, p+size)
		return 0, abi.ErrOutOfMemory
	}
	addMirror(dv, &mirror{kind: kind, host: uintptr(p), dev: p, size: size, flags: flags,
		preferred: deviceInvalid, lastPrefetch: deviceInvalid})
	return p, abi.Success
}

// CUmemAttach_flags.
const (
	memAttachGlobal = 1
	memAttachHost   = 2
)

func memAllocManaged(size uint64, flags uint32) (uint64, Result) {
	if flags != memAttachGlobal && flags != memAttachHost {
		return 0, abi.ErrInvalidValue
	}
	return newMappedMirror(size, mirrorManaged, flags)
}

// freeMirrored frees managed or mapped host memory at p of kind; false
// when p is no such allocation.
func freeMirrored(p uint64, kinds ...int) (bool, Result) {
	if mirrors.count.Load() == 0 {
		return false, abi.Success
	}
	dv, mr := findMirror(p, 0, true)
	if mr == nil || mr.dev != p || !oneOf(mr.kind, kinds) {
		return false, abi.Success
	}
	takeMirror(dv, func(m *mirror) bool { return m == mr })
	if res := unsafeInCapture(); res != abi.Success {
		return true, res
	}
	unmapHostAt(mr.dev, mr.size)
	return true, abi.ResultOf(dv.cl.MemFree(mr.dev))
}

func oneOf(k int, kinds []int) bool {
	for _, x := range kinds {
		if x == k {
			return true
		}
	}
	return false
}

// Host registration (cuMemHostRegister).

// CU_MEMHOSTREGISTER_* and CU_MEMHOSTALLOC_* flags.
const (
	hostPortable  = 0x1
	hostDeviceMap = 0x2
	hostIOMemory  = 0x4 // register only
	hostReadOnly  = 0x8 // register only
	hostWriteComb = 0x4 // alloc only
)

func hostRegister(p uintptr, size uint64, flags uint32) Result {
	if _, res := drv.ready(); res != abi.Success {
		return res
	}
	if p == 0 || size == 0 || size > maxHostSpan || flags&^(hostPortable|hostDeviceMap|hostIOMemory|hostReadOnly) != 0 {
		return abi.ErrInvalidValue
	}
	if flags&hostIOMemory != 0 {
		return abi.ErrNotSupported // I/O memory cannot be reached from a slice
	}
	if _, c := bits.Add64(uint64(p), size, 0); c != 0 {
		return abi.ErrInvalidValue
	}
	drv.mu.Lock()
	for key, b := range drv.hosts {
		if uint64(p) < uint64(key)+b.size && uint64(key) < uint64(p)+size {
			drv.mu.Unlock()
			return abi.ErrHostMemoryAlreadyRegistered
		}
	}
	drv.lastHostID++
	drv.hosts[p] = hostBlock{mem: addressPointer(p), size: size, id: hostBufferID | drv.lastHostID, flags: flags, registered: true}
	drv.mu.Unlock()
	if flags&hostDeviceMap == 0 {
		return abi.Success
	}
	dv, res := currentDevice()
	if res != abi.Success {
		hostForget(p)
		return res
	}
	d, err := dv.cl.MemAlloc(size)
	if err != nil {
		hostForget(p)
		return abi.ResultOf(err)
	}
	addMirror(dv, &mirror{kind: mirrorRegistered, host: p, dev: d, size: size, flags: flags,
		preferred: deviceInvalid, lastPrefetch: deviceInvalid})
	return abi.Success
}

func hostForget(p uintptr) {
	drv.mu.Lock()
	delete(drv.hosts, p)
	drv.mu.Unlock()
}

func hostUnregister(p uintptr) Result {
	if _, res := drv.ready(); res != abi.Success {
		return res
	}
	drv.mu.Lock()
	b, ok := drv.hosts[p]
	if ok && b.registered {
		delete(drv.hosts, p)
	}
	drv.mu.Unlock()
	if !ok || !b.registered {
		return abi.ErrHostMemoryNotRegistered
	}
	if b.flags&hostDeviceMap == 0 {
		return abi.Success
	}
	dv, mr := findMirror(uint64(p), 0, false)
	if mr == nil {
		return abi.Success
	}
	takeMirror(dv, func(m *mirror) bool { return m == mr })
	// Its last device bytes are the program's, as after a synchronisation.
	if b, ok := mirrorBytes(mr); ok {
		_ = dv.cl.Synchronize()
		_ = dv.cl.MemcpyDtoH(b, mr.dev)
	}
	return abi.ResultOf(dv.cl.MemFree(mr.dev))
}

// hostFlags answers cuMemHostGetFlags for pinned, mapped or registered
// host memory at p.
func hostFlags(p uint64) (uint32, Result) {
	if _, res := drv.ready(); res != abi.Success {
		return 0, res
	}
	if _, mr := findMirror(p, 0, false); mr != nil && mr.kind == mirrorMappedHost {
		return mr.flags, abi.Success
	}
	drv.mu.Lock()
	defer drv.mu.Unlock()
	for key, b := range drv.hosts {
		if p >= uint64(key) && p-uint64(key) < b.size {
			return b.flags, abi.Success
		}
	}
	return 0, abi.ErrInvalidValue
}

// hostDevicePointer answers cuMemHostGetDevicePointer: the device address
// of host memory mapped into the device.
func hostDevicePointer(p uint64, flags uint32) (uint64, Result) {
	if _, res := drv.ready(); res != abi.Success {
		return 0, res
	}
	if flags != 0 {
		return 0, abi.ErrInvalidValue
	}
	_, mr := findMirror(p, 0, false)
	if mr == nil || mr.kind == mirrorManaged {
		return 0, abi.ErrInvalidValue
	}
	return mr.dev + (p - uint64(mr.host)), abi.Success
}

// Prefetches and advice: the mirror moves whole at the boundaries, so
// they change no bytes; they are checked and remembered for
// cuMemRangeGetAttribute.

// cpuDevice is CU_DEVICE_CPU.
const cpuDevice = -1

// managedRange returns the managed mirror that holds [p, p+n).
func managedRange(p, n uint64) (*device, *mirror, Result) {
	if _, res := drv.ready(); res != abi.Success {
		return nil, nil, res
	}
	dv, mr := findMirror(p, n, true)
	if mr == nil || mr.kind != mirrorManaged || n == 0 {
		return nil, nil, abi.ErrInvalidValue
	}
	return dv, mr, abi.Success
}

func memPrefetch(p, n uint64, dst int, stream uintptr) Result {
	dv, mr, res := managedRange(p, n)
	if res != abi.Success {
		return res
	}
	sdv, _, res := resolveStream(stream)
	if res != abi.Success {
		return res
	}
	if sdv != dv || dst != cpuDevice && dst != dv.idx {
		return abi.ErrInvalidDevice
	}
	mirrors.mu.Lock()
	mr.lastPrefetch = dst
	mirrors.mu.Unlock()
	return abi.Success
}

// CUmem_advise values.
const (
	adviseSetReadMostly          = 1
	adviseUnsetReadMostly        = 2
	adviseSetPreferredLocation   = 3
	adviseUnsetPreferredLocation = 4
	adviseSetAccessedBy          = 5
	adviseUnsetAccessedBy        = 6
)

func memAdvise(p, n uint64, advice int32, dev int) Result {
	dvOf, mr, res := managedRange(p, n)
	if res != abi.Success {
		return res
	}
	needsDevice := advice == adviseSetPreferredLocation || advice == adviseSetAccessedBy || advice == adviseUnsetAccessedBy
	if needsDevice && dev != cpuDevice && dev != dvOf.idx {
		return abi.ErrInvalidDevice
	}
	mirrors.mu.Lock()
	defer mirrors.mu.Unlock()
	switch advice {
	case adviseSetReadMostly:
		mr.readMostly = true
	case adviseUnsetReadMostly:
		mr.readMostly = false
	case adviseSetPreferredLocation:
		mr.preferred = dev
	case adviseUnsetPreferredLocation:
		mr.preferred = deviceInvalid
	case adviseSetAccessedBy:
		if !oneOf(dev, mr.accessedBy) {
			mr.accessedBy = append(mr.accessedBy, dev)
		}
	case adviseUnsetAccessedBy:
		for i, d := range mr.accessedBy {
			if d == dev {
				mr.accessedBy = append(mr.accessedBy[:i], mr.accessedBy[i+1:]...)
				break
			}
		}
	default:
		return abi.ErrInvalidValue
	}
	return abi.Success
}

// CUmem_range_attribute values.
const (
	rangeReadMostly         = 1
	rangePreferredLocation  = 2
	rangeAccessedBy         = 3
	rangeLastPrefetchLocale = 4
)

// memRangeAttribute answers cuMemRangeGetAttribute: one int, or for
// accessed-by the devices, in as many ints as the caller has room for.
func memRangeAttribute(p, n uint64, attr int32) ([]int32, Result) {
	_, mr, res := managedRange(p, n)
	if res != abi.Success {
		return nil, res
	}
	mirrors.mu.Lock()
	defer mirrors.mu.Unlock()
	switch attr {
	case rangeReadMostly:
		if mr.readMostly {
			return []int32{1}, abi.Success
		}
		return []int32{0}, abi.Success
	case rangePreferredLocation:
		return []int32{int32(mr.preferred)}, abi.Success
	case rangeAccessedBy:
		out := make([]int32, len(mr.accessedBy))
		for i, d := range mr.accessedBy {
			out[i] = int32(d)
		}
		return out, abi.Success
	case rangeLastPrefetchLocale:
		return []int32{int32(mr.lastPrefetch)}, abi.Success
	}
	return nil, abi.ErrInvalidValue
}

// isManaged reports whether p lies in managed memory.
func isManaged(p uint64) bool {
	if mirrors.count.Load() == 0 {
		return false
	}
	_, mr := findMirror(p, 0, true)
	return mr != nil && mr.kind == mirrorManaged
}
