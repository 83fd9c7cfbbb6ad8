package emu

import (
	"io"
	"sync"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
)

// DefaultPrintfFIFOSize is a context's printf buffer before
// SetPrintfFIFOSize, CUDA's default CU_LIMIT_PRINTF_FIFO_SIZE.
const DefaultPrintfFIFOSize = 1 << 20

var (
	_ gpu.PrintfBuffer = (*Context)(nil)
	_ gpu.LimitSetter  = (*Context)(nil)
)

// printfFIFO holds a context's printf output until it is taken. Like a
// GPU's printf FIFO it keeps whole printf calls: one that does not fit
// in what is left is dropped.
type printfFIFO struct {
	mu      sync.Mutex
	size    uint64
	buf     []byte
	dropped uint64 // printf calls dropped since the last take
}

// Write buffers one printf call's text, or drops it when it does not fit.
func (f *printfFIFO) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if uint64(len(f.buf))+uint64(len(p)) > f.size {
		f.dropped++
		return len(p), nil
	}
	f.buf = append(f.buf, p...)
	return len(p), nil
}

func (f *printfFIFO) setSize(size uint64) {
	f.mu.Lock()
	f.size = size
	f.mu.Unlock()
}

// take returns the buffered output and empties the buffer.
func (f *printfFIFO) take() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.buf
	f.buf, f.dropped = nil, 0
	return b
}

// SetLimit implements gpu.LimitSetter: the printf FIFO's size. Kernels
// here have no bounded stack and no device malloc heap, so those limits
// are accepted and bound nothing.
func (c *Context) SetLimit(limit uint32, value uint64) error {
	switch limit {
	case abi.LimitPrintfFIFOSize:
		c.SetPrintfFIFOSize(value)
	case abi.LimitMallocHeapSize:
		return c.setHeapSize(value)
	case abi.LimitStackSize:
	default:
		return abi.ErrUnsupportedLimit
	}
	return nil
}

// SetPrintfFIFOSize implements gpu.PrintfBuffer.
func (c *Context) SetPrintfFIFOSize(size uint64) { c.printf.setSize(size) }

// TakePrintf implements gpu.PrintfBuffer. Output of kernels still
// running is not included; call it after they are synchronised.
func (c *Context) TakePrintf() []byte { return c.printf.take() }

// printfOutput is where the context's kernels print: its FIFO, and also
// Config.PrintfOutput when that is set.
func (c *Context) printfOutput() io.Writer {
	if c.dev.cfg.PrintfOutput == nil {
		return &c.printf
	}
	return io.MultiWriter(&c.printf, c.dev.cfg.PrintfOutput)
}
