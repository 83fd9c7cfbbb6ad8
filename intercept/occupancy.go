package main

import (
	"github.com/kerf-edge/kerf/abi"
)

// The occupancy calculator: how many blocks of a kernel one multiprocessor
// holds at once, from the kernel's resources and the device's limits,
// following the rules of CUDA's public occupancy calculator. A block
// needs a slot, its warps, its registers (allocated per warp, in units,
// from the register file's sub-partitions) and its shared memory
// (static, dynamic and the system's reserve, in allocation units).

// Allocation units of compute capability 7.0 and later.
const (
	regAllocUnit    = 256 // registers, per warp
	regPartitions   = 4   // the register file is split among four schedulers
	sharedAllocUnit = 128 // bytes
)

// Occupancy flags (CUoccupancy_flags). Disabling the caching override
// matters only to devices that cache globals in L1 at the expense of
// occupancy, which no device of compute capability 7.0 or later does.
const (
	occupancyDefault                uint32 = 0
	occupancyDisableCachingOverride uint32 = 1
)

// occDevice is what the calculator needs of a device.
type occDevice struct {
	warp, threadsPerSM, blocksPerSM    int64
	regsPerSM, regsPerBlock            int64
	sharedPerSM, reservedPerBlock, sms int64
}

// occFunc is what the calculator needs of a kernel.
type occFunc struct {
	regs       int64 // per thread
	static     int64 // shared bytes
	maxThreads int64 // per block
	maxDyn     int64 // the dynamic shared memory limit
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// activeBlocks returns how many blocks of blockSize threads with dyn bytes
// of dynamic shared memory one multiprocessor runs at once: 0 when such a
// block cannot be launched at all.
func activeBlocks(d occDevice, f occFunc, blockSize int64, dyn uint64) int64 {
	if blockSize <= 0 || blockSize > f.maxThreads || dyn > uint64(f.maxDyn) || d.warp <= 0 {
		return 0
	}
	warps := ceilDiv(blockSize, d.warp)
	n := min(d.blocksPerSM, d.threadsPerSM/d.warp/warps)
	if f.regs > 0 {
		perWarp := ceilDiv(f.regs*d.warp, regAllocUnit) * regAllocUnit
		if perWarp*warps > d.regsPerBlock {
			return 0
		}
		warpsPerPartition := d.regsPerSM / regPartitions / perWarp
		n = min(n, warpsPerPartition*regPartitions/warps)
	}
	if shared := f.static + int64(dyn) + d.reservedPerBlock; shared > 0 {
		n = min(n, d.sharedPerSM/(ceilDiv(shared, sharedAllocUnit)*sharedAllocUnit))
	}
	return max(n, 0)
}

// potentialBlockSize returns the block size, at most limit (0: the
// kernel's maximum), whose blocks fill a multiprocessor with the most
// threads, preferring the larger size on a tie, and the grid size that
// fills every multiprocessor with it. dynFor gives a block size's dynamic
// shared memory.
func potentialBlockSize(d occDevice, f occFunc, limit int64, dynFor func(blockSize int64) uint64) (gridSize, blockSize int64) {
	if limit <= 0 || limit > f.maxThreads {
		limit = f.maxThreads
	}
	var best, bestBlocks int64
	for aligned := ceilDiv(limit, d.warp) * d.warp; aligned > 0; aligned -= d.warp {
		size := min(aligned, limit)
		blocks := activeBlocks(d, f, size, dynFor(size))
		if blocks*size > bestBlocks*best {
			best, bestBlocks = size, blocks
		}
		if bestBlocks*best >= d.threadsPerSM {
			break
		}
	}
	return bestBlocks * d.sms, best
}

// availableDynamicShared returns the most dynamic shared memory a block of
// blockSize threads may have with numBlocks of them on one
// multiprocessor: 0 when that many blocks do not fit at all.
func availableDynamicShared(d occDevice, f occFunc, numBlocks, blockSize int64) uint64 {
	if numBlocks <= 0 || activeBlocks(d, f, blockSize, 0) < numBlocks {
		return 0
	}
	perBlock := d.sharedPerSM / numBlocks / sharedAllocUnit * sharedAllocUnit
	return uint64(max(min(perBlock-d.reservedPerBlock-f.static, f.maxDyn), 0))
}

// occupancyInputs gathers the device's limits and the kernel's resources
// for function key.
func occupancyInputs(key uintptr) (occDevice, occFunc, Result) {
	if _, res := drv.ready(); res != abi.Success {
		return occDevice{}, occFunc{}, res
	}
	f, ok := drv.lookup(key, kindFunction)
	if !ok {
		return occDevice{}, occFunc{}, abi.ErrInvalidHandle
	}
	dv := f.dev
	var dvals [8]int32
	for i, a := range []uint32{abi.AttrWarpSize, abi.AttrMaxThreadsPerMultiprocessor, abi.AttrMaxBlocksPerMultiprocessor,
		abi.AttrMaxRegistersPerMultiprocessor, abi.AttrMaxRegistersPerBlock, abi.AttrMaxSharedMemoryPerMultiprocessor,
		abi.AttrReservedSharedMemoryPerBlock, abi.AttrMultiprocessorCount} {
		v, res := deviceAttribute(int32(a), dv.idx)
		if res != abi.Success {
			return occDevice{}, occFunc{}, res
		}
		dvals[i] = v
	}
	var fvals [4]int32
	for i, a := range []uint32{abi.FuncAttrNumRegs, abi.FuncAttrSharedSizeBytes, abi.FuncAttrMaxThreadsPerBlock,
		abi.FuncAttrMaxDynamicShared} {
		v, res := f.attribute(int32(a))
		if res != abi.Success {
			return occDevice{}, occFunc{}, res
		}
		fvals[i] = v
	}
	d := occDevice{warp: int64(dvals[0]), threadsPerSM: int64(dvals[1]), blocksPerSM: int64(dvals[2]),
		regsPerSM: int64(dvals[3]), regsPerBlock: int64(dvals[4]), sharedPerSM: int64(dvals[5]),
		reservedPerBlock: int64(dvals[6]), sms: int64(dvals[7])}
	if d.warp <= 0 {
		return occDevice{}, occFunc{}, abi.ErrInvalidValue
	}
	return d, occFunc{regs: int64(fvals[0]), static: int64(fvals[1]), maxThreads: int64(fvals[2]), maxDyn: int64(fvals[3])}, abi.Success
}

func validOccupancyFlags(flags uint32) bool {
	return flags == occupancyDefault || flags == occupancyDisableCachingOverride
}

// occupancyActiveBlocks implements cuOccupancyMaxActiveBlocksPerMultiprocessor.
func occupancyActiveBlocks(key uintptr, blockSize int32, dyn uint64, flags uint32) (int32, Result) {
	if blockSize <= 0 || !validOccupancyFlags(flags) {
		return 0, abi.ErrInvalidValue
	}
	d, f, res := occupancyInputs(key)
	if res != abi.Success {
		return 0, res
	}
	return int32(activeBlocks(d, f, int64(blockSize), dyn)), abi.Success
}

// occupancyBlockSize implements cuOccupancyMaxPotentialBlockSize; dynFor
// is nil when every block size gets dyn bytes.
func occupancyBlockSize(key uintptr, dynFor func(int64) uint64, dyn uint64, limit int32, flags uint32) (grid, block int32, res Result) {
	if limit < 0 || !validOccupancyFlags(flags) {
		return 0, 0, abi.ErrInvalidValue
	}
	d, f, res := occupancyInputs(key)
	if res != abi.Success {
		return 0, 0, res
	}
	if dynFor == nil {
		dynFor = func(int64) uint64 { return dyn }
	}
	g, b := potentialBlockSize(d, f, int64(limit), dynFor)
	return int32(min(g, 1<<31-1)), int32(b), abi.Success
}

// occupancyAvailableShared implements cuOccupancyAvailableDynamicSMemPerBlock.
func occupancyAvailableShared(key uintptr, numBlocks, blockSize int32) (uint64, Result) {
	if numBlocks <= 0 || blockSize <= 0 {
		return 0, abi.ErrInvalidValue
	}
	d, f, res := occupancyInputs(key)
	if res != abi.Success {
		return 0, res
	}
	return availableDynamicShared(d, f, int64(numBlocks), int64(blockSize)), abi.Success
}
