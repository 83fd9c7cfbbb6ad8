// Package deptest enforces which Kerf packages may depend on which, so the
// layering in docs/architecture.md stays true and the binaries link only
// what they need. It reads the package graph from `go list -deps -json`
// (for this machine's GOOS and GOARCH, tests left out) and checks two kinds
// of rule:
//
//   - direct imports: what a package (and everything under it) may import
//     itself (forbidden, appliance's importers);
//   - transitive dependencies: what a package (or binary) must not reach
//     by any path (unreachable, the bench and test helpers).
//
// A transitive violation names the import chain that makes it.
package deptest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

const module = "github.com/kerf-edge/kerf"

// forbidden maps a package (and everything under it) to module packages it
// must not import directly.
var forbidden = map[string][]string{
	"abi":                 {"auth", "gpu", "transport", "intercept", "slicer", "ingest", "profiles", "appliance", "internal", "bench"},
	"auth":                {"abi", "gpu", "transport", "intercept", "slicer", "ingest", "profiles", "appliance", "bench"},
	"transport":           {"appliance", "slicer", "ingest", "profiles", "intercept", "gpu/emu", "gpu/cuda", "gpu/hostmem"},
	"gpu":                 {"transport", "appliance", "slicer", "ingest", "profiles", "intercept", "auth"},
	"gpu/emu":             {"gpu/cuda", "gpu/hostmem"},
	"gpu/emu/ptx":         {"gpu/emu/kernels"},
	"gpu/cuda":            {"gpu/emu", "gpu/hostmem"},
	"slicer":              {"appliance", "transport", "ingest", "profiles", "intercept"},
	"ingest":              {"appliance", "transport", "slicer", "profiles", "intercept", "gpu"},
	"profiles":            {"appliance", "transport", "slicer", "ingest", "intercept", "gpu"},
	"intercept":           {"appliance", "slicer", "ingest", "profiles", "gpu"},
	"jobs":                {"appliance", "slicer", "profiles", "gpu"},
	"pool":                {"appliance", "transport", "slicer", "ingest", "profiles", "intercept", "gpu", "auth"},
	"internal/units":      {""}, // "": no module package at all
	"internal/testkit":    {""},
	"internal/quicnet":    {""},
	"internal/clock":      {""},
	"internal/kerfenv":    {""},
	"internal/atomicfile": {""},
	"internal/connguard":  {""},
}

// Third-party modules that only some binaries may link.
const (
	quicGo     = "github.com/quic-go/quic-go"
	natsServer = "github.com/nats-io/nats-server"
	bbolt      = "go.etcd.io/bbolt"
	echo       = "github.com/labstack/echo"
)

// unreachable maps a package (and everything under it) to what it must not
// depend on by any path: module packages by their path in the module,
// others by their import path. Every key must name a package.
var unreachable = map[string][]string{
	// The operator API and its CLI client know nothing of QUIC.
	"profiles": {quicGo},
	// The shim is loaded into tenants' programs: no broker, no database,
	// no web framework.
	"intercept": {natsServer, bbolt, echo},
	// The tenant CLI is not the daemon; the benchmarks and the demo are
	// kerf-bench.
	"cmd/kerf": {"appliance", natsServer, bbolt, echo},
}

// Only the binaries and the benchmarks may import appliance: it wires
// everything, and nothing below it may depend on it.
var applianceImporters = []string{"cmd", "bench"}

// Packages that only tests, the benchmarks and the benchmarks' binary may
// use; no product package may reach them.
var benchOnly = []string{"bench", "internal/testkit", "internal/tenantkit", "gpu/gputest", "slicer/slicertest", "abi/fatbin/fatbintest"}

// benchBinaries are the binaries allowed to reach benchOnly packages.
var benchBinaries = []string{"cmd/kerf-bench"}

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
	Error      *struct{ Err string }
}

var (
	graphOnce sync.Once
	graph     map[string]*pkg // by import path: the module's packages and all they depend on
	graphErr  error
)

// loadGraph lists every package of the module and its dependencies.
func loadGraph(t *testing.T) map[string]*pkg {
	t.Helper()
	graphOnce.Do(func() {
		root, err := filepath.Abs("../..")
		if err != nil {
			graphErr = err
			return
		}
		cmd := exec.Command("go", "list", "-e", "-deps", "-json=ImportPath,Imports,Deps,Error", "./...")
		cmd.Dir = root
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			graphErr = fmt.Errorf("go list: %v\n%s", err, stderr.String())
			return
		}
		graph = map[string]*pkg{}
		dec := json.NewDecoder(bytes.NewReader(out))
		for {
			var p pkg
			if err := dec.Decode(&p); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				graphErr = fmt.Errorf("go list output: %w", err)
				return
			}
			if p.Error != nil {
				graphErr = fmt.Errorf("go list: %s: %s", p.ImportPath, p.Error.Err)
				return
			}
			graph[p.ImportPath] = &p
		}
	})
	if graphErr != nil {
		t.Fatal(graphErr)
	}
	return graph
}

