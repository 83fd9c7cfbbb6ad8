//go:build cgo

package cuda

import (
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/internal/kerfenv"
)

// DefaultLibrary is the driver library New opens.
const DefaultLibrary = "libcuda.so.1"

// ShimMarker is a symbol Kerf's client shim (intercept/, also a
// libcuda.so.1) exports. New refuses a library that has it: kerfd must
// drive the real driver, never forward to itself. kerfd must therefore
// not run with the shim's directory on LD_LIBRARY_PATH. Tests alone may
// lift the refusal with kerfenv.TestAllowShimDriver=1, to run this
// backend over a second kerfd's emulated GPU.
const ShimMarker = "kerf_intercept_version"

// Config tunes New. The zero value is what kerfd uses.
type Config struct {
	// Library is the driver library to dlopen; empty means DefaultLibrary.
	// Tests point it at a fake.
	Library string
	// Log receives New's warnings; nil means slog.Default().
	Log *slog.Logger
	// TimeSlicing keeps compute shares enforced by time even where the
	// GPU's SMs could be partitioned (green contexts).
	TimeSlicing bool
}

// Backend serves the NVIDIA devices the driver reports.
type Backend struct {
	version int
	devs    []gpu.DeviceInfo
	handles []int // CUdevice per ordinal
	// paramInfo is set when the driver has cuFuncGetParamInfo; without
	// it kernel parameter layouts are read from module images.
	paramInfo bool
	gate      gpu.Gate
	modes     []ComputeMode // per ordinal

	partMu sync.Mutex
	parts  []SMPartition         // per ordinal; zero: none assigned
	live   map[*Context]struct{} // partitioned contexts, to resize
}

var _ gpu.Backend = (*Backend)(nil)

// The driver table is process-wide: one library, loaded once.
var (
	loadMu sync.Mutex
	loaded string // the library New succeeded with
)

