package ptx

import (
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kerf-edge/kerf/abi"
)

// Execution model. Blocks are taken from a shared counter by Workers
// goroutines; a block's warps run cooperatively on one goroutine. Each
// warp executes one decoded instruction for all its active lanes at a
// time. Divergence is handled with a per-lane pc and min-pc scheduling:
// the lanes with the lowest pc run, and lanes merge again when one group
// reaches another's pc. bar.sync parks lanes until every unfinished warp
// of the block has no runnable lane left, then releases them all.
// shfl.sync and vote.sync wait until all the warp's runnable lanes are
// at the instruction (or nothing else can run) so that branches laid
// out after their join point still reconverge before a shuffle. A
// shuffle from a lane that is not taking part reads that lane's current
// register value.

// Stats counts the work of one launch.
type Stats struct {
	Blocks uint64
	// WarpInstructions counts instructions issued for a warp with at
	// least one active lane; ThreadInstructions counts them once per
	// active lane.
	WarpInstructions   uint64
	ThreadInstructions uint64
}

// Launch limits, as on an sm_70 device.
const (
	maxThreadsPerBlock = 1024
	maxBlockDimZ       = 64
	maxSharedPerBlock  = 96 << 10
	maxLocalPerLaunch  = 256 << 20 // local bytes across one worker's block
)

const fullMask = ^uint32(0)

// Run executes the kernel over l's grid and returns once every block
// has finished or one has failed.
func (k *Kernel) Run(l *Launch) error {
	_, err := k.RunStats(l)
	return err
}

// RunStats is Run that also reports what was executed.
func (k *Kernel) RunStats(l *Launch) (Stats, error) {
	var st Stats
	if l == nil || l.Memory == nil {
		return st, abi.Errorf(abi.ErrInvalidValue, "launch of %s: no launch or memory", k.Name)
	}
	nthreads := uint64(l.Block[0]) * uint64(l.Block[1]) * uint64(l.Block[2])
	nblocks := uint64(l.Grid[0]) * uint64(l.Grid[1]) * uint64(l.Grid[2])
	if nthreads == 0 || nblocks == 0 {
		return st, abi.Errorf(abi.ErrInvalidValue, "launch of %s: empty grid or block", k.Name)
	}
	if nthreads > maxThreadsPerBlock || l.Block[2] > maxBlockDimZ || l.Grid[1] > 65535 || l.Grid[2] > 65535 || l.Grid[0] > 1<<31-1 {
		return st, abi.Errorf(abi.ErrInvalidValue, "launch of %s: grid %v block %v out of range", k.Name, l.Grid, l.Block)
	}
	if uint64(len(l.Params)) < uint64(k.ParamSize) {
		return st, abi.Errorf(abi.ErrInvalidValue, "launch of %s: %d parameter bytes, need %d", k.Name, len(l.Params), k.ParamSize)
	}
	shared := uint64(k.SharedSize)
	if l.DynamicShared > 0 {
		shared = k.dynOff + uint64(l.DynamicShared)
	}
	if shared > maxSharedPerBlock {
		return st, abi.Errorf(abi.ErrInvalidValue, "launch of %s: %d bytes of shared memory", k.Name, shared)
	}
	if uint64(k.LocalSize)*nthreads > maxLocalPerLaunch {
		return st, abi.Errorf(abi.ErrLaunchOutOfResources, "launch of %s: too much local memory", k.Name)
	}
	globs := make([]uint64, len(k.globRefs))
	for i, g := range k.globRefs {
		a, ok := l.Globals[g.name]
		if !ok {
			return st, abi.Errorf(abi.ErrInvalidValue, "launch of %s: no address for global %s", k.Name, g.name)
		}
		globs[i] = a
	}
	workers := l.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = int(min(uint64(workers), nblocks))
	if l.Cooperative {
		if nblocks > maxCooperativeBlocks {
			return st, abi.Errorf(abi.ErrCooperativeTooLarge, "launch of %s: %d blocks", k.Name, nblocks)
		}
		workers = int(nblocks) // every block resident at once
	}

	var (
		g       = &grid{l: l}
		next    atomic.Uint64
		failed  atomic.Bool
		mu      sync.Mutex
		first   error
		wg      sync.WaitGroup
		tstats  = make([]Stats, workers)
		errOnce = func(err error) {
			mu.Lock()
			if first == nil {
				first = err
			}
			mu.Unlock()
			failed.Store(true)
		}
	)
	for wi := 0; wi < workers; wi++ {
		wg.Add(1)
		go func(wi int) {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					errOnce(abi.Errorf(abi.ErrLaunchFailed, "kernel %s: internal error: %v", k.Name, r))
				}
			}()
			w := newWorker(k, l, int(nthreads), int(shared), globs)
			w.g = g
			defer func() { tstats[wi] = w.stats }()
			for !failed.Load() {
				b := next.Add(1) - 1
				if b >= nblocks {
					return
				}
				if g.stopped() {
					errOnce(abi.Errorf(abi.ErrLaunchFailed, "kernel %s: launch stopped before block %d of %d", k.Name, b, nblocks))
					return
				}
				w.setBlock(b)
				if err := w.runBlock(); err != nil {
					errOnce(err)
					return
				}
				w.stats.Blocks++
				if g.charge(max(w.blockIns, BlockCharge) - w.charged) {
					errOnce(abi.Errorf(abi.ErrLaunchTimeout, "kernel %s: grid exceeded %d instructions after %d of %d blocks",
						k.Name, l.MaxGridInstructions, b+1, nblocks))
					return
				}
			}
		}(wi)
	}
	wg.Wait()
	for _, s := range tstats {
		st.Blocks += s.Blocks
		st.WarpInstructions += s.WarpInstructions
		st.ThreadInstructions += s.ThreadInstructions
	}
	return st, first
}