// rel is a module package's path inside the module, or "" for any other.
func rel(importPath string) string {
	if importPath == module {
		return "."
	}
	if r, ok := strings.CutPrefix(importPath, module+"/"); ok {
		return r
	}
	return ""
}

// under reports whether path is pkg or inside it.
func under(path, pkg string) bool { return path == pkg || strings.HasPrefix(path, pkg+"/") }

func underAny(path string, pkgs []string) bool {
	return slices.ContainsFunc(pkgs, func(p string) bool { return under(path, p) })
}

// matches reports whether dependency dep (an import path) is what rule
// names: a module package by its path in the module, or anything else by
// its import path.
func matches(dep, rule string) bool {
	if r := rel(dep); r != "" {
		return rule == "" || under(r, rule)
	}
	return under(dep, rule)
}

// modulePackages lists the module's own packages, by path in the module.
func modulePackages(g map[string]*pkg) []string {
	var out []string
	for path := range g {
		if r := rel(path); r != "" {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// chain is a shortest import chain from one package to another, both
// import paths, as "a → b → c"; "" when there is none.
func chain(g map[string]*pkg, from, to string) string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == to {
			var path []string
			for p := to; p != ""; p = prev[p] {
				path = append(path, short(p))
			}
			slices.Reverse(path)
			return strings.Join(path, " → ")
		}
		if p := g[cur]; p != nil {
			for _, next := range p.Imports {
				if _, seen := prev[next]; !seen {
					prev[next] = cur
					queue = append(queue, next)
				}
			}
		}
	}
	return ""
}

// short names a module package by its path in the module.
func short(importPath string) string {
	if r := rel(importPath); r != "" {
		return r
	}
	return importPath
}

func TestGraphCoversTheModule(t *testing.T) {
	g := loadGraph(t)
	pkgs := modulePackages(g)
	if len(pkgs) < 30 {
		t.Fatalf("go list found only %d packages of the module: %v", len(pkgs), pkgs)
	}
	for _, rules := range []map[string][]string{forbidden, unreachable} {
		for p := range rules {
			if !slices.Contains(pkgs, p) {
				t.Errorf("a rule names package %s, which does not exist", p)
			}
		}
	}
}

// TestDirectImports checks the layering: what each package may import.
func TestDirectImports(t *testing.T) {
	g := loadGraph(t)
	for _, r := range modulePackages(g) {
		for _, imp := range g[module+"/"+r].Imports {
			dep := rel(imp)
			if dep == "" {
				continue
			}
			if dep == "appliance" && r != "appliance" && !underAny(r, applianceImporters) {
				t.Errorf("%s imports appliance: only %v may", r, applianceImporters)
			}
			for p, bad := range forbidden {
				if !under(r, p) {
					continue
				}
				for _, b := range bad {
					if (b == "" || under(dep, b)) && (b == "" || !under(dep, r)) {
						t.Errorf("%s imports %s, which it must not", r, dep)
					}
				}
			}
		}
	}
}

// TestTransitiveDeps checks what each package may reach by any path.
func TestTransitiveDeps(t *testing.T) {
	g := loadGraph(t)
	pkgs := modulePackages(g)
	reach := func(t *testing.T, r string, rule string) {
		t.Helper()
		from := module + "/" + r
		for _, dep := range g[from].Deps {
			if matches(dep, rule) {
				t.Errorf("%s reaches %s, which it must not: %s", r, short(dep), chain(g, from, dep))
				return // one chain per rule is enough to act on
			}
		}
	}
	for _, p := range slices.Sorted(maps.Keys(unreachable)) {
		t.Run(p, func(t *testing.T) {
			for _, r := range pkgs {
				if under(r, p) {
					for _, rule := range unreachable[p] {
						reach(t, r, rule)
					}
				}
			}
		})
	}
	t.Run("appliance", func(t *testing.T) {
		for _, r := range pkgs {
			if r != "appliance" && !underAny(r, applianceImporters) {
				reach(t, r, "appliance")
			}
		}
	})
	t.Run("bench", func(t *testing.T) {
		for _, r := range pkgs {
			if !underAny(r, benchOnly) && !underAny(r, benchBinaries) {
				for _, b := range benchOnly {
					reach(t, r, b)
				}
			}
		}
	})
}
