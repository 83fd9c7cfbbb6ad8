package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/transport"
)

// Result is what every driver-API entry point returns.
type Result = abi.Result

// driverVersion is what cuDriverGetVersion reports before cuInit has
// reached a server (afterwards: the server's).
const driverVersion = 12040

// dialTimeout bounds opening one session in cuInit.
const dialTimeout = 15 * time.Second

// device is one of the process's CUDA devices: one session on kerfd.
type device struct {
	idx     int // CUDA ordinal in this process
	ordinal int // the server's
	cl      *transport.Client
	info    transport.Device
	lim     launchLimits

	attrMu sync.Mutex
	attrs  map[uint32]int32

	// Guarded by driver.mu.
	primary      *object
	primaryRefs  int
	primaryFlags uint32 // cuDevicePrimaryCtxSetFlags
}

// launchLimits are the device attributes a launch is checked against.
type launchLimits struct {
	threads     uint32
	block       [3]uint32
	grid        [3]uint32
	sharedOptin uint32
}

// driver is the process-wide state.
type driver struct {
	initMu  sync.Mutex
	inited  bool
	initRes Result
	devs    []*device
	version int
	// inProcess is set by tests that drive the logic from a Go program,
	// whose own exit must not call back into Go.
	inProcess bool

	mu    sync.Mutex
	objs  map[uintptr]*object
	hosts map[uintptr]hostBlock // pinned host allocations by address
	// lastHostID is the buffer ID given to a pinned allocation last.
	lastHostID uint64
}

// hostBlock is one pinned host allocation.
type hostBlock struct {
	mem  cmem
	size uint64
	id   uint64 // its buffer ID, as pointer attributes report it

	flags      uint32 // CU_MEMHOSTALLOC_* or CU_MEMHOSTREGISTER_*
	registered bool   // the program's own memory, cuMemHostRegister'd
}

var drv = &driver{objs: map[uintptr]*object{}, hosts: map[uintptr]hostBlock{}}

// say prints one line on stderr, as the shim's only way to explain itself.
func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kerf: "+format+"\n", args...)
}

// initialize implements cuInit.
func (d *driver) initialize(flags uint32) Result {
	if flags != 0 {
		return abi.ErrInvalidValue
	}
	d.initMu.Lock()
	defer d.initMu.Unlock()
	if d.inited {
		return d.initRes
	}
	d.inited = true
	d.initRes = d.connect()
	return d.initRes
}

func (d *driver) connect() Result {
	cfg, err := loadConfig(os.Getenv, fileExists)
	if err != nil {
		say("cuInit: %v", err)
		return abi.ErrNotInitialized
	}
	devs := make([]*device, len(cfg.devices))
	errs := make([]error, len(cfg.devices))
	var wg sync.WaitGroup
	for i, ord := range cfg.devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			devs[i], errs[i] = dial(cfg, i, ord)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, dv := range devs {
			if dv != nil {
				dv.cl.Close()
			}
		}
		say("cuInit: %v", err)
		code := abi.ResultOf(err)
		if code == abi.ErrUnknown {
			code = abi.ErrDeviceUnavailable
		}
		return code
	}
	d.devs = devs
	d.version = devs[0].info.DriverVersion
	if !d.inProcess {
		registerAtExit()
	}
	return abi.Success
}

func dial(cfg config, idx, ord int) (*device, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	name, _ := os.Executable()
	cl, err := cfg.Dial(ctx, transport.Options{Device: ord, MemLimit: cfg.memory, Name: transport.SessionName("shim", name), Printf: stdoutPrinter{}})
	if err != nil {
		return nil, fmt.Errorf("device %d (server device %d over %s): %w", idx, ord, cfg.Via, err)
	}
	dv := &device{idx: idx, ordinal: ord, cl: cl, info: cl.Device, attrs: map[uint32]int32{}}
	attrs := []uint32{abi.AttrMaxThreadsPerBlock, abi.AttrMaxBlockDimX, abi.AttrMaxBlockDimY, abi.AttrMaxBlockDimZ,
		abi.AttrMaxGridDimX, abi.AttrMaxGridDimY, abi.AttrMaxGridDimZ, abi.AttrMaxSharedMemoryPerBlockOptin}
	vals := make([]uint32, len(attrs))
	for i, a := range attrs {
		v, res := dv.attribute(a)
		if res != abi.Success {
			cl.Close()
			return nil, fmt.Errorf("device %d: attribute %d: %v", idx, a, res)
		}
		vals[i] = uint32(v)
	}
	dv.lim = launchLimits{threads: vals[0], block: [3]uint32{vals[1], vals[2], vals[3]},
		grid: [3]uint32{vals[4], vals[5], vals[6]}, sharedOptin: vals[7]}
	return dv, nil
}

