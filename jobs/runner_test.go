package jobs

import (
	"bytes"
	"context"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/ingest"
	"github.com/kerf-edge/kerf/internal/clock"
	"github.com/kerf-edge/kerf/internal/testkit"
)

// procStarter runs a job's command as a plain process, without a lease:
// the runner's decisions and process handling, tested with real processes.
type procStarter struct{}

type proc struct{ cmd *exec.Cmd }

func (procStarter) Start(_ context.Context, j Job, _ string, out Output) (Process, error) {
	cmd := exec.Command(j.Command, j.Args...)
	cmd.Stdout, cmd.Stderr = out.Writer("stdout"), out.Writer("stderr")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return proc{cmd}, nil
}

func (p proc) Signal(s syscall.Signal) error { return syscall.Kill(-p.cmd.Process.Pid, s) }
func (p proc) Memory() uint64                { return 1 << 20 }
func (p proc) Wait() (int, error) {
	err := p.cmd.Wait()
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	if err != nil && p.cmd.ProcessState == nil {
		return 0, err
	}
	return p.cmd.ProcessState.ExitCode(), nil
}

// events records what the runner reports.
type events struct {
	mu  sync.Mutex
	got []string
}

func (e *events) RecordJob(job, action, _ string, _ time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, job+" "+action)
}

type rig struct {
	t   *testing.T
	clk *clock.Fake
	eng *ingest.Engine
	r   *Runner
	ev  *events
	log *testkit.SyncBuffer
}

func newRig(t *testing.T, o Options, defs ...Job) *rig {
	t.Helper()
	clk := clock.NewFake(time.Time{})
	eng, err := ingest.NewEngine(nil, nil, ingest.EngineOptions{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	o.Clock = clk
	log := &testkit.SyncBuffer{}
	o.Log = slog.New(slog.NewTextHandler(log, nil))
	ev := &events{}
	r := New(eng, procStarter{}, ev, nil, o)
	for i := range defs {
		v, err := Validate(defs[i])
		if err != nil {
			t.Fatal(err)
		}
		defs[i] = v
	}
	if err := r.SetJobs(defs); err != nil {
		t.Fatal(err)
	}
	rg := &rig{t: t, clk: clk, eng: eng, r: r, ev: ev, log: log}
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r.Run(ctx) // stops and waits for every instance
	})
	return rg
}

func (rg *rig) signal(source string, metric string, v float64) {
	now := rg.clk.Now()
	rg.eng.Add(ingest.Signal{Topic: ingest.Topic{Site: "s", Node: "n", Kind: ingest.KindLoad, Source: source},
		Metric: metric, Name: metric, Value: v, Time: now, Arrived: now})
}

func (rg *rig) status(name string) Status {
	st, ok := rg.r.Status(name)
	if !ok {
		rg.t.Fatalf("no job %s", name)
	}
	return st
}

// stepUntil steps the runner (reaping exits) until cond holds.
func (rg *rig) stepUntil(what string, cond func() bool) {
	rg.t.Helper()
	testkit.WaitFor(rg.t, what, func() bool { rg.r.Step(context.Background()); return cond() })
}

func sleeper(name string) Job {
	return Job{Name: name, Tenant: "t", Command: "/bin/sleep", Args: []string{"60"}, Slice: Slice{Fraction: 0.1},
		Trigger:   ingest.Trigger{Source: "s/n/*", Metric: "queue", Aggregate: "max", Window: ingest.Duration(10 * time.Second), Threshold: 10},
		StopGrace: ingest.Duration(5 * time.Second)}
}