// New loads the driver, checks its version and enumerates its devices.
// Errors wrap ErrNoDriver, ErrDriverTooOld or ErrNoDevice, so that the
// caller can fall back to the emulator with one log line.
func New(cfg Config) (*Backend, error) {
	lib := cfg.Library
	if lib == "" {
		lib = DefaultLibrary
	}
	loadMu.Lock()
	defer loadMu.Unlock()
	if loaded != "" && loaded != lib {
		return nil, fmt.Errorf("cuda: %s is already loaded; cannot also load %s", loaded, lib)
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	b, err := open(lib, log, cfg.TimeSlicing)
	if err != nil {
		if loaded == "" {
			dlClose()
		}
		return nil, err
	}
	loaded = lib
	return b, nil
}

func open(lib string, log *slog.Logger, timeSlicing bool) (*Backend, error) {
	if msg, missing := dlOpen(lib, bootstrapSymbols, 0); msg != "" {
		if missing {
			return nil, fmt.Errorf("%w: %s has no %s: not a CUDA driver", ErrNoDriver, lib, msg)
		}
		return nil, wrapNoDriver(lib, msg)
	}
	if dlHas(ShimMarker) {
		if os.Getenv(kerfenv.TestAllowShimDriver) != "1" {
			return nil, fmt.Errorf("%w: %s is Kerf's own client shim, not the NVIDIA driver (is the shim's directory on kerfd's LD_LIBRARY_PATH?)", ErrNoDriver, lib)
		}
		log.Warn("TEST ONLY: the CUDA backend drives Kerf's own client shim, which forwards to another kerfd, not an NVIDIA GPU; "+
			"never set "+kerfenv.TestAllowShimDriver+" in production", "library", lib)
	}
	v, r := driverVersion()
	if r != 0 {
		return nil, fmt.Errorf("%w: %v", ErrNoDriver, driverError("cuDriverGetVersion", r))
	}
	if err := checkDriverVersion(v); err != nil {
		return nil, err
	}
	if msg, missing := dlOpen(lib, -1, v); msg != "" {
		if missing {
			return nil, fmt.Errorf("%w: %s (CUDA %s) has no %s", ErrDriverTooOld, lib, versionString(v), msg)
		}
		return nil, wrapNoDriver(lib, msg)
	}
	// Load every kernel of a module at cuModuleLoadData, not at first
	// launch, so that the module's footprint is measured when it loads.
	os.Setenv("CUDA_MODULE_LOADING", "EAGER")
	if r := cuInit(); r != 0 {
		if mapResult(r) == abi.ErrNoDevice {
			return nil, fmt.Errorf("%w: the NVIDIA driver (CUDA %s) found no GPU: %v", ErrNoDevice, versionString(v), driverError("cuInit", r))
		}
		return nil, fmt.Errorf("%w: %v", ErrNoDriver, driverError("cuInit", r))
	}
	n, r := deviceCount()
	if r != 0 {
		return nil, fmt.Errorf("%w: %v", ErrNoDevice, driverError("cuDeviceGetCount", r))
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: the driver (CUDA %s) reports no devices", ErrNoDevice, versionString(v))
	}
	b := &Backend{version: v, paramInfo: haveParamInfo(), live: make(map[*Context]struct{})}
	green := greenOpen()
	for i := range n {
		info, h, err := describe(i, v)
		if err != nil {
			return nil, err
		}
		b.devs = append(b.devs, info)
		b.handles = append(b.handles, h)
		b.modes = append(b.modes, computeMode(info, h, timeSlicing, green))
	}
	b.parts = make([]SMPartition, n)
	return b, nil
}

// computeMode decides, and for partitions asks the driver, how device dev
// (CUdevice h) divides its SMs.
func computeMode(info gpu.DeviceInfo, h int, timeSlicing, green bool) ComputeMode {
	ok, why := partitionSupport(timeSlicing, info.DriverVersion, info.CCMajor, green)
	if !ok {
		return ComputeMode{Reason: why}
	}
	groups, groupSMs, total, r := smGroups(h, SMGroupSize(info.CCMajor, info.CCMinor))
	if r != 0 || groups == 0 || groupSMs == 0 {
		return ComputeMode{Reason: fmt.Sprintf("the driver did not split the SMs: %v", driverError("cuDevSmResourceSplitByCount", r))}
	}
	return ComputeMode{Partitioned: true, Groups: groups, GroupSMs: groupSMs, SMs: total}
}

// ComputeMode says how device dev's compute shares are enforced.
func (b *Backend) ComputeMode(dev int) ComputeMode {
	if dev < 0 || dev >= len(b.modes) {
		return ComputeMode{Reason: "no such device"}
	}
	return b.modes[dev]
}

// SetSMPartition confines the kernels of device dev's contexts to
// partition p of its SMs: contexts opened from now on are created in it,
// and those already partitioned move to it at their next kernel launch,
// once the work they queued before has finished. A zero p leaves
// contexts opened from now on unpartitioned. It fails where the device's
// shares are time-sliced (ComputeMode) or p does not fit its groups.
func (b *Backend) SetSMPartition(dev int, p SMPartition) error {
	m := b.ComputeMode(dev)
	if !m.Partitioned {
		return abi.Errorf(abi.ErrNotSupported, "device %d is time-sliced: %s", dev, m.Reason)
	}
	if p != (SMPartition{}) && (p.First < 0 || p.Groups < 1 || p.End() > m.Groups) {
		return abi.Errorf(abi.ErrInvalidValue, "%v does not fit device %d's %d SM groups", p, dev, m.Groups)
	}
	b.partMu.Lock()
	defer b.partMu.Unlock()
	b.parts[dev] = p
	if p == (SMPartition{}) {
		return nil
	}
	for c := range b.live {
		if c.dev == b.handles[dev] {
			c.moveTo(p)
		}
	}
	return nil
}

// describe reads device ordinal ord's identity and size.
func describe(ord, version int) (gpu.DeviceInfo, int, error) {
	fail := func(op string, r int) (gpu.DeviceInfo, int, error) {
		return gpu.DeviceInfo{}, 0, fmt.Errorf("cuda: device %d: %w", ord, driverError(op, r))
	}
	h, r := deviceGet(ord)
	if r != 0 {
		return fail("cuDeviceGet", r)
	}
	info := gpu.DeviceInfo{DriverVersion: version}
	if info.Name, r = deviceName(h); r != 0 {
		return fail("cuDeviceGetName", r)
	}
	if info.UUID, r = deviceUUID(h); r != 0 {
		return fail("cuDeviceGetUuid", r)
	}
	if info.TotalMem, r = deviceTotalMem(h); r != 0 {
		return fail("cuDeviceTotalMem", r)
	}
	for _, a := range []struct {
		attr uint32
		dst  *int
	}{
		{abi.AttrComputeCapabilityMajor, &info.CCMajor},
		{abi.AttrComputeCapabilityMinor, &info.CCMinor},
		{abi.AttrMultiprocessorCount, &info.SMs},
		{abi.AttrPCIDomainID, &info.PCI.Domain},
		{abi.AttrPCIBusID, &info.PCI.Bus},
		{abi.AttrPCIDeviceID, &info.PCI.Device},
	} {
		v, r := deviceAttr(h, a.attr)
		if r != 0 {
			return fail("cuDeviceGetAttribute", r)
		}
		*a.dst = int(v)
	}
	return info, h, nil
}

// DriverVersion is the driver's cuDriverGetVersion value.
func (b *Backend) DriverVersion() int { return b.version }

// Devices describes the driver's devices.
func (b *Backend) Devices() []gpu.DeviceInfo { return append([]gpu.DeviceInfo(nil), b.devs...) }

// Open creates a driver context on device dev for one tenant, whose
// allocations plus the context's and modules' own footprint may total at
// most memLimit bytes (0: the whole device).
func (b *Backend) Open(dev int, memLimit uint64) (gpu.Context, error) {
	if dev < 0 || dev >= len(b.devs) {
		return nil, abi.Errorf(abi.ErrInvalidDevice, "device %d does not exist (%d devices)", dev, len(b.devs))
	}
	b.partMu.Lock()
	p := b.parts[dev]
	b.partMu.Unlock()
	var part *greenPart
	if p != (SMPartition{}) {
		part = &greenPart{minSMs: SMGroupSize(b.devs[dev].CCMajor, b.devs[dev].CCMinor), p: p}
	}
	c, err := newContext(b.devs[dev], b.handles[dev], memLimit, b.paramInfo, b.gate, part)
	if err != nil {
		return nil, err
	}
	if part == nil {
		return c, nil
	}
	b.partMu.Lock()
	defer b.partMu.Unlock()
	b.live[c] = struct{}{}
	if now := b.parts[dev]; now != p && now != (SMPartition{}) {
		c.moveTo(now) // changed while the context was being created
	}
	c.forget = func() {
		b.partMu.Lock()
		defer b.partMu.Unlock()
		delete(b.live, c)
	}
	return c, nil
}

// Pace makes the contexts opened from now on enter gate before every
// launch and charge it the launch's GPU time, measured by its events,
// when the launch completes (the compute share; nil: unpaced).
func (b *Backend) Pace(gate gpu.Gate) { b.gate = gate }
