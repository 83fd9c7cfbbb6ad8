// Package buildinfo says which version of Kerf a binary is. It holds no
// other fact and imports no other Kerf package.
package buildinfo

import "runtime/debug"

// version is set at link time by the Makefile, from git describe:
// -ldflags "-X github.com/kerf-edge/kerf/internal/buildinfo.version=…".
var version string

// Version is the binary's version: the one set at link time, else the
// module's version (go install) or the VCS revision Go stamped into the
// binary, else "devel".
func Version() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "-dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return "devel"
	}
	return "devel-" + rev + modified
}
