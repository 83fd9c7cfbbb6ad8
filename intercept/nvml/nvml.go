package nvml

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/intercept/endpoint"
	"github.com/kerf-edge/kerf/transport"
)

// Return is what every NVML function returns.
type Return = gonvml.Return

// maxDevices bounds the devices a lease gives NVML.
const maxDevices = 64

// openTimeout bounds nvmlInit's connection to kerfd.
const openTimeout = 15 * time.Second

// statusSource answers for the lease: a transport.StatusClient.
type statusSource interface {
	Status() (transport.LeaseStatus, error)
	Close() error
}

// library is the process's NVML state.
type library struct {
	// open reaches kerfd and returns the lease's first status.
	open func() (statusSource, transport.LeaseStatus, error)

	mu   sync.Mutex
	refs int          // nvmlInit calls not yet matched by nvmlShutdown
	src  statusSource // open while refs > 0
	// devs are the lease's slices when nvmlInit opened the stream: NVML's
	// devices, by index. A lease keeps its slices for its life.
	devs          []transport.SliceStatus
	driverVersion int
}

// lib is the library the exports use.
var lib = &library{open: openFromEnv}

// openFromEnv opens a status stream as kerf run's environment says.
func openFromEnv() (statusSource, transport.LeaseStatus, error) {
	e, err := endpoint.FromEnv(os.Getenv, fileExists)
	if err != nil {
		return nil, transport.LeaseStatus{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	name, _ := os.Executable()
	c, err := e.OpenStatus(ctx, transport.Options{Name: "nvml " + name})
	if err != nil {
		return nil, transport.LeaseStatus{}, fmt.Errorf("status of lease %s over %s: %w", e.Lease, e.Via, err)
	}
	return c, c.Initial, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// say prints one line on stderr, the library's only way to explain itself.
func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kerf: "+format+"\n", args...)
}

// initialize implements nvmlInit: the first call opens the status stream.
func (l *library) initialize() Return {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.refs > 0 {
		l.refs++
		return gonvml.SUCCESS
	}
	src, st, err := l.open()
	if err != nil {
		say("nvmlInit: %v", err)
		return openError(err)
	}
	if len(st.Slices) == 0 || len(st.Slices) > maxDevices {
		src.Close()
		say("nvmlInit: lease %s has %d slices", st.Lease, len(st.Slices))
		return gonvml.ERROR_UNKNOWN
	}
	l.src, l.devs, l.driverVersion, l.refs = src, st.Slices, st.DriverVersion, 1
	return gonvml.SUCCESS
}

// openError is nvmlInit's answer when kerfd cannot be asked.
func openError(err error) Return {
	var ae *abi.Error
	if !errors.As(err, &ae) {
		return gonvml.ERROR_DRIVER_NOT_LOADED // no kerf run, or no kerfd
	}
	switch ae.Code {
	case abi.ErrNotPermitted:
		return gonvml.ERROR_NO_PERMISSION
	case abi.ErrNotSupported:
		return gonvml.ERROR_NOT_SUPPORTED // a kerfd without status streams
	}
	return gonvml.ERROR_UNKNOWN
}

// shutdown implements nvmlShutdown: the last call closes the stream.
func (l *library) shutdown() Return {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.refs == 0 {
		return gonvml.ERROR_UNINITIALIZED
	}
	l.refs--
	if l.refs == 0 {
		l.src.Close()
		l.src, l.devs = nil, nil
	}
	return gonvml.SUCCESS
}

// device returns device i as nvmlInit found it.
func (l *library) device(i int) (transport.SliceStatus, Return) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.refs == 0 {
		return transport.SliceStatus{}, gonvml.ERROR_UNINITIALIZED
	}
	if i < 0 || i >= len(l.devs) {
		return transport.SliceStatus{}, gonvml.ERROR_INVALID_ARGUMENT
	}
	return l.devs[i], gonvml.SUCCESS
}

func (l *library) deviceCount() (int, Return) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.refs == 0 {
		return 0, gonvml.ERROR_UNINITIALIZED
	}
	return len(l.devs), gonvml.SUCCESS
}

// cudaDriverVersion is the CUDA driver API version kerfd serves, as
// cuDriverGetVersion gives it (12040).
func (l *library) cudaDriverVersion() (int, Return) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.refs == 0 {
		return 0, gonvml.ERROR_UNINITIALIZED
	}
	return l.driverVersion, gonvml.SUCCESS
}

// driverVersion is the driver version as text ("12.4").
func (l *library) driverVersionText() (string, Return) {
	v, r := l.cudaDriverVersion()
	if r != gonvml.SUCCESS {
		return "", r
	}
	return fmt.Sprintf("%d.%d", v/1000, v%1000/10), gonvml.SUCCESS
}

// find returns the index of the first device that match accepts.
func (l *library) find(match func(transport.SliceStatus) bool) (int, Return) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.refs == 0 {
		return 0, gonvml.ERROR_UNINITIALIZED
	}
	for i, d := range l.devs {
		if match(d) {
			return i, gonvml.SUCCESS
		}
	}
	return 0, gonvml.ERROR_NOT_FOUND
}

