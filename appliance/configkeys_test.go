package appliance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A key kerfd does not read stops it at start, named with the key that
// was probably meant; keys it reads, in any case, and KERF_* overrides
// still load.
func TestConfigRefusesUnknownKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		t.Helper()
		path := filepath.Join(dir, "kerf.yaml")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"old broker login", "broker:\n  username: cam\n  password: pw\n",
			[]string{"unknown config key broker.password (did you mean ingest.broker.external.password?)",
				"unknown config key broker.username (did you mean ingest.broker.external.username?)"}},
		{"nested old login", "ingest:\n  broker:\n    embedded:\n      username: cam\n",
			[]string{"unknown config key ingest.broker.embedded.username (did you mean ingest.broker.external.username?)"}},
		{"typo", "listen:\n  quick: 0.0.0.0:7443\n", []string{"unknown config key listen.quick (did you mean listen.quic?)"}},
		{"under a scalar", "listen:\n  quic: {port: 7443}\n", []string{"unknown config key listen.quic.port"}},
		{"in a list item", "ingest:\n  broker:\n    embedded:\n      devices: [{name: cam-1, password: pw, topic: x}]\n",
			[]string{"unknown config key ingest.broker.embedded.devices[0].topic"}},
		{"in a rule", "ingest:\n  rules:\n    - name: r\n      trigger: {source: '*', metric: m, windw: 1m}\n",
			[]string{"unknown config key ingest.rules[0].trigger.windw"}},
		{"two", "state_dri: /x\ntenants: {isolaton: process}\n", []string{
			"unknown config key state_dri (did you mean state_dir?)",
			"unknown config key tenants.isolaton (did you mean tenants.isolation?)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadConfig(write(tc.body), nil)
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v lacks %q", err, w)
				}
			}
		})
	}

	// Where the defaults hold a key, another case of it is never read;
	// in a rule, whose keys have no defaults, camelCase is.
	_, err := LoadConfig(write("State_Dir: /x\ntenants: {Stop_Grace: 1s}\n"), nil)
	for _, w := range []string{"unknown config key State_Dir (did you mean state_dir?)", "unknown config key tenants.Stop_Grace (did you mean tenants.stop_grace?)"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %q", err, w)
		}
	}
	path := write(`
state_dir: ` + dir + `
tenants: {stop_grace: 1s}
ingest:
  rules:
    - name: r
      trigger: {source: '*', metric: m, staleAfter: 20s}
      target: {profile: whole, idleProfile: whole}
`)
	c, err := LoadConfig(path, []string{"KERF_TENANTS__STOP_GRACE=2s", "KERF_LISTEN__HTTP=127.0.0.1:0", "KERF_NOT_A_KEY=1", "KERF_API=http://x"})
	if err != nil {
		t.Fatal(err)
	}
	if c.StateDir != dir || c.Tenants.StopGrace != 2*time.Second || c.Listen.HTTP != "127.0.0.1:0" || c.Ingest.Rules[0].Trigger.StaleAfter.D() != 20*time.Second {
		t.Errorf("loaded state_dir %q, stop_grace %v, http %q, staleAfter %v", c.StateDir, c.Tenants.StopGrace, c.Listen.HTTP, c.Ingest.Rules[0].Trigger.StaleAfter.D())
	}
}

// The image's configuration holds only keys kerfd reads.
func TestImageConfigLoads(t *testing.T) {
	if _, err := LoadConfig("../image/rootfs/etc/kerf/kerfd.yaml", nil); err != nil {
		t.Fatal(err)
	}
}
