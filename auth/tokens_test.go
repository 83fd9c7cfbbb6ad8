package auth

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestIssueAuthenticateRevoke(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	s, err := OpenTokenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	var revoked []string
	s.OnRevoke = func(id string) { revoked = append(revoked, id) }
	tok, err := s.Issue("alice", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, TokenPrefix) {
		t.Fatalf("token %q lacks the prefix %q", tok, TokenPrefix)
	}
	got, err := s.Authenticate([]byte(tok))
	if err != nil || got != (Tenant{ID: "alice", Name: "alice", MemLimit: 1 << 20}) {
		t.Fatalf("Authenticate = %+v, %v", got, err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), tok) {
		t.Fatal("the store file holds the token itself, not its hash")
	}
	for _, bad := range []string{"", "kerf_unknown"} {
		if _, err := s.Authenticate([]byte(bad)); err == nil {
			t.Errorf("token %q accepted", bad)
		}
	}
	if n, err := s.Revoke("alice"); n != 1 || err != nil {
		t.Fatalf("Revoke = %d, %v", n, err)
	}
	if len(revoked) != 1 || revoked[0] != "alice" {
		t.Fatalf("OnRevoke saw %v", revoked)
	}
	if _, err := s.Authenticate([]byte(tok)); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked token: %v", err)
	}
}

func TestTenantNames(t *testing.T) {
	good := []string{"default", "alice", "t00", "bench", "a", "0day", "tenant-a", "s0-30", "ends-", strings.Repeat("x", 63)}
	bad := []string{"", "Alice", "a_b", "a b", "a/b", "a.b", "-a", strings.Repeat("x", 64),
		"a\x00b", "\x1b[31mred", "bob\u202eexe", "alice\n", "é", "\t"}
	s, _ := OpenTokenStore("")
	for _, name := range good {
		if err := CheckTenantName(name); err != nil {
			t.Errorf("CheckTenantName(%q) = %v", name, err)
		}
		if _, err := s.Issue(name, 0); err != nil {
			t.Errorf("Issue(%q) = %v", name, err)
		}
	}
	for _, name := range bad {
		if CheckTenantName(name) == nil {
			t.Errorf("CheckTenantName accepts %q", name)
		}
		_, err := s.Issue(name, 0)
		if err == nil {
			t.Errorf("Issue accepts %q", name)
			continue
		}
		// The error quotes the name: nothing raw reaches a terminal.
		if msg := err.Error(); strings.ContainsAny(msg, "\x00\x1b\u202e\n\t") {
			t.Errorf("the error for %q carries the raw name: %q", name, msg)
		}
	}
	if len(s.List()) != len(good) {
		t.Fatalf("the store holds %d records, want %d", len(s.List()), len(good))
	}
}

// A token file written by hand (or before the rule) may name a tenant the
// rule refuses; its token does not authenticate.
func TestTokenOfABadlyNamedTenantIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	tok := TokenPrefix + "handwritten"
	file := `{"` + hashToken([]byte(tok)) + `": {"tenant": "evil\u001b[2J", "issued": "2026-01-02T03:04:05Z"}}`
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := OpenTokenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Authenticate([]byte(tok)); err == nil {
		t.Fatalf("authenticated as %q", got.ID)
	} else if strings.Contains(err.Error(), "\x1b") {
		t.Fatalf("the error carries the raw name: %q", err)
	}
}

// A second store on the same file (kerfd token … while kerfd runs) sees
// the first's tokens, and the first sees the second's revocations.
func TestStoresShareTheirFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	a, err := OpenTokenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.Issue("bob", 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenTokenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate([]byte(tok)); err != nil {
		t.Fatalf("second store: %v", err)
	}
	var revoked []string
	a.OnRevoke = func(id string) { revoked = append(revoked, id) }
	if n, err := b.Revoke("bob"); n != 1 || err != nil {
		t.Fatalf("Revoke = %d, %v", n, err)
	}
	// The file's size changes with the revocation time, so the stamp moves.
	a.Reload()
	if len(revoked) != 1 {
		t.Fatalf("first store saw revocations %v", revoked)
	}
	if _, err := a.Authenticate([]byte(tok)); err == nil {
		t.Fatal("first store still accepts a token revoked through the second")
	}
}

func TestCorruptStoreIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenTokenStore(path); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("corrupt store: %v", err)
	}
}

