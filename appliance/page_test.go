package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/internal/testkit"
	"github.com/kerf-edge/kerf/profiles/api"
	"github.com/kerf-edge/kerf/profiles/client"
)

// End to end: a tenant works on a running kerfd while a device publishes
// load signals over MQTT to the embedded broker, and one crosses a rule's
// threshold and a job's. The operator's page, loaded in headless Chromium,
// shows the tenant's slice and plots, the signal's plot with the rule's
// and the job's thresholds and a marker for the re-slice, the rule's
// phase and the event in words, and the job running on the emulated GPU
// with a marker for its start; once the signal falls away, the job's run
// ended and a marker for its end. Screenshots are kept in $KERF_ARTIFACTS
// (or the test's temp dir).
func TestPagePlotsSignalsSlicesAndTenants(t *testing.T) {
	testkit.NeedChromium(t)
	bin := jobBinaries(t)
	a, c := startWithAPI(t, `
jobs:
  tick: 20ms
  min_backoff: 100ms
  max_backoff: 400ms
  shim_dir: `+bin+`
slicer:
  profile: uniform-10
ingest:
  site: plant-1
  node: line-2
  rules:
    - name: camera-queue
      trigger:
        source: "plant-1/line-2/cam-*"
        metric: queue_depth
        aggregate: max
        window: 10s
        threshold: 100
        activationThreshold: 20
      target:
        profile: mixed-2x25-5x10
        idleProfile: uniform-10
`, "KERF_HISTORY__STEP=200ms")
	ctx := context.Background()
	// A job reads the same signal, with a window of its own: it runs hold
	// in one of the 25% slices the rule makes, until the signal falls.
	if _, err := c.PutJob(ctx, api.Job{Name: "infer", Job: json.RawMessage(fmt.Sprintf(`{"tenant":"vision","command":%q,
		"slice":{"fraction":0.25},"stopGrace":"5s","trigger":{"source":"plant-1/line-2/cam-*","metric":"queue_depth","aggregate":"max",
		"window":"5s","threshold":100,"activationThreshold":20}}`, filepath.Join(bin, "hold")))}); err != nil {
		t.Fatal(err)
	}
	jobRuns := func() api.JobRuns {
		r, err := c.JobRuns(ctx, "infer")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tenant := dialTenant(t, a, "page-tenant", "unix")
	if _, err := tenant.MemAlloc(3 << 20); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the worker's usage report", func() bool {
		for _, s := range a.Sessions() {
			if s.MemUsed == 3<<20 {
				return true
			}
		}
		return false
	})
	cam := mqttClient(t, a.ingest.Load().Broker.MQTTAddr(), "cam-07", nil)
	const camTopic = "edge/v1/plant-1/line-2/load/cam-07"
	queue := func(v int) string {
		return fmt.Sprintf(`[{"bn":"urn:dev:cam-07:","n":"queue_depth","u":"count","v":%d}]`, v)
	}
	load := func(v int) { publish(t, cam, camTopic, 1, false, queue(v)) }
	work := func() {
		p, err := tenant.MemAlloc(1 << 10)
		if err == nil {
			err = tenant.MemFree(p)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// Quiet load, over several steps of the history, while the tenant
	// makes calls.
	testkit.WaitFor(t, "the signal's history", func() bool {
		load(10)
		work()
		var h api.SignalHistory
		if err := c.Do(ctx, "GET", "/v1/history/signals?q=cam-07", nil, &h); err != nil {
			t.Fatal(err)
		}
		return len(h.Series) == 1 && len(h.Series[0].Points.V) >= 3
	})
	// The camera's queue stays long, published every 200ms, until the
	// test lets it fall: the job's 5s window sees it all the while the
	// page is read, even on a busy machine.
	load(120)
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				cam.Publish(camTopic, 1, false, queue(120)).WaitTimeout(5 * time.Second)
			}
		}
	}()
	fall := sync.OnceFunc(func() { close(stop); <-stopped })
	t.Cleanup(fall)
	var reslice api.Event
	testkit.WaitFor(t, "the rule's re-slice in the event log", func() bool {
		evs, err := a.api.Store().Events(100, 0, api.EventKindReslice)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Rule == "camera-queue" && strings.Contains(e.Summary, "scale-up") {
				reslice = e
				return true
			}
		}
		return false
	})
	testkit.WaitForWithin(t, 30*time.Second, "the job's instance running", func() bool {
		r := jobRuns()
		return len(r.Running) == 1 && r.Running[0].Source == "plant-1/line-2/cam-07"
	})
	if reslice.Metric != "queue_depth" || !strings.Contains(reslice.Summary, "rule camera-queue, max of queue_depth = 120 ≥ threshold 100: scale-up") {
		t.Errorf("the re-slice's event: %+v", reslice)
	}
	testkit.WaitFor(t, "the tenant's call rate", func() bool {
		work()
		var h api.TenantHistory
		if err := c.Do(ctx, "GET", "/v1/history/tenants", nil, &h); err != nil {
			t.Fatal(err)
		}
		for _, tn := range h.Tenants {
			if tn.Name == "page-tenant" && len(tn.Calls.V) > 0 && tn.Calls.V[len(tn.Calls.V)-1] > 0 {
				return true
			}
		}
		return false
	})

	tok, err := a.api.RotateAdminToken()
	if err != nil {
		t.Fatal(err)
	}
	c = client.New("http://"+a.HTTPAddr(), tok) // the old token is revoked
	url := "http://" + a.HTTPAddr() + "/#token=" + tok
	dom := testkit.Chromium(t, url, "--dump-dom", "--virtual-time-budget=4000")
	for _, want := range []string{`data-tenant="page-tenant"`, `data-memory-used="3145728"`, `Kerf Emulated GPU`,
		`<tr data-rule="camera-queue" data-phase="`, `rule camera-queue, max of queue_depth = 120 ≥ threshold 100`,
		`data-plot="tenant-calls-page-tenant"`, `data-plot="gpu-layout-0"`} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if m := regexp.MustCompile(`data-rule="camera-queue" data-phase="([a-z ]+)"`).FindStringSubmatch(dom); m == nil || m[1] == "armed" {
		t.Errorf("the rule's phase after its re-slice: %v", m)
	}
	plot := regexp.MustCompile(`<div [^>]*data-series="plant-1/line-2/cam-07 queue_depth"[^>]*>`).FindString(dom)
	attr := func(name string) string {
		m := regexp.MustCompile(name + `="([^"]*)"`).FindStringSubmatch(plot)
		if m == nil {
			return ""
		}
		return m[1]
	}
	if n, _ := strconv.Atoi(attr("data-points")); n < 3 {
		t.Errorf("the signal's plot has %q points, want at least 3: %s", attr("data-points"), plot)
	}
	if n, _ := strconv.Atoi(attr("data-markers")); n < 1 {
		t.Errorf("the threshold crossing has no marker: %s", plot)
	}
	if attr("data-thresholds") != "100,20" {
		t.Errorf("thresholds %q, want 100,20", attr("data-thresholds"))
	}
	// The job: firing, its instance running for the camera, its
	// thresholds drawn and its start marked.
	job := regexp.MustCompile(`(?s)<tr data-job="infer"[^>]*>.*?</tr>`).FindString(dom)
	for _, want := range []string{`data-state="firing"`, `data-running="1"`, `data-source="plant-1/line-2/cam-07"`, `<b>plant-1/line-2/cam-07</b> since `} {
		if !strings.Contains(job, want) {
			t.Errorf("the jobs panel's row lacks %s: %s", want, job)
		}
	}
	if attr("data-job-thresholds") != "100,20" {
		t.Errorf("the job's thresholds %q, want 100,20", attr("data-job-thresholds"))
	}
	if n, _ := strconv.Atoi(attr("data-job-starts")); n != 1 || attr("data-job-exits") != "0" {
		t.Errorf("the job's instance started: %s", plot)
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
	dir := os.Getenv("KERF_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	screenshot := func(name string) {
		t.Helper()
		shot := filepath.Join(dir, name)
		testkit.Chromium(t, url, "--screenshot="+shot, "--window-size=1280,2400", "--virtual-time-budget=4000")
		if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
			t.Fatalf("no screenshot: %v", err)
		}
		t.Logf("screenshot: %s", shot)
	}
	screenshot("kerfd-page-job-running.png")

	// The signal falls away: the job's instance is stopped, and the page
	// shows the run and marks its end.
	fall()
	testkit.WaitForWithin(t, 30*time.Second, "the job's run to end", func() bool {
		load(10)
		return len(jobRuns().Runs) == 1
	})
	if r := jobRuns(); len(r.Running) != 0 || r.Runs[0].Outcome != api.JobRunOutcomeStopped || r.Runs[0].ExitCode != 143 {
		t.Fatalf("after the signal fell: %+v", r)
	}
	dom = testkit.Chromium(t, url, "--dump-dom", "--virtual-time-budget=4000")
	job = regexp.MustCompile(`(?s)<tr data-job="infer"[^>]*>.*?</tr>`).FindString(dom)
	for _, want := range []string{`data-running="0"`, `data-runs="1"`, `<li data-outcome="stopped" data-exit-code="143"`, `the signal fell away`} {
		if !strings.Contains(job, want) {
			t.Errorf("the jobs panel's row after the run lacks %s: %s", want, job)
		}
	}
	if !strings.Contains(dom, "job infer: instance infer-1 for source plant-1/line-2/cam-07 stopped: exit code 143 after ") {
		t.Errorf("the events lack the job's run in words")
	}
	plot = regexp.MustCompile(`<div [^>]*data-series="plant-1/line-2/cam-07 queue_depth"[^>]*>`).FindString(dom)
	if attr("data-job-starts") != "1" || attr("data-job-exits") != "1" {
		t.Errorf("the job's run is not marked: %s", plot)
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
	screenshot("kerfd-page.png")
}
