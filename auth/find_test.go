package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A bundle is looked for where kerfd leaves it, whatever the working
// directory; a named one wins; none found says where it looked.
func TestFindBundle(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("KERF_BUNDLE", "")
	t.Setenv("KERF_TOKEN", "")
	t.Chdir(t.TempDir())
	user := filepath.Join(home, ".config", "kerf", "bundle.json")
	if _, err := FindBundle(""); err == nil || !strings.Contains(err.Error(), user) || !strings.Contains(err.Error(), LocalBundle) {
		t.Fatalf("nothing to find: %v", err)
	}
	if wrote, err := CopyBundle(filepath.Join(t.TempDir(), "missing.json"), user); wrote || err != nil {
		t.Fatalf("copying a missing bundle: %v, %v", wrote, err)
	}
	src := filepath.Join(t.TempDir(), "default.json")
	if err := WriteBundle(src, Bundle{Tenant: "default", Token: TokenPrefix + "a"}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		if wrote, err := CopyBundle(src, user); wrote != want || err != nil {
			t.Fatalf("copy #%d: wrote %v, %v", i+1, wrote, err)
		}
	}
	for _, tc := range []struct {
		name, named, env, want string
	}{
		{"kerfd's copy", "", "", user},
		{"KERF_BUNDLE", "", "/b.json", "/b.json"},
		{"named", "/n.json", "/b.json", "/n.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KERF_BUNDLE", tc.env)
			if got, err := FindBundle(tc.named); got != tc.want || err != nil {
				t.Fatalf("FindBundle(%q) = %q, %v; want %q", tc.named, got, err, tc.want)
			}
		})
	}
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "xdg"))
	if got := UserBundlePath(); got != filepath.Join(home, "xdg", "kerf", "bundle.json") {
		t.Fatalf("with XDG_CONFIG_HOME: %s", got)
	}
	if _, err := os.Stat(user); err != nil {
		t.Fatal(err)
	}
}

// Replace revokes the tenant's earlier tokens and says how many.
func TestReplace(t *testing.T) {
	s, err := OpenTokenStore(filepath.Join(t.TempDir(), "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ended []string
	s.OnRevoke = func(tenant string) { ended = append(ended, tenant) }
	first, n, err := s.Replace("alice", 0)
	if err != nil || n != 0 {
		t.Fatalf("first Replace: %d, %v", n, err)
	}
	mustIssue(t, s, "bob")
	second, n, err := s.Replace("alice", 1<<20)
	if err != nil || n != 1 {
		t.Fatalf("second Replace: %d, %v", n, err)
	}
	if _, err := s.Authenticate([]byte(first)); err == nil {
		t.Fatal("the replaced token still authenticates")
	}
	if tn, err := s.Authenticate([]byte(second)); err != nil || tn.MemLimit != 1<<20 {
		t.Fatalf("the new token: %+v, %v", tn, err)
	}
	if len(ended) != 1 || ended[0] != "alice" {
		t.Fatalf("OnRevoke saw %v", ended)
	}
	if _, _, err := s.Replace("Bad Name", 0); err == nil {
		t.Fatal("a bad name was accepted")
	}
}