// byUUID finds a device by its NVML UUID ("GPU-...").
func (l *library) byUUID(uuid string) (int, Return) {
	return l.find(func(d transport.SliceStatus) bool { return strings.EqualFold(formatUUID(d.UUID), uuid) })
}

// byPCI finds a device by its PCI bus ID ("0000:3b:00.0", "00000000:3b:00.0"
// or "3b:00.0").
func (l *library) byPCI(busID string) (int, Return) {
	want, ok := parseBusID(busID)
	if !ok {
		return 0, gonvml.ERROR_INVALID_ARGUMENT
	}
	return l.find(func(d transport.SliceStatus) bool {
		return d.PCI.Domain == want.domain && d.PCI.Bus == want.bus && d.PCI.Device == want.device
	})
}

// now returns device i's slice as kerfd sees it now.
func (l *library) now(i int) (transport.SliceStatus, []transport.LeaseProcess, Return) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.refs == 0 {
		return transport.SliceStatus{}, nil, gonvml.ERROR_UNINITIALIZED
	}
	if i < 0 || i >= len(l.devs) {
		return transport.SliceStatus{}, nil, gonvml.ERROR_INVALID_ARGUMENT
	}
	st, err := l.src.Status()
	if err != nil {
		say("NVML: the lease's status: %v", err)
		return transport.SliceStatus{}, nil, gonvml.ERROR_GPU_IS_LOST
	}
	dev := l.devs[i].Device
	var procs []transport.LeaseProcess
	for _, p := range st.Processes {
		if p.Device == dev {
			procs = append(procs, p)
		}
	}
	for _, s := range st.Slices {
		if s.Device == dev {
			return s, procs, gonvml.SUCCESS
		}
	}
	return transport.SliceStatus{}, nil, gonvml.ERROR_GPU_IS_LOST
}

// memory implements nvmlDeviceGetMemoryInfo_v2 (and, without Version and
// Reserved, nvmlDeviceGetMemoryInfo): the slice's memory and its use.
func (l *library) memory(i int) (gonvml.Memory_v2, Return) {
	s, _, r := l.now(i)
	if r != gonvml.SUCCESS {
		return gonvml.Memory_v2{}, r
	}
	used := min(s.Used, s.Memory)
	return gonvml.Memory_v2{Version: memoryV2, Total: s.Memory, Used: used, Free: s.Memory - used}, gonvml.SUCCESS
}

// memoryV2 is the version nvmlDeviceGetMemoryInfo_v2's argument carries.
var memoryV2 = gonvml.STRUCT_VERSION(gonvml.Memory_v2{}, 2)

// utilization implements nvmlDeviceGetUtilizationRates.
func (l *library) utilization(i int) (gonvml.Utilization, Return) {
	s, _, r := l.now(i)
	if r != gonvml.SUCCESS {
		return gonvml.Utilization{}, r
	}
	return gonvml.Utilization{Gpu: uint32(math.Round(100 * s.Utilization))}, gonvml.SUCCESS
}

// processes implements nvmlDeviceGetComputeRunningProcesses.
func (l *library) processes(i int) ([]gonvml.ProcessInfo, Return) {
	_, procs, r := l.now(i)
	if r != gonvml.SUCCESS {
		return nil, r
	}
	out := make([]gonvml.ProcessInfo, len(procs))
	for j, p := range procs {
		// No MIG instances: NVML gives 0xFFFFFFFF then.
		out[j] = gonvml.ProcessInfo{Pid: uint32(p.PID), UsedGpuMemory: p.MemUsed,
			GpuInstanceId: math.MaxUint32, ComputeInstanceId: math.MaxUint32}
	}
	return out, gonvml.SUCCESS
}

// formatUUID writes a device UUID as NVML does: "GPU-" and the 16 bytes
// as 8-4-4-4-12 hex digits.
func formatUUID(u [16]byte) string {
	return fmt.Sprintf("GPU-%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// busID writes a PCI address as NVML's busId field ("00000000:3b:00.0");
// legacy is the 16-byte busIdLegacy form ("0000:3b:00.0").
func busID(p transport.SliceStatus) (id, legacy string) {
	a := p.PCI
	return fmt.Sprintf("%08x:%02x:%02x.0", a.Domain, a.Bus, a.Device), fmt.Sprintf("%04x:%02x:%02x.0", a.Domain, a.Bus, a.Device)
}

// pciAddress is a PCI domain, bus and device (slot).
type pciAddress struct{ domain, bus, device int }

// parseBusID reads "domain:bus:device.function" or "bus:device.function",
// in hex.
func parseBusID(s string) (pciAddress, bool) {
	parts := strings.Split(strings.TrimSpace(s), ":")
	if len(parts) == 2 {
		parts = append([]string{"0"}, parts...)
	}
	if len(parts) != 3 {
		return pciAddress{}, false
	}
	dev, fn, ok := strings.Cut(parts[2], ".")
	if !ok {
		return pciAddress{}, false
	}
	var vals [4]int
	for i, p := range []string{parts[0], parts[1], dev, fn} {
		n, err := strconv.ParseUint(p, 16, 31)
		if err != nil {
			return pciAddress{}, false
		}
		vals[i] = int(n)
	}
	return pciAddress{domain: vals[0], bus: vals[1], device: vals[2]}, true
}
