package profiles

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/internal/testkit"
)

var chromium = testkit.Chromium

// TestBrowser loads the page in headless Chromium against a fake node
// with one tenant slice, checks the rendered DOM and saves a screenshot
// (in $KERF_ARTIFACTS if set, else the test's temp dir).
func TestBrowser(t *testing.T) {
	testkit.NeedChromium(t)
	e := newEnv(t)
	e.srv.RecordDecision("hot", "shrink", "temp 85 > 80")
	ts := httptest.NewServer(e.srv)
	defer ts.Close()
	url := ts.URL + "/#token=" + e.admin

	// The page renders from /v1/state and then the stream; Chromium dumps
	// the DOM once the budget of virtual time is spent.
	dom := chromium(t, url, "--dump-dom", "--virtual-time-budget=3000")
	for _, want := range []string{
		`data-rendered=`,
		`style="width: 50%;"`,
		`class="status live"`,
		`data-tenant="alice"`,
		`data-memory-used="3221225472"`,
		`data-memory-limit="8589934592"`,
		`3.0 GiB / 8.0 GiB`,
		`share 42% / 50%`,
		`GPU 0: Kerf emulated GPU — 16 GiB, 1 slice(s)`,
		`[policy] shrink hot`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM lacks %q", want)
		}
	}
	if strings.Contains(dom, e.admin) {
		t.Error("the admin token is still in the page")
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}

	dir := os.Getenv("KERF_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "profiles-page.png")
	chromium(t, url, "--screenshot="+shot, "--virtual-time-budget=3000")
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 1000 {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot: %s", shot)

	// A wrong token shows the login form.
	dom = chromium(t, ts.URL+"/#token=kerfadm_wrong", "--dump-dom", "--virtual-time-budget=2000")
	if !strings.Contains(dom, `wrong admin token`) {
		t.Errorf("wrong token: no message in\n%s", dom)
	}
}
