package appliance

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/kerf-edge/kerf/internal/units"
	"github.com/kerf-edge/kerf/jobs"
)

// JobsConfig configures the runner of triggered jobs.
type JobsConfig struct {
	Enabled    bool          `koanf:"enabled"`
	Tick       time.Duration `koanf:"tick"`
	MaxRunning int           `koanf:"max_running"`
	MaxMemory  string        `koanf:"max_memory"`
	MinBackoff time.Duration `koanf:"min_backoff"`
	MaxBackoff time.Duration `koanf:"max_backoff"`
	RunsKept   int           `koanf:"runs_kept"`
	ShimDir    string        `koanf:"shim_dir"`
	Output     struct {
		MaxLine        int `koanf:"max_line"`
		LinesPerSecond int `koanf:"lines_per_second"`
		Burst          int `koanf:"burst"`
	} `koanf:"output"`
}

func (jc *JobsConfig) validate() []error {
	var errs []error
	if jc.Tick < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("jobs.tick %v: want at least 10ms", jc.Tick))
	}
	if jc.MaxRunning < 1 {
		errs = append(errs, fmt.Errorf("jobs.max_running %d: want at least 1", jc.MaxRunning))
	}
	if _, err := units.ParseBytes(jc.MaxMemory); err != nil {
		errs = append(errs, fmt.Errorf("jobs.max_memory: %w", err))
	}
	if jc.MinBackoff <= 0 || jc.MaxBackoff < jc.MinBackoff {
		errs = append(errs, fmt.Errorf("jobs.min_backoff %v, max_backoff %v: want 0 < min_backoff <= max_backoff", jc.MinBackoff, jc.MaxBackoff))
	}
	if jc.RunsKept < 1 || jc.RunsKept > 10000 {
		errs = append(errs, fmt.Errorf("jobs.runs_kept %d: want 1 to 10000", jc.RunsKept))
	}
	if o := jc.Output; o.MaxLine < 80 || o.LinesPerSecond < 1 || o.Burst < 1 {
		errs = append(errs, fmt.Errorf("jobs.output: want max_line at least 80, lines_per_second and burst at least 1"))
	}
	return errs
}

// options are the runner's options.
func (jc *JobsConfig) options() jobs.Options {
	maxMem, _ := units.ParseBytes(jc.MaxMemory) // validated with the config
	return jobs.Options{Tick: jc.Tick, MaxRunning: jc.MaxRunning, MaxMemory: maxMem, MinBackoff: jc.MinBackoff,
		MaxBackoff: jc.MaxBackoff, RunsKept: jc.RunsKept,
		Output: jobs.OutputLimits{MaxLine: jc.Output.MaxLine, PerSecond: jc.Output.LinesPerSecond, Burst: jc.Output.Burst}}
}

// JobsDir holds the jobs' token bundles and is the working directory of
// jobs that name none.
func (c *Config) JobsDir() string { return filepath.Join(c.StateDir, "jobs") }
