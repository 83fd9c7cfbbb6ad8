package profiles

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/internal/testkit"
	"github.com/kerf-edge/kerf/profiles/api"
)

var chromium = testkit.Chromium

// artifactDir is where browser tests keep their screenshots:
// $KERF_ARTIFACTS if set, else the test's temp dir (gone after the test).
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("KERF_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// screenshot saves the page at url as name in artifactDir.
func screenshot(t *testing.T, url, name string) {
	t.Helper()
	shot := filepath.Join(artifactDir(t), name)
	chromium(t, url, "--screenshot="+shot, "--window-size=1280,2400", "--virtual-time-budget=4000")
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 1000 {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot: %s", shot)
}

// plotAttrs returns the attributes of the plot element whose attribute
// attr is value, or nil.
func plotAttrs(dom, attr, value string) map[string]string {
	tag := regexp.MustCompile(`<div [^>]*` + attr + `="` + regexp.QuoteMeta(value) + `"[^>]*>`).FindString(dom)
	if tag == "" {
		return nil
	}
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`([a-z-]+)="([^"]*)"`).FindAllStringSubmatch(tag, -1) {
		out[m[1]] = m[2]
	}
	return out
}

func atLeast(t *testing.T, what string, attrs map[string]string, key string, min int) {
	t.Helper()
	n, err := strconv.Atoi(attrs[key])
	if err != nil || n < min {
		t.Errorf("%s: %s=%q, want at least %d (attributes %v)", what, key, attrs[key], min, attrs)
	}
}

// TestBrowser loads the page in headless Chromium against a fake node
// with one tenant slice, a rule, a load-signal series that crosses the
// rule's threshold and the re-slice it caused, and a job reading the same
// series with an instance running and a run ended. It checks the rendered
// DOM (the plots have points, the thresholds are drawn and the re-slice
// and the job's instances marked, the rule's phase, the job's state,
// instance and run, the events in words) and saves screenshots (see
// artifactDir); then 20 slices on one GPU, whose labels must all show.
func TestBrowser(t *testing.T) {
	testkit.NeedChromium(t)
	e := newEnv(t)
	e.srv.RecordDecision("hot", "shrink", "temp 85 > 80")
	rule := map[string]any{"name": "hot", "rule": map[string]any{"when": "the queue is long",
		"trigger": map[string]any{"source": "plant/*/cam-*", "metric": "queue", "aggregate": "max", "threshold": 80, "activationThreshold": 20},
		"target":  map[string]any{"gpu": 0, "profile": "whole", "idleProfile": "uniform-10"}}}
	if r := e.do("POST", "/v1/rules", e.admin, rule); r.code != 201 {
		t.Fatalf("rule: %d %s", r.code, r.body)
	}
	// A camera's queue rises over the threshold; the rule re-slices.
	now := time.Now()
	for i := 50; i >= 0; i-- {
		e.srv.ObserveSignal("plant/n1/cam-01", "queue", now.Add(-time.Duration(i)*time.Second), float64(40+i%3*10+(50-i)))
		e.srv.ObserveSignal("plant/n1/door", "temp", now.Add(-time.Duration(i)*time.Second), 20)
	}
	e.srv.RecordRuleReslice(RuleReslice{Rule: "hot", Metric: "queue", Why: "max of queue = 90 ≥ threshold 80", Reason: "scale-up",
		Target: "gpu 0", Profile: "whole", Previous: "uniform-10", Duration: 12 * time.Millisecond})
	// A job reads the cameras' queue: an instance for cam-01 crashed, and
	// another runs for it now.
	e.srv.deps.Jobs = &fakeJobs{runs: map[string]api.JobRuns{"infer": {State: api.JobStateFiring, Reason: "queue at or above threshold 60",
		Running: []api.JobInstance{{ID: "infer-2", Source: "plant/n1/cam-01", Started: now.Add(-5 * time.Second), MemoryBytes: 256 << 20}},
		Runs: []api.JobRun{{Instance: "infer-1", Source: "plant/n1/cam-01", Started: now.Add(-40 * time.Second), Ended: now.Add(-30 * time.Second),
			ExitCode: 3, Outcome: api.JobRunOutcomeFailed}}}}}
	job := map[string]any{"name": "infer", "job": map[string]any{"command": "/opt/infer",
		"trigger": map[string]any{"source": "plant/*/cam-*", "metric": "queue", "threshold": 60}}}
	if r := e.do("POST", "/v1/jobs", e.admin, job); r.code != 201 {
		t.Fatalf("job: %d %s", r.code, r.body)
	}
	e.srv.RecordJob("infer", "start", "instance infer-2 started for source plant/n1/cam-01", 0)
	e.node.mu.Lock()
	e.node.slices[0].ID = "s0"
	e.node.mu.Unlock()
	// The sampler needs two samples for a rate.
	testkit.WaitFor(t, "the tenant's history", func() bool {
		var th api.TenantHistory
		e.do("GET", "/v1/history/tenants", e.admin, nil).json(t, &th)
		return len(th.Tenants) == 1 && len(th.Tenants[0].Calls.V) > 1
	})
	ts := httptest.NewServer(e.srv)
	defer ts.Close()
	url := ts.URL + "/#token=" + e.admin

	// The page renders from /v1/state and then the stream, and plots
	// from /v1/history; Chromium dumps the DOM once the budget of
	// virtual time is spent.
	dom := chromium(t, url, "--dump-dom", "--virtual-time-budget=4000")
	for _, want := range []string{
		`data-rendered=`,
		`data-plotted=`,
		`style="width: 50%;"`,
		`class="status live"`,
		`data-tenant="alice"`,
		`data-memory-used="3221225472"`,
		`data-memory-limit="8589934592"`,
		`3.0 GiB / 8.0 GiB`,
		`share 42% / 50%`,
		`GPU 0: Kerf emulated GPU — 16 GiB, 1 slice(s)`,
		`rule hot: shrink (temp 85 &gt; 80)`,
		`rule hot, max of queue = 90 ≥ threshold 80: scale-up, re-sliced gpu 0 to whole (was uniform-10) in 12ms`,
		`<tr data-rule="hot" data-phase="armed">`,
		`max of queue below 80`,
		`1–2 of 2 series`,
		`job infer: instance infer-2 started for source plant/n1/cam-01</li>`,
		`<tr data-job="infer" data-state="firing" data-running="1" data-runs="1">`,
		`<span class="phase phase-firing">firing</span></td><td>queue at or above threshold 60</td>`,
		`<li data-instance="infer-2" data-source="plant/n1/cam-01"><b>plant/n1/cam-01</b> since `,
		` · 256 MiB</li>`,
		`<li data-outcome="failed" data-exit-code="3" title="infer-1">`,
		`<span class="outcome outcome-failed">failed</span>, exit 3 after 10.0 s (plant/n1/cam-01)</li>`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM lacks %q", want)
		}
	}
	for _, route := range []string{":name", "/v1/rules"} {
		if strings.Contains(regexp.MustCompile(`(?s)<ol id="events".*?</ol>`).FindString(dom), route) {
			t.Errorf("an event shows the route %q", route)
		}
	}
	cam := plotAttrs(dom, "data-series", "plant/n1/cam-01 queue")
	atLeast(t, "the camera's plot", cam, "data-points", 40)
	atLeast(t, "the camera's plot: re-slice markers", cam, "data-markers", 1)
	if cam["data-thresholds"] != "80,20" {
		t.Errorf("the camera's thresholds %q, want 80,20", cam["data-thresholds"])
	}
	if cam["data-job-thresholds"] != "60" || cam["data-job-starts"] != "2" || cam["data-job-exits"] != "1" {
		t.Errorf("the camera's plot: the job's threshold and instances %v", cam)
	}
	door := plotAttrs(dom, "data-series", "plant/n1/door temp")
	atLeast(t, "the door's plot", door, "data-points", 40)
	if door["data-thresholds"] != "" || door["data-markers"] != "0" || door["data-job-thresholds"] != "" || door["data-job-markers"] != "0" {
		t.Errorf("the door's plot has a rule's or a job's threshold or marker: %v", door)
	}
	atLeast(t, "GPU time", plotAttrs(dom, "data-plot", "gpu-time-0"), "data-points", 1)
	atLeast(t, "memory per slice", plotAttrs(dom, "data-plot", "gpu-mem-0"), "data-points", 1)
	atLeast(t, "the layout bands", plotAttrs(dom, "data-plot", "gpu-layout-0"), "data-layouts", 1)
	atLeast(t, "the tenant's calls", plotAttrs(dom, "data-plot", "tenant-calls-alice"), "data-points", 2)
	if strings.Contains(dom, e.admin) {
		t.Error("the admin token is still in the page")
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
	screenshot(t, url, "profiles-page.png")

	// Twenty slices on one GPU: every label is there in full.
	e.node.mu.Lock()
	e.node.slices = nil
	for i := range 20 {
		e.node.slices = append(e.node.slices, api.Slice{ID: fmt.Sprintf("s%d", i), Tenant: fmt.Sprintf("tenant-%02d", i), GPU: 0,
			MemoryUsedBytes: 100 << 20, MemoryLimitBytes: 800 << 20, ShareTarget: 0.05})
	}
	e.node.mu.Unlock()
	dom = chromium(t, url, "--dump-dom", "--virtual-time-budget=3000")
	legend := regexp.MustCompile(`(?s)<ol class="slice-legend">.*?</ol>`).FindString(dom)
	for i := range 20 {
		if want := fmt.Sprintf("#%d <b>tenant-%02d</b> <span class=\"mem\">100 MiB / 800 MiB</span>", i+1, i); !strings.Contains(legend, want) {
			t.Errorf("the legend lacks %q:\n%s", want, legend)
		}
	}
	screenshot(t, url, "profiles-page-20-slices.png")

	// A wrong token shows the sign-in form, which says where the token is.
	dom = chromium(t, ts.URL+"/#token=kerfadm_wrong", "--dump-dom", "--virtual-time-budget=2000")
	for _, want := range []string{`wrong admin token`, `<code>/var/lib/kerf/admin-token</code> and <code>/home/op/.config/kerf/admin-token</code>`,
		`sudo cat /var/lib/kerf/admin-token`} {
		if !strings.Contains(dom, want) {
			t.Errorf("sign-in: no %q in\n%s", want, dom)
		}
	}
	screenshot(t, ts.URL+"/#token=kerfadm_wrong", "profiles-sign-in.png")
}

// shownPool is a pool whose status is st.
type shownPool struct {
	*fakePool
	st api.PoolStatus
}

func (p shownPool) Status() api.PoolStatus { return p.st }

// The page's pool panel: every member, up or down, with its GPUs and
// their slices, and the ledger's leases. Outside a pool it stays hidden.
func TestBrowserPool(t *testing.T) {
	testkit.NeedChromium(t)
	e := newEnv(t)
	ts := httptest.NewServer(e.srv)
	defer ts.Close()
	url := ts.URL + "/#token=" + e.admin
	if dom := chromium(t, url, "--dump-dom", "--virtual-time-budget=3000"); !strings.Contains(dom, `<section id="pool-section" hidden="">`) ||
		strings.Contains(dom, "data-member=") {
		t.Errorf("outside a pool the pool panel shows:\n%s", regexp.MustCompile(`(?s)<section id="pool-section".*?</section>`).FindString(dom))
	}

	seen := time.Now().Add(-time.Minute)
	gpu := func(name string, mem uint64, tenants ...string) api.PoolGPU {
		g := api.PoolGPU{Index: 0, Name: name, MemoryBytes: mem, Slices: []api.PoolSlice{}}
		for i, tn := range tenants {
			g.Slices = append(g.Slices, api.PoolSlice{ID: fmt.Sprintf("s%d", i), Share: 0.25, MemoryBytes: mem / 4, Tenant: tn})
		}
		return g
	}
	st := api.PoolStatus{Pool: "rack", Node: "node-a", Quorum: true, Size: 3, Needed: 2, Replicas: 3, Live: []string{"node-a", "node-b"},
		Members: []api.PoolMember{
			{Name: "node-a", Live: true, Self: true, GPUs: []api.PoolGPU{gpu("Kerf emulated GPU", 4<<30, "alice", "")}, HeldGPUs: 0.25, Leases: 1},
			{Name: "node-b", Live: true, Site: "plant-2", GPUs: []api.PoolGPU{gpu("Kerf emulated GPU", 8<<30)}},
			{Name: "node-c", Live: false, LastSeen: seen, GPUs: []api.PoolGPU{gpu("Kerf emulated GPU", 2<<30, "bob")}, HeldGPUs: 0.25, Leases: 1},
		},
		Leases: []api.PoolLease{
			{ID: "l1", Tenant: "alice", Node: "node-a", GPUs: []int{0}, Charge: 0.25, Granted: seen},
			{ID: "pool-x", Tenant: "bob", Node: "node-c", GPUs: []int{0}, Charge: 0.25, Granted: seen, Expires: seen.Add(time.Hour)},
		}}
	// Close waits for the requests the first page still has in flight,
	// so that none reads the pool while it is set.
	ts.Close()
	e.srv.deps.Pool = shownPool{&fakePool{members: []string{"node-a"}}, st}
	ts = httptest.NewServer(e.srv)
	defer ts.Close()
	url = ts.URL + "/#token=" + e.admin
	dom := chromium(t, url, "--dump-dom", "--virtual-time-budget=3000")
	for _, want := range []string{
		`data-pooled=`,
		`pool rack, seen from node-a: 2 of 3 members live, quorum`,
		`<div class="pool-member up" data-member="node-a" data-state="up" data-gpus="1">`,
		`node-a (up, this node)`,
		`0.25 GPU leased in 1 lease(s)`,
		`<li data-gpu="0" data-slices="2">GPU 0: Kerf emulated GPU — 4.0 GiB, 2 slice(s)`,
		`<li data-tenant="alice"><b>alice</b> 1.0 GiB · share 25%</li>`,
		`<li data-tenant=""><b>free</b> 1.0 GiB · share 25%</li>`,
		`<div class="pool-member up" data-member="node-b" data-state="up" data-gpus="1">`,
		`GPU 0: Kerf emulated GPU — 8.0 GiB, 0 slice(s)`,
		`node-b (up)<span class="muted"> · 0.00 GPU leased in 0 lease(s) · site plant-2</span>`,
		`<div class="pool-member down" data-member="node-c" data-state="down" data-gpus="1">`,
		`node-c (down, last seen `,
		`<li data-tenant="bob"><b>bob</b> 512 MiB · share 25%</li>`,
		`<tr data-lease="l1" data-node="node-a"><td>l1</td><td>alice</td><td>node-a</td><td>0</td><td class="num">0.25</td><td>granted</td></tr>`,
		`<tr data-lease="pool-x" data-node="node-c"><td>pool-x</td><td>bob</td><td>node-c</td><td>0</td><td class="num">0.25</td><td>reserved until `,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM lacks %q", want)
		}
	}
	if strings.Contains(dom, `<section id="pool-section" hidden`) {
		t.Error("the pool panel is hidden in a pool")
	}
	if t.Failed() {
		t.Logf("pool panel:\n%s", regexp.MustCompile(`(?s)<section id="pool-section".*?</section>`).FindString(dom))
	}
	screenshot(t, url, "profiles-page-pool.png")
}
