package emu

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
)

// Defaults for a zero Config.
const (
	DefaultName          = "Kerf Emulated GPU"
	DefaultMemoryBytes   = 16 << 30
	DefaultSMs           = 8
	DefaultClockKHz      = 1_410_000
	DefaultMemClockKHz   = 1_215_000
	DefaultBusWidth      = 256
	DefaultL2Bytes       = 4 << 20
	DefaultDriverVersion = 12040

	// MaxDevices bounds Config.Devices; each device owns 1 TiB of
	// address space.
	MaxDevices = 8
	// MaxMemoryBytes bounds Config.MemoryBytes per device.
	MaxMemoryBytes = 512 << 30
)

// Compute capability the emulator advertises.
const (
	CCMajor = 8
	CCMinor = 0
)

// Config shapes the emulated devices. Zero fields take the defaults above.
type Config struct {
	Name          string // device name; " (Emulated)" is appended unless it says so
	MemoryBytes   uint64 // per device
	SMs           int    // multiprocessors; also bounds kernel worker goroutines
	Devices       int    // number of devices, 1..MaxDevices
	ClockKHz      int
	MemClockKHz   int
	BusWidth      int // bits
	L2Bytes       int
	DriverVersion int
	// Gate, if set, paces every kernel by the context's compute share
	// (the tenant's worker asks kerfd for time).
	Gate gpu.Gate
	// MaxBlockInstructions caps the warp-instructions one block may run,
	// a watchdog against kernels that never end: past it the launch fails
	// with CUDA_ERROR_LAUNCH_TIMEOUT and poisons the context. 0 means
	// DefaultMaxBlockInstructions.
	MaxBlockInstructions uint64
	// MaxLaunchInstructions caps the warp-instructions of a whole launch,
	// each block counted at least ptx.BlockCharge, so that a grid of
	// short or empty blocks ends too: past it the launch fails with
	// CUDA_ERROR_LAUNCH_TIMEOUT and poisons the context. 0 means
	// DefaultMaxLaunchInstructions.
	MaxLaunchInstructions uint64
	// PrintfOutput receives what kernels print with printf, one call's
	// text at a time, from several goroutines in turn. nil discards it.
	PrintfOutput io.Writer
}

const (
	// DefaultMaxBlockInstructions is about a minute of one block's work.
	DefaultMaxBlockInstructions = 1 << 30
	// DefaultMaxLaunchInstructions is about ten minutes of the whole
	// device's work (eight SMs), or a billion empty blocks.
	DefaultMaxLaunchInstructions = 1 << 36
)

