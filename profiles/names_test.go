package profiles

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/profiles/api"
)

// Wherever a tenant name enters the API, openapi.yaml states auth's rule,
// word for word.
func TestSpecStatesTheTenantNameRule(t *testing.T) {
	b, err := specJSON()
	if err != nil {
		t.Fatal(err)
	}
	type schema struct {
		Pattern    string            `json:"pattern"`
		Properties map[string]schema `json:"properties"`
	}
	var doc struct {
		Components struct {
			Parameters map[string]struct{ Schema schema } `json:"parameters"`
			Schemas    map[string]schema                  `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for where, got := range map[string]string{
		"parameters.TenantName":       doc.Components.Parameters["TenantName"].Schema.Pattern,
		"schemas.TokenRequest.tenant": doc.Components.Schemas["TokenRequest"].Properties["tenant"].Pattern,
	} {
		if got != auth.TenantNamePattern {
			t.Errorf("%s: pattern %q, want auth.TenantNamePattern %q", where, got, auth.TenantNamePattern)
		}
	}
}

var badTenantNames = []string{"Bob", "a_b", "-a", "a\x00b", "\x1b[31mred", "bob\u202eexe", "a b"}

func TestBadTenantNamesAreRefused(t *testing.T) {
	e := newEnv(t)
	a := e.admin
	for _, name := range badTenantNames {
		pr := problemOf(t, e.do("POST", "/v1/tokens", a, map[string]any{"tenant": name}), 422)
		if !hasField(pr, "tenant") {
			t.Errorf("issue %q: %+v", name, pr)
		}
		esc := url.PathEscape(name)
		problemOf(t, e.do("DELETE", "/v1/tokens/"+esc, a, nil), 422)
		problemOf(t, e.do("POST", "/v1/tenants/"+esc+"/evict", a, nil), 422)
		p := api.Profile{Name: "reserved", GPUs: []api.GPUProfile{{GPU: 0, Slices: []api.SliceSpec{{Tenant: name, MemoryFraction: 0.5, ComputeShare: 0.5}}}}}
		pr = problemOf(t, e.do("POST", "/v1/profiles", a, p), 422)
		if !hasField(pr, "gpus[0].slices[0].tenant") {
			t.Errorf("profile reserving a slice for %q: %+v", name, pr)
		}
	}
	// The event log keeps the refused paths escaped.
	e.srv.events.flush()
	evs, err := e.srv.store.Events(1000, 0, api.EventKindAPI)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if strings.ContainsAny(ev.Subject+ev.Detail, "\x00\x1b\u202e") {
			t.Errorf("event %q (%q) carries a raw name", ev.Subject, ev.Detail)
		}
	}
	if recs := e.tokens.List(); len(recs) != 1 {
		t.Fatalf("the store holds %d tokens, want alice's alone", len(recs))
	}
	if r := e.do("POST", "/v1/tokens", a, map[string]any{"tenant": "tenant-2"}); r.code != 201 {
		t.Fatalf("a good name: %d %s", r.code, r.body)
	}
}
