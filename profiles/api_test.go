package profiles

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/profiles/api"
	"go.uber.org/goleak"
)

type env struct {
	t      *testing.T
	srv    *Server
	node   *fakeNode
	tokens *auth.TokenStore
	admin  string
	tenant string // a real tenant token
	dir    string
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	toks, err := auth.OpenTokenStore(filepath.Join(dir, "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	node := newFakeNode()
	srv, err := New(Config{StateDir: dir, HistoryWindow: 5 * time.Minute, HistoryStep: 100 * time.Millisecond,
		AdminTokenFiles: []string{"/var/lib/kerf/admin-token", "/home/op/.config/kerf/admin-token"}}, Deps{Node: node, Tokens: toks, Rules: ruleCheck{}, Ingest: fakeIngest{},
		Policies: &fakePolicies{def: api.TenantPolicy{MaxGPUs: 0.5}}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	admin, err := srv.Bootstrap()
	if err != nil || !strings.HasPrefix(admin, AdminTokenPrefix) {
		t.Fatalf("Bootstrap: %q, %v", admin, err)
	}
	tenant, err := toks.Issue("alice", 8<<30)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: srv, node: node, tokens: toks, admin: admin, tenant: tenant, dir: dir}
}

type resp struct {
	code int
	hdr  http.Header
	body []byte
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response %q: %v", r.body, err)
	}
}

func (e *env) do(method, path, token string, body any) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req := httptest.NewRequest(method, path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, req)
	r := resp{w.Code, w.Header(), w.Body.Bytes()}
	checkConforms(e.t, method, path, r)
	return r
}

// specOps lists "METHOD /path/{param}" for every operation in the spec.
func specOps(t *testing.T) []string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	b, err := specJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var ops []string
	for p, m := range doc.Paths {
		for method := range m {
			if method == "parameters" {
				continue
			}
			ops = append(ops, strings.ToUpper(method)+" "+p)
		}
	}
	sort.Strings(ops)
	return ops
}

var paramRE = regexp.MustCompile(`\{[a-z]+\}`)

func fill(path string) string { return paramRE.ReplaceAllString(path, "x1") }

func validProfile(name string) map[string]any {
	return map[string]any{"name": name, "description": "two tenants", "gpus": []any{
		map[string]any{"gpu": 0, "slices": []any{
			map[string]any{"tenant": "alice", "memoryFraction": 0.5, "computeShare": 0.5},
			map[string]any{"tenant": "bob", "memoryBytes": 4 << 30, "computeShare": 0.25},
		}},
	}}
}

func problemOf(t *testing.T, r resp, status int) api.Problem {
	t.Helper()
	if r.code != status {
		t.Fatalf("status %d, want %d: %s", r.code, status, r.body)
	}
	if ct := r.hdr.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json (%s)", ct, r.body)
	}
	var p api.Problem
	r.json(t, &p)
	if p.Status != status || p.Title == "" || p.Type == "" {
		t.Fatalf("problem %+v", p)
	}
	return p
}

func hasField(p api.Problem, field string) bool {
	for _, f := range p.Errors {
		if f.Field == field && f.Message != "" {
			return true
		}
	}
	return false
}

