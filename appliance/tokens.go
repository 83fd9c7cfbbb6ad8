package appliance

import (
	"crypto/tls"
	"fmt"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/transport"
)

type tlsCert = tls.Certificate

// IssueOffline issues a token while kerfd may be running: it writes the
// store file, which a running kerfd reloads. The new token replaces the
// tenant's earlier ones, which it revokes; it returns the bundle's path
// and how many it revoked. The bundle names the configured QUIC address.
func IssueOffline(cfg Config, tenant string, memLimit uint64, out string) (string, int, error) {
	_, fp, err := transport.LoadOrCreateCert(cfg.StateDir)
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
	path, err := writeBundle(cfg, fp, cfg.Listen.QUIC, tenant, tok, out)
	return path, replaced, err
}

// RevokeOffline revokes every token of tenant in the store file; a running
// kerfd ends the tenant's sessions when it notices.
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
