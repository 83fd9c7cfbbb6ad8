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
	Kernel             string
	Workers            int
	Launches           int
	Elapsed            time.Duration
	ThreadInstructions uint64
	// ThreadInstrPerSec is thread-instructions (instructions times
	// active lanes) per second over all workers; PerWorker divides it
	// by the number of workers.
	ThreadInstrPerSec float64
	PerWorker         float64
}

// Run runs the "matmul" (128x128x128, 16x16 tiles) or "vadd" (1M
// elements) test kernel repeatedly for about d on workers goroutines
// (<= 0: GOMAXPROCS) and reports the interpreter's throughput.
func Run(kernel string, workers int, d time.Duration) (Result, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	res := Result{Kernel: kernel, Workers: workers}
	l, k, err := benchLaunch(kernel, workers)
	if err != nil {
		return res, err
	}
	start := time.Now()
	for res.Launches == 0 || time.Since(start) < d {
		st, err := k.RunStats(l)
		if err != nil {
			return res, err
		}
		res.Launches++
		res.ThreadInstructions += st.ThreadInstructions
	}
	res.Elapsed = time.Since(start)
	res.ThreadInstrPerSec = float64(res.ThreadInstructions) / res.Elapsed.Seconds()
	res.PerWorker = res.ThreadInstrPerSec / float64(workers)
	return res, nil
}

// benchLaunch prepares one launch of a benchmark kernel.
func benchLaunch(kernel string, workers int) (*ptx.Launch, *ptx.Kernel, error) {
	mem := &sliceMem{next: 1 << 32}
	fill := func(n int) uint64 {
		a := mem.alloc(4 * n)
		b := mem.allocs[len(mem.allocs)-1].data
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(i%17)*0.25))
		}
		return a
	}
	var file string
	var grid, block [3]uint32
	var params []uint64
	switch kernel {
	case "matmul":
		const n = 128
		file = "matmul"
		grid, block = [3]uint32{n / 16, n / 16, 1}, [3]uint32{16, 16, 1}
		params = []uint64{fill(n * n), fill(n * n), fill(n * n), n, n, n}
	case "vadd":
		const n = 1 << 20
		file = "vadd"
		grid, block = [3]uint32{n / 256, 1, 1}, [3]uint32{256, 1, 1}
		params = []uint64{fill(n), fill(n), fill(n), n}
	default:
		return nil, nil, abi.Errorf(abi.ErrInvalidValue, "no benchmark kernel %q (matmul, vadd)", kernel)
	}
	m, err := ptx.Load(kernels.PTX(file))
	if err != nil {
		return nil, nil, err
	}
	k, err := m.Kernel(kernel)
	if err != nil {
		return nil, nil, err
	}
	buf := make([]byte, k.ParamSize)
	for i, p := range k.Params {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], params[i])
		copy(buf[p.Offset:p.Offset+p.Size], b[:p.Size])
	}
	return &ptx.Launch{Grid: grid, Block: block, Params: buf, Memory: mem, Workers: workers}, k, nil
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
