package profiles

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/kerf-edge/kerf/auth"
)

// Profile is a slicing layout: for each GPU, the slices to cut it into.
type Profile struct {
	Name        string       `json:"name"`
	Description string       `json:"description,omitempty"`
	GPUs        []GPUProfile `json:"gpus"`
	Created     time.Time    `json:"created,omitzero"`
	Updated     time.Time    `json:"updated,omitzero"`
}

// GPUProfile is the slices of one GPU.
type GPUProfile struct {
	GPU    int         `json:"gpu"`
	Slices []SliceSpec `json:"slices"`
}

// SliceSpec is one slice: exactly one of MemoryFraction and MemoryBytes,
// and a compute share in (0, 1].
type SliceSpec struct {
	Tenant         string  `json:"tenant,omitempty"`
	MemoryFraction float64 `json:"memoryFraction,omitempty"`
	MemoryBytes    uint64  `json:"memoryBytes,omitempty"`
	ComputeShare   float64 `json:"computeShare"`
}

// GPU is one of the node's devices.
type GPU struct {
	Index       int    `json:"index"`
	Name        string `json:"name"`
	MemoryBytes uint64 `json:"memoryBytes"`
	SMs         int    `json:"sms,omitempty"`
	Emulated    bool   `json:"emulated,omitempty"`
	// Sampled says the fields below come from NVML (real GPUs only).
	Sampled            bool    `json:"sampled,omitempty"`
	UtilizationRatio   float64 `json:"utilizationRatio,omitempty"`
	TemperatureCelsius float64 `json:"temperatureCelsius,omitempty"`
	PowerWatts         float64 `json:"powerWatts,omitempty"`
}

// Slice is a live slice of a GPU held by a tenant.
type Slice struct {
	Tenant           string  `json:"tenant"`
	GPU              int     `json:"gpu"`
	MemoryUsedBytes  uint64  `json:"memoryUsedBytes"`
	MemoryLimitBytes uint64  `json:"memoryLimitBytes"`
	ShareTarget      float64 `json:"shareTarget"`
	ShareAchieved    float64 `json:"shareAchieved"`
	Pending          bool    `json:"pending,omitempty"`
}

// Tenant is a tenant with live sessions or slices, and its counters since
// kerfd started (monotonic; they feed the *_total metrics).
type Tenant struct {
	Name             string `json:"name"`
	Sessions         int    `json:"sessions"`
	MemoryLimitBytes uint64 `json:"memoryLimitBytes,omitempty"`
	MemoryUsedBytes  uint64 `json:"memoryUsedBytes"`
	Calls            uint64 `json:"calls"`
	Errors           uint64 `json:"errors"`
	BytesIn          uint64 `json:"bytesIn"`
	BytesOut         uint64 `json:"bytesOut"`
}

// Plan is what applying a profile changes (or changed).
type Plan struct {
	Profile    string     `json:"profile"`
	Steps      []PlanStep `json:"steps"`
	Disruptive bool       `json:"disruptive,omitempty"`
	Applied    bool       `json:"applied,omitempty"`
}

// PlanStep is one slice's change. Action is create, resize, remove or keep.
type PlanStep struct {
	GPU             int     `json:"gpu"`
	Tenant          string  `json:"tenant,omitempty"`
	Action          string  `json:"action"`
	FromMemoryBytes uint64  `json:"fromMemoryBytes,omitempty"`
	ToMemoryBytes   uint64  `json:"toMemoryBytes,omitempty"`
	FromShare       float64 `json:"fromShare,omitempty"`
	ToShare         float64 `json:"toShare,omitempty"`
	Note            string  `json:"note,omitempty"`
}

