package profiles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/profiles/api"
)

// Node is the live node: the slicer and the transport server behind one
// face. Validate, Plan and Apply get profiles that already passed the
// checks of openapi.yaml and checkProfile. Validate may return a
// *ValidationError to point at fields; any other error is reported whole.
// DeleteProfile forgets a profile the operator deleted; an error wrapping
// ErrInUse keeps it (the node runs it). Evict returns an error wrapping
// ErrNotFound for an unknown tenant.
type Node interface {
	GPUs() []api.GPU
	Slices() []api.Slice
	Tenants() []api.Tenant
	Validate(p api.Profile) error
	Plan(ctx context.Context, p api.Profile, opts ApplyOptions) (api.Plan, error)
	Apply(ctx context.Context, p api.Profile, opts ApplyOptions) (api.Plan, error)
	DeleteProfile(name string) error
	Evict(ctx context.Context, tenant string) error
}

// ApplyOptions tune a re-slice.
type ApplyOptions struct {
	// Force lets the profile shrink held slices below what their tenants
	// were granted (never below what they use).
	Force bool
}

// TenantPolicies reads and sets each tenant's policy: its GPU limit, idle
// timeout and memory cap. TenantPolicy answers with the default policy
// (Own false) for a tenant without one.
type TenantPolicies interface {
	TenantPolicy(tenant string) api.TenantPolicy
	SetTenantPolicy(tenant string, p api.TenantPolicy) (api.TenantPolicy, error)
}

// Tokens issues and revokes tenant tokens; *auth.TokenStore
// implements it.
type Tokens interface {
	Issue(tenant string, memLimit uint64) (string, error)
	// Replace issues a token and revokes the tenant's earlier ones.
	Replace(tenant string, memLimit uint64) (string, int, error)
	Revoke(tenant string) (int, error)
	List() []auth.TokenRecord
}

var _ Tokens = (*auth.TokenStore)(nil)

// RuleValidator checks policy rule documents before they are stored, and
// tells the API of the rules it does not store: those of kerfd's config
// file, which it lists read-only.
type RuleValidator interface {
	// ValidateRule checks r.Rule as the rule r.Name joining others (every
	// other rule: the config file's and the stored ones) on a node whose
	// stored profiles are profiles. It may return a *ValidationError;
	// field paths are relative to the document.
	ValidateRule(r api.Rule, others []api.Rule, profiles []string) error
	// ConfigRules are the config file's rules.
	ConfigRules() []api.Rule
	// RuleState says whether r, as listed, is in force and, if not, why.
	RuleState(r api.Rule) (state api.RuleState, reason string)
	// RuleActivity says where r, in force, stands; false when it is not
	// in force.
	RuleActivity(r api.Rule) (RuleActivity, bool)
	// RulesChanged is called once a rule was stored or deleted; it
	// returns when the rules in force reflect the change (or soon after,
	// if that takes long), so that the answer states the rule's state.
	RulesChanged()
}

// RuleActivity is where a rule in force stands, as the rule engine has
// it: its phase and why, and its latest decision.
type RuleActivity struct {
	Phase            api.RulePhase
	Why              string
	LastDecision     string
	LastDecisionTime time.Time
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
	// UnreadSeries are the series no rule reads, counted but not windowed.
	UnreadSeries uint64
	// Refused counts signals of new series refused, by reason.
	Refused map[string]uint64
}

// IngestStats reports ingest counters for the metrics.
type IngestStats interface {
	IngestStats() []IngestStat
}

// JobRunner checks triggered job documents before they are stored and
// reports what it does with them.
type JobRunner interface {
	// ValidateJob checks j.Job as the job j.Name. It may return a
	// *ValidationError; field paths are relative to the document.
	ValidateJob(j api.Job) error
	// JobRuns is the job's state, its running instances and recent runs;
	// false when the runner has not picked it up yet.
	JobRuns(name string) (api.JobRuns, bool)
	// JobsChanged is called once a job was stored or deleted; it returns
	// when the runner has the change.
	JobsChanged()
}

// Deps are what the API reads and drives. Node and Tokens are required.
type Deps struct {
	Node   Node
	Tokens Tokens
	Rules  RuleValidator // nil: any JSON object is a valid rule
	Jobs   JobRunner     // nil: any JSON object is a valid job, and none runs
	// Policies keeps tenant policies; nil: the policy endpoints answer
	// 501.
	Policies TenantPolicies
	Ingest   IngestStats // nil: no ingest metrics
	// Devices, nil without the embedded broker: its device endpoints then
	// answer 409.
	Devices Devices
	// Pool, nil outside a pool: its endpoints then answer 409.
	Pool Pool
	// Shared, nil outside a pool: profiles and rules are this node's
	// alone.
	Shared Shared
	Log    *slog.Logger // nil: slog.Default()
	// Ready, if set, is consulted by /readyz; an error makes it 503.
	Ready func() error
	// Collectors are further metrics served on /metrics.
	Collectors []prometheus.Collector
	// Reach, if set, gives the appliance's addresses and fingerprint (a
	// bundle without tenant or token), returned with an issued token; on
	// a pool member, its Pool names every member.
	Reach func() auth.Bundle
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
	// MetricsNode, when set (a pool member's name), labels every series
	// on /metrics node=MetricsNode.
	MetricsNode string
	// HistoryWindow is how far back /v1/history and the page reach;
	// HistoryStep its resolution (the node is sampled every step);
	// HistoryMaxSeries caps the load-signal series kept, and, apart, the
	// slice and tenant series. Defaults 15m, 5s, 20000.
	// AdminTokenFiles are where kerfd keeps copies of the admin token;
	// the sign-in page names them.
	AdminTokenFiles  []string
	HistoryWindow    time.Duration
	HistoryStep      time.Duration
	HistoryMaxSeries int
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
	if c.HistoryWindow <= 0 {
		c.HistoryWindow = 15 * time.Minute
	}
	if c.HistoryStep <= 0 {
		c.HistoryStep = 5 * time.Second
	}
	if c.HistoryMaxSeries <= 0 {
		c.HistoryMaxSeries = 20000
	}
}

// ErrNotFound is wrapped by errors for things that do not exist.
var ErrNotFound = errors.New("not found")

// ErrExists is wrapped by errors for creating what already exists.
var ErrExists = errors.New("already exists")

// ErrInUse is wrapped by errors for deleting what the node uses.
var ErrInUse = errors.New("in use")

// ErrBuiltIn is wrapped by errors for changing a built-in profile.
var ErrBuiltIn = errors.New("built in")

// ValidationError lists field problems; it becomes a 422 problem.
type ValidationError struct {
	Fields []api.FieldError
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
	e.Fields = append(e.Fields, api.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (e *ValidationError) orNil() error {
	if e == nil || len(e.Fields) == 0 {
		return nil
	}
	return e
}
