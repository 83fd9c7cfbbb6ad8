package appliance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/internal/testkit"
	"github.com/kerf-edge/kerf/profiles/api"
)

// End to end: a tenant works on a running kerfd while a device publishes
// load signals over MQTT to the embedded broker, and one crosses a rule's
// threshold. The operator's page, loaded in headless Chromium, shows the
// tenant's slice and plots, the signal's plot with the rule's thresholds
// and a marker for the re-slice, the rule's phase and the event in words.
// Screenshots are kept in $KERF_ARTIFACTS (or the test's temp dir).
func TestPagePlotsSignalsSlicesAndTenants(t *testing.T) {
	testkit.NeedChromium(t)
	a, c := startWithAPI(t, `
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
	load := func(v int) {
		publish(t, cam, "edge/v1/plant-1/line-2/load/cam-07", 1, false,
			fmt.Sprintf(`[{"bn":"urn:dev:cam-07:","n":"queue_depth","u":"count","v":%d}]`, v))
	}
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
	load(120)
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
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
	dir := os.Getenv("KERF_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	shot := filepath.Join(dir, "kerfd-page.png")
	testkit.Chromium(t, url, "--screenshot="+shot, "--window-size=1280,2400", "--virtual-time-budget=4000")
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Fatalf("no screenshot: %v", err)
	}
	t.Logf("screenshot: %s", shot)
}
