package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/internal/testkit"
	"github.com/kerf-edge/kerf/profiles/api"
	"github.com/kerf-edge/kerf/profiles/client"
)

var (
	jobBinOnce sync.Once
	jobBinDir  string
	jobBinErr  error
)

// jobBinaries builds the shim and the C programs jobs run (once per test
// binary) and returns their directory.
func jobBinaries(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no gcc")
	}
	jobBinOnce.Do(func() {
		jobBinDir, jobBinErr = os.MkdirTemp("", "kerf-jobs-test")
		if jobBinErr != nil {
			return
		}
		src := "../intercept/testdata"
		for _, args := range [][]string{
			{"go", "build", "-buildmode=c-shared", "-o", filepath.Join(jobBinDir, "libcuda.so.1"), "github.com/kerf-edge/kerf/intercept"},
			{"gcc", "-I../abi/include", "-I" + src, "-o", filepath.Join(jobBinDir, "vadd"), src + "/vadd.c", "-L" + jobBinDir, "-l:libcuda.so.1"},
			{"gcc", "-I../abi/include", "-I" + src, "-o", filepath.Join(jobBinDir, "hold"), src + "/hold.c", "-L" + jobBinDir, "-l:libcuda.so.1"},
		} {
			if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
				jobBinErr = fmt.Errorf("%v: %v\n%s", args, err, out)
				return
			}
		}
	})
	if jobBinErr != nil {
		t.Fatal(jobBinErr)
	}
	return jobBinDir
}

// jobKerfd is a kerfd with the embedded broker, jobs on a fast tick, and
// its log kept.
type jobKerfd struct {
	a   *Appliance
	c   *client.Client
	log *testkit.SyncBuffer
}

// jobsYAML is a config with the embedded broker on free ports and jobs
// on a fast tick, running the shim in bin; more is added to the ingest
// section.
func jobsYAML(bin, more string) string {
	return `
ingest:` + more + `
  site: plant-1
  node: line-2
  broker:
    embedded:
      nats_listen: "127.0.0.1:0"
      mqtt_listen: "127.0.0.1:0"
jobs:
  tick: 20ms
  min_backoff: 100ms
  max_backoff: 400ms
  shim_dir: ` + bin + "\n"
}

// startJobKerfd starts kerfd with the config conf on the emulated GPU.
func startJobKerfd(t *testing.T, conf string) *jobKerfd {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "kerfd.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path, []string{"KERF_STATE_DIR=" + dir, "KERF_LISTEN__QUIC=127.0.0.1:0", "KERF_LISTEN__HTTP=127.0.0.1:0",
		"KERF_GPU__BACKEND=emulated", "KERF_GPU__EMULATED__MEMORY=1GiB"})
	if err != nil {
		t.Fatal(err)
	}
	var buf testkit.SyncBuffer
	a := startLogged(t, cfg, slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kerfd's log:\n%s", buf.String())
		}
	})
	testkit.WaitFor(t, "the embedded broker", func() bool { return a.ingest.Load() != nil })
	tok, err := a.api.RotateAdminToken()
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(a.api)
	t.Cleanup(ts.Close)
	return &jobKerfd{a: a, c: client.New(ts.URL, tok), log: &buf}
}

func (k *jobKerfd) put(t *testing.T, name, doc string) {
	t.Helper()
	if _, err := k.c.PutJob(context.Background(), api.Job{Name: name, Job: json.RawMessage(doc)}); err != nil {
		t.Fatalf("put job %s: %v", name, err)
	}
}

