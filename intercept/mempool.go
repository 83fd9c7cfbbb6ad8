package main

import (
	"sync"

	"github.com/kerf-edge/kerf/abi"
)

// Memory pools and the stream-ordered allocator (cuMemAllocAsync,
// cuMemFreeAsync, cuMemPool*). The shim keeps the pools. A block is one
// of the session's allocations on kerfd, made when the program asks for
// it, so it counts against the slice's quota and is ready for any work
// the stream runs after the call. A stream-ordered free is queued on the
// stream's host-function queue: the block goes back to kerfd once the
// stream's earlier work is done, and a synchronisation of the stream or
// the context waits for it. A pool keeps no freed memory for reuse, so
// its reserved memory is the memory in use or waiting to be freed, and
// trimming has nothing to release; the release threshold is kept and
// reported. Allocating in a capturing stream is refused (no memory
// nodes).

// Pool attributes (CUmemPool_attribute): the reuse policies are ints, the
// rest cuuint64_t.
const (
	poolReuseFollowEventDeps        = 1
	poolReuseOpportunistic          = 2
	poolReuseInternalDeps           = 3
	poolReleaseThreshold            = 4
	poolReservedMemCurrent          = 5
	poolReservedMemHigh             = 6
	poolUsedMemCurrent              = 7
	poolUsedMemHigh                 = 8
	memLocationDevice               = 1 // CU_MEM_LOCATION_TYPE_DEVICE
	memAllocationPinned             = 1 // CU_MEM_ALLOCATION_TYPE_PINNED
	memAccessReadWrite       uint32 = 3 // CU_MEM_ACCESS_FLAGS_PROT_READWRITE
)

// memPool is one pool: a device's default pool or one the program made.
type memPool struct {
	key   uintptr
	mem   cmem
	dev   *device
	dflt  bool
	reuse [3]int32 // the reuse policies, by attribute - 1

	// Guarded by pools.mu.
	threshold              uint64
	reserved, reservedHigh uint64 // in use or waiting to be freed
	used, usedHigh         uint64 // in use
	blocks                 int    // blocks not yet given back to kerfd
	destroyed              bool
}

// poolBlock is a block a pool handed out.
type poolBlock struct {
	pool *memPool
	size uint64
}

var pools = struct {
	mu      sync.Mutex
	byKey   map[uintptr]*memPool
	blocks  map[uint64]poolBlock // by device pointer, while in use
	dflt    map[*device]*memPool
	current map[*device]*memPool
}{byKey: map[uintptr]*memPool{}, blocks: map[uint64]poolBlock{}, dflt: map[*device]*memPool{}, current: map[*device]*memPool{}}

// newPoolLocked registers a pool of dv. pools.mu is held.
func newPoolLocked(dv *device, dflt bool) (*memPool, Result) {
	mem, key := newHandleMem()
	if key == 0 {
		return nil, abi.ErrOutOfMemory
	}
	p := &memPool{key: key, mem: mem, dev: dv, dflt: dflt, reuse: [3]int32{1, 1, 1}}
	pools.byKey[key] = p
	return p, abi.Success
}

// defaultPoolLocked returns dv's default pool, made on first use.
// pools.mu is held.
func defaultPoolLocked(dv *device) (*memPool, Result) {
	if p := pools.dflt[dv]; p != nil {
		return p, abi.Success
	}
	p, res := newPoolLocked(dv, true)
	if res == abi.Success {
		pools.dflt[dv] = p
	}
	return p, res
}

// poolOf returns the live pool with handle key.
func poolOf(key uintptr) (*memPool, Result) {
	if _, res := drv.ready(); res != abi.Success {
		return nil, res
	}
	pools.mu.Lock()
	defer pools.mu.Unlock()
	p := pools.byKey[key]
	if p == nil || p.destroyed {
		return nil, abi.ErrInvalidValue
	}
	return p, abi.Success
}

func deviceDefaultPool(n int) (uintptr, Result) {
	dv, res := drv.device(n)
	if res != abi.Success {
		return 0, res
	}
	pools.mu.Lock()
	defer pools.mu.Unlock()
	p, res := defaultPoolLocked(dv)
	if res != abi.Success {
		return 0, res
	}
	return p.key, abi.Success
}

// deviceCurrentPool returns the pool cuMemAllocAsync takes from on dv.
func deviceCurrentPool(dv *device) (*memPool, Result) {
	pools.mu.Lock()
	defer pools.mu.Unlock()
	if p := pools.current[dv]; p != nil {
		return p, abi.Success
	}
	return defaultPoolLocked(dv)
}

func deviceGetMemPool(n int) (uintptr, Result) {
	dv, res := drv.device(n)
	if res != abi.Success {
		return 0, res
	}
	p, res := deviceCurrentPool(dv)
	if res != abi.Success {
		return 0, res
	}
	return p.key, abi.Success
}

