package cuda

import "github.com/kerf-edge/kerf/abi"

// How the driver rounds allocations, as far as the quota models it:
// small ones are sub-allocated from shared pages at 512-byte granularity,
// large ones take whole 2 MiB pages.
const (
	smallGranule = 512
	largeGranule = 2 << 20
	largeFrom    = 1 << 20
)

// charge is what an allocation of size bytes counts against a quota; ok
// is false when the rounding overflows.
func charge(size uint64) (n uint64, ok bool) {
	g := uint64(smallGranule)
	if size >= largeFrom {
		g = largeGranule
	}
	n = (size + g - 1) &^ (g - 1)
	return n, n >= size
}

// quota is a context's memory account: the limit and what is charged
// against it. The owner serialises access.
type quota struct {
	limit uint64 // never 0: Open resolves 0 to the device's memory
	used  uint64
}

// take charges n bytes, or refuses with CUDA_ERROR_OUT_OF_MEMORY.
func (q *quota) take(n uint64, what string) error {
	if n > q.limit-q.used {
		return abi.Errorf(abi.ErrOutOfMemory, "%s: %d bytes, %d of the slice's %d free", what, n, q.limit-q.used, q.limit)
	}
	q.used += n
	return nil
}

// give returns n bytes charged by take.
func (q *quota) give(n uint64) {
	q.used -= min(n, q.used)
}

// setLimit changes the limit; shrinking below use is refused.
func (q *quota) setLimit(limit uint64) error {
	if limit < q.used {
		return abi.Errorf(abi.ErrOutOfMemory, "limit %d is below the %d bytes in use", limit, q.used)
	}
	q.limit = limit
	return nil
}

// free is what is left of the limit.
func (q *quota) free() uint64 { return q.limit - q.used }

// footprint is the device memory an operation took, from cuMemGetInfo's
// free bytes before and after it. Other processes allocate and free
// concurrently, so a rise in free memory counts as zero.
func footprint(before, after uint64) uint64 {
	if after >= before {
		return 0
	}
	return before - after
}

// resolveLimit turns Open's memLimit into a quota limit: 0 or more than
// the device has means the whole device.
func resolveLimit(memLimit, total uint64) uint64 {
	if memLimit == 0 || memLimit > total {
		return total
	}
	return memLimit
}
