package profiles

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// A small checker of responses against the spec's schemas, so that the
// Go types and openapi.yaml cannot drift apart: every field a response
// carries is declared, every required one is present, types match.

var (
	specOnce sync.Once
	specDoc  map[string]any
)

func spec(t *testing.T) map[string]any {
	specOnce.Do(func() {
		b, err := specJSON()
		if err != nil {
			panic(err)
		}
		if err := json.Unmarshal(b, &specDoc); err != nil {
			panic(err)
		}
	})
	return specDoc
}

func resolve(t *testing.T, s map[string]any) map[string]any {
	for {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		cur := any(spec(t))
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cur = cur.(map[string]any)[part]
		}
		s = cur.(map[string]any)
	}
}

// responseSchema finds the schema of the answer to method path with
// status, and its media type.
func responseSchema(t *testing.T, method, path string, status int) (map[string]any, string, bool) {
	paths := spec(t)["paths"].(map[string]any)
	for tmpl, item := range paths {
		re := "^" + regexp.MustCompile(`\\\{[a-z]+\\\}`).ReplaceAllString(regexp.QuoteMeta(tmpl), `[^/]+`) + "$"
		if !regexp.MustCompile(re).MatchString(path) {
			continue
		}
		op, ok := item.(map[string]any)[strings.ToLower(method)].(map[string]any)
		if !ok {
			return nil, "", false
		}
		rs := op["responses"].(map[string]any)
		r, ok := rs[strconv.Itoa(status)].(map[string]any)
		if !ok {
			if r, ok = rs["default"].(map[string]any); !ok {
				t.Errorf("%s %s: status %d is not in the spec", method, path, status)
				return nil, "", false
			}
		}
		r = resolve(t, r)
		content, ok := r["content"].(map[string]any)
		if !ok {
			return nil, "", true // no body
		}
		for mt, c := range content {
			return resolve(t, c.(map[string]any)["schema"].(map[string]any)), mt, true
		}
	}
	return nil, "", false
}

func conforms(t *testing.T, where string, s map[string]any, v any) []string {
	s = resolve(t, s)
	var errs []string
	bad := func(f string, a ...any) { errs = append(errs, where+": "+fmt.Sprintf(f, a...)) }
	switch s["type"] {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			bad("want an object, got %T", v)
			return errs
		}
		props, _ := s["properties"].(map[string]any)
		for _, r := range asList(s["required"]) {
			if _, ok := m[r.(string)]; !ok {
				bad("required field %s missing", r)
			}
		}
		for k, fv := range m {
			ps, ok := props[k].(map[string]any)
			if !ok {
				if props != nil {
					bad("field %s is not in the spec", k)
				}
				continue
			}
			errs = append(errs, conforms(t, where+"."+k, ps, fv)...)
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			bad("want an array, got %T", v)
			return errs
		}
		for i, x := range a {
			errs = append(errs, conforms(t, fmt.Sprintf("%s[%d]", where, i), s["items"].(map[string]any), x)...)
		}
	case "integer":
		if f, ok := v.(float64); !ok || f != float64(int64(f)) {
			bad("want an integer, got %v", v)
		}
	case "number":
		if _, ok := v.(float64); !ok {
			bad("want a number, got %v", v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			bad("want a boolean, got %v", v)
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			bad("want a string, got %v", v)
		} else if s["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				bad("not a date-time: %q", str)
			}
		}
		if enum := asList(s["enum"]); ok && len(enum) > 0 {
			found := false
			for _, e := range enum {
				found = found || e == str
			}
			if !found {
				bad("%q is not one of %v", str, enum)
			}
		}
	}
	return errs
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// checkConforms checks one recorded response against the spec.
func checkConforms(t *testing.T, method, path string, r resp) {
	t.Helper()
	path, _, _ = strings.Cut(path, "?")
	s, mt, ok := responseSchema(t, method, path, r.code)
	if !ok {
		return // not a spec operation (/metrics, /, /openapi.json) or reported
	}
	ct, _, _ := strings.Cut(r.hdr.Get("Content-Type"), ";")
	if s == nil {
		if len(r.body) != 0 {
			t.Errorf("%s %s → %d: the spec has no body, got %q", method, path, r.code, r.body)
		}
		return
	}
	if ct != mt {
		t.Errorf("%s %s → %d: Content-Type %q, the spec says %q", method, path, r.code, ct, mt)
		return
	}
	if mt != "application/json" && mt != "application/problem+json" {
		return
	}
	var v any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Errorf("%s %s → %d: %v", method, path, r.code, err)
		return
	}
	for _, e := range conforms(t, fmt.Sprintf("%s %s → %d", method, path, r.code), s, v) {
		t.Error(e)
	}
}

func TestConformChecker(t *testing.T) {
	gpu := map[string]any{"$ref": "#/components/schemas/GPU"}
	errs := conforms(t, "gpu", gpu, map[string]any{"index": 1.5, "name": "n", "bogus": true})
	if len(errs) != 3 { // index not an integer, memoryBytes missing, bogus undeclared
		t.Fatalf("%q", errs)
	}
	s, mt, ok := responseSchema(t, "GET", "/v1/profiles/x", 404)
	if !ok || mt != "application/problem+json" || s["properties"] == nil {
		t.Fatalf("problem schema: %v %q %v", ok, mt, s)
	}
	ev := map[string]any{"$ref": "#/components/schemas/Event"}
	if errs := conforms(t, "ev", ev, map[string]any{"id": 1.0, "time": "yesterday", "kind": "boot", "action": "x"}); len(errs) != 2 {
		t.Fatalf("%q", errs)
	}
}
