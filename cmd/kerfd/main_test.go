package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/transport"
)

// stateDir points kerfd's configuration at a fresh state directory.
func stateDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("KERF_STATE_DIR", dir)
	t.Setenv("KERF_LISTEN__QUIC", "127.0.0.1:0")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // kerf's copies go there, not to the real home
	return dir
}

// kerfd runs kerfd with args and returns what it printed.
func kerfd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(args, &out)
	return out.String(), err
}

func TestTokenIssueRefusesBadNames(t *testing.T) {
	dir := stateDir(t)
	for _, name := range []string{"Alice", "a_b", "-a", "a/../../x", "a\x00b", "\x1b[31mred", "bob\u202eexe", strings.Repeat("x", 64)} {
		out, err := kerfd(t, "token", "issue", name)
		if err == nil {
			t.Errorf("token issue %q: accepted (%s)", name, out)
			continue
		}
		if strings.ContainsAny(err.Error(), "\x00\x1b\u202e") {
			t.Errorf("token issue %q: the error carries the raw name: %q", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "bundles")); !os.IsNotExist(err) {
		t.Errorf("a refused name left a bundle directory: %v", err)
	}
	if out, err := kerfd(t, "tokens", "issue", "alice"); err != nil || !strings.Contains(out, "alice.json") {
		t.Fatalf("token issue alice: %q, %v", out, err)
	}
}

// `kerfd token list` shows a name the rule refuses (written into the file
// by hand) quoted, never raw.
func TestTokenListQuotesBadNames(t *testing.T) {
	dir := stateDir(t)
	file := `{"0000": {"tenant": "evil\u001b[2J\u202e", "issued": "2026-01-02T03:04:05Z"}}`
	if err := os.WriteFile(filepath.Join(dir, "tokens.json"), []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := kerfd(t, "token", "list")
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out, "\x1b\u202e") || !strings.Contains(out, `"evil\x1b[2J\u202e"`) {
		t.Fatalf("token list printed:\n%s", out)
	}
}

// `kerfd init` shows the admin token once and the first bundle's path,
// never a tenant token.
func TestInitPrintsNoTenantToken(t *testing.T) {
	dir := stateDir(t)
	out, err := kerfd(t, "init")
	if err != nil {
		t.Fatal(err)
	}
	bundlePath := filepath.Join(dir, "bundles", "default.json")
	b, err := auth.ReadBundle(bundlePath)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, b.Token) || strings.Contains(out, auth.TokenPrefix) {
		t.Fatalf("init printed a tenant token:\n%s", out)
	}
	if !strings.Contains(out, bundlePath) {
		t.Fatalf("init does not say where the bundle is:\n%s", out)
	}
	if n := strings.Count(out, strings.TrimSpace(string(admin))); n != 1 {
		t.Fatalf("init printed the admin token %d times:\n%s", n, out)
	}
	// A second init changes nothing and shows no secret.
	out, err = kerfd(t, "init")
	if err != nil || strings.Contains(out, b.Token) || strings.Contains(out, strings.TrimSpace(string(admin))) {
		t.Fatalf("second init: %v\n%s", err, out)
	}
}

// With the operator API and the broker beyond loopback (as on the image),
// `kerfd init` prints both certificates' fingerprints next to kerfd's,
// each the one its listener will serve, and keeps the API's for kerf.
func TestInitPrintsListenerFingerprints(t *testing.T) {
	dir := stateDir(t)
	t.Setenv("KERF_LISTEN__HTTP", "0.0.0.0:7080")
	t.Setenv("KERF_INGEST__BROKER__EMBEDDED__MQTT_LISTEN", "0.0.0.0:1883")
	out, err := kerfd(t, "init")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ line, certDir string }{
		{"broker certificate fingerprint: ", "broker-tls"},
		{"operator API certificate fingerprint: ", "http-tls"},
	} {
		_, fp, err := transport.LoadOrCreateCert(filepath.Join(dir, c.certDir))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, c.line+fp.String()) {
			t.Errorf("init does not print %s%s:\n%s", c.line, fp, out)
		}
	}
	kept, err := os.ReadFile(filepath.Join(dir, "api-fingerprint"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, strings.TrimSpace(string(kept))) {
		t.Errorf("api-fingerprint %q is not the printed one:\n%s", kept, out)
	}

	// On loopback (make run), neither speaks TLS and init says nothing of them.
	stateDir(t)
	t.Setenv("KERF_LISTEN__HTTP", "127.0.0.1:7080")
	t.Setenv("KERF_INGEST__BROKER__EMBEDDED__MQTT_LISTEN", "127.0.0.1:1883")
	if out, err = kerfd(t, "init"); err != nil || strings.Contains(out, "broker certificate") || strings.Contains(out, "operator API certificate") {
		t.Fatalf("init on loopback: %v\n%s", err, out)
	}
}
