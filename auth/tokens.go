package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kerf-edge/kerf/internal/atomicfile"
)

// TokenPrefix starts every tenant token, so that leaked tokens are easy
// to spot.
const TokenPrefix = "kerf_"

// TokenStore issues, revokes and checks tenant bearer tokens. Only their
// SHA-256 is kept; the token itself is shown once, at issue. With a path,
// every change is written atomically to that file.
type TokenStore struct {
	path string
	mu   sync.Mutex
	recs map[string]*TokenRecord // by hex SHA-256 of the token
	// stamp identifies the file version loaded or written last; another
	// process (kerfd token …) may change the file under a running kerfd.
	stamp fileStamp
	// OnRevoke, if set, is called with the tenant ID after a revocation,
	// so live sessions can be closed.
	OnRevoke func(tenantID string)
}

// TokenRecord describes an issued token.
type TokenRecord struct {
	Tenant   string    `json:"tenant"`
	MemLimit uint64    `json:"memLimit,omitempty"`
	Issued   time.Time `json:"issued"`
	Revoked  time.Time `json:"revoked,omitzero"`
}

var _ Authenticator = (*TokenStore)(nil)

// OpenTokenStore loads the store at path, creating it empty if missing.
// An empty path gives an in-memory store.
func OpenTokenStore(path string) (*TokenStore, error) {
	s := &TokenStore{path: path, recs: map[string]*TokenRecord{}}
	if path == "" {
		return s, nil
	}
	recs, stamp, err := readTokenFile(path)
	if err != nil {
		return nil, err
	}
	s.recs, s.stamp = recs, stamp
	return s, nil
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{fi.ModTime(), fi.Size()}
}

func readTokenFile(path string) (map[string]*TokenRecord, fileStamp, error) {
	recs := map[string]*TokenRecord{}
	stamp := stampOf(path)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return recs, stamp, nil
	}
	if err != nil {
		return nil, stamp, err
	}
	if err := json.Unmarshal(b, &recs); err != nil {
		return nil, stamp, fmt.Errorf("token store %s is corrupt (kept as is): %w", path, err)
	}
	return recs, stamp, nil
}

// reloadLocked picks up changes another process made to the file and
// returns the tenants newly revoked by them, each once.
func (s *TokenStore) reloadLocked() []string {
	if s.path == "" || stampOf(s.path) == s.stamp {
		return nil
	}
	recs, stamp, err := readTokenFile(s.path)
	if err != nil {
		return nil // keep serving with what we have; the next save rewrites it
	}
	var revoked []string
	for h, r := range recs {
		if old, ok := s.recs[h]; ok && old.Revoked.IsZero() && !r.Revoked.IsZero() && !slices.Contains(revoked, r.Tenant) {
			revoked = append(revoked, r.Tenant)
		}
	}
	s.recs, s.stamp = recs, stamp
	return revoked
}

// lockReloaded locks the store with the file's changes picked up. The
// unlock it returns releases the lock and then hands OnRevoke every tenant
// revoked in the file since the last look, and the tenants in also: every
// path that reloads ends the sessions of tenants revoked elsewhere.
func (s *TokenStore) lockReloaded() (unlock func(also ...string)) {
	s.mu.Lock()
	revoked := s.reloadLocked()
	return func(also ...string) {
		hook := s.OnRevoke
		s.mu.Unlock()
		if hook == nil {
			return
		}
		for _, t := range revoked {
			hook(t)
		}
		for _, t := range also {
			if !slices.Contains(revoked, t) {
				hook(t)
			}
		}
	}
}

// Reload picks up changes made to the file by another process, ending the
// sessions of tenants revoked there. kerfd calls it periodically, so that
// a revocation through the file takes effect without an incoming call.
func (s *TokenStore) Reload() {
	s.lockReloaded()()
}

func hashToken(tok []byte) string {
	sum := sha256.Sum256(tok)
	return hex.EncodeToString(sum[:])
}

