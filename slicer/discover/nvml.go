//go:build cgo

package discover

import (
	"fmt"
	"strings"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// NVML is an open NVML session.
type NVML struct {
	lib  nvml.Interface
	devs []nvml.Device
	sys  System
}

// Open initialises the system's NVML and discovers its GPUs.
func Open() (*NVML, error) { return OpenWith(nvml.New()) }

// OpenWith uses lib, an NVML implementation (tests pass go-nvml's mocks).
func OpenWith(lib nvml.Interface) (*NVML, error) {
	if r := lib.Init(); r != nvml.SUCCESS {
		return nil, fmt.Errorf("%w: nvmlInit: %v", ErrNoNVML, r)
	}
	n := &NVML{lib: lib}
	if err := n.discover(); err != nil {
		lib.Shutdown()
		return nil, err
	}
	return n, nil
}

// Close shuts NVML down.
func (n *NVML) Close() error {
	if r := n.lib.Shutdown(); r != nvml.SUCCESS {
		return fmt.Errorf("nvmlShutdown: %v", r)
	}
	return nil
}

// System returns what Open discovered.
func (n *NVML) System() System {
	s := n.sys
	s.GPUs = append([]GPU(nil), n.sys.GPUs...)
	return s
}

func (n *NVML) discover() error {
	count, r := n.lib.DeviceGetCount()
	if r != nvml.SUCCESS {
		return fmt.Errorf("%w: nvmlDeviceGetCount: %v", ErrNoNVML, r)
	}
	if count == 0 {
		return ErrNoGPU
	}
	if v, r := n.lib.SystemGetDriverVersion(); r == nvml.SUCCESS {
		n.sys.DriverVersion = v
	}
	if v, r := n.lib.SystemGetCudaDriverVersion(); r == nvml.SUCCESS {
		n.sys.CUDAVersion = v
	}
	for i := range count {
		d, r := n.lib.DeviceGetHandleByIndex(i)
		if r != nvml.SUCCESS {
			return fmt.Errorf("nvmlDeviceGetHandleByIndex(%d): %v", i, r)
		}
		g, err := describe(i, d)
		if err != nil {
			return err
		}
		n.devs = append(n.devs, d)
		n.sys.GPUs = append(n.sys.GPUs, g)
	}
	return nil
}

// describe reads one device. Name, UUID and memory are required; the
// rest is filled where NVML answers.
func describe(i int, d nvml.Device) (GPU, error) {
	g := GPU{Index: i}
	var r nvml.Return
	if g.Name, r = d.GetName(); r != nvml.SUCCESS {
		return g, fmt.Errorf("GPU %d: nvmlDeviceGetName: %v", i, r)
	}
	if g.UUID, r = d.GetUUID(); r != nvml.SUCCESS {
		return g, fmt.Errorf("GPU %d: nvmlDeviceGetUUID: %v", i, r)
	}
	mem, r := d.GetMemoryInfo()
	if r != nvml.SUCCESS {
		return g, fmt.Errorf("GPU %d: nvmlDeviceGetMemoryInfo: %v", i, r)
	}
	g.MemoryTotal = mem.Total
	if pci, r := d.GetPciInfo(); r == nvml.SUCCESS {
		g.PCIBusID = busID(pci)
	}
	if maj, min, r := d.GetCudaComputeCapability(); r == nvml.SUCCESS {
		g.CCMajor, g.CCMinor = maj, min
	}
	if cur, pend, r := d.GetMigMode(); r == nvml.SUCCESS {
		g.MIGCapable = true
		g.MIGEnabled = cur == nvml.DEVICE_MIG_ENABLE
		g.MIGPending = pend != cur
	}
	if a, r := d.GetAttributes(); r == nvml.SUCCESS && a.MultiprocessorCount > 0 {
		g.SMs, g.SMSource = int(a.MultiprocessorCount), "nvml"
	}
	if arch, r := d.GetArchitecture(); r == nvml.SUCCESS {
		g.Architecture = archName(arch)
	}
	return g, nil
}

// busID is the PCI address NVML reports, or one built from its parts.
func busID(p nvml.PciInfo) string {
	b := p.BusId[:]
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	if len(b) > 0 {
		id := strings.ToLower(string(b))
		// NVML writes an 8-digit domain, 00000000:3B:00.0; sysfs and
		// most tools use 4.
		if dom, rest, ok := strings.Cut(id, ":"); ok && len(dom) == 8 && strings.HasPrefix(dom, "0000") {
			id = dom[4:] + ":" + rest
		}
		return id
	}
	if p.Domain == 0 && p.Bus == 0 && p.Device == 0 {
		return ""
	}
	return fmt.Sprintf("%04x:%02x:%02x.0", p.Domain, p.Bus, p.Device)
}

func archName(a nvml.DeviceArchitecture) string {
	switch a {
	case nvml.DEVICE_ARCH_VOLTA:
		return "volta"
	case nvml.DEVICE_ARCH_TURING:
		return "turing"
	case nvml.DEVICE_ARCH_AMPERE:
		return "ampere"
	case nvml.DEVICE_ARCH_ADA:
		return "ada"
	case nvml.DEVICE_ARCH_HOPPER:
		return "hopper"
	}
	return fmt.Sprintf("arch-%d", a)
}

// Sample reads every GPU's current figures.
func (n *NVML) Sample() []Sample {
	now := time.Now()
	out := make([]Sample, len(n.devs))
	for i, d := range n.devs {
		s := Sample{Index: i, UUID: n.sys.GPUs[i].UUID, Time: now}
		if u, r := d.GetUtilizationRates(); r == nvml.SUCCESS {
			s.GPUUtil, s.MemUtil = u.Gpu, u.Memory
		} else {
			s.Missing = append(s.Missing, "utilization")
		}
		if m, r := d.GetMemoryInfo(); r == nvml.SUCCESS {
			s.MemUsed, s.MemTotal = m.Used, m.Total
		} else {
			s.Missing = append(s.Missing, "memory")
		}
		if t, r := d.GetTemperature(nvml.TEMPERATURE_GPU); r == nvml.SUCCESS {
			s.TemperatureC = t
		} else {
			s.Missing = append(s.Missing, "temperature")
		}
		if p, r := d.GetPowerUsage(); r == nvml.SUCCESS {
			s.PowerMW = p
		} else {
			s.Missing = append(s.Missing, "power")
		}
		out[i] = s
	}
	return out
}
