package cuda

import (
	"slices"

	"github.com/kerf-edge/kerf/abi"
)

// ranges are the device address ranges a context may name in copies and
// memsets: its allocations and the globals of its loaded modules. The
// driver checks a range only against everything the process has mapped,
// and kerfd's tenants may share one process (tenants.isolation:
// inprocess), so the backend checks each range against the tenant's own.
type ranges struct {
	bases []uint64          // sorted
	sizes map[uint64]uint64 // base → bytes; a base added twice is counted
	refs  map[uint64]int    // base → times added
}

func newRanges() ranges {
	return ranges{sizes: map[uint64]uint64{}, refs: map[uint64]int{}}
}

// add records [base, base+size). A base already present keeps its size.
func (r *ranges) add(base, size uint64) {
	if r.refs[base] == 0 {
		i, _ := slices.BinarySearch(r.bases, base)
		r.bases = slices.Insert(r.bases, i, base)
		r.sizes[base] = size
	}
	r.refs[base]++
}

// remove forgets one add of base.
func (r *ranges) remove(base uint64) {
	if r.refs[base]--; r.refs[base] > 0 {
		return
	}
	delete(r.refs, base)
	delete(r.sizes, base)
	if i, ok := slices.BinarySearch(r.bases, base); ok {
		r.bases = slices.Delete(r.bases, i, i+1)
	}
}

// check reports whether [addr, addr+n) lies inside one recorded range.
func (r *ranges) check(what string, addr, n uint64) error {
	i, ok := slices.BinarySearch(r.bases, addr)
	if !ok {
		i--
	}
	if i >= 0 {
		base := r.bases[i]
		if off := addr - base; off <= r.sizes[base] && n <= r.sizes[base]-off {
			return nil
		}
	}
	return abi.Errorf(abi.ErrInvalidValue, "%s: %d bytes at %#x are not inside one of this context's allocations", what, n, addr)
}
