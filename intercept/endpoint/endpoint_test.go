package endpoint

import (
	"path/filepath"
	"testing"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/internal/kerfenv"
)

func TestServerPinsItsPoolMembersCertificate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bundle.json")
	b := auth.Bundle{Tenant: "t", Token: "kerf_x", QUIC: "10.0.0.11:7443", Fingerprint: "sha256:aa",
		Pool: []auth.PoolMember{{Node: "a", QUIC: "10.0.0.11:7443", Fingerprint: "sha256:aa"}, {Node: "b", QUIC: "10.0.0.12:7443", Fingerprint: "sha256:bb"}}}
	if err := auth.WriteBundle(path, b); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ server, quic, fingerprint string }{
		{"", "10.0.0.11:7443", "sha256:aa"},
		{"10.0.0.12:7443", "10.0.0.12:7443", "sha256:bb"},
		{"10.0.0.13:7443", "10.0.0.13:7443", "sha256:aa"}, // not a member: the bundle's own
	} {
		env := map[string]string{kerfenv.Bundle: path, kerfenv.Server: tc.server, kerfenv.Via: "quic"}
		e, err := FromEnv(func(k string) string { return env[k] }, func(string) bool { return false })
		if err != nil {
			t.Fatal(err)
		}
		if e.Bundle.QUIC != tc.quic || e.Bundle.Fingerprint != tc.fingerprint {
			t.Errorf("KERF_SERVER=%q: dials %s pinned to %s, want %s pinned to %s", tc.server, e.Bundle.QUIC, e.Bundle.Fingerprint, tc.quic, tc.fingerprint)
		}
	}
}
