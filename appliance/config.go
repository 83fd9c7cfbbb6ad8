package appliance

import (
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"

	"github.com/kerf-edge/kerf/internal/kerfenv"
	"github.com/kerf-edge/kerf/internal/units"
	"github.com/kerf-edge/kerf/pool"
)

//go:embed defaults.yaml
var defaultsYAML []byte

// Config is kerfd's configuration.
type Config struct {
	StateDir string `koanf:"state_dir"`
	Listen   struct {
		QUIC string `koanf:"quic"`
		Unix string `koanf:"unix"`
		HTTP string `koanf:"http"`
		// HTTPTLS is the operator listener's key pair beyond loopback.
		HTTPTLS HTTPTLSConfig `koanf:"http_tls"`
		Limits  ListenLimits  `koanf:"limits"`
		// QUICKeepAlive and QUICIdleTimeout set how soon a QUIC tenant
		// that went away is noticed (transport.QUICListenOptions).
		QUICKeepAlive   time.Duration `koanf:"quic_keep_alive"`
		QUICIdleTimeout time.Duration `koanf:"quic_idle_timeout"`
	} `koanf:"listen"`
	GPU struct {
		Backend string `koanf:"backend"`
		CUDA    struct {
			Library string `koanf:"library"`
			// TimeSlicing enforces compute shares by time even on GPUs
			// whose SMs could be partitioned (green contexts).
			TimeSlicing bool `koanf:"time_slicing"`
		} `koanf:"cuda"`
		Emulated struct {
			Name    string `koanf:"name"`
			Devices int    `koanf:"devices"`
			Memory  string `koanf:"memory"`
			SMs     int    `koanf:"sms"`
			// MaxLaunchInstructions bounds one launch's warp-instructions
			// (0: the emulator's default).
			MaxLaunchInstructions uint64 `koanf:"max_launch_instructions"`
		} `koanf:"emulated"`
	} `koanf:"gpu"`
	Tenants struct {
		Isolation string `koanf:"isolation"`
		// StopGrace is how long a worker told to stop has before it is
		// killed.
		StopGrace time.Duration `koanf:"stop_grace"`
		// Limits cap the sessions (workers) of a tenant and of a lease.
		Limits SessionCaps `koanf:"limits"`
		// Worker confines each worker process.
		Worker WorkerConfig `koanf:"worker"`
	} `koanf:"tenants"`
	Slicer struct {
		Profile              string        `koanf:"profile"`
		MaxGPUsPerTenant     float64       `koanf:"max_gpus_per_tenant"`
		MaxFractionPerTenant float64       `koanf:"max_fraction_per_tenant"`
		IdleTimeout          time.Duration `koanf:"idle_timeout"`
		ShareQuantum         time.Duration `koanf:"share_quantum"`
		// SharesUnenforced measures compute shares without pacing kernels
		// by them: the baseline enforcement is benchmarked against.
		SharesUnenforced bool `koanf:"shares_unenforced"`
		// ShareOverlapBelow is the demand on the GPU (GPU time used plus
		// time spent waiting for a grant, per second) below which
		// tenants under their share hold grants side by side
		// (slicer.ArbiterConfig.OverlapBelow); 0: one at a time.
		ShareOverlapBelow float64 `koanf:"share_overlap_below"`
	} `koanf:"slicer"`
	API struct {
		MaxBody       string `koanf:"max_body"`
		EventsKept    int    `koanf:"events_kept"`
		PublicMetrics bool   `koanf:"public_metrics"`
	} `koanf:"api"`
	Log struct {
		Level  string `koanf:"level"`
		Format string `koanf:"format"`
	} `koanf:"log"`
	Ingest  IngestConfig  `koanf:"ingest"`
	Jobs    JobsConfig    `koanf:"jobs"`
	Runtime RuntimeConfig `koanf:"runtime"`
	// History is what the node keeps in memory for the web page.
	History HistoryConfig `koanf:"history"`

	// Pool makes several appliances one pool (docs/pool.md).
	Pool pool.Config `koanf:"pool"`

	// UserDir, when set, receives copies of the default tenant's bundle and
	// of the admin token at every start: the place the command line looks
	// (auth.UserDir). kerfd's command sets it; no file or variable does.
	UserDir string `koanf:"-"`
}

// HistoryConfig sizes the history kept in memory for the web page.
type HistoryConfig struct {
	Window    time.Duration `koanf:"window"`
	Step      time.Duration `koanf:"step"`
	MaxSeries int           `koanf:"max_series"`
}

// maxHistorySteps bounds window/step: the values each series keeps.
const maxHistorySteps = 100_000