// shutdown ends every session; it runs at process exit so that kerfd frees
// the tenant's memory at once, whatever the path.
func (d *driver) shutdown() {
	if !d.initMu.TryLock() {
		return // cuInit still running on another thread: let the kernel close sockets
	}
	devs := d.devs
	d.devs = nil
	d.initRes = abi.ErrDeinitialized
	d.initMu.Unlock()
	done := make(chan struct{})
	go func() {
		for _, dv := range devs {
			dv.cl.Close()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
}

// ready returns the devices once cuInit has succeeded.
func (d *driver) ready() ([]*device, Result) {
	d.initMu.Lock()
	defer d.initMu.Unlock()
	if !d.inited {
		return nil, abi.ErrNotInitialized
	}
	if d.initRes != abi.Success {
		return nil, d.initRes
	}
	return d.devs, abi.Success
}

// device returns CUDA device n.
func (d *driver) device(n int) (*device, Result) {
	devs, res := d.ready()
	if res != abi.Success {
		return nil, res
	}
	if n < 0 || n >= len(devs) {
		return nil, abi.ErrInvalidDevice
	}
	return devs[n], abi.Success
}

// attribute returns a device attribute, cached: a device does not change
// under a session.
func (dv *device) attribute(a uint32) (int32, Result) {
	dv.attrMu.Lock()
	v, ok := dv.attrs[a]
	dv.attrMu.Unlock()
	if ok {
		return v, abi.Success
	}
	var res abi.Values
	if err := dv.cl.Call(abi.CallDeviceGetAttribute, new(abi.Values).Word(uint64(a)), &res); err != nil {
		return 0, abi.ResultOf(err)
	}
	v = int32(uint32(res.Words[0]))
	dv.attrMu.Lock()
	dv.attrs[a] = v
	dv.attrMu.Unlock()
	return v, abi.Success
}

func (d *driver) driverVersion() int {
	d.initMu.Lock()
	defer d.initMu.Unlock()
	if d.version > 0 {
		return d.version
	}
	return driverVersion
}

// Device queries.

func deviceCount() (int, Result) {
	devs, res := drv.ready()
	return len(devs), res
}

func deviceGet(n int) (int, Result) {
	if _, res := drv.device(n); res != abi.Success {
		return 0, res
	}
	return n, abi.Success
}

func deviceName(n int) (string, Result) {
	dv, res := drv.device(n)
	if res != abi.Success {
		return "", res
	}
	return dv.info.Name, abi.Success
}

func deviceUUID(n int) ([16]byte, Result) {
	dv, res := drv.device(n)
	if res != abi.Success {
		return [16]byte{}, res
	}
	return dv.info.UUID, abi.Success
}

func deviceTotalMem(n int) (uint64, Result) {
	dv, res := drv.device(n)
	if res != abi.Success {
		return 0, res
	}
	return dv.info.TotalMem, abi.Success
}

func deviceAttribute(attr int32, n int) (int32, Result) {
	dv, res := drv.device(n)
	if res != abi.Success {
		return 0, res
	}
	if attr < 0 {
		return 0, abi.ErrInvalidValue
	}
	if v, ok := shimAttribute(uint32(attr)); ok {
		return v, abi.Success
	}
	v, r := dv.attribute(uint32(attr))
	if r == abi.ErrInvalidValue && abi.AttrAbsentWhenUnserved(uint32(attr)) {
		return 0, abi.Success
	}
	return v, r
}

func deviceComputeCapability(n int) (int, int, Result) {
	dv, res := drv.device(n)
	if res != abi.Success {
		return 0, 0, res
	}
	return dv.info.CCMajor, dv.info.CCMinor, abi.Success
}

// params returns a function's parameter layout, fetched once.
func (o *object) params() ([]abi.ParamInfo, Result) {
	o.layoutMu.Lock()
	defer o.layoutMu.Unlock()
	if o.layoutOK {
		return o.layout, abi.Success
	}
	l, err := o.dev.cl.FuncParams(o.wire)
	if err != nil {
		return nil, abi.ResultOf(err)
	}
	o.layout, o.layoutOK = l, true
	for _, p := range l {
		o.layoutSize = max(o.layoutSize, int(p.Offset)+int(p.Size))
	}
	return l, abi.Success
}