// grid is what a launch's workers share: the instructions its blocks
// took so far and its stop signal.
type grid struct {
	l     *Launch
	spent atomic.Uint64 // warp-instructions charged, finished blocks and running ones
	outMu sync.Mutex    // orders writes to l.Output
}

// write hands one printf's text to the launch's Output.
func (g *grid) write(b []byte) {
	g.outMu.Lock()
	defer g.outMu.Unlock()
	g.l.Output.Write(b) //nolint:errcheck // printf output is best effort, as on a GPU
}

// charge adds n warp-instructions and reports whether the grid is now
// over its budget.
func (g *grid) charge(n uint64) bool {
	spent := g.spent.Add(n)
	return g.l.MaxGridInstructions != 0 && spent > g.l.MaxGridInstructions
}

func (g *grid) stopped() bool {
	select {
	case <-g.l.Stop:
		return true
	default:
		return false
	}
}

// checkEvery is how many warp-instructions a block runs between looks at
// the grid's budget and stop signal, when the launch has either.
const checkEvery = 1 << 16

// nextCheck is the block's instruction count at which its next backward
// branch looks at the watchdog, given done so far.
func (w *worker) nextCheck(done uint64) uint64 {
	at := uint64(math.MaxUint64)
	if lim := w.l.MaxBlockInstructions; lim != 0 {
		at = lim
	}
	if w.l.MaxGridInstructions != 0 || w.l.Stop != nil {
		at = min(at, done+checkEvery)
	}
	if w.l.Cooperative {
		at = min(at, done+cooperativeCheckEvery)
	}
	return at
}

// In a cooperative launch a block that waits for the others spins; it
// lets other goroutines run every cooperativeCheckEvery instructions.
// maxCooperativeBlocks bounds the goroutines of one launch.
const (
	cooperativeCheckEvery = 1 << 10
	maxCooperativeBlocks  = 1 << 12
)

// watchdog runs at a backward branch once the block has run n
// warp-instructions and passed w.checkAt: it fails a block over its own
// bound or the grid's, stops a stopped launch, and sets the next check.
func (w *worker) watchdog(in *instr, n uint64) error {
	if lim := w.l.MaxBlockInstructions; lim != 0 && n > lim {
		return w.fault(in, abi.ErrLaunchTimeout, "block exceeded %d instructions", lim)
	}
	over := w.g.charge(n - w.charged)
	w.charged = n
	if over {
		return w.fault(in, abi.ErrLaunchTimeout, "grid exceeded %d instructions", w.l.MaxGridInstructions)
	}
	if w.g.stopped() {
		return w.fault(in, abi.ErrLaunchFailed, "launch stopped")
	}
	if w.l.Cooperative {
		runtime.Gosched()
	}
	w.checkAt = w.nextCheck(n)
	return nil
}

// warp is the state of 32 threads.
type warp struct {
	r       [][32]uint64
	uni     []bool    // per register: all 32 lanes hold one value (uniform.go)
	lanePC  [32]int32 // for lanes not in active
	live    uint32    // lanes that have not exited
	waiting uint32    // lanes waiting at a barrier
	active  uint32    // lanes at pc
	pc      int32
	nextPC  int32 // lowest pc of the other schedulable lanes
	// parked lanes wait at a warp-synchronous instruction (shfl, vote)
	// for the warp's other lanes to arrive
	parked uint32
	force  bool // the next warp-synchronous instruction runs without waiting
	idx    int
	done   bool
	// yielded: the warp stopped at an incomplete mbarrier wait, not at
	// a barrier, so that other warps can arrive
	yielded bool
	// kept setps (keepsetp.go): a valid bit and the mask per slot
	kept  uint64
	keptV []uint32
}

