package appliance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/internal/testkit"
)

// End to end: a tenant connects to a running kerfd, and the operator's
// page, loaded in headless Chromium, shows that tenant's slice. The
// screenshot is kept in $KERF_ARTIFACTS (or the test's temp dir).
func TestPageShowsAConnectedTenant(t *testing.T) {
	testkit.NeedChromium(t)
	a := start(t, testConfig(t, t.TempDir()))
	c := dialTenant(t, a, "page-tenant", "unix")
	if _, err := c.MemAlloc(3 << 20); err != nil {
		t.Fatal(err)
	}
	tok, err := a.api.RotateAdminToken()
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + a.HTTPAddr() + "/#token=" + tok
	testkit.WaitFor(t, "the worker's usage report", func() bool {
		for _, s := range a.Sessions() {
			if s.MemUsed == 3<<20 {
				return true
			}
		}
		return false
	})
	dom := testkit.Chromium(t, url, "--dump-dom", "--virtual-time-budget=3000")
	for _, want := range []string{`data-tenant="page-tenant"`, `data-memory-used="3145728"`, `Kerf Emulated GPU`} {
		if !strings.Contains(dom, want) {
			t.Fatalf("the page lacks %s:\n%s", want, dom)
		}
	}
	dir := os.Getenv("KERF_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	shot := filepath.Join(dir, "kerfd-page.png")
	testkit.Chromium(t, url, "--screenshot="+shot, "--virtual-time-budget=3000")
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Fatalf("no screenshot: %v", err)
	}
	t.Logf("screenshot: %s", shot)
}
