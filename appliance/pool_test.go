package appliance

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/internal/testkit"

	"github.com/kerf-edge/kerf/pool"
	"github.com/kerf-edge/kerf/profiles"
	"github.com/kerf-edge/kerf/profiles/api"
)

// A placement asked of a member whose pool state is not ready is
// unavailable (503), not an internal error.
func TestPoolPlaceBeforeReadyIsUnavailable(t *testing.T) {
	p := pool.New(pool.Options{Node: "a"})
	_, err := poolAPI{p}.Place(api.PoolPlacementRequest{Tenant: "t", Count: 1, Fraction: 0.5})
	if !errors.Is(err, profiles.ErrUnavailable) || !errors.Is(err, pool.ErrNotReady) {
		t.Fatalf("Place before the pool started: %v, want ErrUnavailable wrapping ErrNotReady", err)
	}
	if err := poolAPIError(pool.ErrNotReady); !errors.Is(err, profiles.ErrUnavailable) {
		t.Fatalf("buckets not yet created: %v, want ErrUnavailable", err)
	}
	if err := poolAPIError(fmt.Errorf("removing the leases of b: %w", pool.ErrNoMetaLeader)); !errors.Is(err, profiles.ErrUnavailable) {
		t.Fatalf("no meta leader: %v, want ErrUnavailable", err)
	}
}

// poolConfig is testConfig for a member of a pool (its broker is not
// started), with env's KERF_* settings added.
func poolConfig(t *testing.T, env ...string) (Config, error) {
	t.Helper()
	return LoadConfig("", append([]string{
		"KERF_STATE_DIR=" + t.TempDir(),
		"KERF_LISTEN__QUIC=127.0.0.1:0",
		"KERF_LISTEN__HTTP=127.0.0.1:0",
		"KERF_GPU__EMULATED__MEMORY=1GiB",
		"KERF_GPU__BACKEND=emulated",
		"KERF_INGEST__NODE=node-a",
		"KERF_POOL__LISTEN=" + testkit.FreePort(t),
		"KERF_POOL__SECRET=pool-secret-for-the-test",
	}, env...))
}

// A member whose listeners are on a wildcard address publishes, in its
// inventory entry and in the bundles that name the pool, the address
// pool.advertise gives, else its listeners' ports on pool.listen's host;
// bad values and wildcards with nothing to replace them stop it at load,
// naming the setting.
func TestPoolAdvertisedAddress(t *testing.T) {
	for _, tc := range []struct {
		name           string
		env            []string
		quic, httpHost string // httpHost: the published HTTP address's host, its port the bound one
	}{
		{"advertised", []string{"KERF_LISTEN__QUIC=0.0.0.0:0", "KERF_LISTEN__HTTP=0.0.0.0:0",
			"KERF_POOL__ADVERTISE__QUIC=10.9.8.7:7443", "KERF_POOL__ADVERTISE__HTTP=10.9.8.7:7080"}, "10.9.8.7:7443", ""},
		{"pool.listen's host", []string{"KERF_LISTEN__QUIC=0.0.0.0:0", "KERF_LISTEN__HTTP=0.0.0.0:0"}, "", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := poolConfig(t, tc.env...)
			if err != nil {
				t.Fatal(err)
			}
			a, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { a.Close() })
			quic := tc.quic
			if quic == "" {
				_, port, _ := net.SplitHostPort(a.QUICAddr())
				quic = net.JoinHostPort("127.0.0.1", port)
			}
			http := "10.9.8.7:7080"
			if tc.httpHost != "" {
				_, port, _ := net.SplitHostPort(a.HTTPAddr())
				http = net.JoinHostPort(tc.httpHost, port)
			}
			if a.published.QUIC != quic || a.published.HTTP != http {
				t.Fatalf("bound at %s and %s, the member publishes %+v, want QUIC %s, HTTP %s", a.QUICAddr(), a.HTTPAddr(), a.published, quic, http)
			}
			inv := poolLocal{n: a.node, quic: a.published.QUIC, http: a.published.HTTP}.Inventory()
			if inv.QUIC != quic || inv.HTTP != http {
				t.Fatalf("the inventory entry names %s and %s, want %s and %s", inv.QUIC, inv.HTTP, quic, http)
			}
			b := poolReach(a.pool, reach(cfg, a.fp, a.published.QUIC))
			if b.QUIC != quic || len(b.Pool) != 1 || b.Pool[0] != (auth.PoolMember{Node: "node-a", QUIC: quic, Fingerprint: a.fp.String()}) {
				t.Fatalf("a bundle names %s and the pool %+v, want %s for node-a", b.QUIC, b.Pool, quic)
			}
		})
	}
}

func TestPoolAdvertiseRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"bad quic", []string{"KERF_POOL__ADVERTISE__QUIC=10.9.8.7"}, `pool.advertise.quic "10.9.8.7": want host:port`},
		{"wildcard http", []string{"KERF_POOL__ADVERTISE__HTTP=0.0.0.0:7080"}, `pool.advertise.http "0.0.0.0:7080": want a host the others can dial`},
		{"http without a listener", []string{"KERF_LISTEN__HTTP=", "KERF_POOL__ADVERTISE__HTTP=10.9.8.7:7080"}, "pool.advertise.http: listen.http is empty"},
		{"nothing to advertise", []string{"KERF_LISTEN__QUIC=0.0.0.0:7443", "KERF_POOL__LISTEN=0.0.0.0:7222",
			"KERF_POOL__TLS__CERT_FILE=/c", "KERF_POOL__TLS__KEY_FILE=/k", "KERF_POOL__TLS__CA_FILE=/ca"},
			"listen.quic 0.0.0.0:7443 is a wildcard, and so is pool.listen 0.0.0.0:7222, with no peers to find this member's address by: set pool.advertise.quic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := poolConfig(t, tc.env...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("loading the configuration: %v; want an error saying %q", err, tc.want)
			}
		})
	}
}

// A bundle issued offline on a member of a pool names this member at the
// address it advertises, then the other members it remembered when it
// last served; before it ever did, this member alone.
func TestIssueOfflineNamesThePool(t *testing.T) {
	cfg, err := poolConfig(t, "KERF_LISTEN__QUIC=0.0.0.0:7443", "KERF_POOL__ADVERTISE__QUIC=10.9.8.7:7443")
	if err != nil {
		t.Fatal(err)
	}
	issue := func() auth.Bundle {
		t.Helper()
		path, _, err := IssueOffline(cfg, "ops", 0, "")
		if err != nil {
			t.Fatal(err)
		}
		b, err := auth.ReadBundle(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := issue()
	self := auth.PoolMember{Node: "node-a", QUIC: "10.9.8.7:7443", Fingerprint: b.Fingerprint}
	if b.QUIC != self.QUIC || b.Fingerprint == "" || !slices.Equal(b.Pool, []auth.PoolMember{self}) {
		t.Fatalf("issued before the member served: %s and the pool %+v, want %s alone", b.QUIC, b.Pool, self.QUIC)
	}
	others := []auth.PoolMember{{Node: "node-b", QUIC: "10.9.8.8:7443", Fingerprint: "bb"}, {Node: "node-c", QUIC: "10.9.8.9:7443", Fingerprint: "cc"}}
	// As rememberPoolMembers writes them, and a stale entry for this
	// member, which the bundle names at its own address.
	if err := writePoolMembers(cfg.PoolMembersPath(), append(others, auth.PoolMember{Node: "node-a", QUIC: "10.1.1.1:1", Fingerprint: "old"})); err != nil {
		t.Fatal(err)
	}
	b = issue()
	if want := append([]auth.PoolMember{self}, others...); b.QUIC != self.QUIC || !slices.Equal(b.Pool, want) {
		t.Fatalf("issued after the member served: %s and the pool %+v, want %s and %+v", b.QUIC, b.Pool, self.QUIC, want)
	}
	if err := os.WriteFile(cfg.PoolMembersPath(), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := IssueOffline(cfg, "ops", 0, ""); err == nil || !strings.Contains(err.Error(), "pool-members.json") {
		t.Fatalf("a members file that does not parse: %v, want an error naming it", err)
	}
}