// TestAuthEveryOperation: every /v1 operation in the spec refuses a
// missing or wrong token with 401 and a tenant token with 403.
func TestAuthEveryOperation(t *testing.T) {
	e := newEnv(t)
	n := 0
	for _, op := range specOps(t) {
		method, path, _ := strings.Cut(op, " ")
		if !strings.HasPrefix(path, "/v1/") {
			continue
		}
		n++
		for _, tc := range []struct {
			name, token string
			want        int
		}{{"none", "", 401}, {"wrong", AdminTokenPrefix + "nope", 401}, {"garbage", "x", 401}, {"tenant", e.tenant, 403}} {
			r := e.do(method, fill(path), tc.token, nil)
			p := problemOf(t, r, tc.want)
			if tc.want == 401 && r.hdr.Get("WWW-Authenticate") == "" {
				t.Errorf("%s with %s token: no WWW-Authenticate", op, tc.name)
			}
			if p.Detail == "" {
				t.Errorf("%s with %s token: problem without detail", op, tc.name)
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d /v1 operations in the spec", n)
	}
	// A malformed Authorization header.
	req := httptest.NewRequest("GET", "/v1/gpus", nil)
	req.Header.Set("Authorization", "Basic "+e.admin)
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, req)
	if w.Code != 401 {
		t.Fatalf("Basic auth: %d", w.Code)
	}
}

// covered records which spec operations the contract test exercised.
type covered map[string]bool

func (e *env) call(cov covered, op, path, token string, body any) resp {
	e.t.Helper()
	method, _, _ := strings.Cut(op, " ")
	cov[op] = true
	return e.do(method, path, token, body)
}

func TestContract(t *testing.T) {
	e := newEnv(t)
	cov := covered{}
	a := e.admin

	// health
	if r := e.call(cov, "GET /healthz", "/healthz", "", nil); r.code != 200 || !bytes.Contains(r.body, []byte(`"ok"`)) {
		t.Fatalf("healthz: %d %s", r.code, r.body)
	}
	if r := e.call(cov, "GET /readyz", "/readyz", "", nil); r.code != 200 {
		t.Fatalf("readyz: %d %s", r.code, r.body)
	}
	e.srv.deps.Ready = func() error { return fmt.Errorf("backend starting") }
	problemOf(t, e.do("GET", "/readyz", "", nil), 503)
	e.srv.deps.Ready = nil

	// gpus, slices, tenants, state
	var gpus []api.GPU
	e.call(cov, "GET /v1/gpus", "/v1/gpus", a, nil).json(t, &gpus)
	if len(gpus) != 2 || gpus[0].MemoryBytes != 16<<30 || !gpus[1].Sampled {
		t.Fatalf("gpus %+v", gpus)
	}
	var slices []api.Slice
	e.call(cov, "GET /v1/slices", "/v1/slices", a, nil).json(t, &slices)
	if len(slices) != 1 || slices[0].Tenant != "alice" || slices[0].ShareAchieved != 0.42 {
		t.Fatalf("slices %+v", slices)
	}
	var tenants []api.Tenant
	e.call(cov, "GET /v1/tenants", "/v1/tenants", a, nil).json(t, &tenants)
	if len(tenants) != 1 || tenants[0].Calls != 1234 {
		t.Fatalf("tenants %+v", tenants)
	}
	var st api.State
	e.call(cov, "GET /v1/state", "/v1/state", a, nil).json(t, &st)
	if len(st.GPUs) != 2 || len(st.Slices) != 1 || len(st.Tenants) != 1 {
		t.Fatalf("state %+v", st)
	}

	// profiles: create, conflicts, bad inputs
	var p api.Profile
	r := e.call(cov, "POST /v1/profiles", "/v1/profiles", a, validProfile("two"))
	if r.code != 201 {
		t.Fatalf("create: %d %s", r.code, r.body)
	}
	r.json(t, &p)
	if p.Name != "two" || p.Created.IsZero() || len(p.GPUs[0].Slices) != 2 {
		t.Fatalf("created %+v", p)
	}
	problemOf(t, e.do("POST", "/v1/profiles", a, validProfile("two")), 409)

	bad := validProfile("bad")
	bad["gpus"].([]any)[0].(map[string]any)["slices"].([]any)[0].(map[string]any)["computeShare"] = "half"
	pr := problemOf(t, e.do("POST", "/v1/profiles", a, bad), 400)
	if !hasField(pr, "gpus.slices.computeShare") {
		t.Errorf("wrong type: %+v", pr)
	}
	bad = validProfile("bad")
	bad["colour"] = "blue"
	pr = problemOf(t, e.do("POST", "/v1/profiles", a, bad), 400)
	if !hasField(pr, "colour") {
		t.Errorf("unknown field: %+v", pr)
	}
	bad = validProfile("bad")
	bad["gpus"].([]any)[0].(map[string]any)["slices"].([]any)[1].(map[string]any)["extra"] = 1
	problemOf(t, e.do("POST", "/v1/profiles", a, bad), 400)
	problemOf(t, e.do("POST", "/v1/profiles", a, `{"name": "x",`), 400)
	problemOf(t, e.do("POST", "/v1/profiles", a, ``), 400)
	problemOf(t, e.do("POST", "/v1/profiles", a, `{"name":"a","gpus":[]} {}`), 400)
	problemOf(t, e.do("POST", "/v1/profiles", a, `[1,2]`), 400)
	big := `{"name":"big","description":"` + strings.Repeat("x", 2<<20) + `"}`
	problemOf(t, e.do("POST", "/v1/profiles", a, big), 413)
	// Oversized without a Content-Length: the limit holds while reading.
	req := httptest.NewRequest("POST", "/v1/profiles", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+a)
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, req)
	if w.Code != 413 {
		t.Fatalf("chunked oversized body: %d %s", w.Code, w.Body)
	}
	req = httptest.NewRequest("POST", "/v1/profiles", strings.NewReader(`name=x`))
	req.Header.Set("Authorization", "Bearer "+a)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w = httptest.NewRecorder()
	e.srv.ServeHTTP(w, req)
	if w.Code != 415 {
		t.Fatalf("form body: %d", w.Code)
	}

	invalidDoc := map[string]any{"name": "Bad Name", "gpus": []any{
		map[string]any{"gpu": 0, "slices": []any{
			map[string]any{"memoryFraction": 0.8, "memoryBytes": 5, "computeShare": 0.7},
			map[string]any{"memoryFraction": 1.5, "computeShare": 0.6},
			map[string]any{"computeShare": 0},
		}},
		map[string]any{"gpu": 0, "slices": []any{}},
	}}
	pr = problemOf(t, e.do("POST", "/v1/profiles", a, invalidDoc), 422)
	for _, f := range []string{"name", "gpus[0].slices[0]", "gpus[0].slices[1].memoryFraction", "gpus[0].slices[2]",
		"gpus[0].slices[2].computeShare", "gpus[0].slices", "gpus[1].gpu", "gpus[1].slices"} {
		if !hasField(pr, f) {
			t.Errorf("no field error for %s in %+v", f, pr.Errors)
		}
	}
	problemOf(t, e.do("POST", "/v1/profiles", a, map[string]any{"name": "nogpus"}), 422)

	// get, list, put, delete
	e.call(cov, "GET /v1/profiles/{name}", "/v1/profiles/two", a, nil).json(t, &p)
	if p.Name != "two" {
		t.Fatalf("get %+v", p)
	}
	problemOf(t, e.do("GET", "/v1/profiles/missing", a, nil), 404)
	var ps []api.Profile
	e.call(cov, "GET /v1/profiles", "/v1/profiles", a, nil).json(t, &ps)
	if len(ps) != 1 {
		t.Fatalf("list %+v", ps)
	}
	upd := validProfile("two")
	upd["description"] = "updated"
	r = e.call(cov, "PUT /v1/profiles/{name}", "/v1/profiles/two", a, upd)
	var p2 api.Profile
	r.json(t, &p2)
	if r.code != 200 || p2.Description != "updated" || !p2.Created.Equal(p.Created) {
		t.Fatalf("put: %d %+v (created %v)", r.code, p2, p.Created)
	}
	noName := validProfile("")
	delete(noName, "name")
	if r := e.do("PUT", "/v1/profiles/three", a, noName); r.code != 201 {
		t.Fatalf("put new: %d %s", r.code, r.body)
	}
	pr = problemOf(t, e.do("PUT", "/v1/profiles/three", a, validProfile("other")), 422)
	if !hasField(pr, "name") {
		t.Errorf("name mismatch: %+v", pr)
	}
	problemOf(t, e.do("PUT", "/v1/profiles/Bad%20Name", a, validProfile("x")), 422)

	// validate, plan, apply
	var v map[string]bool
	e.call(cov, "POST /v1/profiles/{name}/validate", "/v1/profiles/two/validate", a, nil).json(t, &v)
	if !v["valid"] {
		t.Fatalf("validate %v", v)
	}
	tooBig := validProfile("toobig")
	tooBig["gpus"] = []any{map[string]any{"gpu": 3, "slices": []any{map[string]any{"memoryFraction": 1, "computeShare": 1}}}}
	e.do("POST", "/v1/profiles", a, tooBig)
	pr = problemOf(t, e.do("POST", "/v1/profiles/toobig/validate", a, nil), 422)
	if !hasField(pr, "gpus[0].gpu") {
		t.Errorf("node validation: %+v", pr)
	}
	problemOf(t, e.do("POST", "/v1/profiles/missing/validate", a, nil), 404)
	var plan api.Plan
	e.call(cov, "POST /v1/profiles/{name}/plan", "/v1/profiles/two/plan", a, nil).json(t, &plan)
	if len(plan.Steps) != 2 || plan.Applied || plan.Steps[0].ToMemoryBytes != 8<<30 {
		t.Fatalf("plan %+v", plan)
	}
	if len(e.node.applied) != 0 {
		t.Fatal("plan applied")
	}
	problemOf(t, e.do("POST", "/v1/profiles/toobig/plan", a, nil), 422)
	e.call(cov, "POST /v1/profiles/{name}/apply", "/v1/profiles/two/apply", a, nil).json(t, &plan)
	if !plan.Applied || len(e.node.applied) != 1 || len(e.node.Slices()) != 2 {
		t.Fatalf("apply %+v, node %v", plan, e.node.applied)
	}
	problemOf(t, e.do("POST", "/v1/profiles/toobig/apply", a, nil), 422)

	if r := e.call(cov, "DELETE /v1/profiles/{name}", "/v1/profiles/three", a, nil); r.code != 204 {
		t.Fatalf("delete: %d", r.code)
	}
	problemOf(t, e.do("DELETE", "/v1/profiles/three", a, nil), 404)

	// tenants
	if r := e.call(cov, "POST /v1/tenants/{tenant}/evict", "/v1/tenants/alice/evict", a, nil); r.code != 204 {
		t.Fatalf("evict: %d %s", r.code, r.body)
	}
	problemOf(t, e.do("POST", "/v1/tenants/nobody/evict", a, nil), 404)

	// tenant policies
	var pol api.TenantPolicy
	e.call(cov, "GET /v1/tenants/{tenant}/policy", "/v1/tenants/alice/policy", a, nil).json(t, &pol)
	if pol.Own || pol.MaxGPUs != 0.5 {
		t.Fatalf("alice's policy before one is set: %+v", pol)
	}
	e.call(cov, "PUT /v1/tenants/{tenant}/policy", "/v1/tenants/alice/policy", a,
		map[string]any{"maxGPUs": 2.5, "idleTimeoutSeconds": 600, "maxMemoryBytes": 8 << 30}).json(t, &pol)
	if !pol.Own || pol.MaxGPUs != 2.5 || pol.IdleTimeoutSeconds != 600 || pol.MaxMemoryBytes != 8<<30 {
		t.Fatalf("alice's policy: %+v", pol)
	}
	problemOf(t, e.do("PUT", "/v1/tenants/alice/policy", a, map[string]any{"maxGPUs": -1}), 422)
	problemOf(t, e.do("PUT", "/v1/tenants/alice/policy", a, map[string]any{"gpus": 2}), 400)
	problemOf(t, e.do("PUT", "/v1/tenants/alice/policy", e.tenant, map[string]any{"maxGPUs": 9}), 403)

	// rules
	rule := map[string]any{"name": "hot", "rule": map[string]any{"when": "temp > 80", "then": "shrink"}}
	if r := e.call(cov, "POST /v1/rules", "/v1/rules", a, rule); r.code != 201 {
		t.Fatalf("rule create: %d %s", r.code, r.body)
	}
	problemOf(t, e.do("POST", "/v1/rules", a, rule), 409)
	pr = problemOf(t, e.do("POST", "/v1/rules", a, map[string]any{"name": "r2", "rule": map[string]any{"when": 3}}), 422)
	if !hasField(pr, "rule.when") {
		t.Errorf("rule validator: %+v", pr)
	}
	pr = problemOf(t, e.do("POST", "/v1/rules", a, map[string]any{"name": "r2", "rule": []int{1}}), 422)
	if !hasField(pr, "rule") {
		t.Errorf("rule not an object: %+v", pr)
	}
	problemOf(t, e.do("POST", "/v1/rules", a, map[string]any{"name": "r2", "rule": map[string]any{}, "x": 1}), 400)
	problemOf(t, e.do("POST", "/v1/rules", a, map[string]any{"name": 7, "rule": map[string]any{}}), 400)
	var rr api.Rule
	e.call(cov, "GET /v1/rules/{name}", "/v1/rules/hot", a, nil).json(t, &rr)
	var doc map[string]string
	json.Unmarshal(rr.Rule, &doc)
	if rr.Name != "hot" || doc["when"] != "temp > 80" {
		t.Fatalf("rule %+v", rr)
	}
	var rs []api.Rule
	e.call(cov, "GET /v1/rules", "/v1/rules", a, nil).json(t, &rs)
	if len(rs) != 1 {
		t.Fatalf("rules %+v", rs)
	}
	rule["rule"] = map[string]any{"when": "temp > 90"}
	if r := e.call(cov, "PUT /v1/rules/{name}", "/v1/rules/hot", a, rule); r.code != 200 {
		t.Fatalf("rule put: %d %s", r.code, r.body)
	}
	problemOf(t, e.do("PUT", "/v1/rules/other", a, rule), 422)
	problemOf(t, e.do("GET", "/v1/rules/nope", a, nil), 404)
	var val api.Validation
	e.call(cov, "POST /v1/rules/{name}/validate", "/v1/rules/dry/validate", a, map[string]any{"rule": map[string]any{"when": "x"}}).json(t, &val)
	if !val.Valid {
		t.Fatalf("validate: %+v", val)
	}
	problemOf(t, e.do("GET", "/v1/rules/dry", a, nil), 404) // a dry run stores nothing
	if r := e.call(cov, "DELETE /v1/rules/{name}", "/v1/rules/hot", a, nil); r.code != 204 {
		t.Fatalf("rule delete: %d", r.code)
	}
	problemOf(t, e.do("DELETE", "/v1/rules/hot", a, nil), 404)

	// tokens
	var it api.IssuedToken
	r = e.call(cov, "POST /v1/tokens", "/v1/tokens", a, map[string]any{"tenant": "bob", "memoryLimitBytes": 1 << 30})
	r.json(t, &it)
	if r.code != 201 || !strings.HasPrefix(it.Token, auth.TokenPrefix) || it.MemoryLimitBytes != 1<<30 {
		t.Fatalf("issue: %d %s", r.code, r.body)
	}
	if ten, err := e.tokens.Authenticate([]byte(it.Token)); err != nil || ten.MemLimit != 1<<30 {
		t.Fatalf("issued token does not authenticate: %v %+v", err, ten)
	}
	problemOf(t, e.do("GET", "/v1/gpus", it.Token, nil), 403)
	pr = problemOf(t, e.do("POST", "/v1/tokens", a, map[string]any{"tenant": "bob", "memoryLimitBytes": -1}), 400)
	if !hasField(pr, "memoryLimitBytes") {
		t.Errorf("negative limit: %+v", pr)
	}
	problemOf(t, e.do("POST", "/v1/tokens", a, map[string]any{"tenant": "b o b"}), 422)
	problemOf(t, e.do("POST", "/v1/tokens", a, map[string]any{"tenant": "bob", "admin": true}), 400)
	var recs []api.TokenRecord
	e.call(cov, "GET /v1/tokens", "/v1/tokens", a, nil).json(t, &recs)
	if len(recs) != 2 || bytes.Contains(e.do("GET", "/v1/tokens", a, nil).body, []byte(auth.TokenPrefix)) {
		t.Fatalf("tokens %+v", recs)
	}
	r = e.call(cov, "DELETE /v1/tokens/{tenant}", "/v1/tokens/bob", a, nil)
	if r.code != 200 || !bytes.Contains(r.body, []byte(`"revoked":1`)) {
		t.Fatalf("revoke: %d %s", r.code, r.body)
	}
	if _, err := e.tokens.Authenticate([]byte(it.Token)); err == nil {
		t.Fatal("revoked token still works")
	}
	problemOf(t, e.do("DELETE", "/v1/tokens/bob", a, nil), 404)

	// events: every write above is there, with its status
	var evs []api.Event
	e.call(cov, "GET /v1/events", "/v1/events?limit=1000", a, nil).json(t, &evs)
	writes := map[string]int{}
	for _, ev := range evs {
		if ev.Kind == api.EventKindAPI {
			writes[fmt.Sprintf("%s %d", ev.Action, ev.Status)]++
		}
	}
	for _, w := range []string{"POST /v1/profiles 201", "POST /v1/profiles 409", "POST /v1/profiles 413", "POST /v1/profiles 422",
		"PUT /v1/profiles/:name 200", "DELETE /v1/profiles/:name 204",
		"POST /v1/tenants/:tenant/evict 204", "POST /v1/rules 201", "DELETE /v1/tokens/:tenant 200", "POST /v1/tokens 201"} {
		if writes[w] == 0 {
			t.Errorf("no event for %s in %v", w, writes)
		}
	}
	var rs2 []api.Event
	e.do("GET", "/v1/events?kind=reslice", a, nil).json(t, &rs2)
	// The apply is one event: the re-slice, with the request's status.
	if len(rs2) != 1 || rs2[0].Subject != "profile two" || rs2[0].Status != 200 || rs2[0].Actor != "admin" ||
		!strings.HasPrefix(rs2[0].Summary, "admin: re-sliced to profile two in ") {
		t.Fatalf("reslice events %+v", rs2)
	}
	last := evs[len(evs)-1].ID
	var none []api.Event
	e.do("GET", fmt.Sprintf("/v1/events?after=%d", last), a, nil).json(t, &none)
	if len(none) != 0 {
		t.Fatalf("after last: %+v", none)
	}
	e.do("GET", "/v1/events?limit=2", a, nil).json(t, &none)
	if len(none) != 2 || none[1].ID != last {
		t.Fatalf("limit 2: %+v", none)
	}
	problemOf(t, e.do("GET", "/v1/events?limit=abc", a, nil), 400)
	problemOf(t, e.do("GET", "/v1/events?limit=0", a, nil), 422)
	problemOf(t, e.do("GET", "/v1/events?kind=boot", a, nil), 422)

	// Unauthenticated writes do not reach the log.
	n := len(evs)
	e.do("POST", "/v1/profiles", "", validProfile("anon"))
	e.do("POST", "/anything", "", nil)
	e.do("GET", "/v1/events?limit=1000", a, nil).json(t, &evs)
	if len(evs) != n {
		t.Errorf("unauthenticated writes were logged: %+v", evs[n:])
	}

	contractDevices(t, e, cov)
	contractJobs(t, e, cov)
	contractHistory(t, e, cov)
	contractPool(t, e, cov)

	// the stream has its own test; mark it
	cov["GET /v1/stream"] = true

	for _, op := range specOps(t) {
		if !cov[op] {
			t.Errorf("operation %s has no contract test", op)
		}
	}
}

