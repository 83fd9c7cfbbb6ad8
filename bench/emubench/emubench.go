// Package emubench measures the PTX interpreter: the emulator's test
// kernels run straight on gpu/emu/ptx, over a plain memory of its own, and
// the thread-instructions executed per second. It backs `kerf bench emu`.
//
// It uses the interpreter only through its exported API, measures and
// reports, and asserts nothing about speed; no product package may import
// it.
package emubench

import (
	"encoding/binary"
	"math"
	"runtime"
	"sort"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu/emu/kernels"
	"github.com/kerf-edge/kerf/gpu/emu/ptx"
)

// Result is the outcome of Run.
type Result struct {
	Kernel string
	// Compiler is the compiler that made the kernel's PTX: "clang" for
	// the embedded test kernels, "nvcc" for RunPTX's.
	Compiler           string
	Workers            int
	Launches           int
	Elapsed            time.Duration
	ThreadInstructions uint64
	// ThreadInstrPerSec is thread-instructions (instructions times
	// active lanes) per second over all workers; PerWorker divides it
	// by the number of workers.
	ThreadInstrPerSec float64
	PerWorker         float64
	// LaunchTime is Elapsed over Launches: the time one launch took.
	LaunchTime time.Duration
	// FastestLaunch is the shortest launch: on a loaded machine it is
	// the steadier figure to compare.
	FastestLaunch time.Duration
}

// Kernels lists the kernels Run knows.
var Kernels = []string{"matmul", "reduce", "vadd"}

// Run runs the "matmul" (128x128x128, 16x16 tiles), "reduce" (1M
// elements, 256-thread blocks) or "vadd" (1M elements) test kernel, as
// clang compiled it, repeatedly for about d on workers goroutines (<= 0:
// GOMAXPROCS) and reports the interpreter's throughput.
func Run(kernel string, workers int, d time.Duration) (Result, error) {
	return run(kernel, "clang", nil, workers, d)
}

// RunPTX is Run for the same kernel compiled by nvcc into src (see
// CompileNVCC).
func RunPTX(kernel string, src []byte, workers int, d time.Duration) (Result, error) {
	return run(kernel, "nvcc", src, workers, d)
}

func run(kernel, compiler string, src []byte, workers int, d time.Duration) (Result, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	res := Result{Kernel: kernel, Compiler: compiler, Workers: workers}
	l, k, err := benchLaunch(kernel, src, workers)
	if err != nil {
		return res, err
	}
	start := time.Now()
	for res.Launches == 0 || time.Since(start) < d {
		t0 := time.Now()
		st, err := k.RunStats(l)
		if err != nil {
			return res, err
		}
		if t := time.Since(t0); res.Launches == 0 || t < res.FastestLaunch {
			res.FastestLaunch = t
		}
		res.Launches++
		res.ThreadInstructions += st.ThreadInstructions
	}
	res.Elapsed = time.Since(start)
	res.ThreadInstrPerSec = float64(res.ThreadInstructions) / res.Elapsed.Seconds()
	res.PerWorker = res.ThreadInstrPerSec / float64(workers)
	res.LaunchTime = res.Elapsed / time.Duration(res.Launches)
	return res, nil
}

// benchLaunch prepares one launch of a benchmark kernel, from src or,
// when src is nil, from the embedded clang PTX.
func benchLaunch(kernel string, src []byte, workers int) (*ptx.Launch, *ptx.Kernel, error) {
	mem := &sliceMem{next: 1 << 32}
	fill := func(n int) uint64 {
		a := mem.alloc(4 * n)
		b := mem.allocs[len(mem.allocs)-1].data
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(i%17)*0.25))
		}
		return a
	}
	var file, entry string
	var grid, block [3]uint32
	var params []uint64
	var shared uint32
	switch kernel {
	case "matmul":
		const n = 128
		file, entry = "matmul", "matmul"
		grid, block = [3]uint32{n / 16, n / 16, 1}, [3]uint32{16, 16, 1}
		params = []uint64{fill(n * n), fill(n * n), fill(n * n), n, n, n}
	case "vadd":
		const n = 1 << 20
		file, entry = "vadd", "vadd"
		grid, block = [3]uint32{n / 256, 1, 1}, [3]uint32{256, 1, 1}
		params = []uint64{fill(n), fill(n), fill(n), n}
	case "reduce":
		const n, bdim = 1 << 20, 256
		file, entry = "reduce", "reduce_sum"
		grid, block = [3]uint32{n / (2 * bdim), 1, 1}, [3]uint32{bdim, 1, 1}
		params = []uint64{fill(n), fill(n / (2 * bdim)), n}
		shared = 4 * bdim
	default:
		return nil, nil, abi.Errorf(abi.ErrInvalidValue, "no benchmark kernel %q (matmul, reduce, vadd)", kernel)
	}
	if src == nil {
		src = kernels.PTX(file)
	}
	m, err := ptx.Load(src)
	if err != nil {
		return nil, nil, err
	}
	k, err := m.Kernel(entry)
	if err != nil {
		return nil, nil, err
	}
	buf := make([]byte, k.ParamSize)
	for i, p := range k.Params {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], params[i])
		copy(buf[p.Offset:p.Offset+p.Size], b[:p.Size])
	}
	return &ptx.Launch{Grid: grid, Block: block, DynamicShared: shared, Params: buf, Memory: mem, Workers: workers}, k, nil
}

var _ ptx.Memory = (*sliceMem)(nil)

// sliceMem is a minimal ptx.Memory for Run.
type sliceMem struct {
	allocs []memAlloc
	next   uint64
}

type memAlloc struct {
	base uint64
	data []byte
}

func (m *sliceMem) alloc(n int) uint64 {
	a := m.next
	m.allocs = append(m.allocs, memAlloc{base: a, data: make([]byte, n)})
	m.next += uint64(n+4096+255) &^ 255
	return a
}

func (m *sliceMem) Span(addr uint64) (uint64, []byte, bool) {
	i := sort.Search(len(m.allocs), func(i int) bool { return m.allocs[i].base+uint64(len(m.allocs[i].data)) > addr })
	if i == len(m.allocs) || addr < m.allocs[i].base {
		return 0, nil, false
	}
	return m.allocs[i].base, m.allocs[i].data, true
}
