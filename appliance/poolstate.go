package appliance

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/pool"
	"github.com/kerf-edge/kerf/profiles"
	"github.com/kerf-edge/kerf/profiles/api"
)

// tenantDoc is a tenant's entry in the pool's tenants bucket: its tokens'
// records, by the hash of each token (the token itself is kept nowhere).
type tenantDoc struct {
	Tokens map[string]auth.TokenRecord `json:"tokens"`
	// Policy is the tenant's own policy, set through the API; nil: none
	// set through the pool.
	Policy *api.TenantPolicy `json:"policy,omitempty"`
}

// updateTenant writes tenant's entry by compare-and-set, with f applied
// to it, and returns the entry written.
func updateTenant(p *pool.Pool, tenant string, f func(d *tenantDoc) error) (tenantDoc, error) {
	if err := auth.CheckTenantName(tenant); err != nil {
		return tenantDoc{}, err
	}
	v, err := p.Update(pool.TenantsBucket, tenant, func(old []byte) ([]byte, error) {
		d := tenantDoc{Tokens: map[string]auth.TokenRecord{}}
		if len(old) > 0 {
			if err := json.Unmarshal(old, &d); err != nil {
				return nil, fmt.Errorf("tenant %q in the pool does not parse: %w", tenant, err)
			}
			if d.Tokens == nil {
				d.Tokens = map[string]auth.TokenRecord{}
			}
		}
		if err := f(&d); err != nil {
			return nil, err
		}
		return json.Marshal(d)
	})
	if err != nil {
		return tenantDoc{}, poolAPIError(err)
	}
	var d tenantDoc
	err = json.Unmarshal(v, &d)
	return d, err
}

// poolTokens issues and revokes tokens through the pool's state: a token
// issued by any member authenticates at every member, and a revocation at
// one ends the tenant's sessions at all. Each member applies the bucket to
// its token store (watchPoolState), which authenticates and lists from
// what it applied last, quorum or not. Tokens issued or revoked by `kerfd
// tokens issue|revoke` on a member reach the pool once that member serves
// in it with a quorum (publishOwnTokens).
type poolTokens struct {
	p     *pool.Pool
	local *auth.TokenStore
}

var _ profiles.Tokens = poolTokens{}

// errNothingToRevoke leaves a tenant's entry as it is.
var errNothingToRevoke = errors.New("nothing to revoke")

// change writes tenant's entry with f applied to it; this member has
// applied it (watchPoolState) once it returns.
func (t poolTokens) change(tenant string, f func(d *tenantDoc) error) error {
	_, err := updateTenant(t.p, tenant, f)
	return err
}

// revokeLive revokes every live token of tenant in d, and those this
// member issued alone, which join the entry revoked; it returns how many.
func (t poolTokens) revokeLive(tenant string, d *tenantDoc, now time.Time) int {
	for h, r := range t.local.Records(tenant) {
		if _, ok := d.Tokens[h]; !ok {
			d.Tokens[h] = r
		}
	}
	n := 0
	for h, r := range d.Tokens {
		if r.Revoked.IsZero() {
			r.Revoked = now
			d.Tokens[h] = r
			n++
		}
	}
	return n
}

func (t poolTokens) Issue(tenant string, memLimit uint64) (string, error) {
	tok, hash, err := auth.Mint()
	if err != nil {
		return "", err
	}
	err = t.change(tenant, func(d *tenantDoc) error {
		d.Tokens[hash] = auth.TokenRecord{Tenant: tenant, MemLimit: memLimit, Issued: time.Now().UTC()}
		return nil
	})
	return tok, err
}

func (t poolTokens) Replace(tenant string, memLimit uint64) (string, int, error) {
	tok, hash, err := auth.Mint()
	if err != nil {
		return "", 0, err
	}
	n := 0
	err = t.change(tenant, func(d *tenantDoc) error {
		now := time.Now().UTC()
		n = t.revokeLive(tenant, d, now)
		d.Tokens[hash] = auth.TokenRecord{Tenant: tenant, MemLimit: memLimit, Issued: now}
		return nil
	})
	if err != nil {
		return "", 0, err
	}
	return tok, n, nil
}