// A source wants value/threshold instances up to perSource, max caps them
// all, and the stabilisation windows hold starts and stops back.
func TestWantsStabiliseAndAreCapped(t *testing.T) {
	j := sleeper("q")
	j.Concurrency = Concurrency{Max: 3, PerSource: 2}
	j.Behavior.ScaleUp.StabilizationWindow = ingest.Duration(5 * time.Second)
	j.Behavior.ScaleDown.StabilizationWindow = ingest.Duration(5 * time.Second)
	rg := newRig(t, Options{}, j)
	ctx := context.Background()
	rg.r.Step(ctx)
	if st := rg.status("q"); st.State != StateArmed {
		t.Fatalf("with no signal: %s (%s)", st.State, st.Reason)
	}
	rg.signal("cam-a", "queue", 35) // wants 3, capped at perSource 2
	rg.signal("cam-b", "queue", 15) // wants 1
	rg.signal("cam-c", "queue", 12) // wants 1: max 3 leaves it none
	rg.r.Step(ctx)
	if st := rg.status("q"); st.State != StateStabilising || len(st.Running) != 0 {
		t.Fatalf("within the scale-up window: %s (%s), %d running", st.State, st.Reason, len(st.Running))
	}
	rg.clk.Advance(5 * time.Second)
	rg.r.Step(ctx)
	st := rg.status("q")
	by := map[string]int{}
	for _, in := range st.Running {
		by[in.Source]++
	}
	if st.State != StateFiring || len(st.Running) != 3 || by["s/n/cam-a"] != 2 || by["s/n/cam-b"] != 1 {
		t.Fatalf("after the window: %s (%s), running %v", st.State, st.Reason, by)
	}
	// cam-a clears: its samples leave the window; the others stay hot.
	rg.clk.Advance(11 * time.Second)
	rg.signal("cam-a", "queue", 0)
	rg.signal("cam-b", "queue", 15)
	rg.signal("cam-c", "queue", 12)
	rg.r.Step(ctx)
	if st := rg.status("q"); st.State != StateStabilising || len(st.Running) != 3 {
		t.Fatalf("within the scale-down window: %s (%s), %d running", st.State, st.Reason, len(st.Running))
	}
	rg.clk.Advance(5 * time.Second)
	rg.signal("cam-b", "queue", 15)
	rg.signal("cam-c", "queue", 12)
	rg.stepUntil("cam-a's instances stopped and cam-c's started", func() bool {
		st = rg.status("q")
		return len(st.Runs) == 2 && len(st.Running) == 2
	})
	for _, run := range st.Runs {
		if run.Source != "s/n/cam-a" || run.Outcome != OutcomeStopped || run.ExitCode != 128+int(syscall.SIGTERM) || run.Reason != "the signal fell away" {
			t.Fatalf("run %+v", run)
		}
	}
	if n, _ := rg.r.Totals(); n != 2 {
		t.Fatalf("%d instances counted, want 2", n)
	}
}

// concurrency.min instances run with no signal at all; the time limit
// stops an instance, and jobs.max_running holds the rest back.
func TestMinTimeLimitAndNodeBound(t *testing.T) {
	j := sleeper("warm")
	j.Concurrency = Concurrency{Min: 3, Max: 3}
	j.TimeLimit = ingest.Duration(time.Minute)
	rg := newRig(t, Options{MaxRunning: 2}, j)
	rg.r.Step(context.Background())
	st := rg.status("warm")
	if len(st.Running) != 2 || st.State != StateWaiting || !strings.Contains(st.Reason, "jobs.max_running") {
		t.Fatalf("min 3 under max_running 2: %d running, %s (%s)", len(st.Running), st.State, st.Reason)
	}
	rg.clk.Advance(time.Minute)
	rg.stepUntil("both stopped at the time limit", func() bool { return len(rg.status("warm").Runs) == 2 })
	for _, run := range rg.status("warm").Runs {
		if run.Outcome != OutcomeStopped || !strings.Contains(run.Reason, "time limit") {
			t.Fatalf("run %+v", run)
		}
	}
}

