package transport

import (
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/kerf-edge/kerf/transport/internal/wire"
)

// MaxName bounds Options.Name, as the hello carries it. A longer name is
// cut, never refused: a program's name must not make its session fail.
const MaxName = wire.MaxClientName

// SessionName names a session after the program that opens it: prefix
// (such as "shim pid 42"), a space, the program's path. A path too long
// for MaxName loses leading directories first ("…/" and the tail), then
// the end of its base name; cuts fall on UTF-8 boundaries.
func SessionName(prefix, path string) string {
	if name := prefix + " " + path; len(name) <= MaxName {
		return name
	}
	const elided = "…/"
	room := MaxName - len(prefix) - 1 - len(elided)
	if room <= 0 {
		return cutName(prefix)
	}
	base := filepath.Base(path)
	if len(base) > room {
		return prefix + " " + elided + cutUTF8(base, room)
	}
	// The last room bytes hold the base name; keep whole directories.
	tail := path[len(path)-room:]
	if i := strings.IndexByte(tail, '/'); i >= 0 {
		tail = tail[i+1:]
	} else {
		tail = base
	}
	return prefix + " " + elided + tail
}

// cutName cuts name to MaxName bytes.
func cutName(name string) string { return cutUTF8(name, MaxName) }

// cutUTF8 cuts s to at most n bytes, on a rune boundary.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
