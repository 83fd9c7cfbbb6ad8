package transport

import (
	"math"
	"math/bits"
	"strings"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/transport/internal/wire"
)

// Virtual memory. The session keeps its reservations, its physical
// memory (by handle) and its mappings, and checks every call against
// them before the backend sees it: a mapping lies inside one of the
// session's reservations and over none of its other mappings, unmapping
// and access take whole mappings, and a reservation is freed whole once
// nothing is mapped in it. Physical memory counts as the session's
// allocations do (the lease's slice, the status figures); a mapping joins
// the session's addressable ranges once access to it is set.

// vmmModule marks a mapping among the session's addressable ranges: like
// a module global, it is no allocation of cuMemAlloc's.
const vmmModule = math.MaxUint64

// Bounds on one session's virtual memory objects.
const (
	maxReservations = 1 << 12
	maxMappings     = 1 << 16
	maxPhysical     = 1 << 16
)

// vmTable is a session's virtual memory.
type vmTable struct {
	reserved map[uint64]uint64 // size by base
	maps     map[uint64]*vmMap // by base
	phys     int               // physical memory objects alive (handle or mapping)
}

type vmMap struct {
	size   uint64
	phys   *vmPhys
	access bool
}

// vmPhys is physical memory of the session's: released once its handle
// is, freed once its last mapping goes too.
type vmPhys struct {
	mem      gpu.PhysicalMemory
	size     uint64
	maps     int
	released bool
}

// vm returns the backend's virtual memory, or refuses the call.
func (ss *session) vm() (gpu.VirtualMemory, abi.Result) {
	vm, ok := ss.ctx.(gpu.VirtualMemory)
	if !ok {
		ss.errText = "this device does not serve virtual memory management"
		return nil, abi.ErrNotSupported
	}
	if ss.vmt.reserved == nil {
		ss.vmt = vmTable{reserved: map[uint64]uint64{}, maps: map[uint64]*vmMap{}}
	}
	return vm, abi.Success
}

// granular reports whether every value is a multiple of vm's minimum
// granularity.
func granular(vm gpu.VirtualMemory, vs ...uint64) bool {
	g := vm.Granularity(false)
	for _, v := range vs {
		if g == 0 || v%g != 0 {
			return false
		}
	}
	return true
}

func (ss *session) memGetAllocationGranularity(a wire.MemGetAllocationGranularityArgs) abi.Result {
	vm, code := ss.vm()
	if code != abi.Success {
		return code
	}
	if a.Option != abi.GranularityMinimum && a.Option != abi.GranularityRecommended {
		return abi.ErrInvalidValue
	}
	ss.res.Word(vm.Granularity(a.Option == abi.GranularityRecommended))
	return abi.Success
}

func (ss *session) memAddressReserve(a wire.MemAddressReserveArgs) abi.Result {
	vm, code := ss.vm()
	if code != abi.Success {
		return code
	}
	align := a.Alignment
	if align == 0 {
		align = vm.Granularity(false)
	}
	if a.Size == 0 || !granular(vm, a.Size, align) || bits.OnesCount64(align) != 1 {
		return abi.ErrInvalidValue
	}
	if len(ss.vmt.reserved) >= maxReservations {
		return abi.ErrOutOfMemory
	}
	p, err := vm.AddressReserve(a.Size, align)
	if err != nil {
		return ss.fail(err)
	}
	ss.vmt.reserved[p] = a.Size
	ss.res.Word(p)
	return abi.Success
}

func (ss *session) memAddressFree(a wire.MemAddressFreeArgs) abi.Result {
	vm, code := ss.vm()
	if code != abi.Success {
		return code
	}
	if n, ok := ss.vmt.reserved[a.Ptr]; !ok || n != a.Size {
		return abi.ErrInvalidValue
	}
	for base := range ss.vmt.maps {
		if base-a.Ptr < a.Size && base >= a.Ptr {
			ss.errText = "the range still has mappings"
			return abi.ErrInvalidValue
		}
	}
	if err := vm.AddressFree(a.Ptr, a.Size); err != nil {
		return ss.fail(err)
	}
	delete(ss.vmt.reserved, a.Ptr)
	return abi.Success
}

func (ss *session) memCreate(a wire.MemCreateArgs) abi.Result {
	vm, code := ss.vm()
	if code != abi.Success {
		return code
	}
	if a.Size == 0 || !granular(vm, a.Size) {
		return abi.ErrInvalidValue
	}
	if ss.vmt.phys >= maxPhysical {
		return abi.ErrOutOfMemory
	}
	if ss.leaseMem != nil {
		if err := ss.leaseMem.Reserve(a.Size); err != nil {
			return ss.fail(err)
		}
	}
	m, err := vm.MemCreate(a.Size)
	if err != nil {
		if ss.leaseMem != nil {
			ss.leaseMem.Release(a.Size)
		}
		return ss.fail(err)
	}
	ss.vmt.phys++
	ss.mem.used += a.Size
	ss.memUsed.Store(ss.mem.used)
	ss.res.Word(ss.handles.add(abi.AllocationHandle, &vmPhys{mem: m, size: a.Size}, 0))
	return abi.Success
}

