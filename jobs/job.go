package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"time"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/ingest"
	"github.com/kerf-edge/kerf/internal/units"
)

// Job is a triggered tenant: a program that kerfd starts in a lease of
// its own when a load signal calls for it, and stops when the signal
// falls away. The JSON form is the API's job document.
type Job struct {
	Name    string            `json:"name" yaml:"name"`
	Tenant  string            `json:"tenant" yaml:"tenant"`   // the tenant it runs as
	Command string            `json:"command" yaml:"command"` // an absolute path
	Args    []string          `json:"args,omitempty" yaml:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty" yaml:"env,omitempty"`
	// Dir is the working directory; default kerfd's state directory's jobs/.
	Dir   string `json:"dir,omitempty" yaml:"dir,omitempty"`
	Slice Slice  `json:"slice" yaml:"slice"`
	// Trigger is a rule's trigger: series, aggregate, window and
	// thresholds, read per source.
	Trigger ingest.Trigger `json:"trigger" yaml:"trigger"`
	// Behavior damps starts and stops as a rule's damps re-slices.
	Behavior    Behavior    `json:"behavior,omitzero" yaml:"behavior,omitempty"`
	Concurrency Concurrency `json:"concurrency,omitzero" yaml:"concurrency,omitempty"`
	// Cooldown: after an instance ends, at least this long before the
	// same source starts another.
	Cooldown ingest.Duration `json:"cooldown,omitempty" yaml:"cooldown,omitempty"`
	// TimeLimit: an instance still running this long is stopped; 0: none.
	TimeLimit ingest.Duration `json:"timeLimit,omitempty" yaml:"timeLimit,omitempty"`
	// StopGrace: how long a stopped instance has between SIGTERM and
	// SIGKILL; default 10s.
	StopGrace ingest.Duration `json:"stopGrace,omitempty" yaml:"stopGrace,omitempty"`
}

// Slice is what one instance asks for, as `kerf run` does: -n GPUs, each
// a fraction (-p) or an amount of memory (--memory).
type Slice struct {
	GPUs     int     `json:"gpus,omitempty" yaml:"gpus,omitempty"`         // default 1
	Fraction float64 `json:"fraction,omitempty" yaml:"fraction,omitempty"` // of a GPU, (0, 1]
	Memory   string  `json:"memory,omitempty" yaml:"memory,omitempty"`     // "512MiB", instead of fraction
}

// Behavior damps starts and stops: a source must stay at or above the
// threshold for ScaleUp's window before an instance starts for it, and
// below the activation threshold for ScaleDown's before its instances
// stop.
type Behavior struct {
	ScaleUp   ingest.Stabilization `json:"scaleUp,omitzero" yaml:"scaleUp,omitempty"`
	ScaleDown ingest.Stabilization `json:"scaleDown,omitzero" yaml:"scaleDown,omitempty"`
}

// Concurrency bounds the instances of a job.
type Concurrency struct {
	// Min instances run whatever the signal says (0: scale from zero).
	Min int `json:"min,omitempty" yaml:"min,omitempty"`
	// Max instances run at once, over all sources; default 1.
	Max int `json:"max,omitempty" yaml:"max,omitempty"`
	// PerSource: at most this many for one source; default 1. A source
	// asks for value/threshold instances (at least one), up to PerSource.
	PerSource int `json:"perSource,omitempty" yaml:"perSource,omitempty"`
}

// DefaultStopGrace is the time between SIGTERM and SIGKILL when a job
// gives none.
const DefaultStopGrace = 10 * time.Second

// Bounds on a job document, so one cannot hold unbounded memory.
const (
	maxArgs     = 256
	maxEnv      = 128
	maxArgBytes = 64 << 10 // command, args and env together
	maxInstance = 1024     // Concurrency.Max
)

var (
	jobNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// Decode reads a job document strictly (unknown fields refused), takes
// name from the document's location when the document names none, and
// validates it. A document that does not decode is a plain error; one
// that does but is not valid joins *ingest.FieldErrors.
func Decode(name string, doc []byte) (Job, error) {
	var j Job
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return j, fmt.Errorf("job %s: %w", name, err)
	}
	if j.Name == "" {
		j.Name = name
	}
	if j.Name != name {
		return j, &ingest.FieldError{Field: "name", Msg: fmt.Sprintf("%q differs from the job's name %q", j.Name, name)}
	}
	return Validate(j)
}