func (k *jobKerfd) runs(t *testing.T, name string) api.JobRuns {
	t.Helper()
	r, err := k.c.JobRuns(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tenantSlices counts the live slices tenant holds.
func (k *jobKerfd) tenantSlices(tenant string) int {
	n := 0
	for _, s := range k.a.node.Slices() {
		if s.Tenant == tenant {
			n++
		}
	}
	return n
}

// jobMetric is the value of a job series with the given labels, -1 when
// there is none.
func (k *jobKerfd) jobMetric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := k.a.api.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

// A signal from three cameras starts three instances of an inference
// job, each on its own slice through the shim; they run vadd and exit,
// their slices are freed, and the metrics, the event log and kerfd's log
// record it.
func TestSignalStartsJobsThatRunAndExit(t *testing.T) {
	bin := jobBinaries(t)
	k := startJobKerfd(t, jobsYAML(bin, ""))
	ptx, _ := filepath.Abs("../gpu/emu/kernels/vadd.ptx")
	k.put(t, "infer", fmt.Sprintf(`{"tenant":"vision","command":%q,"args":[%q],"slice":{"fraction":0.1},
		"trigger":{"source":"plant-1/line-2/cam-*","metric":"queue_depth","aggregate":"max","window":"1m","threshold":100},
		"concurrency":{"max":3},"cooldown":"1h"}`, filepath.Join(bin, "vadd"), ptx))
	testkit.WaitFor(t, "the job armed", func() bool { return k.runs(t, "infer").State == api.JobStateArmed })

	c := mqttClient(t, k.a.ingest.Load().Broker.MQTTAddr(), "cams", nil)
	for _, cam := range []string{"cam-01", "cam-02", "cam-03"} {
		publish(t, c, "edge/v1/plant-1/line-2/load/"+cam, 1, false, `[{"n":"queue_depth","v":120}]`)
	}
	var r api.JobRuns
	testkit.WaitForWithin(t, time.Minute, "three runs to end", func() bool { r = k.runs(t, "infer"); return len(r.Runs) == 3 })
	sources := map[string]bool{}
	for _, run := range r.Runs {
		if run.Outcome != "succeeded" || run.ExitCode != 0 {
			t.Fatalf("run %+v; log:\n%s", run, k.log.String())
		}
		sources[run.Source] = true
	}
	if len(sources) != 3 {
		t.Fatalf("runs for sources %v, want one per camera", sources)
	}
	// Each camera's cooldown holds: nothing runs, nothing more starts.
	if r.State != api.JobStateCoolingDown || len(r.Running) != 0 {
		t.Fatalf("after the runs: %s (%s), %d running", r.State, r.Reason, len(r.Running))
	}
	testkit.WaitFor(t, "the slices freed", func() bool { return k.tenantSlices("vision") == 0 })
	if got := k.jobMetric(t, "kerf_job_runs_total", map[string]string{"job": "infer", "outcome": "succeeded"}); got != 3 {
		t.Fatalf("kerf_job_runs_total{outcome=succeeded} = %g, want 3", got)
	}
	if got := k.jobMetric(t, "kerf_job_run_duration_seconds", map[string]string{"job": "infer"}); got != 3 {
		t.Fatalf("kerf_job_run_duration_seconds counts %g runs, want 3", got)
	}
	if got := k.jobMetric(t, "kerf_job_instances_running", map[string]string{"job": "infer"}); got != 0 {
		t.Fatalf("kerf_job_instances_running = %g", got)
	}
	testkit.WaitFor(t, "three starts and three exits in the event log", func() bool {
		evs, err := k.a.api.Store().Events(100, 0, api.EventKindJob)
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]int{}
		for _, e := range evs {
			if e.Subject == "infer" {
				n[e.Action]++
				if e.Action == "exit" && !strings.Contains(e.Detail, "exit code 0") {
					t.Fatalf("exit event %q", e.Detail)
				}
			}
		}
		return n["start"] == 3 && n["exit"] == 3
	})
	if out := k.log.String(); strings.Count(out, "line=\"vadd ok\"") != 3 {
		t.Fatalf("kerfd's log has %d vadd ok lines, want 3:\n%s", strings.Count(out, "line=\"vadd ok\""), out)
	}
}

// A long-running job is stopped when its signal falls away: SIGTERM ends
// it (exit code 143), its slice is freed, and the run says why.
func TestSignalFallingAwayStopsAJob(t *testing.T) {
	bin := jobBinaries(t)
	k := startJobKerfd(t, jobsYAML(bin, ""))
	k.put(t, "hold", fmt.Sprintf(`{"tenant":"vision","command":%q,"slice":{"memory":"64MiB"},
		"trigger":{"source":"plant-1/line-2/*","metric":"backlog","aggregate":"max","window":"1s","threshold":10,"activationThreshold":5},
		"stopGrace":"5s"}`, filepath.Join(bin, "hold")))
	c := mqttClient(t, k.a.ingest.Load().Broker.MQTTAddr(), "cam-09", nil)
	// The camera reports its backlog every 200 ms, as devices do, so the
	// signal holds however long the instance takes to start.
	var reported time.Time
	testkit.WaitFor(t, "the instance to hold its memory", func() bool {
		if time.Since(reported) >= 200*time.Millisecond {
			publish(t, c, "edge/v1/plant-1/line-2/load/cam-09", 1, false, `[{"n":"backlog","v":50}]`)
			reported = time.Now()
		}
		return strings.Contains(k.log.String(), `line="holding pid`)
	})
	r := k.runs(t, "hold")
	if r.State != api.JobStateFiring || len(r.Running) != 1 || r.Running[0].Source != "plant-1/line-2/cam-09" || r.Running[0].MemoryBytes != 64<<20 {
		t.Fatalf("while the signal holds: %+v", r)
	}
	if n := k.tenantSlices("vision"); n != 1 {
		t.Fatalf("%d slices held, want 1", n)
	}
	// The backlog clears: once the 50 leaves the 1s window the job stops.
	publish(t, c, "edge/v1/plant-1/line-2/load/cam-09", 1, false, `[{"n":"backlog","v":0}]`)
	testkit.WaitFor(t, "the instance stopped", func() bool { r = k.runs(t, "hold"); return len(r.Runs) == 1 })
	if run := r.Runs[0]; run.Outcome != "stopped" || run.ExitCode != 143 || run.Reason != "the signal fell away" {
		t.Fatalf("run %+v", run)
	}
	testkit.WaitFor(t, "the slice freed", func() bool { return k.tenantSlices("vision") == 0 })
	if got := k.jobMetric(t, "kerf_job_runs_total", map[string]string{"job": "hold", "outcome": "stopped"}); got != 1 {
		t.Fatalf("kerf_job_runs_total{outcome=stopped} = %g", got)
	}
}

// A job that crashes at every start backs off: each start waits twice as
// long after the last crash as the one before, up to the bound, and the
// job says it is backing off.
func TestCrashingJobBacksOff(t *testing.T) {
	bin := jobBinaries(t)
	k := startJobKerfd(t, jobsYAML(bin, ""))
	k.put(t, "crash", `{"tenant":"vision","command":"/bin/sh","args":["-c","echo about to fail >&2; exit 3"],"slice":{"fraction":0.1},
		"trigger":{"source":"plant-1/line-2/*","metric":"crash","threshold":1}}`)
	c := mqttClient(t, k.a.ingest.Load().Broker.MQTTAddr(), "cam-crash", nil)
	publish(t, c, "edge/v1/plant-1/line-2/load/cam-crash", 1, false, `[{"n":"crash","v":5}]`)
	var r api.JobRuns
	testkit.WaitForWithin(t, 30*time.Second, "five crashes", func() bool { r = k.runs(t, "crash"); return len(r.Runs) >= 5 })
	for i, run := range r.Runs {
		if run.Outcome != "failed" || run.ExitCode != 3 {
			t.Fatalf("run %d: %+v", i, run)
		}
		if i == 0 {
			continue
		}
		// After the i-th crash in a row: 100ms << (i-1), at most 400ms.
		want := min(100*time.Millisecond<<(i-1), 400*time.Millisecond)
		if gap := run.Started.Sub(r.Runs[i-1].Ended); gap < want {
			t.Fatalf("run %d started %v after crash %d, want at least %v", i, gap, i, want)
		}
	}
	if r.Failures < 5 {
		t.Fatalf("failures in a row %d", r.Failures)
	}
	testkit.WaitFor(t, "the job backing off", func() bool {
		r = k.runs(t, "crash")
		return r.State == api.JobStateBackingOff && strings.Contains(r.Reason, "crash(es) in a row")
	})
	if !strings.Contains(k.log.String(), `line="about to fail"`) {
		t.Fatalf("the job's stderr is not in kerfd's log")
	}
}

// Bad job documents are refused with 422 and the fields at fault; a
// dry run stores nothing.
func TestBadJobsAreRefusedWithFieldErrors(t *testing.T) {
	dir := t.TempDir()
	a, err := New(testConfig(t, dir), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	tok, err := a.api.RotateAdminToken()
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(a.api)
	t.Cleanup(ts.Close)
	c := client.New(ts.URL, tok)
	ctx := context.Background()
	good := `{"tenant":"vision","command":"/usr/bin/true","slice":{"fraction":0.25},"trigger":{"source":"*/*/*","metric":"q","threshold":10}}`
	for _, tc := range []struct {
		name, doc string
		fields    []string
	}{
		{"relative command", `{"tenant":"vision","command":"infer","slice":{"fraction":0.25},"trigger":{"source":"*/*/*","metric":"q","threshold":10}}`, []string{"job.command"}},
		{"no slice", `{"tenant":"vision","command":"/usr/bin/true","trigger":{"source":"*/*/*","metric":"q","threshold":10}}`, []string{"job.slice"}},
		{"both fraction and memory", `{"tenant":"vision","command":"/usr/bin/true","slice":{"fraction":0.5,"memory":"1GiB"},"trigger":{"source":"*/*/*","metric":"q","threshold":10}}`, []string{"job.slice"}},
		{"bad tenant and trigger", `{"tenant":"Vision!","command":"/usr/bin/true","slice":{"memory":"lots"},"trigger":{"source":"[","metric":"","aggregate":"median","threshold":0}}`,
			[]string{"job.tenant", "job.slice.memory", "job.trigger.source", "job.trigger.metric", "job.trigger.aggregate", "job.trigger.threshold"}},
		{"concurrency", `{"tenant":"vision","command":"/usr/bin/true","slice":{"fraction":0.25},"trigger":{"source":"*/*/*","metric":"q","threshold":10},"concurrency":{"min":5,"max":2,"perSource":3},"cooldown":"-1s"}`,
			[]string{"job.concurrency.min", "job.concurrency.perSource", "job.cooldown"}},
		{"unknown field", `{"tenant":"vision","command":"/usr/bin/true","slice":{"fraction":0.25},"trigger":{"source":"*/*/*","metric":"q","threshold":10},"replicas":3}`, []string{"job"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, try := range []func() error{
				func() error {
					_, err := c.PutJob(ctx, api.Job{Name: "bad", Job: json.RawMessage(tc.doc)})
					return err
				},
				func() error { return c.ValidateJob(ctx, api.Job{Name: "bad", Job: json.RawMessage(tc.doc)}) },
			} {
				var p *api.Problem
				if err := try(); !errors.As(err, &p) || p.Status != 422 {
					t.Fatalf("want a 422 problem, got %v", err)
				}
				got := map[string]bool{}
				for _, f := range p.Errors {
					got[f.Field] = true
				}
				for _, f := range tc.fields {
					if !got[f] {
						t.Errorf("no error for field %s in %+v", f, p.Errors)
					}
				}
			}
		})
	}
	if err := c.ValidateJob(ctx, api.Job{Name: "fine", Job: json.RawMessage(good)}); err != nil {
		t.Fatalf("a good job: %v", err)
	}
	if js, err := c.Jobs(ctx); err != nil || len(js) != 0 {
		t.Fatalf("jobs after refusals and a dry run: %v %v", js, err)
	}
	if _, err := c.PutJob(ctx, api.Job{Name: "fine", Job: json.RawMessage(good)}); err != nil {
		t.Fatal(err)
	}
	var p *api.Problem
	if err := c.Do(ctx, "POST", "/v1/jobs", api.Job{Name: "fine", Job: json.RawMessage(good)}, nil); !errors.As(err, &p) || p.Status != 409 {
		t.Fatalf("creating a job whose name is taken: %v", err)
	}
}

// The example job in docs/examples is valid once its paths are filled in,
// as the README's quick start fills them.
func TestExampleJobIsValid(t *testing.T) {
	b, err := os.ReadFile("../docs/examples/jobs/camera-infer.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.NewReplacer("COMMAND", "/home/op/vadd", "PTX", "/home/op/kerf/gpu/emu/kernels/vadd.ptx").Replace(string(b))
	j, err := client.ParseJob([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := newJobSet(true).ValidateJob(j); err != nil {
		t.Fatalf("%s: %v", j.Name, err)
	}
	if err := newJobSet(true).ValidateJob(api.Job{Name: j.Name, Job: json.RawMessage(strings.Replace(string(j.Job), "/home/op/vadd", "vadd", 1))}); err == nil {
		t.Fatal("the example with a relative command passed")
	}
}

// A policy rule and a job read the same signal: the rule re-slices the
// node to make room for the burst the job starts, and the job's instances
// run in the slices it made.
func TestRuleMakesRoomForAJobBurst(t *testing.T) {
	bin := jobBinaries(t)
	k := startJobKerfd(t, jobsYAML(bin, `
  rules:
    - name: camera-queue
      trigger: {source: "plant-1/line-2/cam-*", metric: queue_depth, aggregate: max, window: 1m, threshold: 100, activationThreshold: 20}
      target: {profile: mixed-2x25-5x10, idleProfile: uniform-20}`)+`
slicer:
  profile: uniform-20
`)
	a := k.a
	k.put(t, "burst", fmt.Sprintf(`{"tenant":"vision","command":%q,"slice":{"fraction":0.25},
		"trigger":{"source":"plant-1/line-2/cam-*","metric":"queue_depth","aggregate":"max","window":"1m","threshold":100},
		"concurrency":{"max":2,"perSource":2},"stopGrace":"5s"}`, filepath.Join(bin, "hold")))
	c := mqttClient(t, a.ingest.Load().Broker.MQTTAddr(), "cam-07", nil)
	publish(t, c, "edge/v1/plant-1/line-2/load/cam-07", 1, false, `[{"n":"queue_depth","v":250}]`)
	testkit.WaitForWithin(t, 30*time.Second, "two instances holding their memory", func() bool {
		return strings.Count(k.log.String(), `line="holding pid`) == 2
	})
	if p := a.node.sl.Status().Profile; p != "mixed-2x25-5x10" {
		t.Fatalf("profile %q", p)
	}
	r := k.runs(t, "burst")
	if r.State != api.JobStateFiring || len(r.Running) != 2 {
		t.Fatalf("burst: %s (%s), %d running", r.State, r.Reason, len(r.Running))
	}
	if n := k.tenantSlices("vision"); n != 2 {
		t.Fatalf("%d slices held, want 2", n)
	}
	for _, s := range a.node.Slices() {
		if s.Tenant == "vision" && s.ShareTarget != 0.25 {
			t.Fatalf("an instance runs in slice %+v, not one of the rule's 25%% slices", s)
		}
	}
	if err := k.c.DeleteJob(context.Background(), "burst"); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the slices freed", func() bool { return k.tenantSlices("vision") == 0 })
}
