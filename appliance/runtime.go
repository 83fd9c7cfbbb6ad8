package appliance

import (
	"log/slog"
	"math"
	"os"
	"runtime/debug"

	"github.com/kerf-edge/kerf/internal/units"
)

// RuntimeConfig tunes the Go runtime of kerfd itself, not of its tenant
// workers. The embedded broker allocates on every message, so collecting
// less often buys throughput; the soft memory limit bounds what that costs.
type RuntimeConfig struct {
	GCPercent   int    `koanf:"gc_percent"`   // as GOGC; 0: the runtime's default
	MemoryLimit string `koanf:"memory_limit"` // as GOMEMLIMIT; "" or 0: none
}

// ApplyRuntime applies c. GOGC and GOMEMLIMIT in the environment win over
// it, as Go's documentation promises operators.
func ApplyRuntime(c RuntimeConfig, log *slog.Logger) {
	if os.Getenv("GOGC") == "" && c.GCPercent > 0 {
		debug.SetGCPercent(c.GCPercent)
		if log != nil {
			log.Debug("go runtime", "gc_percent", c.GCPercent)
		}
	}
	if c.MemoryLimit == "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	if n, err := units.ParseBytes(c.MemoryLimit); err == nil && n > 0 {
		debug.SetMemoryLimit(int64(min(n, math.MaxInt64)))
		if log != nil {
			log.Debug("go runtime", "memory_limit", c.MemoryLimit)
		}
	}
}
