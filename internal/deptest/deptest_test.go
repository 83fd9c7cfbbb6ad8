// Package deptest enforces which Kerf packages may import which, so the
// layering in docs/architecture.md stays true.
package deptest

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/kerf-edge/kerf/"

// forbidden maps a package (and everything under it) to imports it must
// not have.
var forbidden = map[string][]string{
	"transport":        {"appliance", "slicer", "ingest", "profiles", "intercept", "gpu/emu", "gpu/cuda"},
	"abi":              {"transport/internal", "gpu"},
	"gpu":              {"transport/internal", "appliance", "slicer", "ingest", "profiles", "intercept"},
	"gpu/emu":          {"transport/internal", "gpu/cuda"},
	"gpu/cuda":         {"transport/internal", "gpu/emu"},
	"slicer":           {"appliance", "transport/internal", "ingest", "profiles", "intercept"},
	"ingest":           {"appliance", "transport", "slicer", "profiles", "intercept", "gpu"},
	"profiles":         {"appliance", "transport/internal", "slicer", "ingest", "intercept", "gpu/emu", "gpu/cuda"},
	"intercept":        {"appliance", "slicer", "ingest", "profiles", "gpu/emu", "gpu/cuda"},
	"internal/units":   {""},
	"internal/testkit": {""},
	"internal/clock":   {""},
}

// Nothing but the binaries may import appliance (its own tests aside).
var applianceImporters = []string{"cmd/"}

func TestLayering(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "testdata" || strings.HasPrefix(n, ".") || n == "build" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		test := strings.HasSuffix(path, "_test.go")
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if !strings.HasPrefix(p, module) {
				continue
			}
			dep := strings.TrimPrefix(p, module)
			if dep == "appliance" && rel != "appliance" && !hasPrefixAny(rel, applianceImporters) && !test {
				t.Errorf("%s imports appliance: only the binaries may", path)
			}
			if test {
				continue // tests may reach across layers to set up real peers
			}
			for pkg, bad := range forbidden {
				if rel != pkg && !strings.HasPrefix(rel, pkg+"/") {
					continue
				}
				for _, b := range bad {
					if b == "" || dep == b || strings.HasPrefix(dep, b+"/") {
						if b == "" || !isSelfOrChild(dep, rel) {
							t.Errorf("%s (package %s) imports %s, which it must not", path, rel, dep)
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("checked only %d files: is the walk rooted right?", checked)
	}
}

func hasPrefixAny(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s+"/", p) {
			return true
		}
	}
	return false
}

// isSelfOrChild reports whether dep is rel itself or inside it (a package
// may use its own internals).
func isSelfOrChild(dep, rel string) bool { return dep == rel || strings.HasPrefix(dep, rel+"/") }
