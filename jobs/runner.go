package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/kerf-edge/kerf/ingest"
	"github.com/kerf-edge/kerf/intercept/launcher"
	"github.com/kerf-edge/kerf/internal/clock"
)

// Readings is where the runner reads its jobs' triggers: the ingest
// engine, which windows the series of every watch.
type Readings interface {
	SetWatches([]ingest.Watch) error
	Reading(name string) (ingest.Reading, bool)
}

// Starter starts one instance of a job. kerfd's starts it through
// intercept/launcher, in a lease for the job's tenant.
type Starter interface {
	Start(ctx context.Context, j Job, instance string, out Output) (Process, error)
}

// Process is a started instance.
type Process interface {
	Signal(syscall.Signal) error
	// Wait waits for the program to end and releases its lease; the code
	// is the program's, or 128+n when signal n ended it.
	Wait() (int, error)
	// Memory is the device memory its lease holds, over all its slices.
	Memory() uint64
}

// Recorder takes the runner's events: the event log.
type Recorder interface {
	RecordJob(job, action, detail string, d time.Duration)
}

// Options configure a Runner; zero values take defaults.
type Options struct {
	Clock clock.Clock
	Log   *slog.Logger
	// Tick paces decisions; default 250ms.
	Tick time.Duration
	// MaxRunning bounds the instances running at once over all jobs;
	// default 16.
	MaxRunning int
	// MaxMemory bounds the device memory their leases hold together; 0:
	// only the node's capacity does.
	MaxMemory uint64
	// MinBackoff and MaxBackoff bound the wait after a crash: MinBackoff
	// after the first, doubling per crash in a row; defaults 1s and 5m.
	MinBackoff, MaxBackoff time.Duration
	// RunsKept: the recent runs each job keeps for the API; default 32.
	RunsKept int
	Output   OutputLimits
}

// Runner starts and stops the instances of triggered jobs. It owns their
// processes: it decides on every tick, from the engine's readings, and
// never blocks on a process.
type Runner struct {
	readings Readings // nil: load signals are off
	starter  Starter
	rec      Recorder
	opts     Options
	clock    clock.Clock
	log      *slog.Logger
	metrics  *Metrics

	mu      sync.Mutex
	jobs    map[string]*jobState
	running int    // instances over all jobs
	memory  uint64 // their leases' memory
	seq     uint64 // instance IDs
	exits   chan exit
}

// jobState is one job as the runner keeps it.
type jobState struct {
	def          Job
	sources      map[string]*sourceState
	order        []string // the sources allot wants instances for, in start order
	running      []*instance
	runs         []Run // recent, oldest first
	failures     int   // crashes in a row
	backoffUntil time.Time
	capacityWait time.Time // the node was full: no start before
	state        string
	reason       string
	decided      time.Time // when state or reason last changed
	removed      bool      // deleted: stop its instances, then forget it
}

// instance is one running process of a job.
type instance struct {
	id       string
	source   string
	started  time.Time
	memory   uint64
	proc     Process
	stopping time.Time // when SIGTERM was sent; zero while it runs
	stopWhy  string
	killed   bool
}

type exit struct {
	job  string
	inst *instance
	code int
	err  error
}

// New returns a runner. r may be nil: load signals are off, and only
// concurrency.min instances run.
func New(r Readings, s Starter, rec Recorder, m *Metrics, o Options) *Runner {
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Tick <= 0 {
		o.Tick = 250 * time.Millisecond
	}
	if o.MaxRunning <= 0 {
		o.MaxRunning = 16
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(o.MinBackoff, 5*time.Minute)
	}
	if o.RunsKept <= 0 {
		o.RunsKept = 32
	}
	if m == nil {
		m = NewMetrics()
	}
	return &Runner{readings: r, starter: s, rec: rec, opts: o, clock: o.Clock, log: o.Log, metrics: m,
		jobs: map[string]*jobState{}, exits: make(chan exit, 64)}
}