func (t poolTokens) Revoke(tenant string) (int, error) {
	n := 0
	err := t.change(tenant, func(d *tenantDoc) error {
		if n = t.revokeLive(tenant, d, time.Now().UTC()); n == 0 {
			return errNothingToRevoke
		}
		return nil
	})
	if errors.Is(err, errNothingToRevoke) {
		return 0, nil
	}
	return n, err
}

// List is what this member applied last.
func (t poolTokens) List() []auth.TokenRecord { return t.local.List() }

// poolPolicies sets tenant policies through the pool's state, so that a
// tenant's policy is the same on every member; each member reads its own
// slicer's, as last applied.
type poolPolicies struct {
	p     *pool.Pool
	local tenantPolicies
}

var _ profiles.TenantPolicies = poolPolicies{}

func (pp poolPolicies) TenantPolicy(tenant string) api.TenantPolicy {
	return pp.local.TenantPolicy(tenant)
}

func (pp poolPolicies) SetTenantPolicy(tenant string, p api.TenantPolicy) (api.TenantPolicy, error) {
	p.Own = false
	if _, err := updateTenant(pp.p, tenant, func(d *tenantDoc) error { d.Policy = &p; return nil }); err != nil {
		return api.TenantPolicy{}, err
	}
	return pp.local.TenantPolicy(tenant), nil // applied by watchPoolState
}

// applyPolicy sets tenant's policy in the slicer unless it holds that one
// already.
func (tp tenantPolicies) applyPolicy(tenant string, p api.TenantPolicy) {
	want := slicerPolicy(p)
	if _, own := tp.sl.Status().Policies[tenant]; own && tp.sl.PolicyOf(tenant) == want {
		return
	}
	tp.sl.SetPolicy(tenant, want)
}

// poolShared writes the API's profiles and rules to the pool's buckets.
type poolShared struct{ p *pool.Pool }

var _ profiles.Shared = poolShared{}

func sharedBucket(kind string) (string, error) {
	switch kind {
	case profiles.SharedProfile:
		return pool.ProfilesBucket, nil
	case profiles.SharedRule:
		return pool.RulesBucket, nil
	}
	return "", fmt.Errorf("no bucket for %q", kind)
}

func (s poolShared) Share(kind, name string, doc any) error {
	bucket, err := sharedBucket(kind)
	if err != nil {
		return err
	}
	var b []byte // empty: deleted
	if doc != nil {
		if b, err = json.Marshal(doc); err != nil {
			return err
		}
	}
	return poolAPIError(s.p.Put(bucket, name, b))
}

// watchPoolState has this member apply the pool's tenants, profiles and
// rules as they change: tokens to its token store (a revocation ends the
// tenant's sessions here) and to held (what the pool holds, for
// publishOwnTokens), policies to its slicer, profiles and rules to the
// API's store (the rule engine picks them up from there).
func watchPoolState(p *pool.Pool, tokens *auth.TokenStore, held *poolHeld, policies tenantPolicies, srv *profiles.Server) {
	p.Watch(pool.TenantsBucket, func(tenant string, v []byte) error {
		if len(v) == 0 {
			return nil
		}
		var d tenantDoc
		if err := json.Unmarshal(v, &d); err != nil {
			return err
		}
		if d.Policy != nil {
			policies.applyPolicy(tenant, *d.Policy)
		}
		held.saw(d.Tokens)
		return tokens.Apply(tenant, d.Tokens)
	})
	p.Watch(pool.ProfilesBucket, func(name string, v []byte) error {
		return srv.ApplyShared(profiles.SharedProfile, name, v)
	})
	p.Watch(pool.RulesBucket, func(name string, v []byte) error {
		return srv.ApplyShared(profiles.SharedRule, name, v)
	})
}
