//go:build cgo

// Package discovertest is a fake machine for tests of NVML discovery and
// of what reads it: go-nvml's 8×A100 mock, completed. Tests only.
package discovertest

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
)

// DGX is go-nvml's 8×A100 mock, completed where it leaves calls unset
// (a nil mock function panics): the PCI bus id it knows but does not put
// in PciInfo, multiprocessor attributes (NOT_SUPPORTED, as on a real full
// A100), and per-device metrics derived from the index.
func DGX() *dgxa100.Server {
	s := dgxa100.New()
	for i, d := range s.Devices {
		dev := d.(*dgxa100.Device)
		dev.MemoryInfo.Used = uint64(i+1) << 30
		dev.MemoryInfo.Free = dev.MemoryInfo.Total - dev.MemoryInfo.Used
		dev.GetPciInfoFunc = func() (nvml.PciInfo, nvml.Return) {
			p := nvml.PciInfo{PciDeviceId: 0x20B010DE, Bus: uint32(i)}
			copy(p.BusId[:], fmt.Sprintf("00000000:%02X:00.0", i+0xb7))
			return p, nvml.SUCCESS
		}
		dev.GetAttributesFunc = func() (nvml.DeviceAttributes, nvml.Return) {
			return nvml.DeviceAttributes{}, nvml.ERROR_NOT_SUPPORTED
		}
		dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
			return nvml.Utilization{Gpu: uint32(10 * i), Memory: uint32(5 * i)}, nvml.SUCCESS
		}
		dev.GetTemperatureFunc = func(s nvml.TemperatureSensors) (uint32, nvml.Return) {
			if s != nvml.TEMPERATURE_GPU {
				return 0, nvml.ERROR_INVALID_ARGUMENT
			}
			return uint32(40 + i), nvml.SUCCESS
		}
		dev.GetPowerUsageFunc = func() (uint32, nvml.Return) {
			if i == 7 {
				return 0, nvml.ERROR_NOT_SUPPORTED
			}
			return uint32(60_000 + 1000*i), nvml.SUCCESS
		}
	}
	return s
}
