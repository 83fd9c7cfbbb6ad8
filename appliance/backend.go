package appliance

import (
	"fmt"
	"log/slog"

	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/gpu/cuda"
	"github.com/kerf-edge/kerf/gpu/emu"
	"github.com/kerf-edge/kerf/internal/units"
	"github.com/kerf-edge/kerf/slicer/discover"
)

// newBackend picks the GPU backend. "auto" drives the NVIDIA GPUs when
// NVML finds some and the driver is new enough, and otherwise serves the
// emulator with one log line saying why; "cuda" requires a real GPU;
// "emulated" always serves the emulator. It returns the backend and its
// kind ("cuda" or "emulated").
func newBackend(cfg Config, log *slog.Logger) (gpu.Backend, string, error) {
	switch cfg.GPU.Backend {
	case "auto", "cuda":
		b, err := realGPUs(cfg, log)
		if err == nil {
			return b, "cuda", nil
		}
		if cfg.GPU.Backend == "cuda" {
			return nil, "", err
		}
		log.Warn("serving the EMULATED GPU", "reason", err)
	default:
		log.Info("serving the EMULATED GPU, as configured")
	}
	mem, err := units.ParseBytes(cfg.GPU.Emulated.Memory)
	if err != nil {
		return nil, "", err
	}
	return emu.New(emu.Config{Devices: cfg.GPU.Emulated.Devices, MemoryBytes: mem, SMs: cfg.GPU.Emulated.SMs}), "emulated", nil
}

// realGPUs discovers the GPUs through NVML and opens the driver.
func realGPUs(cfg Config, log *slog.Logger) (gpu.Backend, error) {
	nv, err := discover.Open()
	if err != nil {
		return nil, fmt.Errorf("no NVIDIA GPU: %w", err)
	}
	defer nv.Close()
	b, err := cuda.New(cuda.Config{Library: cfg.GPU.CUDA.Library})
	if err != nil {
		return nil, err
	}
	sys := nv.System()
	discover.FillFromCUDA(sys.GPUs, b.Devices())
	for _, g := range sys.GPUs {
		log.Info("NVIDIA GPU", "index", g.Index, "name", g.Name, "uuid", g.UUID, "memory", g.MemoryTotal, "sms", g.SMs, "pci", g.PCIBusID, "mig", g.MIGEnabled)
	}
	log.Info("NVIDIA driver", "version", sys.DriverVersion, "cuda", sys.CUDAVersion)
	return b, nil
}