// Validate checks a job's fields and returns it with defaults filled in.
// The error joins one *ingest.FieldError per problem, named like
// trigger.window or concurrency.max.
func Validate(j Job) (Job, error) {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &ingest.FieldError{Field: field, Msg: fmt.Sprintf(format, a...)})
	}
	if !jobNameRE.MatchString(j.Name) {
		bad("name", "%q: want 1 to 63 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit", j.Name)
	}
	if err := auth.CheckTenantName(j.Tenant); err != nil {
		bad("tenant", "%v", err)
	}
	size := len(j.Command)
	switch {
	case j.Command == "":
		bad("command", "empty: want the program's absolute path")
	case !filepath.IsAbs(j.Command):
		bad("command", "%q: want an absolute path (kerfd does not search PATH)", j.Command)
	}
	if j.Dir != "" && !filepath.IsAbs(j.Dir) {
		bad("dir", "%q: want an absolute path", j.Dir)
	}
	if len(j.Args) > maxArgs {
		bad("args", "%d arguments: at most %d", len(j.Args), maxArgs)
	}
	for _, a := range j.Args {
		size += len(a)
	}
	if len(j.Env) > maxEnv {
		bad("env", "%d variables: at most %d", len(j.Env), maxEnv)
	}
	for k, v := range j.Env {
		size += len(k) + len(v)
		if !envNameRE.MatchString(k) {
			bad("env."+k, "not a variable name")
		}
	}
	if size > maxArgBytes {
		bad("args", "command, arguments and environment take %d bytes: at most %d", size, maxArgBytes)
	}
	validateSlice(&j.Slice, bad)
	validateTrigger(&j, bad, &errs)
	validateConcurrency(&j.Concurrency, bad)
	for _, f := range []struct {
		name string
		d    ingest.Duration
	}{{"cooldown", j.Cooldown}, {"timeLimit", j.TimeLimit}, {"stopGrace", j.StopGrace},
		{"behavior.scaleUp.stabilizationWindow", j.Behavior.ScaleUp.StabilizationWindow},
		{"behavior.scaleDown.stabilizationWindow", j.Behavior.ScaleDown.StabilizationWindow}} {
		if f.d < 0 {
			bad(f.name, "%v: must not be negative", f.d.D())
		}
	}
	if j.StopGrace == 0 {
		j.StopGrace = ingest.Duration(DefaultStopGrace)
	}
	return j, errors.Join(errs...)
}

func validateSlice(s *Slice, bad func(string, string, ...any)) {
	if s.GPUs == 0 {
		s.GPUs = 1
	}
	if s.GPUs < 1 || s.GPUs > 64 {
		bad("slice.gpus", "%d: want 1 to 64", s.GPUs)
	}
	switch {
	case s.Fraction != 0 && s.Memory != "":
		bad("slice", "give either fraction or memory, not both")
	case s.Fraction < 0 || s.Fraction > 1:
		bad("slice.fraction", "%v: want (0, 1]", s.Fraction)
	case s.Fraction == 0 && s.Memory == "":
		bad("slice", "give fraction (of a GPU, as -p) or memory (as --memory)")
	case s.Memory != "":
		if n, err := units.ParseBytes(s.Memory); err != nil {
			bad("slice.memory", "%v", err)
		} else if n == 0 {
			bad("slice.memory", "%q: want more than 0", s.Memory)
		}
	}
}

// validateTrigger checks the trigger as a rule's, naming fields as the
// job's.
func validateTrigger(j *Job, bad func(string, string, ...any), errs *[]error) {
	r, err := ingest.ValidateRule(ingest.Rule{Name: "job", Trigger: j.Trigger, Target: ingest.Target{Profile: "-", IdleProfile: "-"}})
	*errs = append(*errs, toErrs(ingest.FieldErrors(err))...)
	j.Trigger = r.Trigger
	if j.Trigger.Threshold <= 0 {
		bad("trigger.threshold", "%v: want above 0 (a source asks for value/threshold instances)", j.Trigger.Threshold)
	}
}

func toErrs(fes []*ingest.FieldError) []error {
	out := make([]error, len(fes))
	for i, fe := range fes {
		out[i] = fe
	}
	return out
}

func validateConcurrency(c *Concurrency, bad func(string, string, ...any)) {
	if c.Max == 0 {
		c.Max = max(1, c.Min)
	}
	if c.PerSource == 0 {
		c.PerSource = 1
	}
	if c.Min < 0 {
		bad("concurrency.min", "%d: must not be negative", c.Min)
	}
	if c.Max < 1 || c.Max > maxInstance {
		bad("concurrency.max", "%d: want 1 to %d", c.Max, maxInstance)
	} else if c.Min > c.Max {
		bad("concurrency.min", "%d exceeds max %d", c.Min, c.Max)
	}
	if c.PerSource < 1 || c.PerSource > c.Max {
		bad("concurrency.perSource", "%d: want 1 to max (%d)", c.PerSource, c.Max)
	}
}

// Memory is the memory one instance asks for per slice, 0 when it asks
// for a fraction.
func (s Slice) MemoryBytes() uint64 {
	n, _ := units.ParseBytes(s.Memory)
	return n
}