// SetJobs replaces the job definitions (each valid, as Validate left
// it). A job that keeps its name keeps its instances and history; a job
// whose trigger changed starts reading the new one at the next tick.
// Instances of removed jobs are stopped.
func (r *Runner) SetJobs(defs []Job) error {
	watches := make([]ingest.Watch, len(defs))
	for i, j := range defs {
		watches[i] = ingest.Watch{Name: j.Name, Trigger: j.Trigger}
	}
	if r.readings != nil {
		if err := r.readings.SetWatches(watches); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	keep := map[string]bool{}
	for _, j := range defs {
		keep[j.Name] = true
		if js := r.jobs[j.Name]; js != nil {
			js.def, js.removed = j, false
			continue
		}
		r.jobs[j.Name] = &jobState{def: j, sources: map[string]*sourceState{}, state: StateArmed, decided: r.clock.Now()}
	}
	for name, js := range r.jobs {
		if !keep[name] {
			js.removed = true
		}
	}
	return nil
}

// Run decides every tick and reaps exits until ctx ends; then it stops
// every instance (SIGTERM, SIGKILL after each job's grace) and waits for
// them.
func (r *Runner) Run(ctx context.Context) {
	t := time.NewTicker(r.opts.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			r.shutdown()
			return
		case ex := <-r.exits:
			r.reap(ex)
		case <-t.C:
			r.Step(ctx)
		}
	}
}

// Step runs one tick: reaps the exits that are in, then decides and acts
// for every job.
func (r *Runner) Step(ctx context.Context) {
	for drained := false; !drained; {
		select {
		case ex := <-r.exits:
			r.reap(ex)
		default:
			drained = true
		}
	}
	r.mu.Lock()
	names := make([]string, 0, len(r.jobs))
	for name := range r.jobs {
		names = append(names, name)
	}
	r.mu.Unlock()
	sort.Strings(names)
	for _, name := range names {
		r.stepJob(ctx, name)
	}
}

