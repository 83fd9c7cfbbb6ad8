package jobs

import (
	"slices"
	"time"
)

// Outcomes of a run.
const (
	OutcomeSucceeded = "succeeded" // exited 0 on its own
	OutcomeFailed    = "failed"    // exited non-zero, or by a signal, on its own: a crash
	OutcomeStopped   = "stopped"   // stopped by kerfd: the signal fell away, the time limit, a delete
)

// Run is one ended instance.
type Run struct {
	Instance string    `json:"instance"`
	Source   string    `json:"source,omitempty"`
	Started  time.Time `json:"started"`
	Ended    time.Time `json:"ended"`
	ExitCode int       `json:"exitCode"`
	Outcome  string    `json:"outcome"`
	Reason   string    `json:"reason,omitempty"`
}

// Instance is one running instance.
type Instance struct {
	ID       string    `json:"id"`
	Source   string    `json:"source,omitempty"`
	Started  time.Time `json:"started"`
	Memory   uint64    `json:"memory"`
	Stopping bool      `json:"stopping"`
}

// Status is a job as the runner has it now.
type Status struct {
	State    string     `json:"state"`
	Reason   string     `json:"reason"`
	Decided  time.Time  `json:"decided"`
	Failures int        `json:"failures"`
	Running  []Instance `json:"running"`
	Runs     []Run      `json:"runs"` // oldest first
}

// Status reports the named job; false when the runner does not have it
// (yet: SetJobs has not been given it).
func (r *Runner) Status(name string) (Status, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	js := r.jobs[name]
	if js == nil || js.removed {
		return Status{}, false
	}
	st := Status{State: js.state, Reason: js.reason, Decided: js.decided, Failures: js.failures,
		Runs: slices.Clone(js.runs), Running: make([]Instance, 0, len(js.running))}
	for _, in := range js.running {
		st.Running = append(st.Running, Instance{ID: in.id, Source: in.source, Started: in.started, Memory: in.memory, Stopping: !in.stopping.IsZero()})
	}
	return st, true
}

// Totals are the runner's instances and their memory, over all jobs.
func (r *Runner) Totals() (running int, memory uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running, r.memory
}