func (h HistoryConfig) validate() []error {
	switch {
	case h.Step < 100*time.Millisecond:
		return []error{fmt.Errorf("history.step %v: want at least 100ms", h.Step)}
	case h.Window < h.Step || h.Window/h.Step > maxHistorySteps:
		return []error{fmt.Errorf("history.window %v: want from one step (%v) to %d steps", h.Window, h.Step, maxHistorySteps)}
	case h.MaxSeries < 1:
		return []error{fmt.Errorf("history.max_series %d: want at least 1", h.MaxSeries)}
	}
	return nil
}

// ListenLimits bound what idle and unauthenticated connections may hold on
// each listener.
type ListenLimits struct {
	HandshakeTimeout       time.Duration `koanf:"handshake_timeout"`
	Unauthenticated        int           `koanf:"unauthenticated"`
	UnauthenticatedPerPeer int           `koanf:"unauthenticated_per_peer"`
	UnauthenticatedShare   float64       `koanf:"unauthenticated_share"`
	HTTPShare              float64       `koanf:"http_share"`
	HTTPPerPeer            int           `koanf:"http_per_peer"`
	HTTPReadHeaderTimeout  time.Duration `koanf:"http_read_header_timeout"`
	HTTPReadTimeout        time.Duration `koanf:"http_read_timeout"`
	HTTPWriteTimeout       time.Duration `koanf:"http_write_timeout"`
	HTTPIdleTimeout        time.Duration `koanf:"http_idle_timeout"`
}

func (l *ListenLimits) validate() []error {
	var errs []error
	if l.HandshakeTimeout <= 0 || l.HTTPReadHeaderTimeout <= 0 || l.HTTPReadTimeout <= 0 || l.HTTPWriteTimeout <= 0 || l.HTTPIdleTimeout <= 0 {
		errs = append(errs, errors.New("listen.limits: every timeout must be positive"))
	}
	if l.Unauthenticated < 0 || l.UnauthenticatedPerPeer < 0 || l.HTTPPerPeer < 0 {
		errs = append(errs, errors.New("listen.limits: caps must not be negative"))
	}
	for _, s := range []struct {
		name  string
		share float64
	}{{"unauthenticated_share", l.UnauthenticatedShare}, {"http_share", l.HTTPShare}} {
		if s.share <= 0 || s.share > 1 {
			errs = append(errs, fmt.Errorf("listen.limits.%s = %v: want more than 0, at most 1", s.name, s.share))
		}
	}
	if l.UnauthenticatedShare+l.HTTPShare > 0.9 {
		errs = append(errs, errors.New("listen.limits: unauthenticated_share and http_share leave under a tenth of the descriptors to tenants"))
	}
	return errs
}

// LoadConfig reads the embedded defaults, then path (if not empty), then
// KERF_* variables from environ.
func LoadConfig(path string, environ []string) (Config, error) {
	k := koanf.New(".")
	if err := k.Load(rawbytes.Provider(defaultsYAML), yaml.Parser()); err != nil {
		return Config{}, fmt.Errorf("embedded defaults: %w", err)
	}
	if path != "" {
		if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
	}
	err := k.Load(env.Provider(".", env.Opt{
		Prefix:      kerfenv.ConfigPrefix,
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(key, v string) (string, any) {
			key = strings.ToLower(strings.TrimPrefix(key, kerfenv.ConfigPrefix))
			path := strings.ReplaceAll(key, "__", ".")
			// Other KERF_* variables belong to the CLI and the shim
			// (KERF_API, KERF_BUNDLE, …): only configuration keys count.
			if !k.Exists(path) || len(k.MapKeys(path)) > 0 {
				return "", nil
			}
			return path, v
		},
	}), nil)
	if err != nil {
		return Config{}, err
	}
	// A key nothing reads is a mistake (a typo, or a key an older kerfd
	// read): refuse to start rather than run without it.
	if unknown := unknownKeys(k.Raw(), reflect.TypeFor[Config]()); len(unknown) > 0 {
		return Config{}, unknownKeyError(unknown, reflect.TypeFor[Config]())
	}
	var c Config
	if err := k.UnmarshalWithConf("", &c, koanf.UnmarshalConf{}); err != nil {
		return Config{}, err
	}
	return c, c.validate()
}

