package main

import (
	"runtime"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu/emu/kernels"
)

// emuLike has the limits of the emulated device, with four
// multiprocessors.
var emuLike = occDevice{warp: 32, threadsPerSM: 2048, blocksPerSM: 32, regsPerSM: 65536, regsPerBlock: 65536,
	sharedPerSM: 100 << 10, sms: 4}

func TestActiveBlocks(t *testing.T) {
	f := occFunc{regs: 32, maxThreads: 1024, maxDyn: 96 << 10}
	withRegs := func(r int64) occFunc { g := f; g.regs = r; return g }
	withStatic := func(s int64) occFunc { g := f; g.static = s; return g }
	reserved := emuLike
	reserved.reservedPerBlock = 1 << 10
	for _, tc := range []struct {
		name  string
		d     occDevice
		f     occFunc
		block int64
		dyn   uint64
		want  int64
	}{
		{"warps limit", emuLike, f, 256, 0, 8},
		{"registers limit", emuLike, withRegs(64), 256, 0, 4},
		{"registers round up per warp", emuLike, withRegs(33), 256, 0, 6},
		{"block slots limit", emuLike, f, 32, 0, 32},
		{"partial warp counts whole", emuLike, f, 33, 0, 32},
		{"dynamic shared limits", emuLike, f, 256, 64 << 10, 1},
		{"shared rounds up", emuLike, withStatic(100), 32, 34000, 2}, // 34100 bytes take 34176
		{"reserved shared counts", reserved, f, 32, 0, 32},
		{"reserved shared limits", reserved, f, 32, 25<<10 - 512, 3},
		{"too many registers for the block", emuLike, withRegs(255), 1024, 0, 0},
		{"block above the kernel's maximum", emuLike, f, 1025, 0, 0},
		{"dynamic shared above the kernel's limit", emuLike, f, 32, 96<<10 + 1, 0},
		{"no registers reported", emuLike, withRegs(0), 1024, 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := activeBlocks(tc.d, tc.f, tc.block, tc.dyn); got != tc.want {
				t.Errorf("activeBlocks(block %d, dyn %d) = %d, want %d", tc.block, tc.dyn, got, tc.want)
			}
		})
	}
}

// The block size found fills a multiprocessor at least as well as any
// other, the larger winning a tie, within the limit given.
func TestPotentialBlockSize(t *testing.T) {
	f := occFunc{regs: 40, maxThreads: 1024, maxDyn: 96 << 10}
	for _, tc := range []struct {
		name   string
		limit  int64
		dynFor func(int64) uint64
	}{
		{"no shared memory", 0, func(int64) uint64 { return 0 }},
		{"shared memory per thread", 0, func(b int64) uint64 { return uint64(b) * 64 }},
		{"fixed shared memory", 0, func(int64) uint64 { return 30 << 10 }},
		{"limited to 100 threads", 100, func(int64) uint64 { return 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			grid, block := potentialBlockSize(emuLike, f, tc.limit, tc.dynFor)
			limit := tc.limit
			if limit == 0 {
				limit = f.maxThreads
			}
			if block <= 0 || block > limit {
				t.Fatalf("block %d outside 1..%d", block, limit)
			}
			blocks := activeBlocks(emuLike, f, block, tc.dynFor(block))
			if grid != blocks*emuLike.sms {
				t.Errorf("grid %d, want %d blocks on each of %d multiprocessors", grid, blocks, emuLike.sms)
			}
			for b := int64(1); b <= limit; b++ {
				occ := activeBlocks(emuLike, f, b, tc.dynFor(b)) * b
				if occ > blocks*block || occ == blocks*block && b > block && b%emuLike.warp == 0 {
					t.Errorf("block %d runs %d threads per multiprocessor, better than block %d's %d", b, occ, block, blocks*block)
				}
			}
		})
	}
	if grid, block := potentialBlockSize(emuLike, occFunc{regs: 32, maxThreads: 1024, maxDyn: 48 << 10}, 0,
		func(int64) uint64 { return 0 }); grid != 8 || block != 1024 {
		t.Errorf("full blocks: grid %d block %d, want 8 and 1024", grid, block)
	}
	if grid, block := potentialBlockSize(emuLike, occFunc{regs: 32, maxThreads: 1024, maxDyn: 48 << 10}, 100,
		func(int64) uint64 { return 0 }); grid != 128 || block != 64 {
		t.Errorf("limited to 100 threads: grid %d block %d, want 128 and 64", grid, block)
	}
}

func TestAvailableDynamicShared(t *testing.T) {
	f := occFunc{regs: 32, static: 1 << 10, maxThreads: 1024, maxDyn: 96 << 10}
	for _, tc := range []struct {
		blocks, block int64
		want          uint64
	}{
		{1, 256, 96 << 10},       // the kernel's limit, not the whole multiprocessor
		{2, 256, 50<<10 - 1<<10}, // half of it, less the static
		{3, 256, 34048 - 1<<10},  // a third, in whole allocation units
		{8, 256, 12<<10 + 512 - 1<<10},
		{9, 256, 0}, // only eight such blocks fit
	} {
		if got := availableDynamicShared(emuLike, f, tc.blocks, tc.block); got != tc.want {
			t.Errorf("%d blocks of %d: %d bytes, want %d", tc.blocks, tc.block, got, tc.want)
		}
	}
}

