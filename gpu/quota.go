package gpu

import (
	"sync"

	"github.com/kerf-edge/kerf/abi"
)

// Quota is a device-memory account: a limit and the bytes charged against
// it. Backends keep one per context (the tenant's limit) and may keep one
// per device (its capacity). It only counts; what an operation costs
// (rounding, a module's footprint) is the backend's to decide.
//
// A Quota is safe for concurrent use. Its lock is a leaf: it is never held
// while calling out, so callers may hold their own locks around it.
type Quota struct {
	device uint64 // what a limit of 0 means, and the most a limit can be

	mu    sync.Mutex
	limit uint64 // invariant: used <= limit <= device
	used  uint64
}

// NewQuota returns an empty quota of limit bytes on a device of device
// bytes. A limit of 0, or more than the device has, means the whole device.
func NewQuota(limit, device uint64) *Quota {
	return &Quota{device: device, limit: resolveLimit(limit, device)}
}

func resolveLimit(limit, device uint64) uint64 {
	if limit == 0 || limit > device {
		return device
	}
	return limit
}

// Reserve charges n bytes, or refuses with CUDA_ERROR_OUT_OF_MEMORY when
// fewer than n are free. what names the charge in the error.
func (q *Quota) Reserve(n uint64, what string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if free := q.limit - q.used; n > free {
		return abi.Errorf(abi.ErrOutOfMemory, "%s: %d bytes requested, %d of %d free", what, n, free, q.limit)
	}
	q.used += n
	return nil
}

// Release returns n bytes charged by Reserve. Releasing more than is
// charged empties the quota; it never wraps.
func (q *Quota) Release(n uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.used -= min(n, q.used)
}

// SetLimit changes the limit in place (0: the whole device; more than the
// device has is cut to it). A limit below current use is refused with
// CUDA_ERROR_OUT_OF_MEMORY and the old limit stays.
func (q *Quota) SetLimit(limit uint64) error {
	limit = resolveLimit(limit, q.device)
	q.mu.Lock()
	defer q.mu.Unlock()
	if limit < q.used {
		return abi.Errorf(abi.ErrOutOfMemory, "limit %d is below the %d bytes in use", limit, q.used)
	}
	q.limit = limit
	return nil
}

// MemInfo returns what is left of the limit, and the limit.
func (q *Quota) MemInfo() (free, total uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.limit - q.used, q.limit
}

// Used returns the bytes charged.
func (q *Quota) Used() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.used
}

// AlignUp rounds n up to a multiple of align, a power of two; ok is false
// when the result does not fit in a uint64.
func AlignUp(n, align uint64) (rounded uint64, ok bool) {
	rounded = (n + align - 1) &^ (align - 1)
	return rounded, rounded >= n
}