func TestSpecAndPage(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/openapi.json", "", nil)
	var doc map[string]any
	r.json(t, &doc)
	if r.code != 200 || doc["openapi"] != "3.0.3" {
		t.Fatalf("openapi.json: %d", r.code)
	}
	r = e.do("GET", "/", "", nil)
	if r.code != 200 || !bytes.Contains(r.body, []byte(`<script src="app.js">`)) {
		t.Fatalf("page: %d %s", r.code, r.body)
	}
	for _, f := range []string{"/app.js", "/style.css"} {
		if r := e.do("GET", f, "", nil); r.code != 200 {
			t.Errorf("%s: %d", f, r.code)
		}
	}
	problemOf(t, e.do("GET", "/nope", "", nil), 404)
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	problemOf(t, e.do("GET", "/metrics", "", nil), 401)
	problemOf(t, e.do("GET", "/metrics", e.tenant, nil), 403)
	e.do("GET", "/v1/gpus", e.admin, nil)
	e.srv.RecordDecision("hot", "shrink", "temp 85 > 80")
	e.srv.RecordReslice("policy hot", 30e6, nil)
	r := e.do("GET", "/metrics", e.admin, nil)
	if r.code != 200 {
		t.Fatalf("metrics: %d", r.code)
	}
	for _, want := range []string{
		`kerf_gpu_memory_bytes{gpu="0",name="Kerf emulated GPU"} 1.7179869184e+10`,
		`kerf_gpu_info{emulated="true",gpu="0",name="Kerf emulated GPU"} 1`,
		`kerf_gpu_utilization_ratio{gpu="1"} 0.5`,
		`kerf_gpu_temperature_celsius{gpu="1"} 61`,
		`kerf_gpu_power_watts{gpu="1"} 250`,
		`kerf_gpu_memory_used_bytes{gpu="0"} 3.221225472e+09`,
		`kerf_slice_memory_used_bytes{gpu="0",tenant="alice"} 3.221225472e+09`,
		`kerf_slice_memory_limit_bytes{gpu="0",tenant="alice"} 8.589934592e+09`,
		`kerf_slice_compute_share_target_ratio{gpu="0",tenant="alice"} 0.5`,
		`kerf_slice_compute_share_achieved_ratio{gpu="0",tenant="alice"} 0.42`,
		`kerf_tenant_calls_total{tenant="alice"} 1234`,
		`kerf_tenant_errors_total{tenant="alice"} 2`,
		`kerf_tenant_transfer_bytes_total{direction="out",tenant="alice"} 2.097152e+06`,
		`kerf_ingest_messages_total{source="mqtt"} 10`,
		`kerf_ingest_bytes_total{source="mqtt"} 800`,
		`kerf_ingest_dropped_total{source="mqtt"} 1`,
		`kerf_ingest_series{source="mqtt"} 3`,
		`kerf_ingest_series_refused_total{source="mqtt"} 2`,
		`kerf_ingest_series_forgotten_total{source="mqtt"} 5`,
		`kerf_ingest_unread_series{source="mqtt"} 7`,
		`kerf_ingest_signals_refused_total{reason="publisher_cap",source="mqtt"} 4`,
		`kerf_ingest_signals_refused_total{reason="table_full",source="mqtt"} 2`,
		`kerf_policy_decisions_total{action="shrink",rule="hot"} 1`,
		`kerf_reslices_total{result="ok"} 1`,
		`kerf_reslice_duration_seconds_bucket{le="0.05"} 1`,
		`kerf_api_requests_total{code="200",method="GET",route="/v1/gpus"} 1`,
		`kerf_api_requests_total{code="401",method="GET",route="/metrics"} 1`,
		`go_goroutines`,
	} {
		if !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Every metric the Grafana dashboard plots exists.
	dash, err := os.ReadFile("../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range regexp.MustCompile(`kerf_[a-z_]+`).FindAllString(string(dash), -1) {
		if name == "kerf_appliance" {
			continue
		}
		if !bytes.Contains(r.body, []byte("\n"+name)) {
			t.Errorf("the dashboard plots %s, which /metrics lacks", name)
		}
	}

	var evs []api.Event
	e.do("GET", "/v1/events", e.admin, nil).json(t, &evs)
	kinds := map[api.EventKind]bool{}
	for _, ev := range evs {
		kinds[ev.Kind] = true
	}
	if !kinds[api.EventKindPolicy] || !kinds[api.EventKindReslice] {
		t.Fatalf("events %+v", evs)
	}

	// Public metrics when configured.
	e.srv.cfg.PublicMetrics = true
	if r := e.do("GET", "/metrics", "", nil); r.code != 200 {
		t.Fatalf("public metrics: %d", r.code)
	}
}

func TestRestart(t *testing.T) {
	e := newEnv(t)
	if r := e.do("POST", "/v1/profiles", e.admin, validProfile("keep")); r.code != 201 {
		t.Fatal(r.code)
	}
	e.do("POST", "/v1/rules", e.admin, map[string]any{"name": "r", "rule": map[string]any{"when": "x"}})
	e.srv.Close()

	srv, err := New(Config{StateDir: e.dir}, Deps{Node: e.node, Tokens: e.tokens, Log: e.srv.log})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if tok, err := srv.Bootstrap(); tok != "" || err != nil {
		t.Fatalf("second Bootstrap made a token: %q %v", tok, err)
	}
	e.srv = srv
	var p api.Profile
	if r := e.do("GET", "/v1/gpus", e.admin, nil); r.code != 200 {
		t.Fatalf("the admin token stopped working after a restart: %d", r.code)
	}
	e.do("GET", "/v1/profiles/keep", e.admin, nil).json(t, &p) // the old admin token still works
	if p.Name != "keep" || len(p.GPUs[0].Slices) != 2 {
		t.Fatalf("after restart: %+v", p)
	}
	var rs []api.Rule
	e.do("GET", "/v1/rules", e.admin, nil).json(t, &rs)
	var evs []api.Event
	e.do("GET", "/v1/events", e.admin, nil).json(t, &evs)
	if len(rs) != 1 || len(evs) < 3 {
		t.Fatalf("rules %+v events %d", rs, len(evs))
	}
	// IDs keep growing across restarts.
	e.do("DELETE", "/v1/rules/r", e.admin, nil)
	var evs2 []api.Event
	e.do("GET", "/v1/events", e.admin, nil).json(t, &evs2)
	if evs2[len(evs2)-1].ID <= evs[len(evs)-1].ID {
		t.Fatalf("event IDs went back")
	}
}

func TestAdminTokenReset(t *testing.T) {
	e := newEnv(t)
	tok, err := e.srv.RotateAdminToken()
	if err != nil {
		t.Fatal(err)
	}
	problemOf(t, e.do("GET", "/v1/gpus", e.admin, nil), 401)
	if r := e.do("GET", "/v1/gpus", tok, nil); r.code != 200 {
		t.Fatalf("rotated token: %d", r.code)
	}
	e.srv.Close()
	tok2, err := ResetAdminToken(Config{StateDir: e.dir})
	if err != nil || tok2 == tok {
		t.Fatalf("reset: %q %v", tok2, err)
	}
	srv, err := New(Config{StateDir: e.dir}, Deps{Node: e.node, Tokens: e.tokens})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	e.srv = srv
	problemOf(t, e.do("GET", "/v1/gpus", tok, nil), 401)
	if r := e.do("GET", "/v1/gpus", tok2, nil); r.code != 200 {
		t.Fatalf("reset token: %d", r.code)
	}
}

func TestCorruptStore(t *testing.T) {
	for name, garbage := range map[string][]byte{
		"short": []byte("not a database"),
		"64KiB": bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 16<<10),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "api.db")
			if err := os.WriteFile(path, garbage, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := New(Config{StateDir: dir}, Deps{Node: newFakeNode(), Tokens: &auth.TokenStore{}})
			if err == nil {
				t.Fatal("a corrupt store opened")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "kept") {
				t.Fatalf("unclear error: %v", err)
			}
			b, _ := os.ReadFile(path)
			if !bytes.Equal(b, garbage) {
				t.Fatal("the corrupt store was changed")
			}
		})
	}
}

