package transport

import (
	"math/bits"
	"sort"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
)

// handleTable maps a session's wire handles to backend objects. Handles are
// session-local, so a tenant can only ever name its own objects; the kind
// lives in the top byte so a handle of one kind is never taken for another.
type handleTable struct {
	next uint64
	m    map[uint64]handleEntry
}

type handleEntry struct {
	kind   abi.HandleKind
	obj    any
	parent uint64 // the module of a function
}

func (t *handleTable) add(kind abi.HandleKind, obj any, parent uint64) uint64 {
	if t.m == nil {
		t.m = make(map[uint64]handleEntry)
	}
	t.next++
	h := uint64(kind)<<56 | t.next
	t.m[h] = handleEntry{kind: kind, obj: obj, parent: parent}
	return h
}

func (t *handleTable) get(h uint64, kind abi.HandleKind) (any, bool) {
	e, ok := t.m[h]
	if !ok || e.kind != kind {
		return nil, false
	}
	return e.obj, true
}

func (t *handleTable) remove(h uint64) { delete(t.m, h) }

// removeChildren drops every handle whose parent is h.
func (t *handleTable) removeChildren(h uint64) {
	for k, e := range t.m {
		if e.parent == h {
			delete(t.m, k)
		}
	}
}

func (t *handleTable) stream(h uint64) (gpu.Stream, bool) {
	if h == 0 {
		return nil, true // the legacy default stream
	}
	o, ok := t.get(h, abi.StreamHandle)
	if !ok {
		return nil, false
	}
	return o.(gpu.Stream), true
}

func (t *handleTable) event(h uint64) (gpu.Event, bool) {
	o, ok := t.get(h, abi.EventHandle)
	if !ok {
		return nil, false
	}
	return o.(gpu.Event), true
}

func (t *handleTable) module(h uint64) (gpu.Module, bool) {
	o, ok := t.get(h, abi.ModuleHandle)
	if !ok {
		return nil, false
	}
	return o.(gpu.Module), true
}

func (t *handleTable) function(h uint64) (gpu.Function, bool) {
	o, ok := t.get(h, abi.FunctionHandle)
	if !ok {
		return nil, false
	}
	return o.(gpu.Function), true
}

// memRange is device memory a session may address: an allocation it made,
// or a global of a module it loaded.
type memRange struct {
	base, size uint64
	module     uint64 // owning module handle for globals, 0 for allocations
	id         uint64 // the buffer ID pointer attributes report, set by insert
}

// memTable holds a session's addressable ranges, sorted by base.
type memTable struct {
	ranges []memRange
	used   uint64 // bytes of allocations (globals excluded)
	last   int    // index of the range found last: calls cluster on one buffer
	lastID uint64 // the buffer ID given last
}

// find returns the index of the last range whose base is <= p, or -1.
func (m *memTable) find(p uint64) int {
	if l := m.last; l < len(m.ranges) && m.ranges[l].base <= p && (l+1 == len(m.ranges) || m.ranges[l+1].base > p) {
		return l
	}
	i := sort.Search(len(m.ranges), func(i int) bool { return m.ranges[i].base > p }) - 1
	if i >= 0 {
		m.last = i
	}
	return i
}

// contains reports whether [p, p+n) lies inside one owned range. Sizes are
// added in uint64 with an overflow check. The range found last is tried
// first, inline: calls cluster on one buffer, and ranges do not overlap.
func (m *memTable) contains(p, n uint64) bool {
	if l := m.last; l < len(m.ranges) {
		r := &m.ranges[l]
		if off := p - r.base; p >= r.base && off < r.size && n <= r.size-off {
			return true
		}
	}
	return m.search(p, n)
}

func (m *memTable) search(p, n uint64) bool {
	i := m.find(p)
	if i < 0 {
		return false
	}
	r := m.ranges[i]
	end, carry := bits.Add64(p, n, 0)
	return carry == 0 && end <= r.base+r.size && (n > 0 || p < r.base+r.size)
}

// owner returns the range that contains p.
func (m *memTable) owner(p uint64) (memRange, bool) {
	if !m.contains(p, 0) {
		return memRange{}, false
	}
	return m.ranges[m.find(p)], true
}

func (m *memTable) insert(r memRange) {
	m.lastID++
	r.id = m.lastID
	i := m.find(r.base) + 1
	m.ranges = append(m.ranges, memRange{})
	copy(m.ranges[i+1:], m.ranges[i:])
	m.ranges[i] = r
	if r.module == 0 {
		m.used += r.size
	}
}

// removeAlloc removes the allocation starting exactly at base.
func (m *memTable) removeAlloc(base uint64) bool {
	i := m.find(base)
	if i < 0 || m.ranges[i].base != base || m.ranges[i].module != 0 {
		return false
	}
	m.used -= m.ranges[i].size
	m.ranges = append(m.ranges[:i], m.ranges[i+1:]...)
	return true
}

// removeRange removes the range of module starting exactly at base.
func (m *memTable) removeRange(base, module uint64) {
	i := m.find(base)
	if i >= 0 && m.ranges[i].base == base && m.ranges[i].module == module {
		m.ranges = append(m.ranges[:i], m.ranges[i+1:]...)
	}
}

func (m *memTable) removeModule(module uint64) {
	out := m.ranges[:0]
	for _, r := range m.ranges {
		if r.module != module {
			out = append(out, r)
		}
	}
	m.ranges = out
}