func (c Config) withDefaults() Config {
	if c.MaxBlockInstructions == 0 {
		c.MaxBlockInstructions = DefaultMaxBlockInstructions
	}
	if c.MaxLaunchInstructions == 0 {
		c.MaxLaunchInstructions = DefaultMaxLaunchInstructions
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	if !strings.Contains(strings.ToLower(c.Name), "emulated") {
		c.Name += " (Emulated)"
	}
	if c.MemoryBytes == 0 {
		c.MemoryBytes = DefaultMemoryBytes
	}
	c.MemoryBytes = min(c.MemoryBytes, MaxMemoryBytes)
	c.MemoryBytes &^= allocAlign - 1
	if c.MemoryBytes == 0 {
		c.MemoryBytes = allocAlign
	}
	if c.SMs <= 0 {
		c.SMs = DefaultSMs
	}
	c.SMs = min(c.SMs, 1024)
	if c.Devices <= 0 {
		c.Devices = 1
	}
	c.Devices = min(c.Devices, MaxDevices)
	if c.ClockKHz <= 0 {
		c.ClockKHz = DefaultClockKHz
	}
	if c.MemClockKHz <= 0 {
		c.MemClockKHz = DefaultMemClockKHz
	}
	if c.BusWidth <= 0 {
		c.BusWidth = DefaultBusWidth
	}
	if c.L2Bytes <= 0 {
		c.L2Bytes = DefaultL2Bytes
	}
	if c.DriverVersion <= 0 {
		c.DriverVersion = DefaultDriverVersion
	}
	// Attributes are int32 on the wire.
	c.ClockKHz = min(c.ClockKHz, math.MaxInt32)
	c.MemClockKHz = min(c.MemClockKHz, math.MaxInt32)
	c.BusWidth = min(c.BusWidth, 1<<16)
	c.L2Bytes = min(c.L2Bytes, 1<<30)
	return c
}

// Backend is the emulated GPU backend.
type Backend struct {
	cfg  Config
	devs []*device
	// load compiles a PTX image; tests may replace it before use.
	load func(src []byte) (program, error)
}

var _ gpu.Backend = (*Backend)(nil)

// New returns a backend serving cfg.Devices emulated devices.
func New(cfg Config) *Backend {
	cfg = cfg.withDefaults()
	b := &Backend{cfg: cfg, load: loadPTX}
	for i := range cfg.Devices {
		b.devs = append(b.devs, newDevice(i, cfg))
	}
	return b
}

// Devices describes the emulated devices.
func (b *Backend) Devices() []gpu.DeviceInfo {
	out := make([]gpu.DeviceInfo, len(b.devs))
	for i, d := range b.devs {
		out[i] = d.info
	}
	return out
}

// Open creates a context on device dev limited to memLimit bytes (0: the
// whole device).
func (b *Backend) Open(dev int, memLimit uint64) (gpu.Context, error) {
	if dev < 0 || dev >= len(b.devs) {
		return nil, abi.Errorf(abi.ErrInvalidDevice, "emulated device %d does not exist (%d devices)", dev, len(b.devs))
	}
	return newContext(b, b.devs[dev], memLimit), nil
}

// UsedBytes reports the device memory in use on device dev by all its
// contexts, module globals included. It is 0 for an unknown device.
func (b *Backend) UsedBytes(dev int) uint64 {
	if dev < 0 || dev >= len(b.devs) {
		return 0
	}
	return b.devs[dev].mem.Used()
}

// device is one emulated device: its address space and memory accounting,
// shared by every context opened on it.
type device struct {
	ord  int
	cfg  Config
	info gpu.DeviceInfo

	mem *gpu.Quota // the device's memory, shared by all its contexts

	mu sync.Mutex // guards va
	va vaSpace
}

func newDevice(ord int, cfg Config) *device {
	d := &device{ord: ord, cfg: cfg, mem: gpu.NewQuota(0, cfg.MemoryBytes)}
	var uuid [16]byte
	copy(uuid[:8], "kerf-emu")
	binary.BigEndian.PutUint64(uuid[8:], uint64(ord))
	name := cfg.Name
	if cfg.Devices > 1 {
		name = fmt.Sprintf("%s #%d", cfg.Name, ord)
	}
	d.info = gpu.DeviceInfo{
		Name:          name,
		UUID:          uuid,
		TotalMem:      cfg.MemoryBytes,
		CCMajor:       CCMajor,
		CCMinor:       CCMinor,
		SMs:           cfg.SMs,
		Emulated:      true,
		DriverVersion: cfg.DriverVersion,
		PCI:           gpu.PCIAddress{Bus: ord + 1}, // bus 0 is the host bridge's
	}
	base := vaBase + uint64(ord)*vaStride
	d.va.free = []extent{{base: base, size: vaStride}}
	return d
}

// reserve takes rsize bytes (a multiple of allocAlign) of the device's
// memory and address space.
func (d *device) reserve(rsize uint64) (uint64, error) {
	if err := d.mem.Reserve(rsize, d.info.Name); err != nil {
		return 0, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	base, ok := d.va.take(rsize)
	if !ok {
		d.mem.Release(rsize)
		return 0, abi.Errorf(abi.ErrOutOfMemory, "emulated device %d: address space exhausted", d.ord)
	}
	return base, nil
}

// release returns a reservation made by reserve.
func (d *device) release(base, rsize uint64) {
	d.mu.Lock()
	d.va.give(base, rsize)
	d.mu.Unlock()
	d.mem.Release(rsize)
}

// free reports the device's unreserved bytes.
func (d *device) free() uint64 {
	free, _ := d.mem.MemInfo()
	return free
}