func TestEventTrim(t *testing.T) {
	s, err := OpenStore(filepath.Join(t.TempDir(), "api.db"), 50)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 200 {
		if _, err := s.AppendEvent(api.Event{Kind: api.EventKindAPI, Action: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	evs, _ := s.Events(1000, 0, "")
	if len(evs) < 50 || len(evs) > 56 || evs[len(evs)-1].Action != "199" {
		t.Fatalf("%d events kept, last %+v", len(evs), evs[len(evs)-1])
	}
}

// TestRulesFromConfigAndConflicts: config rules are listed read-only and
// cannot be replaced or deleted; a rule that conflicts with another, or
// names a profile that is not stored, is refused with the field at fault,
// and validate says so without storing anything.
func TestRulesFromConfigAndConflicts(t *testing.T) {
	e := newEnv(t)
	a := e.admin
	e.srv.deps.Rules = ruleCheck{
		config:  []api.Rule{{Name: "cams", Rule: json.RawMessage(`{"when":"q > 10","target":"gpu/0"}`)}},
		skipped: map[string]string{"late": "waits for its profile"},
	}
	if r := e.do("POST", "/v1/profiles", a, validProfile("busy")); r.code != 201 {
		t.Fatalf("profile: %d %s", r.code, r.body)
	}
	rule := func(name, target, profile string) map[string]any {
		return map[string]any{"name": name, "rule": map[string]any{"when": "x", "target": target, "profile": profile}}
	}
	for _, tc := range []struct {
		name, method, path string
		body               any
		status             int
		field, detail      string
	}{
		{"replace config rule", "PUT", "/v1/rules/cams", rule("cams", "gpu/1", "busy"), 409, "", "read-only"},
		{"create over config rule", "POST", "/v1/rules", rule("cams", "gpu/1", "busy"), 409, "", "config file"},
		{"delete config rule", "DELETE", "/v1/rules/cams", nil, 409, "", "read-only"},
		{"validate config rule", "POST", "/v1/rules/cams/validate", rule("cams", "gpu/1", "busy"), 409, "", "read-only"},
		{"target of config rule", "POST", "/v1/rules", rule("late", "gpu/0", "busy"), 422, "rule.target", ""},
		{"unknown profile", "PUT", "/v1/rules/late", rule("late", "gpu/1", "nope"), 422, "rule.profile", ""},
		{"validate conflict", "POST", "/v1/rules/late/validate", rule("late", "gpu/0", "busy"), 422, "rule.target", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := problemOf(t, e.do(tc.method, tc.path, a, tc.body), tc.status)
			if tc.field != "" && !hasField(p, tc.field) || !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("%+v", p)
			}
		})
	}
	if r := e.do("PUT", "/v1/rules/late", a, rule("late", "gpu/1", "busy")); r.code != 201 {
		t.Fatalf("a rule that fits: %d %s", r.code, r.body)
	}
	// Replacing a stored rule does not conflict with itself.
	if r := e.do("POST", "/v1/rules/late/validate", a, rule("late", "gpu/1", "busy")); r.code != 200 {
		t.Fatalf("validate own replacement: %d %s", r.code, r.body)
	}
	problemOf(t, e.do("PUT", "/v1/rules/other", a, rule("other", "gpu/1", "busy")), 422)

	var rs []api.Rule
	e.do("GET", "/v1/rules", a, nil).json(t, &rs)
	if len(rs) != 2 {
		t.Fatalf("rules %+v", rs)
	}
	if c := rs[0]; c.Name != "cams" || c.Source != api.RuleSourceConfig || !c.ReadOnly || c.State != api.RuleStateActive {
		t.Errorf("config rule %+v", c)
	}
	if s := rs[1]; s.Name != "late" || s.Source != api.RuleSourceAPI || s.ReadOnly || s.State != api.RuleStateSkipped || s.Reason != "waits for its profile" {
		t.Errorf("stored rule %+v", s)
	}
	var one api.Rule
	e.do("GET", "/v1/rules/cams", a, nil).json(t, &one)
	if one.Source != api.RuleSourceConfig || !one.ReadOnly {
		t.Errorf("GET config rule: %+v", one)
	}
}

// TestBuiltInProfiles: a profile stored as built in cannot be replaced or
// deleted (409 with the reason), nor can the profile the node runs be
// deleted; force reaches the node; a body cannot mark a profile built in.
func TestBuiltInProfiles(t *testing.T) {
	e := newEnv(t)
	a := e.admin
	builtin := api.Profile{Name: "whole", Description: "built in", BuiltIn: true, GPUs: []api.GPUProfile{{GPU: 0, Slices: []api.SliceSpec{{MemoryFraction: 1, ComputeShare: 1}}}}}
	if _, _, err := e.srv.Store().PutProfile(builtin, true); err != nil {
		t.Fatal(err)
	}
	var got api.Profile
	e.do("GET", "/v1/profiles/whole", a, nil).json(t, &got)
	if !got.BuiltIn {
		t.Fatalf("stored built-in profile: %+v", got)
	}
	if pr := problemOf(t, e.do("DELETE", "/v1/profiles/whole", a, nil), 409); !strings.Contains(pr.Detail, `profile "whole" is built in: it cannot be deleted`) {
		t.Errorf("delete: %+v", pr)
	}
	if pr := problemOf(t, e.do("PUT", "/v1/profiles/whole", a, validProfile("whole")), 409); !strings.Contains(pr.Detail, "cannot be replaced") {
		t.Errorf("replace: %+v", pr)
	}
	if pr := problemOf(t, e.do("POST", "/v1/profiles", a, validProfile("whole")), 409); !strings.Contains(pr.Detail, "already exists") {
		t.Errorf("create over it: %+v", pr)
	}
	// A profile the node runs stays; force reaches the node.
	e.do("POST", "/v1/profiles", a, validProfile("mine"))
	if r := e.do("POST", "/v1/profiles/mine/apply?force=true", a, nil); r.code != 200 || e.node.applied[0] != "mine (forced)" {
		t.Fatalf("forced apply: %d %s, node %v", r.code, r.body, e.node.applied)
	}
	if pr := problemOf(t, e.do("DELETE", "/v1/profiles/mine", a, nil), 409); !strings.Contains(pr.Detail, "in use") {
		t.Errorf("delete the active profile: %+v", pr)
	}
	var mine api.Profile
	e.do("GET", "/v1/profiles/mine", a, nil).json(t, &mine)
	if mine.Name != "mine" || mine.BuiltIn {
		t.Fatalf("kept profile: %+v", mine)
	}
	if r := e.do("POST", "/v1/profiles/whole/apply", a, nil); r.code != 200 {
		t.Fatalf("apply: %d %s", r.code, r.body)
	}
	if r := e.do("DELETE", "/v1/profiles/mine", a, nil); r.code != 204 {
		t.Fatalf("delete once another runs: %d %s", r.code, r.body)
	}
	sneaky := validProfile("sneaky")
	sneaky["builtIn"] = true
	if r := e.do("POST", "/v1/profiles", a, sneaky); r.code == 201 {
		if r := e.do("DELETE", "/v1/profiles/sneaky", a, nil); r.code != 204 {
			t.Fatalf("a body marked itself built in: %d %s", r.code, r.body)
		}
	}
}
