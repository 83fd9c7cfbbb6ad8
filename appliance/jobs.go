package appliance

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/intercept/launcher"
	"github.com/kerf-edge/kerf/jobs"
	"github.com/kerf-edge/kerf/profiles"
	"github.com/kerf-edge/kerf/profiles/api"
)

// Triggered jobs are stored through the API; package jobs checks and runs
// them. kerfd starts their instances over its own Unix socket with tokens
// it keeps in memory, one per tenant, so a job needs no token of the
// operator's and none is ever written to the token file.

// jobAuth authenticates tenants by the token file, and the jobs' tokens.
type jobAuth struct {
	file *auth.TokenStore
	jobs *auth.TokenStore // in memory: gone when kerfd stops
}

var _ auth.Authenticator = jobAuth{}

// Authenticate implements auth.Authenticator.
func (a jobAuth) Authenticate(tok []byte) (auth.Tenant, error) {
	if t, err := a.jobs.Authenticate(tok); err == nil {
		return t, nil
	}
	return a.file.Authenticate(tok)
}

// jobBundles writes a bundle per tenant for the jobs' instances, with a
// token issued once per kerfd run.
type jobBundles struct {
	cfg   Config
	reach func() auth.Bundle
	store *auth.TokenStore
	mu    sync.Mutex
	paths map[string]string // by tenant
}

// bundle is the path of tenant's bundle, issuing its token first.
func (b *jobBundles) bundle(tenant string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.paths[tenant]; ok {
		return p, nil
	}
	tok, err := b.store.Issue(tenant, 0)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(b.cfg.JobsDir(), "bundles")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	bd := b.reach()
	bd.Tenant, bd.Token = tenant, tok
	path := filepath.Join(dir, tenant+".json")
	if err := auth.WriteBundle(path, bd); err != nil {
		return "", err
	}
	b.paths[tenant] = path
	return path, nil
}

// revoke ends tenant's job token with the tenant's others.
func (b *jobBundles) revoke(tenant string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.paths[tenant]; ok {
		b.store.Revoke(tenant)
		delete(b.paths, tenant)
	}
}

// jobSet is the API's view of the jobs: it checks documents and reports
// the runner's state. The runner exists once Run starts it.
type jobSet struct {
	enabled bool // jobs.enabled: without it no runner starts
	runner  atomic.Pointer[jobs.Runner]
	// resync asks a running syncJobs to read the store now.
	resync resync
}

var _ profiles.JobRunner = (*jobSet)(nil)

func newJobSet(enabled bool) *jobSet { return &jobSet{enabled: enabled, resync: make(resync)} }

// ValidateJob implements profiles.JobRunner.
func (s *jobSet) ValidateJob(j api.Job) error {
	_, err := jobs.Decode(j.Name, j.Job)
	if err == nil {
		return nil
	}
	ve := &profiles.ValidationError{}
	addFields(ve, err)
	if len(ve.Fields) == 0 {
		return err
	}
	return ve
}

// JobRuns implements profiles.JobRunner.
func (s *jobSet) JobRuns(name string) (api.JobRuns, bool) {
	if !s.enabled {
		return api.JobRuns{State: api.JobStateOff, Reason: "triggered jobs are off (jobs.enabled: false)",
			Running: []api.JobInstance{}, Runs: []api.JobRun{}}, true
	}
	r := s.runner.Load()
	if r == nil {
		return api.JobRuns{}, false
	}
	st, ok := r.Status(name)
	if !ok {
		return api.JobRuns{}, false
	}
	out := api.JobRuns{State: api.JobState(st.State), Reason: st.Reason, Decided: st.Decided, Failures: st.Failures,
		Running: make([]api.JobInstance, len(st.Running)), Runs: make([]api.JobRun, len(st.Runs))}
	for i, in := range st.Running {
		out.Running[i] = api.JobInstance{ID: in.ID, Source: in.Source, Started: in.Started, MemoryBytes: in.Memory, Stopping: in.Stopping}
	}
	for i, r := range st.Runs {
		out.Runs[i] = api.JobRun{Instance: r.Instance, Source: r.Source, Started: r.Started, Ended: r.Ended,
			ExitCode: r.ExitCode, Outcome: api.JobRunOutcome(r.Outcome), Reason: r.Reason}
	}
	return out, true
}

// JobsChanged implements profiles.JobRunner: it has syncJobs read the
// store now and waits for it, for a second at most.
func (s *jobSet) JobsChanged() {
	if s.enabled {
		s.resync.request()
	}
}

// jobsPoll paces how often the stored jobs are read again; a job written
// through the API reaches the runner at once, by JobsChanged.
const jobsPoll = 5 * time.Second

// syncJobs keeps the runner's jobs equal to the stored ones until ctx
// ends, logging a stored job it cannot run once per change.
func (s *jobSet) syncJobs(ctx context.Context, store *profiles.Store, r *jobs.Runner, log *slog.Logger) {
	var last string
	t := time.NewTicker(jobsPoll)
	defer t.Stop()
	var done chan struct{}
	for {
		stored, err := store.Jobs()
		if err != nil {
			log.Warn("reading triggered jobs", "err", err)
		} else if key := jobsKey(stored); key != last {
			last = key
			var defs []jobs.Job
			for _, sj := range stored {
				j, err := jobs.Decode(sj.Name, sj.Job)
				if err != nil {
					log.Warn("triggered job skipped", "job", sj.Name, "err", err)
					continue
				}
				defs = append(defs, j)
			}
			if err := r.SetJobs(defs); err != nil {
				log.Error("triggered jobs not applied", "err", err)
			} else {
				log.Info("triggered jobs in force", "jobs", len(defs))
			}
		}
		var more bool
		if done, more = s.resync.next(ctx, t.C, done); !more {
			return
		}
	}
}

// jobsKey fingerprints the stored jobs, to tell when they changed.
func jobsKey(js []api.Job) string {
	b, _ := json.Marshal(js)
	return string(b)
}

// startJobs starts the runner of triggered jobs, reading triggers from in
// (nil: load signals are off). The returned function stops it and waits
// for its instances to end.
func (a *Appliance) startJobs(ctx context.Context, in *Ingest) (stop func()) {
	if !a.cfg.Jobs.Enabled {
		return func() {}
	}
	shim := a.cfg.Jobs.ShimDir
	if shim == "" {
		shim = launcher.DefaultShimDir()
	}
	if _, err := os.Stat(filepath.Join(shim, "libcuda.so.1")); err != nil {
		a.log.Warn("triggered jobs cannot reach the GPU: no libcuda.so.1 in jobs.shim_dir", "dir", shim)
	}
	st := &jobs.Launcher{ShimDir: shim, Bundle: a.jobBundles.bundle, Dir: filepath.Join(a.cfg.JobsDir(), "work"), PATH: os.Getenv("PATH")}
	var readings jobs.Readings
	if in != nil {
		readings = in.Engine
	}
	o := a.cfg.Jobs.options()
	o.Log = a.log
	r := jobs.New(readings, st, a.api, a.jobMetrics, o)
	a.jobs.runner.Store(r)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	go a.jobs.syncJobs(ctx, a.api.Store(), r, a.log)
	return func() { cancel(); <-done }
}