// Node is the live node: the slicer and the transport server behind one
// face. Validate, Plan and Apply get profiles that already passed the
// structural checks (ValidateProfile). Validate may return a
// *ValidationError to point at fields; any other error is reported whole.
// Evict returns an error wrapping ErrNotFound for an unknown tenant.
type Node interface {
	GPUs() []GPU
	Slices() []Slice
	Tenants() []Tenant
	Validate(p Profile) error
	Plan(ctx context.Context, p Profile) (Plan, error)
	Apply(ctx context.Context, p Profile) (Plan, error)
	Evict(ctx context.Context, tenant string) error
}

// Tokens issues and revokes tenant tokens; *auth.TokenStore
// implements it.
type Tokens interface {
	Issue(tenant string, memLimit uint64) (string, error)
	Revoke(tenant string) (int, error)
	List() []auth.TokenRecord
}

var _ Tokens = (*auth.TokenStore)(nil)

// RuleValidator checks a policy rule document before it is stored; it may
// return a *ValidationError. Field paths are relative to the document.
type RuleValidator interface {
	ValidateRule(name string, doc json.RawMessage) error
}

// IngestStat is one ingest source's counters since start.
type IngestStat struct {
	Source    string
	Messages  uint64
	Bytes     uint64
	Dropped   uint64
	Malformed uint64
	// The rule engine's windows: tracked now, refused at the cap, and
	// forgotten after going quiet.
	Series, SeriesRefused, SeriesForgotten uint64
}

// IngestStats reports ingest counters for the metrics.
type IngestStats interface {
	IngestStats() []IngestStat
}

// Deps are what the API reads and drives. Node and Tokens are required.
type Deps struct {
	Node   Node
	Tokens Tokens
	Rules  RuleValidator // nil: any JSON object is a valid rule
	Ingest IngestStats   // nil: no ingest metrics
	Log    *slog.Logger  // nil: slog.Default()
	// Ready, if set, is consulted by /readyz; an error makes it 503.
	Ready func() error
}

// Config configures the API.
type Config struct {
	// StateDir holds the store, api.db. Required.
	StateDir string
	// MaxBodyBytes bounds request bodies (413 past it). Default 1 MiB.
	MaxBodyBytes int64
	// EventsKept is how many events the log keeps. Default 10000.
	EventsKept int
	// StreamInterval is how often /v1/stream sends the state when nothing
	// happens. Default 1s.
	StreamInterval time.Duration
	// PublicMetrics serves /metrics without the admin token.
	PublicMetrics bool
}

// StorePath is the store's file.
func (c Config) StorePath() string { return filepath.Join(c.StateDir, "api.db") }

func (c *Config) setDefaults() {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.EventsKept <= 0 {
		c.EventsKept = 10000
	}
	if c.StreamInterval <= 0 {
		c.StreamInterval = time.Second
	}
}

// ErrNotFound is wrapped by errors for things that do not exist.
var ErrNotFound = errors.New("not found")

// ErrExists is wrapped by errors for creating what already exists.
var ErrExists = errors.New("already exists")

// FieldError is a problem with one field, named by its JSON path
// (gpus[0].slices[1].computeShare).
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists field problems; it becomes a 422 problem.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	for i, f := range e.Fields {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Field + ": " + f.Message)
	}
	return b.String()
}

func (e *ValidationError) add(field, format string, args ...any) {
	e.Fields = append(e.Fields, FieldError{field, sprintf(format, args...)})
}

func (e *ValidationError) orNil() error {
	if e == nil || len(e.Fields) == 0 {
		return nil
	}
	return e
}

// Event is one entry of the event log.
type Event struct {
	ID              uint64    `json:"id"`
	Time            time.Time `json:"time"`
	Kind            string    `json:"kind"` // api, reslice or policy
	Action          string    `json:"action"`
	Subject         string    `json:"subject,omitempty"`
	Actor           string    `json:"actor,omitempty"`
	Status          int       `json:"status,omitempty"`
	Detail          string    `json:"detail,omitempty"`
	DurationSeconds float64   `json:"durationSeconds,omitempty"`
}

// Event kinds.
const (
	KindAPI     = "api"
	KindReslice = "reslice"
	KindPolicy  = "policy"
)