// Context settings, function attributes and occupancy through the shim's
// logic, against kerfd and the emulated device.
func TestContextAndFunctionConfiguration(t *testing.T) {
	freshDriver(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	want := func(what string, got, want Result) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %v, want %v", what, got, want)
		}
	}
	_, r := ctxCreate(3, 0)
	want("context with two scheduling policies", r, abi.ErrInvalidValue)
	ctx, r := ctxCreate(abi.CtxSchedBlockingSync, 0)
	want("context", r, abi.Success)
	defer ctxDestroy(ctx.key)
	if f, r := ctxGetFlags(); f != abi.CtxSchedBlockingSync || r != abi.Success {
		t.Errorf("flags %#x, %v", f, r)
	}
	if v, r := ctxGetAPIVersion(0); v != abi.CtxAPIVersion || r != abi.Success {
		t.Errorf("api version %d, %v", v, r)
	}

	if v, r := ctxGetLimit(abi.LimitStackSize); v != defaultStackSize || r != abi.Success {
		t.Errorf("default stack %d, %v", v, r)
	}
	want("set stack", ctxSetLimit(abi.LimitStackSize, 8<<10), abi.Success)
	if v, _ := ctxGetLimit(abi.LimitStackSize); v != 8<<10 {
		t.Errorf("stack %d after setting 8 KiB", v)
	}
	want("stack beyond local memory", ctxSetLimit(abi.LimitStackSize, maxStackSize+1), abi.ErrInvalidValue)
	want("device runtime depth", ctxSetLimit(abi.LimitDevRuntimeSyncDepth, 4), abi.ErrUnsupportedLimit)
	_, r = ctxGetLimit(99)
	want("unknown limit", r, abi.ErrUnsupportedLimit)
	want("persisting L2", ctxSetLimit(abi.LimitPersistingL2CacheSize, 1<<20), abi.ErrUnsupportedLimit)

	want("cache config", ctxSetCacheConfig(abi.CachePreferShared), abi.Success)
	want("bad cache config", ctxSetCacheConfig(4), abi.ErrInvalidValue)
	if c, _ := ctxGetCacheConfig(); c != abi.CachePreferShared {
		t.Errorf("cache config %d", c)
	}
	want("eight-byte banks", ctxSetSharedMemConfig(abi.SharedBankEightByte), abi.Success)
	want("bad bank size", ctxSetSharedMemConfig(3), abi.ErrInvalidValue)
	if c, _ := ctxGetSharedMemConfig(); c != abi.SharedBankFourByte {
		t.Errorf("bank size %d, want four bytes: the device's are fixed", c)
	}
	if l, g, r := streamPriorityRange(); l != 0 || g != greatestStreamPriority || r != abi.Success {
		t.Errorf("priority range %d..%d, %v", l, g, r)
	}

	// The other device's primary context: flags before and after it exists.
	want("primary flags", primarySetFlags(1, abi.CtxSchedBlockingSync|abi.CtxMapHost), abi.Success)
	want("bad primary flags", primarySetFlags(1, 0x100), abi.ErrInvalidValue)
	if f, _, r := primaryState(1); f != abi.CtxSchedBlockingSync|abi.CtxMapHost || r != abi.Success {
		t.Errorf("primary flags %#x, %v", f, r)
	}

	mod, r, _ := moduleLoad(kernels.PTX("vadd"), kindModule)
	want("load", r, abi.Success)
	fn, r := getFunction(mod.key, kindModule, "vadd", kindFunction)
	want("function", r, abi.Success)
	want("cache preference", funcSetCacheConfig(fn.key, abi.CachePreferL1), abi.Success)
	want("function bank size", funcSetSharedMemConfig(fn.key, abi.SharedBankDefault), abi.Success)
	want("bad function bank size", funcSetSharedMemConfig(fn.key, 7), abi.ErrInvalidValue)
	want("cache preference of no function", funcSetCacheConfig(ctx.key, abi.CachePreferL1), abi.ErrInvalidHandle)
	want("raise dynamic shared", funcSetAttribute(int32(abi.FuncAttrMaxDynamicShared), fn.key, 64<<10), abi.Success)
	want("dynamic shared beyond opt-in", funcSetAttribute(int32(abi.FuncAttrMaxDynamicShared), fn.key, 96<<10+1), abi.ErrInvalidValue)
	want("register count", funcSetAttribute(int32(abi.FuncAttrNumRegs), fn.key, 16), abi.ErrInvalidValue)
	if v, r := funcAttribute(int32(abi.FuncAttrMaxDynamicShared), fn.key); v != 64<<10 || r != abi.Success {
		t.Errorf("max dynamic shared %d, %v", v, r)
	}
	n, r := occupancyActiveBlocks(fn.key, 256, 64<<10, 0)
	if n != 1 || r != abi.Success {
		t.Errorf("blocks with 64 KiB: %d, %v", n, r)
	}
	_, r = occupancyActiveBlocks(fn.key, 0, 0, 0)
	want("block size 0", r, abi.ErrInvalidValue)
	_, r = occupancyActiveBlocks(fn.key, 256, 0, 2)
	want("unknown flags", r, abi.ErrInvalidValue)
	grid, block, r := occupancyBlockSize(fn.key, nil, 0, 0, 0)
	if r != abi.Success || block <= 0 || block%32 != 0 || grid <= 0 {
		t.Errorf("potential block size %d grid %d, %v", block, grid, r)
	}
	if s, r := occupancyAvailableShared(fn.key, 1, 256); s != 64<<10 || r != abi.Success {
		t.Errorf("available dynamic shared %d, %v", s, r)
	}
	want("unload", moduleUnload(mod.key, kindModule), abi.Success)
	_, r = occupancyActiveBlocks(fn.key, 256, 0, 0)
	want("occupancy of an unloaded function", r, abi.ErrInvalidHandle)
}
