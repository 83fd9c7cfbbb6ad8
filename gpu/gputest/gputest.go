// Package gputest is a conformance suite for gpu.Backend implementations:
// memory limits and their resizing, handle lifetimes, error codes and
// sticky faults, checked the same way against every backend. Backends run
// it from their own tests with Run.
//
// It is test code: only _test.go files may import it, so that no product
// binary links the testing package. It must not import any backend.
package gputest

import (
	"errors"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
)

// Options describe what the backend under test can do. A part of the suite
// that a backend cannot run is skipped only with a written reason.
type Options struct {
	// Device is the ordinal the suite opens contexts on.
	Device int
	// MemLimit is the limit the quota tests open contexts with. After the
	// context's own footprint it must leave a whole number, at least two,
	// of Unit free, and the device must hold it plus two Units. Default
	// 16 MiB.
	MemLimit uint64
	// Unit is an allocation size the backend charges exactly, with no
	// rounding. Default 2 MiB.
	Unit uint64

	// Kernels are a backend's test kernels; nil needs NoKernels.
	Kernels *Kernels
	// NoKernels says why Kernels is nil; module and fault tests skip
	// with it.
	NoKernels string
	// NoMemoryContents, if set, says why the backend cannot be asked to
	// keep bytes and check ranges; the contents tests skip with it.
	NoMemoryContents string
	// FaultsShared, if set, says why a fault in one context reaches the
	// device's other contexts too; the fault test then leaves out its
	// bystander context.
	FaultsShared string
}

// Kernels name a kernel that completes and one that faults.
type Kernels struct {
	Ok, Fault Kernel
}

// Kernel is one launch the suite can make.
type Kernel struct {
	Image []byte // a module image the backend loads
	Name  string // a kernel in Image
	// Launch returns the launch shape and parameter buffer for the kernel
	// in c; it may allocate in c (the suite frees nothing it did not make).
	Launch func(t *testing.T, c gpu.Context) (abi.LaunchConfig, []byte)
}

func (o Options) withDefaults(t *testing.T) Options {
	t.Helper()
	if o.MemLimit == 0 {
		o.MemLimit = 16 << 20
	}
	if o.Unit == 0 {
		o.Unit = 2 << 20
	}
	if o.Kernels == nil && o.NoKernels == "" {
		t.Fatal("gputest.Options: set Kernels, or NoKernels to the reason the backend has none")
	}
	return o
}

// suite is one run: the backend factory and its options.
type suite struct {
	newBackend func(t *testing.T) gpu.Backend
	opts       Options
}

// Run runs the conformance suite. newBackend returns a fresh backend for
// each test; the suite closes every context it opens.
func Run(t *testing.T, newBackend func(t *testing.T) gpu.Backend, opts Options) {
	s := &suite{newBackend: newBackend, opts: opts.withDefaults(t)}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"Devices", s.testDevices},
		{"AllocErrors", s.testAllocErrors},
		{"AllocUpToLimit", s.testAllocUpToLimit},
		{"AllocOneBlock", s.testAllocOneBlock},
		{"AllocConcurrent", s.testAllocConcurrent},
		{"SetMemLimit", s.testSetMemLimit},
		{"DeviceShared", s.testDeviceShared},
		{"CloseReturnsMemory", s.testCloseReturnsMemory},
		{"ClosedContext", s.testClosedContext},
		{"MemoryContents", s.testMemoryContents},
		{"AddressRange", s.testAddressRange},
		{"StreamLifetime", s.testStreamLifetime},
		{"EventLifetime", s.testEventLifetime},
		{"ForeignHandles", s.testForeignHandles},
		{"ModuleLifetime", s.testModuleLifetime},
		{"ModuleQuota", s.testModuleQuota},
		{"FunctionAttributes", s.testFunctionAttributes},
		{"StickyFault", s.testStickyFault},
		{"VirtualMemory", s.testVirtualMemory},
	} {
		t.Run(tc.name, tc.run)
	}
}

// open opens a context with limit on the suite's device, closed when the
// test ends unless the test closed it.
func (s *suite) open(t *testing.T, b gpu.Backend, limit uint64) gpu.Context {
	t.Helper()
	c, err := b.Open(s.opts.Device, limit)
	if err != nil {
		t.Fatalf("Open(%d, %d): %v", s.opts.Device, limit, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// needKernels skips when the backend runs no kernels.
func (s *suite) needKernels(t *testing.T) *Kernels {
	t.Helper()
	if s.opts.Kernels == nil {
		t.Skip(s.opts.NoKernels)
	}
	return s.opts.Kernels
}

// wantCode fails unless err is an *abi.Error with code.
func wantCode(t *testing.T, what string, err error, code abi.Result) {
	t.Helper()
	var ae *abi.Error
	switch {
	case code == abi.Success && err != nil:
		t.Fatalf("%s: %v", what, err)
	case code == abi.Success:
	case err == nil:
		t.Fatalf("%s succeeded, want %v", what, code)
	case !errors.As(err, &ae):
		t.Fatalf("%s: %v (%T) is not an *abi.Error; want %v", what, err, err, code)
	case ae.Code != code:
		t.Fatalf("%s: %v, want %v", what, err, code)
	}
}

func ok(t *testing.T, what string, err error) {
	t.Helper()
	wantCode(t, what, err, abi.Success)
}

func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		ok(t, what, err)
		return v
	}
}

// wantInfo fails unless c's MemInfo is free, total.
func wantInfo(t *testing.T, what string, c gpu.Context, free, total uint64) {
	t.Helper()
	if f, tot := c.MemInfo(); f != free || tot != total {
		t.Fatalf("%s: MemInfo = %d free of %d; want %d of %d", what, f, tot, free, total)
	}
}

func (s *suite) testDevices(t *testing.T) {
	b := s.newBackend(t)
	devs := b.Devices()
	if s.opts.Device >= len(devs) {
		t.Fatalf("%d devices; the suite opens device %d", len(devs), s.opts.Device)
	}
	for i, d := range devs {
		if d.TotalMem == 0 || d.Name == "" {
			t.Errorf("device %d: %+v", i, d)
		}
	}
	for _, dev := range []int{-1, len(devs), 1 << 30} {
		c, err := b.Open(dev, 0)
		if err == nil {
			c.Close()
		}
		wantCode(t, "Open of a device that does not exist", err, abi.ErrInvalidDevice)
	}
	c := s.open(t, b, 0)
	if got := c.Device(); got != devs[s.opts.Device] {
		t.Fatalf("Device() = %+v, want %+v", got, devs[s.opts.Device])
	}
}
