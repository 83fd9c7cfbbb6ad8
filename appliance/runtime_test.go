package appliance

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestApplyRuntime(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	cfg, err := LoadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	ApplyRuntime(cfg.Runtime, nil)
	if got := debug.SetGCPercent(100); got != 400 {
		t.Errorf("gc percent %d, want the default 400", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Errorf("memory limit %d, want 1GiB", got)
	}

	// The environment wins.
	debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOGC", "100")
	t.Setenv("GOMEMLIMIT", "512MiB")
	ApplyRuntime(cfg.Runtime, nil)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("gc percent %d with GOGC=100", got)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("memory limit %d with GOMEMLIMIT set", got)
	}

	if _, err := LoadConfig("", []string{"KERF_RUNTIME__GC_PERCENT=-5", "KERF_RUNTIME__MEMORY_LIMIT=lots"}); err == nil {
		t.Error("negative gc_percent and a bad memory_limit accepted")
	}
}
