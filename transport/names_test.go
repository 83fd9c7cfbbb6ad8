package transport

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// A session's name fits the hello whatever the program's path, keeps the
// prefix (the pid) and as much of the base name as fits, and is valid
// UTF-8 when the path is.
func TestSessionNameFitsTheHello(t *testing.T) {
	deep := "/home/tenant/" + strings.Repeat("très-long-répertoire/", 12)
	for _, tc := range []struct {
		name, path, want string
	}{
		{"short", "/usr/bin/vadd", "shim pid 42 /usr/bin/vadd"},
		{"deep", deep + "vadd", "shim pid 42 …/très-long-répertoire/très-long-répertoire/très-long-répertoire/très-long-répertoire/vadd"},
		{"long base", "/x/" + strings.Repeat("é", 100), "shim pid 42 …/" + strings.Repeat("é", 56)},
		{"just fits", "/" + strings.Repeat("a", MaxName-len("shim pid 42 /")), "shim pid 42 /" + strings.Repeat("a", MaxName-len("shim pid 42 /"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := SessionName("shim pid 42", tc.path)
			if len(got) > MaxName || !utf8.ValidString(got) {
				t.Fatalf("SessionName = %q: %d bytes (limit %d), valid UTF-8 %v", got, len(got), MaxName, utf8.ValidString(got))
			}
			if got != tc.want {
				t.Fatalf("SessionName = %q\nwant          %q", got, tc.want)
			}
		})
	}
	if got := cutName(strings.Repeat("ü", 100)); len(got) > MaxName || !utf8.ValidString(got) {
		t.Fatalf("cutName = %q", got)
	}
}