// worker runs blocks one after another on one goroutine.
type worker struct {
	k        *Kernel
	l        *Launch
	warps    []*warp
	nthreads int
	shared   []byte
	local    []byte
	spans    [4]span // recently used global allocations
	tmp      [32]uint64
	plain    instr // a tracked instruction run as its own operation
	stats    Stats
	blockIns uint64 // warp-instructions of the current block so far
	checkAt  uint64 // blockIns at which a backward branch calls watchdog
	charged  uint64 // blockIns already charged to the grid
	g        *grid
	// the texture and surface objects resolved last
	lastTex   *Texture
	lastTexH  uint64
	lastSurf  *Surface
	lastSurfH uint64
}

func newWorker(k *Kernel, l *Launch, nthreads, shared int, globs []uint64) *worker {
	w := &worker{k: k, l: l, nthreads: nthreads, shared: make([]byte, shared),
		local: make([]byte, nthreads*int(k.LocalSize))}
	nw := (nthreads + 31) / 32
	bx, by := int(l.Block[0]), int(l.Block[1])
	for i := 0; i < nw; i++ {
		wp := &warp{r: make([][32]uint64, k.nregs), uni: make([]bool, k.nregs), idx: i,
			keptV: make([]uint32, k.nkept)}
		for _, r := range k.uniStatic {
			wp.uni[r] = true
		}
		for _, c := range k.consts {
			for l := range wp.r[c.reg] {
				wp.r[c.reg][l] = c.val
			}
		}
		for j, g := range k.globRefs {
			for l := range wp.r[g.reg] {
				wp.r[g.reg][l] = globs[j]
			}
		}
		for _, s := range k.specials {
			rr := &wp.r[s.reg]
			for ln := 0; ln < 32; ln++ {
				t := i*32 + ln
				var v uint64
				switch s.val {
				case srTidX:
					v = uint64(t % bx)
				case srTidY:
					v = uint64(t / bx % by)
				case srTidZ:
					v = uint64(t / (bx * by))
				case srNtidX, srNtidY, srNtidZ:
					v = uint64(l.Block[s.val-srNtidX])
				case srNctaidX, srNctaidY, srNctaidZ:
					v = uint64(l.Grid[s.val-srNctaidX])
				case srLaneid:
					v = uint64(ln)
				case srWarpid:
					v = uint64(i)
				case srNwarpid:
					v = uint64(nw)
				case srLanemaskEq:
					v = 1 << ln
				case srLanemaskLt:
					v = 1<<ln - 1
				case srLanemaskLe:
					v = 1<<(ln+1) - 1
				case srLanemaskGt:
					v = uint64(^uint32(1<<(ln+1) - 1))
				case srLanemaskGe:
					v = uint64(^uint32(1<<ln - 1))
				case srOne:
					v = 1
				case srDynSmem:
					v = uint64(l.DynamicShared)
				case srTotalSmem:
					v = uint64(shared)
				case srEnvregHi:
					v = l.GridWorkspace >> 32
				case srEnvregLo:
					v = uint64(uint32(l.GridWorkspace))
				}
				rr[ln] = v
			}
		}
		w.warps = append(w.warps, wp)
	}
	return w
}

// setBlock prepares the warps for block number b (linear).
func (w *worker) setBlock(b uint64) {
	g := w.l.Grid
	c := [3]uint64{b % uint64(g[0]), b / uint64(g[0]) % uint64(g[1]), b / (uint64(g[0]) * uint64(g[1]))}
	clear(w.shared)
	w.blockIns = 0
	w.checkAt, w.charged = w.nextCheck(0), 0
	for _, wp := range w.warps {
		for _, s := range w.k.specials {
			if s.val >= srCtaidX && s.val <= srCtaidZ {
				v := c[s.val-srCtaidX]
				rr := &wp.r[s.reg]
				for l := range rr {
					rr[l] = v
				}
			}
		}
		n := w.nthreads - wp.idx*32
		live := fullMask
		if n < 32 {
			live = 1<<n - 1
		}
		wp.live, wp.waiting, wp.active = live, 0, live
		wp.parked, wp.force = 0, false
		wp.pc, wp.nextPC = 0, math.MaxInt32
		wp.done, wp.yielded = false, false
		wp.kept = 0
	}
}

// runBlock runs the warps of the current block, switching at barriers.
func (w *worker) runBlock() error {
	for {
		blocked, yielded := false, false
		for _, wp := range w.warps {
			if wp.done {
				continue
			}
			if err := w.runWarp(wp); err != nil {
				return err
			}
			if !wp.done {
				blocked = true
			}
			yielded = yielded || wp.yielded
			wp.yielded = false
		}
		if !blocked {
			return nil
		}
		if yielded {
			// a warp waits on an mbarrier phase: run the others on
			continue
		}
		// every unfinished warp waits at a barrier: release them
		for _, wp := range w.warps {
			if !wp.done {
				wp.waiting = 0
				wp.resched()
			}
		}
	}
}

