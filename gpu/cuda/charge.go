package cuda

import "github.com/kerf-edge/kerf/gpu"

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
	if size >= largeFrom {
		return gpu.AlignUp(size, largeGranule)
	}
	return gpu.AlignUp(size, smallGranule)
}

// footprint is the device memory an operation took, from cuMemGetInfo's
// free bytes before and after it. Other processes allocate and free
// concurrently, so a rise in free memory counts as zero.
func footprint(before, after uint64) uint64 {
	if after >= before {
		return 0
	}
	return before - after
}
