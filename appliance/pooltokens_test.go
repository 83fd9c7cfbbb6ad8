package appliance

import (
	"errors"
	"log/slog"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/auth"
)

// A member's own tokens join the pool's entry; a revocation in either
// wins over an issue in the other, and nothing else of the entry changes.
func TestMergeOwnTokens(t *testing.T) {
	issued := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	live := auth.TokenRecord{Tenant: "ops", MemLimit: 1 << 30, Issued: issued}
	revoked := func(at int) auth.TokenRecord {
		r := live
		r.Revoked = issued.Add(time.Duration(at) * time.Hour)
		return r
	}
	for _, tc := range []struct {
		name             string
		pool, own, want  map[string]auth.TokenRecord
		issued, revokedN int
	}{
		{"a token the pool lacks joins it",
			map[string]auth.TokenRecord{"h1": live}, map[string]auth.TokenRecord{"h2": live},
			map[string]auth.TokenRecord{"h1": live, "h2": live}, 1, 0},
		{"a token revoked here that the pool lacks joins it revoked",
			map[string]auth.TokenRecord{}, map[string]auth.TokenRecord{"h1": revoked(1)},
			map[string]auth.TokenRecord{"h1": revoked(1)}, 0, 1},
		{"a token revoked here is revoked in the pool",
			map[string]auth.TokenRecord{"h1": live, "h2": live}, map[string]auth.TokenRecord{"h1": revoked(1)},
			map[string]auth.TokenRecord{"h1": revoked(1), "h2": live}, 0, 1},
		{"a token revoked in the pool stays revoked",
			map[string]auth.TokenRecord{"h1": revoked(2)}, map[string]auth.TokenRecord{"h1": live},
			map[string]auth.TokenRecord{"h1": revoked(2)}, 0, 0},
		{"a token revoked in both keeps the pool's revocation",
			map[string]auth.TokenRecord{"h1": revoked(2)}, map[string]auth.TokenRecord{"h1": revoked(1)},
			map[string]auth.TokenRecord{"h1": revoked(2)}, 0, 0},
		{"a token live in both is left as is",
			map[string]auth.TokenRecord{"h1": live}, map[string]auth.TokenRecord{"h1": live},
			map[string]auth.TokenRecord{"h1": live}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tenantDoc{Tokens: maps.Clone(tc.pool)}
			issued, revokedN := mergeOwn(&d, tc.own)
			if !sameRecords(d.Tokens, tc.want) || issued != tc.issued || revokedN != tc.revokedN {
				t.Fatalf("merged %+v, %d issued, %d revoked; want %+v, %d, %d", d.Tokens, issued, revokedN, tc.want, tc.issued, tc.revokedN)
			}
		})
	}
}

// The records of the token file the pool lacks, or holds live while the
// file has them revoked, are the ones to publish, by tenant; once the
// pool is seen to hold them, none.
func TestPoolHeldUnpublished(t *testing.T) {
	issued := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := func(tenant string, revoked bool) auth.TokenRecord {
		r := auth.TokenRecord{Tenant: tenant, Issued: issued}
		if revoked {
			r.Revoked = issued.Add(time.Hour)
		}
		return r
	}
	held := newPoolHeld()
	held.saw(map[string]auth.TokenRecord{"shared": rec("ops", false), "gone": rec("ops", true), "other": rec("dev", false)})
	own := map[string]auth.TokenRecord{
		"shared":  rec("ops", true),  // revoked here, live in the pool
		"gone":    rec("ops", false), // revoked in the pool: not brought back
		"other":   rec("dev", false), // the pool has it
		"offline": rec("dev", false), // the pool lacks it
	}
	got := held.unpublished(own)
	want := map[string]map[string]auth.TokenRecord{
		"ops": {"shared": own["shared"]},
		"dev": {"offline": own["offline"]},
	}
	if !maps.EqualFunc(got, want, sameRecords) {
		t.Fatalf("unpublished %+v, want %+v", got, want)
	}
	held.saw(map[string]auth.TokenRecord{"shared": own["shared"]})
	held.saw(map[string]auth.TokenRecord{"offline": own["offline"]})
	if got := held.unpublished(own); len(got) != 0 {
		t.Fatalf("unpublished %+v once the pool holds them, want none", got)
	}
}