// savePC records the active group's pc for each of its lanes.
func (wp *warp) savePC() {
	for m := wp.active; m != 0; m &= m - 1 {
		wp.lanePC[bits.TrailingZeros32(m)] = wp.pc
	}
}

// resched picks the lanes with the lowest pc among the schedulable ones.
// It reports false when none is schedulable.
func (wp *warp) resched() bool {
	sched := wp.live &^ wp.waiting &^ wp.parked
	if sched == 0 && wp.parked != 0 {
		// nothing else can run: let the parked lanes go
		sched, wp.parked, wp.force = wp.parked, 0, true
	}
	if sched == 0 {
		wp.active = 0
		wp.done = wp.live == 0
		return false
	}
	// one pass: the lowest pc so far, its lanes, and the lowest other
	lo, next := int32(math.MaxInt32), int32(math.MaxInt32)
	var act uint32
	for m := sched; m != 0; m &= m - 1 {
		l := bits.TrailingZeros32(m)
		switch pc := wp.lanePC[l]; {
		case pc == lo:
			act |= 1 << l
		case pc < lo:
			next, lo, act = lo, pc, 1<<l
		default:
			next = min(next, pc)
		}
	}
	wp.pc, wp.active, wp.nextPC = lo, act, next
	return true
}

// out returns where an ALU instruction writes its 32 results: the
// destination register itself when every lane is active, else scratch.
func (w *worker) out(r [][32]uint64, d uint16, mask uint32) *[32]uint64 {
	if mask == fullMask {
		return &r[d]
	}
	return &w.tmp
}

// commit copies the active lanes of scratch into register d.
func (w *worker) commit(r [][32]uint64, d uint16, mask uint32) {
	if mask == fullMask {
		return
	}
	dst := &r[d]
	for m := mask; m != 0; m &= m - 1 {
		l := bits.TrailingZeros32(m)
		dst[l] = w.tmp[l]
	}
}

func (w *worker) fault(in *instr, code abi.Result, format string, args ...any) error {
	return abi.Errorf(code, "kernel %s, line %d: %s", w.k.Name, in.line, fmt.Sprintf(format, args...))
}

func f32(v uint64) float32 { return math.Float32frombits(uint32(v)) }
func b32(f float32) uint64 { return uint64(math.Float32bits(f)) }
func f64(v uint64) float64 { return math.Float64frombits(v) }
func b64(f float64) uint64 { return math.Float64bits(f) }
func bool64(b bool) uint64 { return uint64(b2i(b)) }
func signExt(v uint64, size int) int64 {
	sh := 64 - 8*uint(size)
	return int64(v<<sh) >> sh
}

