package appliance

import (
	"strings"
	"testing"
	"time"
)

// The QUIC keep-alive must be positive and the idle timeout at least twice
// it, or live tenants would be dropped between probes.
func TestQUICTimeoutsChecked(t *testing.T) {
	for _, tc := range []struct {
		env     []string
		wantErr bool
	}{
		{nil, false},
		{[]string{"KERF_LISTEN__QUIC_KEEP_ALIVE=1s", "KERF_LISTEN__QUIC_IDLE_TIMEOUT=3s"}, false},
		{[]string{"KERF_LISTEN__QUIC_KEEP_ALIVE=0s"}, true},
		{[]string{"KERF_LISTEN__QUIC_KEEP_ALIVE=1s", "KERF_LISTEN__QUIC_IDLE_TIMEOUT=1500ms"}, true},
	} {
		cfg, err := LoadConfig("", append([]string{"KERF_STATE_DIR=" + t.TempDir()}, tc.env...))
		if (err != nil) != tc.wantErr {
			t.Errorf("%v: %v, want an error: %v", tc.env, err, tc.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "listen.quic_keep_alive") {
			t.Errorf("%v: %v does not name the setting", tc.env, err)
		}
		if tc.env == nil && (cfg.Listen.QUICKeepAlive != 250*time.Millisecond || cfg.Listen.QUICIdleTimeout != 15*time.Second) {
			t.Errorf("defaults: keep-alive %v, idle timeout %v", cfg.Listen.QUICKeepAlive, cfg.Listen.QUICIdleTimeout)
		}
	}
}