// Issue creates a token for tenant and returns it; it cannot be recovered
// later.
func (s *TokenStore) Issue(tenant string, memLimit uint64) (string, error) {
	if err := CheckTenantName(tenant); err != nil {
		return "", err
	}
	tok, err := newToken()
	if err != nil {
		return "", err
	}
	unlock := s.lockReloaded()
	defer unlock()
	s.recs[hashToken([]byte(tok))] = &TokenRecord{Tenant: tenant, MemLimit: memLimit, Issued: time.Now().UTC()}
	return tok, s.saveLocked()
}

// Replace issues a token for tenant as Issue does and revokes the
// tenant's earlier live tokens in the same write; it returns the new
// token and how many it revoked (the tenant's sessions on them end).
func (s *TokenStore) Replace(tenant string, memLimit uint64) (string, int, error) {
	if err := CheckTenantName(tenant); err != nil {
		return "", 0, err
	}
	tok, err := newToken()
	if err != nil {
		return "", 0, err
	}
	unlock := s.lockReloaded()
	now := time.Now().UTC()
	n := 0
	for _, r := range s.recs {
		if r.Tenant == tenant && r.Revoked.IsZero() {
			r.Revoked = now
			n++
		}
	}
	s.recs[hashToken([]byte(tok))] = &TokenRecord{Tenant: tenant, MemLimit: memLimit, Issued: now}
	err = s.saveLocked()
	if n > 0 {
		unlock(tenant)
	} else {
		unlock()
	}
	return tok, n, err
}

func newToken() (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:]), nil
}

// Revoke revokes every token of tenant and reports how many it revoked.
func (s *TokenStore) Revoke(tenant string) (int, error) {
	unlock := s.lockReloaded()
	n := 0
	for _, r := range s.recs {
		if r.Tenant == tenant && r.Revoked.IsZero() {
			r.Revoked = time.Now().UTC()
			n++
		}
	}
	err := s.saveLocked()
	if n > 0 {
		unlock(tenant)
	} else {
		unlock()
	}
	return n, err
}

// Mint makes a token for a store other than this process's own (a
// pool's shared state): the token, shown once, and the hash it is kept
// under.
func Mint() (tok, hash string, err error) {
	tok, err = newToken()
	if err != nil {
		return "", "", err
	}
	return tok, hashToken([]byte(tok)), nil
}

// Records are tenant's records, by hash.
func (s *TokenStore) Records(tenant string) map[string]TokenRecord {
	unlock := s.lockReloaded()
	defer unlock()
	out := map[string]TokenRecord{}
	for h, r := range s.recs {
		if r.Tenant == tenant {
			out[h] = *r
		}
	}
	return out
}

// All are every record, by hash, with the file's changes picked up.
func (s *TokenStore) All() map[string]TokenRecord {
	unlock := s.lockReloaded()
	defer unlock()
	out := make(map[string]TokenRecord, len(s.recs))
	for h, r := range s.recs {
		out[h] = *r
	}
	return out
}

// Apply sets the records recs, by hash, of tenant, as state shared with
// other nodes has them; the tenant's other records (issued on this node
// alone) stay. A token live here and revoked in recs ends the tenant's
// sessions (OnRevoke); one revoked here stays revoked. The file is written only when something changed.
func (s *TokenStore) Apply(tenant string, recs map[string]TokenRecord) error {
	unlock := s.lockReloaded()
	changed, revoked := false, false
	for h, r := range recs {
		if r.Tenant != tenant {
			continue
		}
		old, ok := s.recs[h]
		if ok && !old.Revoked.IsZero() && r.Revoked.IsZero() {
			r.Revoked = old.Revoked // a revocation is never undone
		}
		if ok && old.same(r) {
			continue
		}
		if ok && old.Revoked.IsZero() && !r.Revoked.IsZero() {
			revoked = true
		}
		s.recs[h] = &r
		changed = true
	}
	var err error
	if changed {
		err = s.saveLocked()
	}
	if revoked {
		unlock(tenant)
	} else {
		unlock()
	}
	return err
}

func (r TokenRecord) same(o TokenRecord) bool {
	return r.Tenant == o.Tenant && r.MemLimit == o.MemLimit && r.Issued.Equal(o.Issued) && r.Revoked.Equal(o.Revoked)
}