func deviceSetMemPool(n int, key uintptr) Result {
	dv, res := drv.device(n)
	if res != abi.Success {
		return res
	}
	p, res := poolOf(key)
	if res != abi.Success {
		return res
	}
	if p.dev != dv {
		return abi.ErrInvalidDevice
	}
	pools.mu.Lock()
	pools.current[dv] = p
	pools.mu.Unlock()
	return abi.Success
}

// poolProps are the fields of CUmemPoolProps a pool is made from.
type poolProps struct {
	allocType, handleTypes uint32
	locType                uint32
	locID                  int32
}

func memPoolCreate(pr poolProps) (uintptr, Result) {
	if _, res := drv.ready(); res != abi.Success {
		return 0, res
	}
	// Pinned device memory only: no shareable handles, no host pools.
	if pr.allocType != memAllocationPinned || pr.locType != memLocationDevice || pr.handleTypes != 0 {
		return 0, abi.ErrInvalidValue
	}
	dv, res := drv.device(int(pr.locID))
	if res != abi.Success {
		return 0, abi.ErrInvalidValue
	}
	pools.mu.Lock()
	defer pools.mu.Unlock()
	p, res := newPoolLocked(dv, false)
	if res != abi.Success {
		return 0, res
	}
	return p.key, abi.Success
}

// memPoolDestroy destroys a pool the program made. Blocks still in use
// stay valid until freed, as CUDA's do; the handle is gone at once. A
// device whose current pool it was takes its default pool again.
func memPoolDestroy(key uintptr) Result {
	p, res := poolOf(key)
	if res != abi.Success {
		return res
	}
	if p.dflt {
		return abi.ErrInvalidValue
	}
	pools.mu.Lock()
	defer pools.mu.Unlock()
	p.destroyed = true
	delete(pools.byKey, key)
	if pools.current[p.dev] == p {
		delete(pools.current, p.dev)
	}
	if p.blocks == 0 {
		freeHandleMem(p.mem)
	}
	return abi.Success
}

// memAllocFromPool allocates size bytes from pool p (nil: the current
// pool of the stream's device) for work in stream key.
func memAllocFromPool(size uint64, p *memPool, key uintptr) (uint64, Result) {
	dv, _, res := poolStream(key)
	if res != abi.Success {
		return 0, res
	}
	if p == nil {
		if p, res = deviceCurrentPool(dv); res != abi.Success {
			return 0, res
		}
	}
	if p.dev != dv {
		return 0, abi.ErrInvalidValue
	}
	if size == 0 {
		return 0, abi.ErrInvalidValue
	}
	if res := refuseInCapture(key); res != abi.Success {
		return 0, res
	}
	ptr, err := dv.cl.MemAlloc(size)
	if abi.ResultOf(err) == abi.ErrOutOfMemory {
		// Blocks freed in stream order may still be on their way back:
		// wait for them, as a pool waits to reuse them, and try again.
		waitHostCalls(dv, 0)
		ptr, err = dv.cl.MemAlloc(size)
	}
	if err != nil {
		return 0, abi.ResultOf(err)
	}
	pools.mu.Lock()
	defer pools.mu.Unlock()
	pools.blocks[ptr] = poolBlock{pool: p, size: size}
	p.blocks++
	p.used += size
	p.usedHigh = max(p.usedHigh, p.used)
	p.reserved += size
	p.reservedHigh = max(p.reservedHigh, p.reserved)
	return ptr, abi.Success
}

// poolStream resolves the stream of a stream-ordered allocation or free,
// which must belong to the current context's device. Neither adds work
// to the stream, so neither waits for the host functions queued on it
// (the frees among them): an allocation is ready at once, and a free
// joins the queue behind them.
func poolStream(key uintptr) (*device, uint64, Result) {
	dv, res := currentDevice()
	if res != abi.Success {
		return nil, 0, res
	}
	sdv, s, res := resolveStream(key)
	if res != abi.Success {
		return nil, 0, res
	}
	if sdv != dv {
		return nil, 0, abi.ErrInvalidHandle
	}
	return dv, s, abi.Success
}

// memFreeAsync gives a pool's block back once stream key's earlier work
// is done.
func memFreeAsync(ptr uint64, key uintptr) Result {
	dv, s, res := poolStream(key)
	if res != abi.Success {
		return res
	}
	if res := refuseInCapture(key); res != abi.Success {
		return res
	}
	pools.mu.Lock()
	b, ok := pools.blocks[ptr]
	if ok && b.pool.dev == dv {
		delete(pools.blocks, ptr)
		b.pool.used -= b.size
	}
	pools.mu.Unlock()
	if !ok || b.pool.dev != dv {
		return abi.ErrInvalidValue
	}
	release := func() {
		dv.cl.MemFree(ptr) //nolint:errcheck // the block is the shim's to free; a reset may have taken it first
		pools.mu.Lock()
		defer pools.mu.Unlock()
		b.pool.reserved -= b.size
		b.pool.blocks--
		if b.pool.destroyed && b.pool.blocks == 0 {
			freeHandleMem(b.pool.mem)
		}
	}
	return queueHostCall(dv, s, hostCall{goFn: release})
}