func TestBundleRoundTrip(t *testing.T) {
	dir := t.TempDir()
	want := Bundle{Tenant: "carol", Token: TokenPrefix + "x", QUIC: "127.0.0.1:7443", Socket: "/run/kerf.sock", Fingerprint: "ab",
		Pool: []PoolMember{{Node: "b", QUIC: "127.0.0.2:7443", Fingerprint: "cd"}}}
	path := filepath.Join(dir, "carol.json")
	if err := WriteBundle(path, want); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("bundle file mode: %v, %v", fi.Mode(), err)
	}
	got, err := ReadBundle(path)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ReadBundle = %+v, %v", got, err)
	}
	if got.FingerprintOf("127.0.0.2:7443") != "cd" || got.FingerprintOf("127.0.0.1:7443") != "ab" || got.FingerprintOf("127.0.0.3:7443") != "" {
		t.Errorf("FingerprintOf pins the wrong certificates: %+v", got)
	}

	bare := filepath.Join(dir, "bare")
	if err := os.WriteFile(bare, []byte(TokenPrefix+"y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadBundle(bare); err != nil || got.Token != TokenPrefix+"y" {
		t.Fatalf("bare token: %+v, %v", got, err)
	}
	empty := filepath.Join(dir, "empty.json")
	if err := os.WriteFile(empty, []byte(`{"tenant":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadBundle(empty); err == nil {
		t.Fatal("a bundle without a token was accepted")
	}
}

// A revocation written by another process (kerfd token revoke) reaches
// OnRevoke through whichever call notices the file first: List, Issue,
// Authenticate, Revoke or Reload.
func TestEveryReloadReportsRevocations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	running, err := OpenTokenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	var revoked []string
	running.OnRevoke = func(id string) { revoked = append(revoked, id) }
	notice := map[string]func(){
		"list":         func() { running.List() },
		"issue":        func() { mustIssue(t, running, "newcomer") },
		"authenticate": func() { running.Authenticate([]byte("kerf_unknown")) },
		"revoke":       func() { running.Revoke("nobody") },
		"reload":       running.Reload,
	}
	for _, how := range []string{"list", "issue", "authenticate", "revoke", "reload"} {
		t.Run(how, func(t *testing.T) {
			tenant := "via-" + how
			mustIssue(t, running, tenant)
			mustIssue(t, running, tenant) // two tokens, one report
			offline, err := OpenTokenStore(path)
			if err != nil {
				t.Fatal(err)
			}
			if n, err := offline.Revoke(tenant); n != 2 || err != nil {
				t.Fatalf("offline Revoke = %d, %v", n, err)
			}
			revoked = nil
			notice[how]()
			if len(revoked) != 1 || revoked[0] != tenant {
				t.Fatalf("OnRevoke saw %q, want [%s]", revoked, tenant)
			}
			revoked = nil
			notice[how]()
			if len(revoked) != 0 {
				t.Fatalf("a second look reported %q again", revoked)
			}
		})
	}
}

func mustIssue(t *testing.T, s *TokenStore, tenant string) string {
	t.Helper()
	tok, err := s.Issue(tenant, 0)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Records applied from shared state authenticate, survive a reopen of the
// file, and a revocation among them ends the tenant's sessions once; the
// tenant's records not among them stay.
func TestApplySharedRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	s, err := OpenTokenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	var revoked []string
	s.OnRevoke = func(id string) { revoked = append(revoked, id) }
	own, err := s.Issue("alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	tok, hash, err := Mint()
	if err != nil || !strings.HasPrefix(tok, TokenPrefix) {
		t.Fatalf("Mint: %q, %v", tok, err)
	}
	rec := TokenRecord{Tenant: "alice", MemLimit: 1 << 20, Issued: time.Now().UTC()}
	if err := s.Apply("alice", map[string]TokenRecord{hash: rec}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Authenticate([]byte(tok)); err != nil || got.ID != "alice" || got.MemLimit != 1<<20 {
		t.Fatalf("the applied token: %+v, %v", got, err)
	}
	if n := len(s.Records("alice")); n != 2 {
		t.Fatalf("alice's records: %d, want her own and the applied one", n)
	}
	// Applying the same again writes nothing.
	before, _ := os.Stat(path)
	if err := s.Apply("alice", map[string]TokenRecord{hash: rec}); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(path); !after.ModTime().Equal(before.ModTime()) {
		t.Error("an unchanged apply rewrote the file")
	}
	// A record of another tenant under alice's key is not applied.
	_, other, _ := Mint()
	s.Apply("alice", map[string]TokenRecord{other: {Tenant: "mallory", Issued: time.Now().UTC()}})
	if _, ok := s.Records("mallory")[other]; ok {
		t.Error("a record of another tenant was applied under alice")
	}
	rec.Revoked = time.Now().UTC()
	if err := s.Apply("alice", map[string]TokenRecord{hash: rec}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate([]byte(tok)); err == nil {
		t.Fatal("the token revoked in the shared state still authenticates")
	}
	if !reflect.DeepEqual(revoked, []string{"alice"}) {
		t.Fatalf("OnRevoke got %v, want alice once", revoked)
	}
	// An older record, live, does not undo the revocation.
	rec.Revoked = time.Time{}
	if err := s.Apply("alice", map[string]TokenRecord{hash: rec}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate([]byte(tok)); err == nil {
		t.Fatal("a live record applied after the revocation undid it")
	}
	reopened, err := OpenTokenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reopened.Authenticate([]byte(own)); err != nil {
		t.Fatalf("alice's own token after the apply and a reopen: %v", err)
	}
	if _, err := reopened.Authenticate([]byte(tok)); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("the applied token after a reopen: %v, want revoked", err)
	}
}

// All gives every record by hash, with what another process wrote to the
// file since (kerfd tokens issue while kerfd runs) picked up.
func TestAllRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	s, err := OpenTokenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Issue("alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	other, err := OpenTokenStore(path) // another process
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Issue("bob", 0); err != nil {
		t.Fatal(err)
	}
	all := s.All()
	tenants := map[string]int{}
	for _, r := range all {
		tenants[r.Tenant]++
	}
	if len(all) != 2 || tenants["alice"] != 1 || tenants["bob"] != 1 {
		t.Fatalf("All: %+v, want alice's and bob's", all)
	}
	if _, ok := all[hashToken([]byte(tok))]; !ok {
		t.Fatalf("All: %+v, alice's token not under its hash", all)
	}
}