func (r *Runner) stepJob(ctx context.Context, name string) {
	var reading *ingest.Reading
	if r.readings != nil {
		if rd, ok := r.readings.Reading(name); ok {
			reading = &rd
		} else {
			reading = &ingest.Reading{}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	js := r.jobs[name]
	if js == nil {
		return
	}
	now := r.clock.Now()
	if js.removed {
		for _, in := range js.running {
			r.stop(js, in, "the job was deleted", now)
		}
		r.escalate(js, now)
		if len(js.running) == 0 {
			delete(r.jobs, name)
			r.metrics.forget(name)
		}
		return
	}
	p := js.decide(reading, now)
	for _, s := range p.stop {
		r.stop(js, s.inst, s.why, now)
	}
	r.escalate(js, now)
	for _, src := range p.start {
		if why := r.start(ctx, js, src, now); why != "" {
			p.state, p.reason = StateWaiting, why
			break
		}
	}
	if p.state != js.state || p.reason != js.reason {
		js.state, js.reason, js.decided = p.state, p.reason, now
	}
}

// start starts one instance of js for src; it returns why it could not.
func (r *Runner) start(ctx context.Context, js *jobState, src string, now time.Time) string {
	j := &js.def
	if r.running >= r.opts.MaxRunning {
		return fmt.Sprintf("jobs.max_running (%d) instances run on the node", r.opts.MaxRunning)
	}
	if need := j.Slice.MemoryBytes() * uint64(j.Slice.GPUs); r.opts.MaxMemory > 0 && r.memory+need > r.opts.MaxMemory {
		return fmt.Sprintf("jobs.max_memory: %d bytes held, %d more asked for, bound %d", r.memory, need, r.opts.MaxMemory)
	}
	r.seq++
	id := j.Name + "-" + strconv.FormatUint(r.seq, 10)
	out := Output{Log: r.log, Job: j.Name, Instance: id, Limits: r.opts.Output}
	proc, err := r.starter.Start(ctx, *j, id, out)
	if errors.Is(err, launcher.ErrNoCapacity) {
		// The node is full: not the job's fault. It retries after
		// MinBackoff, without counting a failure, so that a rule that
		// re-slices to make room is met at once.
		r.metrics.startFailed(j.Name)
		js.capacityWait = now.Add(r.opts.MinBackoff)
		return fmt.Sprintf("no capacity for an instance for source %s (%v); retrying at %s", sourceName(src), err, js.capacityWait.Format(time.RFC3339))
	}
	if err != nil {
		r.metrics.startFailed(j.Name)
		why := fmt.Sprintf("starting an instance for source %q: %v", src, err)
		r.log.Warn("job not started", "job", j.Name, "source", src, "err", err)
		// A start that fails (no capacity, a missing program) is retried
		// after a backoff, as a crash is.
		r.failed(js, now)
		r.rec.RecordJob(j.Name, "start-failed", why, 0)
		return why
	}
	if mem := proc.Memory(); r.opts.MaxMemory > 0 && r.memory+mem > r.opts.MaxMemory {
		// A fraction's memory is known once its lease is: over the bound,
		// the instance ends before it did anything.
		proc.Signal(syscall.SIGKILL)
		proc.Wait()
		return fmt.Sprintf("jobs.max_memory: %d bytes held, the lease holds %d more, bound %d", r.memory, mem, r.opts.MaxMemory)
	}
	in := &instance{id: id, source: src, started: now, memory: proc.Memory(), proc: proc}
	js.running = append(js.running, in)
	r.running++
	r.memory += in.memory
	r.metrics.running(j.Name, len(js.running))
	detail := fmt.Sprintf("instance %s started for source %s", id, sourceName(src))
	r.log.Info("job started", "job", j.Name, "instance", id, "source", src, "memory", in.memory)
	r.rec.RecordJob(j.Name, "start", detail, 0)
	go func() {
		code, err := proc.Wait()
		r.exits <- exit{job: j.Name, inst: in, code: code, err: err}
	}()
	return ""
}

func sourceName(src string) string {
	if src == "" {
		return "(concurrency.min)"
	}
	return src
}

// stop sends SIGTERM to in, once.
func (r *Runner) stop(js *jobState, in *instance, why string, now time.Time) {
	if !in.stopping.IsZero() {
		return
	}
	in.stopping, in.stopWhy = now, why
	r.log.Info("job stopping", "job", js.def.Name, "instance", in.id, "reason", why)
	if err := in.proc.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		r.log.Warn("job stop", "job", js.def.Name, "instance", in.id, "err", err)
	}
}

// escalate sends SIGKILL to instances still there a grace after SIGTERM.
func (r *Runner) escalate(js *jobState, now time.Time) {
	for _, in := range js.running {
		if !in.stopping.IsZero() && !in.killed && now.Sub(in.stopping) >= js.def.StopGrace.D() {
			in.killed = true
			r.log.Warn("job killed: still running after its stop grace", "job", js.def.Name, "instance", in.id, "grace", js.def.StopGrace.D())
			in.proc.Signal(syscall.SIGKILL)
		}
	}
}

// failed counts a crash (or a failed start) and sets the backoff.
func (r *Runner) failed(js *jobState, now time.Time) {
	js.failures++
	d := r.opts.MinBackoff << min(js.failures-1, 30)
	if d <= 0 || d > r.opts.MaxBackoff {
		d = r.opts.MaxBackoff
	}
	js.backoffUntil = now.Add(d)
}

// reap records an instance's end.
func (r *Runner) reap(ex exit) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	js := r.jobs[ex.job]
	if js == nil {
		return
	}
	i := slices.Index(js.running, ex.inst)
	if i < 0 {
		return
	}
	in := ex.inst
	js.running = slices.Delete(js.running, i, i+1)
	r.running--
	r.memory -= in.memory
	d := now.Sub(in.started)
	run := Run{Instance: in.id, Source: in.source, Started: in.started, Ended: now, ExitCode: ex.code, Reason: in.stopWhy}
	switch {
	case ex.err != nil:
		run.Outcome, run.Reason = OutcomeFailed, ex.err.Error()
	case !in.stopping.IsZero():
		run.Outcome = OutcomeStopped
		if in.killed {
			run.Reason += "; killed after its stop grace"
		}
	case ex.code == 0:
		run.Outcome = OutcomeSucceeded
	default:
		run.Outcome = OutcomeFailed
	}
	if run.Outcome == OutcomeFailed {
		r.failed(js, now)
	} else if run.Outcome == OutcomeSucceeded {
		js.failures, js.backoffUntil = 0, time.Time{}
	}
	if ss := js.sources[in.source]; ss != nil && js.def.Cooldown > 0 {
		ss.cooldown = now.Add(js.def.Cooldown.D())
	}
	js.runs = append(js.runs, run)
	if over := len(js.runs) - r.opts.RunsKept; over > 0 {
		js.runs = slices.Delete(js.runs, 0, over)
	}
	r.metrics.ended(js.def.Name, run.Outcome, d, len(js.running))
	detail := fmt.Sprintf("instance %s for source %s %s: exit code %d after %v", in.id, sourceName(in.source), run.Outcome, ex.code, d.Round(time.Millisecond))
	if run.Reason != "" {
		detail += " (" + run.Reason + ")"
	}
	level := slog.LevelInfo
	if run.Outcome == OutcomeFailed {
		level = slog.LevelWarn
	}
	attrs := []any{"job", js.def.Name, "instance", in.id, "source", in.source, "outcome", run.Outcome, "exit_code", ex.code, "duration", d}
	if run.Reason != "" {
		attrs = append(attrs, "reason", run.Reason)
	}
	r.log.Log(context.Background(), level, "job ended", attrs...)
	r.rec.RecordJob(js.def.Name, "exit", detail, d)
}

