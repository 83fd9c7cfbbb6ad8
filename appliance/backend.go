package appliance

import (
	"log/slog"

	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/gpu/emu"
	"github.com/kerf-edge/kerf/internal/units"
)

// newBackend picks the GPU backend. This build has no real-GPU backend
// yet, so "auto" serves the emulator and says so.
func newBackend(cfg Config, log *slog.Logger) (gpu.Backend, string, error) {
	mem, err := units.ParseBytes(cfg.GPU.Emulated.Memory)
	if err != nil {
		return nil, "", err
	}
	if cfg.GPU.Backend == "auto" {
		log.Warn("serving the EMULATED GPU: this build has no real-GPU backend")
	} else {
		log.Info("serving the EMULATED GPU, as configured")
	}
	b := emu.New(emu.Config{Devices: cfg.GPU.Emulated.Devices, MemoryBytes: mem, SMs: cfg.GPU.Emulated.SMs})
	return b, "emulated", nil
}
