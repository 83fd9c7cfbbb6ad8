package appliance

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/internal/testkit"
	"github.com/kerf-edge/kerf/profiles/api"
)

// No log record, at any level, carries the admin token or a tenant token:
// the first start names the files that hold them instead.
func TestLogsCarryNoTokens(t *testing.T) {
	var logs testkit.SyncBuffer
	cfg := testConfig(t, t.TempDir())
	a := startLogged(t, cfg, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))

	adminFile, err := os.ReadFile(cfg.AdminTokenPath())
	if err != nil {
		t.Fatal(err)
	}
	admin := strings.TrimSpace(string(adminFile))
	secrets := map[string]string{"admin": admin}
	first, err := auth.ReadBundle(filepath.Join(cfg.BundleDir(), "default.json"))
	if err != nil {
		t.Fatal(err)
	}
	secrets["first tenant"] = first.Token
	// A tenant that connects, and tokens issued every way there is.
	c := dialTenant(t, a, "alice", "unix")
	if _, err := c.MemAlloc(1 << 20); err != nil {
		t.Fatal(err)
	}
	path, _, err := IssueOffline(cfg, "offline", 0, filepath.Join(t.TempDir(), "offline.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := auth.ReadBundle(path)
	if err != nil {
		t.Fatal(err)
	}
	secrets["offline"] = b.Token
	req, _ := http.NewRequest("POST", "http://"+a.HTTPAddr()+"/v1/tokens", strings.NewReader(`{"tenant":"by-api"}`))
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var issued api.IssuedToken
	err = json.NewDecoder(resp.Body).Decode(&issued)
	resp.Body.Close()
	if err != nil || issued.Token == "" {
		t.Fatalf("issuing through the API: %d, %v", resp.StatusCode, err)
	}
	secrets["by API"] = issued.Token

	out := logs.String()
	for what, tok := range secrets {
		if strings.Contains(out, tok) {
			t.Errorf("the log carries the %s token", what)
		}
	}
	if tok := tokenLike.FindString(out); tok != "" {
		t.Errorf("the log carries a token: %s", tok)
	}
	if !strings.Contains(out, cfg.AdminTokenPath()) {
		t.Errorf("the log does not say where the admin token is:\n%s", out)
	}
}

// tokenLike matches a tenant or admin token: a prefix and 32 random bytes
// in unpadded base64url.
var tokenLike = regexp.MustCompile(`(` + auth.TokenPrefix + `|kerfadm_)[A-Za-z0-9_-]{43}`)

// `kerfd token revoke` while kerfd runs ends the tenant's live sessions,
// with no other call to kerfd to make it look at the token file.
func TestOfflineRevokeEndsLiveSessions(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	a := start(t, cfg)
	dialTenant(t, a, "leaver", "unix")
	dialTenant(t, a, "stayer", "quic")
	if n, err := RevokeOffline(cfg, "leaver"); n != 1 || err != nil {
		t.Fatalf("RevokeOffline = %d, %v", n, err)
	}
	testkit.WaitFor(t, "the revoked tenant's session to end", func() bool {
		for _, s := range a.Sessions() {
			if s.Tenant == "leaver" {
				return false
			}
		}
		return true
	})
	if len(a.Sessions()) != 1 {
		t.Fatalf("sessions %+v: want stayer's alone", a.Sessions())
	}
}
