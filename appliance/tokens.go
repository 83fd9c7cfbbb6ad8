package appliance

import (
	"crypto/tls"
	"fmt"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/pool"
	"github.com/kerf-edge/kerf/transport"
)

type tlsCert = tls.Certificate

// IssueOffline issues a token while kerfd may be running: it writes the
// store file, which a running kerfd reloads. The new token replaces the
// tenant's earlier ones, which it revokes; it returns the bundle's path
// and how many it revoked. The bundle names the configured QUIC address;
// in a pool, the address this member publishes (pool.advertise), and the
// pool's other members as this member last saw them (offlineReach). In a
// pool, the member publishes the token and the revocations to the pool
// once it serves there with a quorum (publishOwnTokens).
func IssueOffline(cfg Config, tenant string, memLimit uint64, out string) (string, int, error) {
	_, fp, err := transport.LoadOrCreateCert(cfg.StateDir)
	if err != nil {
		return "", 0, err
	}
	b, err := offlineReach(cfg, fp)
	if err != nil {
		return "", 0, err
	}
	tokens, err := auth.OpenTokenStore(cfg.TokensPath())
	if err != nil {
		return "", 0, err
	}
	tok, replaced, err := tokens.Replace(tenant, memLimit)
	if err != nil {
		return "", 0, err
	}
	path, err := saveBundle(cfg, b, tenant, tok, out)
	return path, replaced, err
}

// offlineReach is how a tenant reaches this node, read from its
// configuration and state directory alone: in a pool, at the QUIC address
// it publishes, with the members it remembered when it last served
// (PoolMembersPath); none yet, this member alone.
func offlineReach(cfg Config, fp transport.Fingerprint) (auth.Bundle, error) {
	if !cfg.Pool.Enabled() {
		return reach(cfg, fp, cfg.Listen.QUIC), nil
	}
	quic, err := cfg.Pool.Advertised(pool.AdvertiseQUIC, cfg.Listen.QUIC)
	if err != nil {
		return auth.Bundle{}, fmt.Errorf("pool: %w", err)
	}
	others, err := readPoolMembers(cfg.PoolMembersPath())
	if err != nil {
		return auth.Bundle{}, fmt.Errorf("the pool's members: %w", err)
	}
	return withMembers(reach(cfg, fp, quic), cfg.PoolNode(), others), nil
}

// RevokeOffline revokes every token of tenant in the store file; a running
// kerfd ends the tenant's sessions when it notices, and in a pool
// publishes the revocation to every member (publishOwnTokens).
func RevokeOffline(cfg Config, tenant string) (int, error) {
	tokens, err := auth.OpenTokenStore(cfg.TokensPath())
	if err != nil {
		return 0, err
	}
	n, err := tokens.Revoke(tenant)
	if err == nil && n == 0 {
		err = fmt.Errorf("tenant %q has no live token", tenant)
	}
	return n, err
}

// ListTokens lists the token records in the store file.
func ListTokens(cfg Config) ([]auth.TokenRecord, error) {
	tokens, err := auth.OpenTokenStore(cfg.TokensPath())
	if err != nil {
		return nil, err
	}
	return tokens.List(), nil
}