// Authenticate implements Authenticator.
func (s *TokenStore) Authenticate(tok []byte) (Tenant, error) {
	if len(tok) == 0 {
		return Tenant{}, errors.New("no token")
	}
	unlock := s.lockReloaded()
	defer unlock()
	r, ok := s.recs[hashToken(tok)]
	switch {
	case !ok:
		return Tenant{}, errors.New("unknown token")
	case !r.Revoked.IsZero():
		return Tenant{}, fmt.Errorf("token of tenant %q was revoked at %s", r.Tenant, r.Revoked.Format(time.RFC3339))
	}
	// A file written by hand or by an older kerfd may hold a name the rule
	// refuses; it must not reach logs and tables as a session's tenant.
	if err := CheckTenantName(r.Tenant); err != nil {
		return Tenant{}, fmt.Errorf("token refused: %w; issue a new token under a valid name", err)
	}
	return Tenant{ID: r.Tenant, Name: r.Tenant, MemLimit: r.MemLimit}, nil
}

// List returns the records, oldest first.
func (s *TokenStore) List() []TokenRecord {
	unlock := s.lockReloaded()
	defer unlock()
	out := make([]TokenRecord, 0, len(s.recs))
	for _, r := range s.recs {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Issued.Before(out[j].Issued) })
	return out
}

func (s *TokenStore) saveLocked() error {
	if s.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(s.recs, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(s.path, b, 0o600); err != nil {
		return err
	}
	s.stamp = stampOf(s.path)
	return nil
}

// Bundle is what a tenant needs to reach the appliance: written by
// `kerfd token issue`, read by `kerf run --token`.
type Bundle struct {
	Tenant      string `json:"tenant"`
	Token       string `json:"token"`
	QUIC        string `json:"quic,omitempty"`   // host:port
	Socket      string `json:"socket,omitempty"` // local path, on the appliance
	Fingerprint string `json:"fingerprint,omitempty"`
	// Pool names the members of a pool the tenant may reach over QUIC,
	// tried in turn; empty: the one node above.
	Pool []PoolMember `json:"pool,omitempty"`
}

// PoolMember is one member of a pool as a tenant reaches it.
type PoolMember struct {
	Node        string `json:"node,omitempty"`
	QUIC        string `json:"quic"`
	Fingerprint string `json:"fingerprint"`
}

// FingerprintOf is the certificate fingerprint the bundle pins for the
// QUIC address addr: the bundle's own for its address, else the pool
// member's at addr; "" when the bundle names no such address.
func (b Bundle) FingerprintOf(addr string) string {
	if addr == b.QUIC {
		return b.Fingerprint
	}
	for _, m := range b.Pool {
		if m.QUIC == addr {
			return m.Fingerprint
		}
	}
	return ""
}

// DefaultVia names the path a tenant takes when none is asked for (--via,
// KERF_VIA): "unix", the bundle's socket, when the bundle names one and
// exists reports it present (the tenant runs on the appliance); "quic"
// otherwise. A nil exists asks the file system.
func (b Bundle) DefaultVia(exists func(path string) bool) string {
	if exists == nil {
		exists = func(p string) bool { _, err := os.Stat(p); return err == nil }
	}
	if b.Socket != "" && exists(b.Socket) {
		return "unix"
	}
	return "quic"
}

// ReadBundle reads a token bundle file. A file holding only a bare token is
// accepted too.
func ReadBundle(path string) (Bundle, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Bundle{}, err
	}
	var bd Bundle
	if t := strings.TrimSpace(string(b)); strings.HasPrefix(t, TokenPrefix) {
		return Bundle{Token: t}, nil
	}
	if err := json.Unmarshal(b, &bd); err != nil {
		return Bundle{}, fmt.Errorf("token bundle %s: %w", path, err)
	}
	if bd.Token == "" {
		return Bundle{}, fmt.Errorf("token bundle %s has no token", path)
	}
	return bd, nil
}

// WriteBundle writes b to path with mode 0600.
func WriteBundle(path string, b Bundle) error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(data, '\n'), 0o600)
}
