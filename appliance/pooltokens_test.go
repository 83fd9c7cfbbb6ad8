package appliance

import (
	"maps"
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
