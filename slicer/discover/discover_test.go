//go:build cgo

package discover

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"

	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/slicer/discover/discovertest"
)

func dgx() *dgxa100.Server { return discovertest.DGX() }

func TestDiscoverDGXA100(t *testing.T) {
	srv := dgx()
	// MIG on GPU 3, and pending (set, not yet applied) on GPU 5.
	srv.Devices[3].(*dgxa100.Device).MigMode = nvml.DEVICE_MIG_ENABLE
	d5 := srv.Devices[5].(*dgxa100.Device)
	d5.GetMigModeFunc = func() (int, int, nvml.Return) { return nvml.DEVICE_MIG_DISABLE, nvml.DEVICE_MIG_ENABLE, nvml.SUCCESS }

	n, err := OpenWith(srv)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	sys := n.System()
	if sys.DriverVersion != "550.54.15" || sys.CUDAVersion != 12040 {
		t.Errorf("driver %q, CUDA %d", sys.DriverVersion, sys.CUDAVersion)
	}
	if len(sys.GPUs) != 8 {
		t.Fatalf("%d GPUs, want 8", len(sys.GPUs))
	}
	seen := map[string]bool{}
	for i, g := range sys.GPUs {
		if g.Index != i || g.Name != "Mock NVIDIA A100-SXM4-40GB" || g.MemoryTotal != 42949672960 {
			t.Errorf("GPU %d: %+v", i, g)
		}
		if g.CCMajor != 8 || g.CCMinor != 0 || g.Architecture != "ampere" {
			t.Errorf("GPU %d: compute capability %d.%d, %s", i, g.CCMajor, g.CCMinor, g.Architecture)
		}
		if want := fmt.Sprintf("0000:%02x:00.0", i+0xb7); g.PCIBusID != want {
			t.Errorf("GPU %d: bus id %q, want %q", i, g.PCIBusID, want)
		}
		if g.UUID != srv.Devices[i].(*dgxa100.Device).UUID || seen[g.UUID] {
			t.Errorf("GPU %d: UUID %q", i, g.UUID)
		}
		seen[g.UUID] = true
		if _, err := ParseUUID(g.UUID); err != nil {
			t.Error(err)
		}
		if g.SMs != 0 || g.SMSource != "" {
			t.Errorf("GPU %d: SMs %d from %q, but NVML gave none", i, g.SMs, g.SMSource)
		}
		if !g.MIGCapable || g.MIGEnabled != (i == 3) || g.MIGPending != (i == 5) {
			t.Errorf("GPU %d: MIG capable %v enabled %v pending %v", i, g.MIGCapable, g.MIGEnabled, g.MIGPending)
		}
	}

	// The multiprocessor count comes from CUDA, matched by UUID.
	u2, _ := ParseUUID(sys.GPUs[2].UUID)
	FillFromCUDA(sys.GPUs, []gpu.DeviceInfo{{UUID: u2, SMs: 108}})
	for i, g := range sys.GPUs {
		if want := map[bool]int{true: 108}[i == 2]; g.SMs != want {
			t.Errorf("GPU %d: SMs %d after FillFromCUDA", i, g.SMs)
		}
	}
	if sys.GPUs[2].SMSource != "cuda" {
		t.Errorf("SM source %q", sys.GPUs[2].SMSource)
	}

	samples := n.Sample()
	if len(samples) != 8 {
		t.Fatalf("%d samples", len(samples))
	}
	for i, s := range samples {
		if s.UUID != sys.GPUs[i].UUID || s.GPUUtil != uint32(10*i) || s.MemUtil != uint32(5*i) ||
			s.MemUsed != uint64(i+1)<<30 || s.MemTotal != 42949672960 || s.TemperatureC != uint32(40+i) || s.Time.IsZero() {
			t.Errorf("sample %d: %+v", i, s)
		}
		if i < 7 && (s.PowerMW != uint32(60_000+1000*i) || len(s.Missing) != 0) {
			t.Errorf("sample %d: power %d, missing %v", i, s.PowerMW, s.Missing)
		}
	}
	if s := samples[7]; s.PowerMW != 0 || len(s.Missing) != 1 || s.Missing[0] != "power" {
		t.Errorf("GPU 7 without power reading: %+v", s)
	}
}

func TestMIGNotSupported(t *testing.T) {
	srv := dgx()
	for _, d := range srv.Devices {
		d.(*dgxa100.Device).GetMigModeFunc = func() (int, int, nvml.Return) { return 0, 0, nvml.ERROR_NOT_SUPPORTED }
	}
	n, err := OpenWith(srv)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	for _, g := range n.System().GPUs {
		if g.MIGCapable || g.MIGEnabled {
			t.Errorf("GPU %d: MIG %v/%v on a GPU without MIG", g.Index, g.MIGCapable, g.MIGEnabled)
		}
	}
}

func TestNoNVML(t *testing.T) {
	lib := &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }}
	if _, err := OpenWith(lib); !errors.Is(err, ErrNoNVML) {
		t.Fatalf("missing library: %v", err)
	}
	shut := false
	lib = &mock.Interface{
		InitFunc:           func() nvml.Return { return nvml.SUCCESS },
		ShutdownFunc:       func() nvml.Return { shut = true; return nvml.SUCCESS },
		DeviceGetCountFunc: func() (int, nvml.Return) { return 0, nvml.SUCCESS },
	}
	if _, err := OpenWith(lib); !errors.Is(err, ErrNoGPU) || !shut {
		t.Fatalf("no GPUs: %v (shut down: %v)", err, shut)
	}
}

// TestOpenHere runs the real NVML lookup: on a machine without NVIDIA's
// driver it must fail with ErrNoNVML, not crash.
func TestOpenHere(t *testing.T) {
	n, err := Open()
	if err == nil {
		t.Logf("NVML present: %+v", n.System())
		n.Close()
		return
	}
	if _, statErr := os.Stat("/dev/nvidiactl"); statErr == nil {
		t.Logf("NVIDIA device nodes present but NVML failed: %v", err)
	}
	if !errors.Is(err, ErrNoNVML) && !errors.Is(err, ErrNoGPU) {
		t.Fatalf("Open without NVML: %v", err)
	}
}

func TestParseUUID(t *testing.T) {
	u, err := ParseUUID("GPU-12345678-9abc-def0-1122-334455667788")
	want := [16]byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}
	if err != nil || u != want {
		t.Fatalf("ParseUUID = %x, %v", u, err)
	}
	for _, bad := range []string{"", "GPU-", "GPU-1234", "GPU-zz345678-9abc-def0-1122-334455667788"} {
		if _, err := ParseUUID(bad); err == nil {
			t.Errorf("ParseUUID(%q) accepted", bad)
		}
	}
}

func TestBusIDForms(t *testing.T) {
	var p nvml.PciInfo
	copy(p.BusId[:], "00000000:3B:00.0")
	if got := busID(p); got != "0000:3b:00.0" {
		t.Errorf("8-digit domain: %q", got)
	}
	p = nvml.PciInfo{}
	copy(p.BusId[:], "0001:3b:00.0")
	if got := busID(p); got != "0001:3b:00.0" {
		t.Errorf("4-digit domain: %q", got)
	}
	if got := busID(nvml.PciInfo{Domain: 1, Bus: 0x3b}); got != "0001:3b:00.0" {
		t.Errorf("from parts: %q", got)
	}
}
