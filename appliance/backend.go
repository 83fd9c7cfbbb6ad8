package appliance

import (
	"log/slog"

	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/gpu/cuda"
	"github.com/kerf-edge/kerf/gpu/emu"
	"github.com/kerf-edge/kerf/internal/units"
	"github.com/kerf-edge/kerf/slicer/discover"
)

// newBackend picks the GPU backend. "auto" drives the NVIDIA GPUs when
// the driver is new enough and reports some, and otherwise serves the
// emulator with one log line saying why; "cuda" requires a real GPU;
// "emulated" always serves the emulator. It returns the backend and its
// kind ("cuda" or "emulated").
func newBackend(cfg Config, log *slog.Logger) (gpu.Backend, string, error) {
	b, _, kind, err := selectBackend(cfg, log)
	return b, kind, err
}

// selectBackend is newBackend, also returning NVML (open, for sampling)
// when it drives real GPUs.
func selectBackend(cfg Config, log *slog.Logger) (gpu.Backend, *discover.NVML, string, error) {
	switch cfg.GPU.Backend {
	case "auto", "cuda":
		b, nv, err := realGPUs(cfg, log)
		if err == nil {
			return b, nv, "cuda", nil
		}
		if cfg.GPU.Backend == "cuda" {
			return nil, nil, "", err
		}
		log.Warn("serving the EMULATED GPU", "reason", err)
	default:
		log.Info("serving the EMULATED GPU, as configured")
	}
	mem, err := units.ParseBytes(cfg.GPU.Emulated.Memory)
	if err != nil {
		return nil, nil, "", err
	}
	return emu.New(emuConfig(cfg, mem, nil)), nil, "emulated", nil
}

// workerBackend opens, in a worker, the backend kerfd settled on. Its
// kernels are paced by the tenant's compute share through gate: the
// emulator's around each kernel it runs, a real GPU's around each launch,
// charged the time its events measure.
func workerBackend(cfg Config, gate gpu.Gate) (gpu.Backend, error) {
	if cfg.GPU.Backend != "emulated" {
		b, _, err := newBackend(cfg, slog.New(slog.DiscardHandler))
		if cb, ok := b.(*cuda.Backend); ok && err == nil {
			cb.Pace(gate)
		}
		return b, err
	}
	mem, err := units.ParseBytes(cfg.GPU.Emulated.Memory)
	if err != nil {
		return nil, err
	}
	return emu.New(emuConfig(cfg, mem, gate)), nil
}

// emuConfig is the emulator's configuration; gate paces its kernels (nil:
// unpaced).
func emuConfig(cfg Config, mem uint64, gate gpu.Gate) emu.Config {
	e := cfg.GPU.Emulated
	return emu.Config{Name: e.Name, Devices: e.Devices, MemoryBytes: mem, SMs: e.SMs, Gate: gate, MaxLaunchInstructions: e.MaxLaunchInstructions}
}

// realGPUs opens the NVIDIA driver, then NVML, which stays open for
// sampling (the caller closes it). The driver comes first: its refusal
// (none installed, too old, no device) is the reason logged when kerfd
// falls back to the emulator. GPUs the driver serves without NVML are
// served unsampled.
func realGPUs(cfg Config, log *slog.Logger) (gpu.Backend, *discover.NVML, error) {
	b, err := cuda.New(cuda.Config{Library: cfg.GPU.CUDA.Library, Log: log, TimeSlicing: cfg.GPU.CUDA.TimeSlicing})
	if err != nil {
		return nil, nil, err
	}
	nv, err := discover.Open()
	if err != nil {
		log.Warn("NVIDIA GPUs served without NVML: no utilisation samples", "reason", err)
		for i, d := range b.Devices() {
			log.Info("NVIDIA GPU", "index", i, "name", d.Name, "memory", d.TotalMem, "sms", d.SMs)
		}
		return b, nil, nil
	}
	sys := nv.System()
	discover.FillFromCUDA(sys.GPUs, b.Devices())
	for _, g := range sys.GPUs {
		log.Info("NVIDIA GPU", "index", g.Index, "name", g.Name, "uuid", g.UUID, "memory", g.MemoryTotal, "sms", g.SMs, "pci", g.PCIBusID, "mig", g.MIGEnabled)
	}
	log.Info("NVIDIA driver", "version", sys.DriverVersion, "cuda", sys.CUDAVersion)
	return b, nv, nil
}