func (c *Config) validate() error {
	var errs []error
	if c.StateDir == "" {
		errs = append(errs, errors.New("state_dir is empty"))
	}
	switch c.GPU.Backend {
	case "auto", "cuda", "emulated":
	default:
		errs = append(errs, fmt.Errorf("gpu.backend %q: want auto, cuda or emulated", c.GPU.Backend))
	}
	if c.Tenants.Isolation != "process" && c.Tenants.Isolation != "inprocess" {
		errs = append(errs, fmt.Errorf("tenants.isolation %q: want process or inprocess", c.Tenants.Isolation))
	}
	if c.Tenants.StopGrace < 0 {
		errs = append(errs, fmt.Errorf("tenants.stop_grace %v: must not be negative", c.Tenants.StopGrace))
	}
	errs = append(errs, c.Tenants.Worker.validate()...)
	if l := c.Tenants.Limits; l.PerTenant < 0 || l.PerLease < 0 {
		errs = append(errs, errors.New("tenants.limits: caps must not be negative"))
	}
	if c.Slicer.MaxGPUsPerTenant < 0 || c.Slicer.IdleTimeout < 0 {
		errs = append(errs, errors.New("slicer limits must not be negative"))
	}
	if f := c.Slicer.MaxFractionPerTenant; f < 0 || f > 1 {
		errs = append(errs, fmt.Errorf("slicer.max_fraction_per_tenant %g: want 0 (no limit) to 1", f))
	}
	if f := c.Slicer.ShareOverlapBelow; f < 0 || f > 1 {
		errs = append(errs, fmt.Errorf("slicer.share_overlap_below %g: want 0 (grants in turns) to 1", f))
	}
	if _, err := units.ParseBytes(c.API.MaxBody); err != nil {
		errs = append(errs, fmt.Errorf("api.max_body: %w", err))
	}
	if _, err := units.ParseBytes(c.GPU.Emulated.Memory); err != nil {
		errs = append(errs, fmt.Errorf("gpu.emulated.memory: %w", err))
	}
	if c.GPU.Emulated.Devices < 1 || c.GPU.Emulated.Devices > 8 {
		errs = append(errs, fmt.Errorf("gpu.emulated.devices = %d: want 1..8", c.GPU.Emulated.Devices))
	}
	if _, err := c.logLevel(); err != nil {
		errs = append(errs, err)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		errs = append(errs, fmt.Errorf("log.format %q: want text or json", c.Log.Format))
	}
	errs = append(errs, c.History.validate()...)
	if c.Runtime.GCPercent < 0 {
		errs = append(errs, fmt.Errorf("runtime.gc_percent = %d: want 0 (the default) or more", c.Runtime.GCPercent))
	}
	if c.Runtime.MemoryLimit != "" {
		if _, err := units.ParseBytes(c.Runtime.MemoryLimit); err != nil {
			errs = append(errs, fmt.Errorf("runtime.memory_limit: %w", err))
		}
	}
	errs = append(errs, c.Listen.Limits.validate()...)
	if c.Listen.QUICKeepAlive <= 0 || c.Listen.QUICIdleTimeout < 2*c.Listen.QUICKeepAlive {
		errs = append(errs, fmt.Errorf("listen.quic_keep_alive = %v, quic_idle_timeout = %v: want a positive keep-alive, and an idle timeout of at least twice it", c.Listen.QUICKeepAlive, c.Listen.QUICIdleTimeout))
	}
	if err := c.validateHTTPTLS(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.validateIngest()...)
	errs = append(errs, c.Jobs.validate()...)
	errs = append(errs, c.validatePool()...)
	return errors.Join(errs...)
}

func (c *Config) logLevel() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.Log.Level)); err != nil {
		return 0, fmt.Errorf("log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	return l, nil
}

// Logger builds the configured logger writing to stderr.
func (c *Config) Logger() *slog.Logger {
	level, _ := c.logLevel()
	opts := &slog.HandlerOptions{Level: level}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// UnixPath is the local tenant socket.
func (c *Config) UnixPath() string {
	if c.Listen.Unix != "" {
		return c.Listen.Unix
	}
	return filepath.Join(c.StateDir, "kerf.sock")
}

// TokensPath is the tenant token store.
func (c *Config) TokensPath() string { return filepath.Join(c.StateDir, "tokens.json") }

// SlicerPath is the slicer's persisted layout, profile and policies.
func (c *Config) SlicerPath() string { return filepath.Join(c.StateDir, "slicer.json") }

// AdminTokenPath is the operator's copy of the API admin token.
func (c *Config) AdminTokenPath() string { return filepath.Join(c.StateDir, AdminTokenName) }

// DevicesPath holds the broker's device logins issued through the API.
func (c *Config) DevicesPath() string { return filepath.Join(c.StateDir, "devices.json") }

// BundleDir holds token bundles written for tenants.
func (c *Config) BundleDir() string { return filepath.Join(c.StateDir, "bundles") }