// runWarp runs wp until all its lanes have exited or wait at a barrier.
func (w *worker) runWarp(wp *warp) error {
	code := w.k.code
	r := wp.r
	pc, active, nextPC := wp.pc, wp.active, wp.nextPC
	var tcount, wcount uint64
	defer func() {
		w.stats.ThreadInstructions += tcount
		w.stats.WarpInstructions += wcount
		w.blockIns += wcount
	}()
	// resched saves state, picks the next group and reloads it.
	resched := func() bool {
		wp.pc, wp.active = pc, active
		wp.savePC()
		ok := wp.resched()
		pc, active, nextPC = wp.pc, wp.active, wp.nextPC
		return ok
	}
	for {
		if pc >= nextPC {
			if !resched() {
				return nil
			}
		}
		in := &code[pc]
		mask := active
		if in.flags&fPred != 0 {
			mask &= predMask(r, in)
			if mask == 0 {
				pc++
				continue
			}
		}
		tcount += uint64(bits.OnesCount32(mask))
		wcount++
	dispatch:
		switch in.op {
		case opNop:
		case opMov:
			a, o := &r[in.a], w.out(r, in.d, mask)
			*o = *a
			w.commit(r, in.d, mask)
		case opAddImm:
			a, o := &r[in.a], w.out(r, in.d, mask)
			for l := range o {
				o[l] = a[l] + uint64(in.off)
			}
			w.commit(r, in.d, mask)
		case opAdd32Imm:
			a, o, n := &r[in.a], w.out(r, in.d, mask), uint32(in.off)
			for l := range o {
				o[l] = uint64(uint32(a[l]) + n)
			}
			w.commit(r, in.d, mask)
		case opAdd32:
			a, b, o := &r[in.a], &r[in.b], w.out(r, in.d, mask)
			for l := range o {
				o[l] = uint64(uint32(a[l]) + uint32(b[l]))
			}
			w.commit(r, in.d, mask)
		case opAdd64:
			a, b, o := &r[in.a], &r[in.b], w.out(r, in.d, mask)
			for l := range o {
				o[l] = a[l] + b[l]
			}
			w.commit(r, in.d, mask)
		case opSub32:
			a, b, o := &r[in.a], &r[in.b], w.out(r, in.d, mask)
			for l := range o {
				o[l] = uint64(uint32(a[l]) - uint32(b[l]))
			}
			w.commit(r, in.d, mask)
		case opSub64:
			a, b, o := &r[in.a], &r[in.b], w.out(r, in.d, mask)
			for l := range o {
				o[l] = a[l] - b[l]
			}
			w.commit(r, in.d, mask)
		case opMulLo32:
			a, b, o := &r[in.a], &r[in.b], w.out(r, in.d, mask)
			for l := range o {
				o[l] = uint64(uint32(a[l]) * uint32(b[l]))
			}
			w.commit(r, in.d, mask)
		case opMulLo64:
			a, b, o := &r[in.a], &r[in.b], w.out(r, in.d, mask)
			for l := range o {
				o[l] = a[l] * b[l]
			}
			w.commit(r, in.d, mask)
		case opMadLo32:
			a, b, c, o := &r[in.a], &r[in.b], &r[in.c], w.out(r, in.d, mask)
			for l := range o {
				o[l] = uint64(uint32(a[l])*uint32(b[l]) + uint32(c[l]))
			}
			w.commit(r, in.d, mask)
		case opMadLo64:
			a, b, c, o := &r[in.a], &r[in.b], &r[in.c], w.out(r, in.d, mask)
			for l := range o {
				o[l] = a[l]*b[l] + c[l]
			}
			w.commit(r, in.d, mask)
		case opMulWideS32:
			a, b, o := &r[in.a], &r[in.b], w.out(r, in.d, mask)
			for l := range o {
				o[l] = uint64(int64(int32(a[l])) * int64(int32(b[l])))
			}
			w.commit(r, in.d, mask)
		case opMulWideU32:
			a, b, o := &r[in.a], &r[in.b], w.out(r, in.d, mask)
			for l := range o {
				o[l] = uint64(uint32(a[l])) * uint64(uint32(b[l]))
			}
			w.commit(r, in.d, mask)
		case opMadWideS32:
			a, b, c, o := &r[in.a], &r[in.b], &r[in.c], w.out(r, in.d, mask)
			for l := range o {
				o[l] = uint64(int64(int32(a[l]))*int64(int32(b[l]))) + c[l]
			}
			w.commit(r, in.d, mask)
		case opMadWideU32:
			a, b, c, o := &r[in.a], &r[in.b], &r[in.c], w.out(r, in.d, mask)
			for l := range o {
				o[l] = uint64(uint32(a[l]))*uint64(uint32(b[l])) + c[l]
			}
			w.commit(r, in.d, mask)
		case opFmaF32:
			a, b, c, o := &r[in.a], &r[in.b], &r[in.c], w.out(r, in.d, mask)
			for l := range o {
				// fmaF32, by hand: too big for the inliner
				s := float64(f32(a[l]))*float64(f32(b[l])) + float64(f32(c[l]))
				if v := math.Float64bits(s); v&(1<<29-1) == 1<<28 || v&(0x7ff<<52) < 897<<52 {
					s = float64(fmaF32Odd(f32(a[l]), f32(b[l]), f32(c[l])))
				}
				o[l] = b32(float32(s))
			}
			w.commit(r, in.d, mask)
		case opAddF32:
			a, b, o := &r[in.a], &r[in.b], w.out(r, in.d, mask)
			for l := range o {
				o[l] = b32(f32(a[l]) + f32(b[l]))
			}
			w.commit(r, in.d, mask)
		case opSubF32:
			a, b, o := &r[in.a], &r[in.b], w.out(r, in.d, mask)
			for l := range o {
				o[l] = b32(f32(a[l]) - f32(b[l]))
			}
			w.commit(r, in.d, mask)
		case opMulF32:
			a, b, o := &r[in.a], &r[in.b], w.out(r, in.d, mask)
			for l := range o {
				o[l] = b32(f32(a[l]) * f32(b[l]))
			}
			w.commit(r, in.d, mask)
		case opSetpS, opSetpU:
			setpInt(&r[in.a], &r[in.b], w.out(r, in.d, mask), in.mod, in.typ)
			w.commit(r, in.d, mask)
		case opSetpF32:
			a, b, o := &r[in.a], &r[in.b], w.out(r, in.d, mask)
			for l := range o {
				o[l] = bool64(cmpFloat(in.mod, float64(f32(a[l])), float64(f32(b[l]))))
			}
			w.commit(r, in.d, mask)
		case opSetpF64:
			a, b, o := &r[in.a], &r[in.b], w.out(r, in.d, mask)
			for l := range o {
				o[l] = bool64(cmpFloat(in.mod, f64(a[l]), f64(b[l])))
			}
			w.commit(r, in.d, mask)
		case opSetpSBits, opSetpUBits, opSetpF32Bits, opSetpF64Bits, opAndBits, opOrBits, opXorBits, opNotBits:
			var v uint32
			// a kept setp's slot, or a number past maxKept
			kept := uint(in.target) - 1
			switch in.op {
			case opSetpSBits, opSetpUBits, opSetpF32Bits, opSetpF64Bits:
				if kept < maxKept && wp.kept&(1<<kept) != 0 {
					v = wp.keptV[kept]
					break
				}
				switch in.op {
				case opSetpF32Bits:
					v = setpMaskF32(&r[in.a], &r[in.b], in.mod)
				case opSetpF64Bits:
					v = setpMaskF64(&r[in.a], &r[in.b], in.mod)
				default:
					if u := wp.uni; u[in.a] && u[in.b] {
						v = setpUniInt(r[in.a][0], r[in.b][0], in.mod, in.typ)
					} else {
						v = setpMaskInt(&r[in.a], &r[in.b], in.mod, in.typ)
					}
				}
				if kept < maxKept {
					wp.keptV[kept], wp.kept = v, wp.kept|1<<kept
				}
			case opAndBits:
				v = uint32(r[in.a][0] & r[in.b][0])
			case opOrBits:
				v = uint32(r[in.a][0] | r[in.b][0])
			case opXorBits:
				v = uint32(r[in.a][0] ^ r[in.b][0])
			default:
				v = ^uint32(r[in.a][0])
			}
			setMask(&r[in.d], mask, v)
			if in.flags&fBraNext == 0 || pc+1 >= nextPC {
				break
			}
			// the branch on this result follows, with the same lanes:
			// run it here, as the loop would
			pc++
			in = &code[pc]
			mask = active & predMask(r, in)
			if mask == 0 {
				pc++
				continue
			}
			tcount += uint64(bits.OnesCount32(mask))
			wcount++
			goto branch
		case opSelpBits:
			a, b, o := &r[in.a], &r[in.b], w.out(r, in.d, mask)
			c := uint32(r[in.c][0])
			for l := range o {
				if c>>l&1 != 0 {
					o[l] = a[l]
				} else {
					o[l] = b[l]
				}
			}
			w.commit(r, in.d, mask)
		case opSelp:
			a, b, c, o := &r[in.a], &r[in.b], &r[in.c], w.out(r, in.d, mask)
			for l := range o {
				if c[l]&1 != 0 {
					o[l] = a[l]
				} else {
					o[l] = b[l]
				}
			}
			w.commit(r, in.d, mask)
		case opAnd:
			a, b, o := &r[in.a], &r[in.b], w.out(r, in.d, mask)
			for l := range o {
				o[l] = a[l] & b[l]
			}
			w.commit(r, in.d, mask)
		case opOr:
			a, b, o := &r[in.a], &r[in.b], w.out(r, in.d, mask)
			for l := range o {
				o[l] = a[l] | b[l]
			}
			w.commit(r, in.d, mask)
		case opXor:
			a, b, o := &r[in.a], &r[in.b], w.out(r, in.d, mask)
			for l := range o {
				o[l] = a[l] ^ b[l]
			}
			w.commit(r, in.d, mask)
		case opShl32Imm:
			a, o, n := &r[in.a], w.out(r, in.d, mask), uint(in.off)
			for l := range o {
				o[l] = a[l] << n & 0xffffffff
			}
			w.commit(r, in.d, mask)
		case opShl64Imm:
			a, o, n := &r[in.a], w.out(r, in.d, mask), uint(in.off)
			for l := range o {
				o[l] = a[l] << n
			}
			w.commit(r, in.d, mask)
		case opShrU32Imm:
			a, o, n := &r[in.a], w.out(r, in.d, mask), uint(in.off)
			for l := range o {
				o[l] = uint64(uint32(a[l])) >> n
			}
			w.commit(r, in.d, mask)
		case opShrS32Imm:
			a, o, n := &r[in.a], w.out(r, in.d, mask), uint(in.off)
			for l := range o {
				o[l] = uint64(uint32(int32(a[l]) >> n))
			}
			w.commit(r, in.d, mask)
		case opShrU64Imm:
			a, o, n := &r[in.a], w.out(r, in.d, mask), uint(in.off)
			for l := range o {
				o[l] = a[l] >> n
			}
			w.commit(r, in.d, mask)
		case opShrS64Imm:
			a, o, n := &r[in.a], w.out(r, in.d, mask), uint(in.off)
			for l := range o {
				o[l] = uint64(int64(a[l]) >> n)
			}
			w.commit(r, in.d, mask)
		case opShl32:
			a, b, o := &r[in.a], &r[in.b], w.out(r, in.d, mask)
			for l := range o {
				o[l] = uint64(uint32(a[l]) << min(uint32(b[l]), 32))
			}
			w.commit(r, in.d, mask)
		case opShl64:
			a, b, o := &r[in.a], &r[in.b], w.out(r, in.d, mask)
			for l := range o {
				o[l] = a[l] << min(uint32(b[l]), 64)
			}
			w.commit(r, in.d, mask)
		case opShrU32:
			a, b, o := &r[in.a], &r[in.b], w.out(r, in.d, mask)
			for l := range o {
				o[l] = uint64(uint32(a[l]) >> min(uint32(b[l]), 32))
			}
			w.commit(r, in.d, mask)
		case opShrS32:
			a, b, o := &r[in.a], &r[in.b], w.out(r, in.d, mask)
			for l := range o {
				o[l] = uint64(uint32(int32(a[l]) >> min(uint32(b[l]), 31)))
			}
			w.commit(r, in.d, mask)
		case opShrU64:
			a, b, o := &r[in.a], &r[in.b], w.out(r, in.d, mask)
			for l := range o {
				o[l] = a[l] >> min(uint32(b[l]), 64)
			}
			w.commit(r, in.d, mask)
		case opShrS64:
			a, b, o := &r[in.a], &r[in.b], w.out(r, in.d, mask)
			for l := range o {
				o[l] = uint64(int64(a[l]) >> min(uint32(b[l]), 63))
			}
			w.commit(r, in.d, mask)
		case opLd:
			if err := w.ld(wp, in, mask); err != nil {
				return err
			}
		case opUni:
			if !w.uniOp(wp, in, mask) {
				// a source varies: the operation's own loop
				wp.uni[in.d] = false
				w.plain = *in
				w.plain.op, w.plain.mod = opcode(in.mod), 0
				in = &w.plain
				goto dispatch
			}
		case opKill:
			kl := &w.k.kills[pc]
			wp.kept &^= kl.slots
			in = &kl.in
			goto dispatch
		case opLdUni:
			if err := w.ld(wp, in, mask); err != nil {
				return err
			}
			wp.uni[in.regs[0]] = mask == fullMask
		case opSt:
			if err := w.st(wp, in, mask); err != nil {
				return err
			}
		case opAtom:
			if err := w.atom(wp, in, mask); err != nil {
				return err
			}
		case opBra:
			goto branch
		case opExit:
			wp.live &^= mask
			active &^= mask
			if active == 0 {
				if !resched() {
					return nil
				}
				continue
			}
		case opCall:
			left, err := w.call(wp, in, pc, mask)
			if err != nil {
				return err
			}
			if left == 0 {
				break
			}
			active &^= left
			pc++
			if !resched() {
				return nil
			}
			continue
		case opRet:
			// a return may jump back (its address is in tenant-writable
			// local memory): it looks at the watchdog as a backward
			// branch does
			if w.blockIns+wcount > w.checkAt {
				if err := w.watchdog(in, w.blockIns+wcount); err != nil {
					return err
				}
			}
			if err := w.ret(wp, in, mask); err != nil {
				return err
			}
			active &^= mask
			if !resched() {
				return nil
			}
			continue
		case opTrap:
			return w.fault(in, abi.ErrIllegalInstruction, "trap")
		case opBar:
			wp.waiting |= mask
			for m := mask; m != 0; m &= m - 1 {
				wp.lanePC[bits.TrailingZeros32(m)] = pc + 1
			}
			active &^= mask
			if active == 0 {
				if !resched() {
					return nil
				}
				continue
			}
		case opMbarWait, opYield:
			if in.op == opMbarWait {
				incomplete, err := w.mbarWait(wp, in, mask)
				if err != nil {
					return err
				}
				if !incomplete {
					break
				}
			}
			// an incomplete mbarrier phase, or nanosleep: let the
			// block's other warps run before this one goes on
			pc++
			wp.pc, wp.active = pc, active
			wp.savePC()
			wp.resched()
			wp.yielded = true
			return nil
		case opClock:
			v := w.blockIns + wcount
			switch in.mod {
			case clkClock:
				v = uint64(uint32(v))
			case clkGlobaltimer:
				v = uint64(time.Now().UnixNano())
			case clkGlobaltimerLo:
				v = uint64(uint32(time.Now().UnixNano()))
			case clkGlobaltimerHi:
				v = uint64(time.Now().UnixNano()) >> 32
			}
			for m := mask; m != 0; m &= m - 1 {
				r[in.d][bits.TrailingZeros32(m)] = v
			}
		case opShfl, opVote, opRedux, opMatch, opMma:
			// warp-synchronous: gather the lanes that will get here
			tcount -= uint64(bits.OnesCount32(mask))
			wcount--
			for m := wp.parked; m != 0; m &= m - 1 {
				if l := bits.TrailingZeros32(m); wp.lanePC[l] == pc {
					active |= 1 << l
					wp.parked &^= 1 << l
				}
			}
			if wp.live&^wp.waiting&^wp.parked&^active != 0 && !wp.force {
				wp.parked |= active
				for m := active; m != 0; m &= m - 1 {
					wp.lanePC[bits.TrailingZeros32(m)] = pc
				}
				active = 0
				if !resched() {
					return nil
				}
				continue
			}
			wp.force = false
			mask = active
			if in.flags&fPred != 0 {
				mask &= predMask(r, in)
			}
			tcount += uint64(bits.OnesCount32(mask))
			wcount++
			if err := w.slow(wp, in, mask); err != nil {
				return err
			}
		default:
			if err := w.slow(wp, in, mask); err != nil {
				return err
			}
		}
		pc++
		continue
	branch:
		if in.target <= pc && w.blockIns+wcount > w.checkAt {
			if err := w.watchdog(in, w.blockIns+wcount); err != nil {
				return err
			}
		}
		if mask == active {
			pc = in.target
			continue
		}
		// divergence: taken lanes go to the target, the rest on
		for m := mask; m != 0; m &= m - 1 {
			wp.lanePC[bits.TrailingZeros32(m)] = in.target
		}
		active &^= mask
		pc++
		if !resched() {
			return nil
		}
		continue
	}
}