func (ss *session) memRelease(a wire.MemReleaseArgs) abi.Result {
	if _, code := ss.vm(); code != abi.Success {
		return code
	}
	o, ok := ss.handles.get(a.Handle, abi.AllocationHandle)
	if !ok {
		return abi.ErrInvalidHandle
	}
	ss.handles.remove(a.Handle)
	p := o.(*vmPhys)
	p.released = true
	return ss.freePhys(p)
}

// freePhys frees p once its handle is released and nothing maps it.
func (ss *session) freePhys(p *vmPhys) abi.Result {
	if !p.released || p.maps > 0 {
		return abi.Success
	}
	err := p.mem.Release()
	ss.vmt.phys--
	ss.mem.used -= min(p.size, ss.mem.used)
	ss.memUsed.Store(ss.mem.used)
	if ss.leaseMem != nil {
		ss.leaseMem.Release(p.size)
	}
	return ss.fail(err)
}

func (ss *session) memMap(a wire.MemMapArgs) abi.Result {
	vm, code := ss.vm()
	if code != abi.Success {
		return code
	}
	o, ok := ss.handles.get(a.Handle, abi.AllocationHandle)
	if !ok {
		return abi.ErrInvalidHandle
	}
	p := o.(*vmPhys)
	if a.Size == 0 || !granular(vm, a.Ptr, a.Size, a.Offset) || a.Offset > p.size || a.Size > p.size-a.Offset {
		return abi.ErrInvalidValue
	}
	if !ss.inReservation(a.Ptr, a.Size) {
		ss.errText = "the range is not inside one reservation of the caller's"
		return abi.ErrInvalidValue
	}
	for base, m := range ss.vmt.maps {
		if a.Ptr < base+m.size && base < a.Ptr+a.Size {
			ss.errText = "the range overlaps a mapping"
			return abi.ErrInvalidValue
		}
	}
	if len(ss.vmt.maps) >= maxMappings {
		return abi.ErrOutOfMemory
	}
	if err := vm.MemMap(a.Ptr, a.Size, a.Offset, p.mem); err != nil {
		return ss.fail(err)
	}
	ss.vmt.maps[a.Ptr] = &vmMap{size: a.Size, phys: p}
	p.maps++
	return abi.Success
}

// inReservation reports whether [p, p+n) lies inside one of the
// session's reservations.
func (ss *session) inReservation(p, n uint64) bool {
	for base, size := range ss.vmt.reserved {
		if p >= base && p-base <= size && n <= size-(p-base) {
			return true
		}
	}
	return false
}

// wholeMappings returns the bases of the mappings that make up
// [p, p+n) exactly, in address order, or nil.
func (ss *session) wholeMappings(p, n uint64) []uint64 {
	end, carry := bits.Add64(p, n, 0)
	if n == 0 || carry != 0 {
		return nil
	}
	var out []uint64
	for at := p; at < end; {
		m := ss.vmt.maps[at]
		if m == nil || m.size > end-at {
			return nil
		}
		out = append(out, at)
		at += m.size
	}
	return out
}

func (ss *session) memUnmap(a wire.MemUnmapArgs) abi.Result {
	vm, code := ss.vm()
	if code != abi.Success {
		return code
	}
	bases := ss.wholeMappings(a.Ptr, a.Size)
	if bases == nil {
		ss.errText = "the range is not made of whole mappings of the caller's"
		return abi.ErrInvalidValue
	}
	for _, base := range bases {
		m := ss.vmt.maps[base]
		if err := vm.MemUnmap(base, m.size); err != nil {
			return ss.fail(err)
		}
		if m.access {
			ss.mem.removeRange(base, vmmModule)
		}
		delete(ss.vmt.maps, base)
		m.phys.maps--
		if code := ss.freePhys(m.phys); code != abi.Success {
			return code
		}
	}
	return abi.Success
}

func (ss *session) memSetAccess(a wire.MemSetAccessArgs) abi.Result {
	vm, code := ss.vm()
	if code != abi.Success {
		return code
	}
	if a.Flags != abi.MemAccessReadWrite {
		ss.errText = "only read-write access is served"
		return abi.ErrNotSupported
	}
	bases := ss.wholeMappings(a.Ptr, a.Size)
	if bases == nil {
		ss.errText = "the range is not made of whole mappings of the caller's"
		return abi.ErrInvalidValue
	}
	for _, base := range bases {
		m := ss.vmt.maps[base]
		if m.access {
			continue
		}
		if err := vm.SetAccess(base, m.size); err != nil {
			return ss.fail(err)
		}
		m.access = true
		ss.mem.insert(memRange{base: base, size: m.size, module: vmmModule})
	}
	return abi.Success
}

func (ss *session) memGetAccess(a wire.MemGetAccessArgs) abi.Result {
	if _, code := ss.vm(); code != abi.Success {
		return code
	}
	for base, m := range ss.vmt.maps {
		if a.Ptr >= base && a.Ptr-base < m.size {
			flags := abi.MemAccessNone
			if m.access {
				flags = abi.MemAccessReadWrite
			}
			ss.res.Word(uint64(flags))
			return abi.Success
		}
	}
	return abi.ErrInvalidValue
}

// fail returns err's CUDA result and keeps its text for the reply.
func (ss *session) fail(err error) abi.Result {
	if err == nil {
		return abi.Success
	}
	code := abi.ResultOf(err)
	ss.errText = strings.TrimPrefix(err.Error(), code.Name()+": ")
	return code
}
