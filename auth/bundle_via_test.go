package auth

import (
	"os"
	"path/filepath"
	"testing"
)

func TestBundleDefaultVia(t *testing.T) {
	dir := t.TempDir()
	present := filepath.Join(dir, "kerf.sock")
	if err := os.WriteFile(present, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "gone.sock")
	everywhere := func(string) bool { return true }
	for _, c := range []struct {
		name   string
		b      Bundle
		exists func(string) bool
		want   string
	}{
		{"socket here", Bundle{QUIC: "10.0.0.9:7443", Socket: present}, nil, "unix"},
		{"socket missing", Bundle{QUIC: "10.0.0.9:7443", Socket: missing}, nil, "quic"},
		{"no socket named", Bundle{QUIC: "10.0.0.9:7443"}, nil, "quic"},
		{"bare token", Bundle{Token: TokenPrefix + "x"}, nil, "quic"},
		{"no socket named though everything exists", Bundle{QUIC: "10.0.0.9:7443"}, everywhere, "quic"},
		{"exists says present", Bundle{Socket: missing}, everywhere, "unix"},
		{"exists says absent", Bundle{Socket: present}, func(string) bool { return false }, "quic"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.b.DefaultVia(c.exists); got != c.want {
				t.Errorf("DefaultVia = %q, want %q", got, c.want)
			}
		})
	}
}
