package profiles

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/kerf-edge/kerf/profiles/api"
)

// fakeShared is state shared with other nodes; without quorum every write
// is refused. Like a pool, it has the writing node apply a write before
// Share returns.
type fakeShared struct {
	mu     sync.Mutex
	docs   map[string][]byte // by kind/name; empty: deleted
	quorum bool
	self   *Server
}

func (f *fakeShared) Share(kind, name string, doc any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.quorum {
		return fmt.Errorf("%w: the pool has no quorum: 1 of 3 members live (a)", ErrUnavailable)
	}
	var b []byte
	if doc != nil {
		var err error
		if b, err = json.Marshal(doc); err != nil {
			return err
		}
	}
	f.docs[kind+"/"+name] = b
	return f.self.ApplyShared(kind, name, b)
}

func (f *fakeShared) doc(kind, name string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.docs[kind+"/"+name]
	return b, ok
}

// Profiles and rules stored through one node's API go to the shared state
// first, and another node applies them from there, deletions too; without
// quorum they are refused (503) and nothing changes.
func TestSharedProfilesAndRules(t *testing.T) {
	one, other := newEnv(t), newEnv(t)
	f := &fakeShared{docs: map[string][]byte{}, quorum: true, self: one.srv}
	one.srv.deps.Shared = f
	a := one.admin

	if r := one.do("POST", "/v1/profiles", a, validProfile("two")); r.code != 201 {
		t.Fatalf("create: %d %s", r.code, r.body)
	}
	problemOf(t, one.do("POST", "/v1/profiles", a, validProfile("two")), 409)
	if r := one.do("PUT", "/v1/rules/hot", a, map[string]any{"name": "hot", "rule": map[string]any{"when": "temp > 80"}}); r.code != 201 {
		t.Fatalf("create rule: %d %s", r.code, r.body)
	}
	if r := one.do("PUT", "/v1/rules/hot", a, map[string]any{"name": "hot", "rule": map[string]any{"when": "temp > 80"}}); r.code != 200 {
		t.Fatalf("replace rule: %d %s", r.code, r.body)
	}
	for _, k := range []string{SharedProfile + "/two", SharedRule + "/hot"} {
		kind, name, _ := strings.Cut(k, "/")
		doc, ok := f.doc(kind, name)
		if !ok || len(doc) == 0 {
			t.Fatalf("%s not in the shared state", k)
		}
		if err := other.srv.ApplyShared(kind, name, doc); err != nil {
			t.Fatalf("apply %s: %v", k, err)
		}
		// Applying the same again changes nothing.
		if err := other.srv.ApplyShared(kind, name, doc); err != nil {
			t.Fatalf("apply %s again: %v", k, err)
		}
	}
	var p api.Profile
	other.do("GET", "/v1/profiles/two", other.admin, nil).json(t, &p)
	if p.Name != "two" || p.Description != "two tenants" || len(p.GPUs) != 1 || len(p.GPUs[0].Slices) != 2 {
		t.Fatalf("the profile applied on the other node: %+v", p)
	}
	if r := other.do("GET", "/v1/rules/hot", other.admin, nil); r.code != 200 {
		t.Fatalf("the rule applied on the other node: %d %s", r.code, r.body)
	}

	// A deletion is shared as an empty document.
	if r := one.do("DELETE", "/v1/rules/hot", a, nil); r.code != 204 {
		t.Fatalf("delete rule: %d %s", r.code, r.body)
	}
	if doc, ok := f.doc(SharedRule, "hot"); !ok || len(doc) != 0 {
		t.Fatalf("the deletion in the shared state: %q, %v", doc, ok)
	}
	if err := other.srv.ApplyShared(SharedRule, "hot", nil); err != nil {
		t.Fatal(err)
	}
	problemOf(t, other.do("GET", "/v1/rules/hot", other.admin, nil), 404)
	problemOf(t, one.do("GET", "/v1/rules/hot", a, nil), 404)

	// Without quorum: refused, nothing stored or deleted here.
	f.mu.Lock()
	f.quorum = false
	f.mu.Unlock()
	if pr := problemOf(t, one.do("POST", "/v1/profiles", a, validProfile("three")), 503); pr.Detail == "" {
		t.Errorf("no quorum: %+v", pr)
	}
	problemOf(t, one.do("GET", "/v1/profiles/three", a, nil), 404)
	problemOf(t, one.do("DELETE", "/v1/profiles/two", a, nil), 503)
	if r := one.do("GET", "/v1/profiles/two", a, nil); r.code != 200 {
		t.Fatalf("the profile after a refused deletion: %d %s", r.code, r.body)
	}
	problemOf(t, one.do("PUT", "/v1/rules/cold", a, map[string]any{"name": "cold", "rule": map[string]any{"when": "temp < 10"}}), 503)
	problemOf(t, one.do("GET", "/v1/rules/cold", a, nil), 404)
}