// sameRecords reports whether a and b hold the same records by hash.
func sameRecords(a, b map[string]auth.TokenRecord) bool {
	return maps.EqualFunc(a, b, func(x, y auth.TokenRecord) bool {
		return x.Tenant == y.Tenant && x.MemLimit == y.MemLimit && x.Issued.Equal(y.Issued) && x.Revoked.Equal(y.Revoked)
	})
}

// memTenants is a tenants bucket in memory; a write is applied at once,
// as the member's watch applies it (watchPoolState).
type memTenants struct {
	docs   map[string]tenantDoc
	writes int
	err    error // every write fails with it
	tokens *auth.TokenStore
	held   *poolHeld
}

func (m *memTenants) updateTenant(tenant string, f func(d *tenantDoc) error) (tenantDoc, error) {
	if m.err != nil {
		return tenantDoc{}, m.err
	}
	d := tenantDoc{Tokens: maps.Clone(m.docs[tenant].Tokens)}
	if d.Tokens == nil {
		d.Tokens = map[string]auth.TokenRecord{}
	}
	if err := f(&d); err != nil {
		return tenantDoc{}, err
	}
	m.docs[tenant] = d
	m.writes++
	m.held.saw(d.Tokens)
	return d, m.tokens.Apply(tenant, d.Tokens)
}

// A round publishes the tokens the pool lacks and the file's
// revocations, once each, tenant by tenant; a round without the pool
// writes nothing and the next one publishes; a token revoked in the pool
// and live in the file is left revoked; the log names no token.
func TestPublishOwnTokens(t *testing.T) {
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	tokens, err := auth.OpenTokenStore(filepath.Join(t.TempDir(), "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	ops, err := tokens.Issue("ops", 0)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := tokens.Issue("dev", 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	// A token the pool revoked while this member was away, live here.
	_, gone, _ := auth.Mint()
	issued := time.Now().UTC().Add(-time.Hour)
	if err := tokens.Apply("old", map[string]auth.TokenRecord{gone: {Tenant: "old", Issued: issued}}); err != nil {
		t.Fatal(err)
	}
	revokedInPool := auth.TokenRecord{Tenant: "old", Issued: issued, Revoked: issued.Add(time.Minute)}
	held := newPoolHeld()
	m := &memTenants{docs: map[string]tenantDoc{"old": {Tokens: map[string]auth.TokenRecord{gone: revokedInPool}}},
		err: errors.New("the pool has no quorum"), tokens: tokens, held: held}
	failing := map[string]bool{}

	round := func(what string, writes int) {
		t.Helper()
		before := m.writes
		publishRound(m, tokens, held, log, failing)
		if m.writes-before != writes {
			t.Fatalf("%s: %d writes, want %d", what, m.writes-before, writes)
		}
	}
	round("without the pool", 0)
	if len(failing) != 3 {
		t.Fatalf("failing %v, want every tenant of the file", failing)
	}
	m.err = nil
	round("with the pool back", 2) // ops and dev; old's entry has its token already
	if len(failing) != 0 {
		t.Fatalf("failing %v after a round that published", failing)
	}
	live := func(tenant string) int {
		n := 0
		for _, r := range m.docs[tenant].Tokens {
			if r.Revoked.IsZero() {
				n++
			}
		}
		return n
	}
	if live("ops") != 1 || live("dev") != 1 || live("old") != 0 || !m.docs["old"].Tokens[gone].Revoked.Equal(revokedInPool.Revoked) {
		t.Fatalf("the pool's entries after publishing: %+v", m.docs)
	}
	round("with nothing new", 0)

	if _, err := tokens.Revoke("ops"); err != nil {
		t.Fatal(err)
	}
	round("after a revocation in the file", 1)
	if live("ops") != 0 || len(m.docs["ops"].Tokens) != 1 {
		t.Fatalf("ops's entry after its revocation in the file: %+v", m.docs["ops"])
	}
	round("after the revocation was published", 0)

	for _, tok := range []string{ops, dev} {
		if strings.Contains(logged.String(), tok) {
			t.Fatalf("the log names a token:\n%s", logged.String())
		}
	}
	if !strings.Contains(logged.String(), "tenant=ops issued=0 revoked=1") {
		t.Fatalf("the log does not say ops's revocation was published:\n%s", logged.String())
	}
}
