package auth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/kerf-edge/kerf/internal/kerfenv"
)

// Where the command line finds a tenant's bundle when none is named.
const (
	// UserBundleName is the default tenant's bundle in UserDir: kerfd
	// writes it there at every start, for the user who runs it.
	UserBundleName = "bundle.json"
	// LocalBundle is where kerfd's embedded defaults (state_dir ./state)
	// keep the default tenant's bundle, relative to kerfd's directory.
	LocalBundle = "state/bundles/default.json"
)

// UserDir is where kerfd leaves, for the user who runs it, what the
// command line looks for: $XDG_CONFIG_HOME/kerf, else ~/.config/kerf; ""
// when neither variable is set (a system service).
func UserDir() string {
	if d := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "kerf")
	}
	if h := os.Getenv("HOME"); filepath.IsAbs(h) {
		return filepath.Join(h, ".config", "kerf")
	}
	return ""
}

// FindBundle is the path of the bundle to use: named (a --token flag),
// else $KERF_BUNDLE (or its older name $KERF_TOKEN), else the first that
// exists of UserDir's bundle.json and ./state/bundles/default.json. When
// none is named and none exists, the error lists every place looked at.
func FindBundle(named string) (string, error) {
	if named != "" {
		return named, nil
	}
	for _, env := range []string{kerfenv.Bundle, kerfenv.Token} {
		if p := os.Getenv(env); p != "" {
			return p, nil
		}
	}
	var looked []string
	for _, p := range []string{UserBundlePath(), LocalBundle} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		looked = append(looked, p)
	}
	return "", fmt.Errorf("no token bundle: --token and $%s are not set, and none of %s exists; kerfd writes the default tenant's bundle to the first at every start (start it with `kerfd` or `make run`), or ask the operator for one",
		kerfenv.Bundle, strings.Join(looked, ", "))
}

// UserBundlePath is UserDir's bundle.json; "" without a UserDir.
func UserBundlePath() string {
	if d := UserDir(); d != "" {
		return filepath.Join(d, UserBundleName)
	}
	return ""
}

// CopyBundle writes the bundle at from to to (mode 0600), unless to holds
// it already; it reports whether it wrote. A missing from is no error.
func CopyBundle(from, to string) (bool, error) {
	b, err := ReadBundle(from)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if old, err := ReadBundle(to); err == nil && reflect.DeepEqual(old, b) {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		return false, err
	}
	return true, WriteBundle(to, b)
}