// Deleting a job stops its instances and forgets it once they are gone.
func TestDeletedJobStops(t *testing.T) {
	j := sleeper("gone")
	j.Concurrency = Concurrency{Min: 1}
	rg := newRig(t, Options{}, j)
	rg.r.Step(context.Background())
	if len(rg.status("gone").Running) != 1 {
		t.Fatal("min instance not started")
	}
	if err := rg.r.SetJobs(nil); err != nil {
		t.Fatal(err)
	}
	rg.stepUntil("the job forgotten", func() bool { n, _ := rg.r.Totals(); _, ok := rg.r.Status("gone"); return n == 0 && !ok })
	rg.ev.mu.Lock()
	defer rg.ev.mu.Unlock()
	if strings.Join(rg.ev.got, ",") != "gone start,gone exit" {
		t.Fatalf("events %v", rg.ev.got)
	}
}

// An instance that ignores SIGTERM is killed after its stop grace.
func TestStopGraceEscalatesToKill(t *testing.T) {
	j := sleeper("stubborn")
	j.Command, j.Args = "/bin/sh", []string{"-c", "trap '' TERM; echo ready; while :; do sleep 1; done"}
	j.Concurrency = Concurrency{Min: 1}
	j.TimeLimit = ingest.Duration(time.Minute)
	j.StopGrace = ingest.Duration(100 * time.Millisecond)
	rg := newRig(t, Options{}, j)
	rg.r.Step(context.Background())
	testkit.WaitFor(t, "the trap set", func() bool { return strings.Contains(rg.log.String(), "line=ready") })
	rg.clk.Advance(time.Minute)
	rg.r.Step(context.Background())
	if st := rg.status("stubborn"); len(st.Running) != 1 || !st.Running[0].Stopping {
		t.Fatalf("after the time limit: %+v", st.Running)
	}
	rg.clk.Advance(j.StopGrace.D())
	rg.stepUntil("the instance killed", func() bool { return len(rg.status("stubborn").Runs) == 1 })
	if run := rg.status("stubborn").Runs[0]; run.ExitCode != 128+int(syscall.SIGKILL) || !strings.Contains(run.Reason, "killed after its stop grace") {
		t.Fatalf("run %+v", run)
	}
}

// Output lines reach the log cut at MaxLine, at most Burst at once; the
// rest are counted as dropped.
func TestOutputIsBounded(t *testing.T) {
	var buf bytes.Buffer
	o := Output{Log: slog.New(slog.NewTextHandler(&buf, nil)), Job: "j", Instance: "j-1", Limits: OutputLimits{MaxLine: 100, PerSecond: 1, Burst: 3}}
	w := o.Writer("stdout")
	w.Write([]byte("first\nsec"))
	w.Write([]byte("ond\n" + strings.Repeat("x", 250) + "\n"))
	for range 10 {
		w.Write([]byte("flood\n"))
	}
	w.Close()
	out := buf.String()
	for _, want := range []string{`line=first`, `line=second`, `line=` + strings.Repeat("x", 100) + ` cut_at=100`, `msg="job output dropped"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "flood") || strings.Contains(out, strings.Repeat("x", 101)) {
		t.Errorf("the rate or the line bound did not hold:\n%s", out)
	}
}

// jobs.max_memory bounds the memory instances' leases hold together: an
// instance whose lease would pass it ends at once, and the job waits.
func TestMemoryBound(t *testing.T) {
	j := sleeper("mem")
	j.Concurrency = Concurrency{Min: 3, Max: 3}
	rg := newRig(t, Options{MaxMemory: 5 << 19}, j) // two and a half of procStarter's 1MiB leases
	rg.r.Step(context.Background())
	st := rg.status("mem")
	if len(st.Running) != 2 || st.State != StateWaiting || !strings.Contains(st.Reason, "jobs.max_memory") {
		t.Fatalf("under max_memory: %d running, %s (%s)", len(st.Running), st.State, st.Reason)
	}
	if n, mem := rg.r.Totals(); n != 2 || mem != 2<<20 {
		t.Fatalf("totals %d instances, %d bytes", n, mem)
	}
}