func memPoolTrimTo(key uintptr, keep uint64) Result {
	_, res := poolOf(key)
	// A pool holds no freed memory: there is nothing to release.
	_ = keep
	return res
}

func memPoolSetAttribute(key uintptr, attr uint32, v uint64) Result {
	p, res := poolOf(key)
	if res != abi.Success {
		return res
	}
	pools.mu.Lock()
	defer pools.mu.Unlock()
	switch attr {
	case poolReuseFollowEventDeps, poolReuseOpportunistic, poolReuseInternalDeps:
		if v > 1 {
			return abi.ErrInvalidValue
		}
		p.reuse[attr-1] = int32(v)
	case poolReleaseThreshold:
		p.threshold = v
	case poolReservedMemHigh, poolUsedMemHigh:
		// Only a reset to zero is allowed: the mark starts again from the
		// current figure.
		if v != 0 {
			return abi.ErrInvalidValue
		}
		if attr == poolReservedMemHigh {
			p.reservedHigh = p.reserved
		} else {
			p.usedHigh = p.used
		}
	default:
		return abi.ErrInvalidValue
	}
	return abi.Success
}

// memPoolGetAttribute returns attribute attr and whether it is an int
// (the reuse policies) rather than a cuuint64_t.
func memPoolGetAttribute(key uintptr, attr uint32) (v uint64, isInt bool, res Result) {
	p, res := poolOf(key)
	if res != abi.Success {
		return 0, false, res
	}
	pools.mu.Lock()
	defer pools.mu.Unlock()
	switch attr {
	case poolReuseFollowEventDeps, poolReuseOpportunistic, poolReuseInternalDeps:
		return uint64(p.reuse[attr-1]), true, abi.Success
	case poolReleaseThreshold:
		return p.threshold, false, abi.Success
	case poolReservedMemCurrent:
		return p.reserved, false, abi.Success
	case poolReservedMemHigh:
		return p.reservedHigh, false, abi.Success
	case poolUsedMemCurrent:
		return p.used, false, abi.Success
	case poolUsedMemHigh:
		return p.usedHigh, false, abi.Success
	}
	return 0, false, abi.ErrInvalidValue
}

// memPoolSetAccess checks an access map: each device of the process
// reads and writes its own pools' memory, and no other device can.
func memPoolSetAccess(key uintptr, descs []accessDesc) Result {
	p, res := poolOf(key)
	if res != abi.Success {
		return res
	}
	for _, d := range descs {
		if d.locType != memLocationDevice {
			return abi.ErrInvalidValue
		}
		dv, res := drv.device(int(d.locID))
		if res != abi.Success {
			return abi.ErrInvalidDevice
		}
		if dv == p.dev && d.flags != memAccessReadWrite || dv != p.dev && d.flags != 0 {
			return abi.ErrInvalidValue
		}
	}
	return abi.Success
}

func memPoolGetAccess(key uintptr, locType uint32, locID int32) (uint32, Result) {
	p, res := poolOf(key)
	if res != abi.Success {
		return 0, res
	}
	if locType != memLocationDevice {
		return 0, abi.ErrInvalidValue
	}
	dv, res := drv.device(int(locID))
	if res != abi.Success {
		return 0, abi.ErrInvalidDevice
	}
	if dv == p.dev {
		return memAccessReadWrite, abi.Success
	}
	return 0, abi.Success
}

// accessDesc is one CUmemAccessDesc.
type accessDesc struct {
	locType uint32
	locID   int32
	flags   uint32
}

// dropPoolBlocks forgets the blocks of dv's pools, whose memory a
// context reset is about to take. Frees already queued run first, so that
// none reaches kerfd after the reset, when its address may be another
// allocation's.
func dropPoolBlocks(dv *device) {
	waitHostCalls(dv, 0)
	pools.mu.Lock()
	defer pools.mu.Unlock()
	for ptr, b := range pools.blocks {
		if b.pool.dev != dv {
			continue
		}
		delete(pools.blocks, ptr)
		b.pool.used -= b.size
		b.pool.reserved -= b.size
		b.pool.blocks--
		if b.pool.destroyed && b.pool.blocks == 0 {
			freeHandleMem(b.pool.mem)
		}
	}
}
