package appliance

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/pool"
)

// poolHeld is the tokens the pool's tenants bucket holds as this member
// last saw them, by hash: each tenant's entry as the watch gave it
// (watchPoolState), or as publishOwnTokens read or wrote it. It tells
// which records of the token file the pool lacks.
type poolHeld struct {
	mu   sync.Mutex
	recs map[string]auth.TokenRecord
}

func newPoolHeld() *poolHeld { return &poolHeld{recs: map[string]auth.TokenRecord{}} }

// saw records recs, a tenant's tokens in the pool, by hash.
func (h *poolHeld) saw(recs map[string]auth.TokenRecord) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, r := range recs {
		h.recs[k] = r
	}
}

// unpublished are the records of own (the token file, by hash) that the
// pool lacks or holds live while own has them revoked, by tenant.
func (h *poolHeld) unpublished(own map[string]auth.TokenRecord) map[string]map[string]auth.TokenRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]map[string]auth.TokenRecord{}
	for k, r := range own {
		held, ok := h.recs[k]
		if ok && (r.Revoked.IsZero() || !held.Revoked.IsZero()) {
			continue
		}
		if out[r.Tenant] == nil {
			out[r.Tenant] = map[string]auth.TokenRecord{}
		}
		out[r.Tenant][k] = r
	}
	return out
}

// mergeOwn merges recs, records of d's tenant from this member's token
// file, into d: a token d lacks joins it as recs has it, revoked or not;
// a token revoked in recs is revoked in d. A token d has revoked stays
// revoked: a revocation anywhere wins over an issue. It returns how many
// tokens joined live, and how many were revoked by recs.
func mergeOwn(d *tenantDoc, recs map[string]auth.TokenRecord) (issued, revoked int) {
	for k, r := range recs {
		held, ok := d.Tokens[k]
		switch {
		case !ok:
			d.Tokens[k] = r
			if r.Revoked.IsZero() {
				issued++
			} else {
				revoked++
			}
		case held.Revoked.IsZero() && !r.Revoked.IsZero():
			held.Revoked = r.Revoked
			d.Tokens[k] = held
			revoked++
		}
	}
	return issued, revoked
}

// ownTokensInterval is how often a member of a pool compares its token
// file with the pool's tenants, as often as kerfd looks at the file.
const ownTokensInterval = tokenReloadInterval

// publishOwnTokens publishes, until ctx ends, the tokens of this member's
// token file that the pool lacks into the pool's tenants bucket, and
// their revocations: tokens issued or revoked with kerfd tokens issue|
// revoke, the default tenant's first token, and those the member held
// before it joined. Every interval it compares the file with what the
// pool holds as it last saw it (held); a tenant with a difference is
// merged into the pool's entry by compare-and-set (mergeOwn). Without a
// quorum, or when a write fails, it tries again on a later round. The
// watch then applies the entry to every member.
func publishOwnTokens(ctx context.Context, p *pool.Pool, tokens *auth.TokenStore, held *poolHeld, log *slog.Logger, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := map[string]bool{} // tenants whose last write failed, warned once
	for {
		if p.Quorum() == nil {
			publishRound(poolTenants{p}, tokens, held, log, failing)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// errNothingToPublish leaves a tenant's entry as it is.
var errNothingToPublish = errors.New("nothing to publish")

// tenantWriter writes a tenant's entry in the pool's tenants bucket by
// compare-and-set, with f applied to it, and returns the entry written.
type tenantWriter interface {
	updateTenant(tenant string, f func(d *tenantDoc) error) (tenantDoc, error)
}

// poolTenants is the pool's tenants bucket.
type poolTenants struct{ p *pool.Pool }

var _ tenantWriter = poolTenants{}

func (t poolTenants) updateTenant(tenant string, f func(d *tenantDoc) error) (tenantDoc, error) {
	return updateTenant(t.p, tenant, f)
}

// publishRound is one comparison of the token file with the pool's
// tenants, and a write for each tenant that differs.
func publishRound(w tenantWriter, tokens *auth.TokenStore, held *poolHeld, log *slog.Logger, failing map[string]bool) {
	pending := held.unpublished(tokens.All())
	for _, tenant := range slices.Sorted(maps.Keys(pending)) {
		if auth.CheckTenantName(tenant) != nil {
			continue // a name the pool refuses; this member refuses its tokens too (Authenticate)
		}
		var issued, revoked int
		var read map[string]auth.TokenRecord
		d, err := w.updateTenant(tenant, func(d *tenantDoc) error {
			read = maps.Clone(d.Tokens)
			if issued, revoked = mergeOwn(d, pending[tenant]); issued+revoked == 0 {
				return errNothingToPublish
			}
			return nil
		})
		switch {
		case errors.Is(err, errNothingToPublish):
			held.saw(read) // the pool had them already
		case err != nil:
			if !failing[tenant] {
				log.Warn("this member's own tokens not yet published to the pool; trying again", "tenant", tenant, "err", err)
			}
			failing[tenant] = true
			continue
		default:
			held.saw(d.Tokens)
			log.Info("published this member's own tokens to the pool", "tenant", tenant, "issued", issued, "revoked", revoked)
		}
		delete(failing, tenant)
	}
}