// predMask returns the lanes whose guard predicate holds.
func predMask(r [][32]uint64, in *instr) uint32 {
	p := &r[in.pred]
	var pm uint32
	if in.flags&fPredBits != 0 {
		pm = uint32(p[0])
	} else {
		for l := range p {
			pm |= uint32(p[l]&1) << l
		}
	}
	if in.flags&fPredNeg != 0 {
		pm = ^pm
	}
	return pm
}

// setpInt sets o to the comparison op of a and b, integers of type t,
// for all 32 lanes.
func setpInt(a, b, o *[32]uint64, op uint8, t vtype) {
	if t.signed() {
		switch t.size() {
		case 4:
			setpAs[int32](a, b, o, op)
		case 8:
			setpAs[int64](a, b, o, op)
		case 2:
			setpAs[int16](a, b, o, op)
		default:
			setpAs[int8](a, b, o, op)
		}
		return
	}
	switch t.size() {
	case 4:
		setpAs[uint32](a, b, o, op)
	case 8:
		setpAs[uint64](a, b, o, op)
	case 2:
		setpAs[uint16](a, b, o, op)
	default:
		setpAs[uint8](a, b, o, op)
	}
}

// setpAs is setpInt for the integer type T: the operator is chosen
// once per warp rather than per lane, and each lane compares its
// registers truncated to T.
func setpAs[T int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64](a, b, o *[32]uint64, op uint8) {
	switch op {
	case cmpEq:
		for l := range o {
			o[l] = bool64(T(a[l]) == T(b[l]))
		}
	case cmpNe:
		for l := range o {
			o[l] = bool64(T(a[l]) != T(b[l]))
		}
	case cmpLt:
		for l := range o {
			o[l] = bool64(T(a[l]) < T(b[l]))
		}
	case cmpLe:
		for l := range o {
			o[l] = bool64(T(a[l]) <= T(b[l]))
		}
	case cmpGt:
		for l := range o {
			o[l] = bool64(T(a[l]) > T(b[l]))
		}
	case cmpGe:
		for l := range o {
			o[l] = bool64(T(a[l]) >= T(b[l]))
		}
	default:
		clear(o[:])
	}
}

func cmpFloat(op uint8, a, b float64) bool {
	nan := a != a || b != b
	switch op {
	case cmpEq:
		return a == b
	case cmpNe:
		return !nan && a != b
	case cmpLt:
		return a < b
	case cmpLe:
		return a <= b
	case cmpGt:
		return a > b
	case cmpGe:
		return a >= b
	case cmpEqu:
		return nan || a == b
	case cmpNeu:
		return a != b
	case cmpLtu:
		return nan || a < b
	case cmpLeu:
		return nan || a <= b
	case cmpGtu:
		return nan || a > b
	case cmpGeu:
		return nan || a >= b
	case cmpNum:
		return !nan
	case cmpNan:
		return nan
	}
	return false
}