// shutdown stops every instance and waits for them, killing those still
// there after their grace. kerfd stops in wall-clock time, whatever clock
// the decisions read.
func (r *Runner) shutdown() {
	r.mu.Lock()
	now := r.clock.Now()
	var left []*instance
	grace := map[*instance]time.Duration{}
	for _, js := range r.jobs {
		for _, in := range js.running {
			r.stop(js, in, "kerfd is stopping", now)
			left = append(left, in)
			grace[in] = js.def.StopGrace.D()
		}
	}
	r.mu.Unlock()
	start := time.Now()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for len(left) > 0 {
		select {
		case ex := <-r.exits:
			r.reap(ex)
			left = slices.DeleteFunc(left, func(in *instance) bool { return in == ex.inst })
		case <-t.C:
			for _, in := range left {
				if !in.killed && time.Since(start) >= grace[in] {
					in.killed = true
					in.proc.Signal(syscall.SIGKILL)
				}
			}
		}
	}
}

// runningFor counts js's instances for src that are not stopping.
func (js *jobState) runningFor(src string) int {
	n := 0
	for _, in := range js.running {
		if in.source == src && in.stopping.IsZero() {
			n++
		}
	}
	return n
}

// runningBySource counts the instances not stopping, by source.
func (js *jobState) runningBySource() map[string]int {
	m := map[string]int{}
	for _, in := range js.running {
		if in.stopping.IsZero() {
			m[in.source]++
		}
	}
	return m
}

// newestRunning is src's newest instance that is neither stopping nor in
// stops already.
func (js *jobState) newestRunning(src string, stops []stopOrder) *instance {
	for i := len(js.running) - 1; i >= 0; i-- {
		in := js.running[i]
		if in.source == src && in.stopping.IsZero() && !slices.ContainsFunc(stops, func(s stopOrder) bool { return s.inst == in }) {
			return in
		}
	}
	return nil
}
