package profiles

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// Every response the tests record is checked against openapi.yaml with
// kin-openapi: its status is declared, its Content-Type and body match
// the declared ones, required fields are there and types match.

var specRouter = sync.OnceValues(func() (routers.Router, error) {
	doc, err := openapi3.NewLoader().LoadFromData(specYAML)
	if err != nil {
		return nil, err
	}
	return legacy.NewRouter(doc)
})

// responseError checks one response to method target against the spec;
// nil for paths that are not spec operations (/metrics, /, /openapi.json).
func responseError(t *testing.T, method, target string, r resp) error {
	t.Helper()
	router, err := specRouter()
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(method, target, nil)
	route, params, err := router.FindRoute(req)
	if err != nil {
		return nil
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 r.code,
		Header:                 r.hdr,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(r.body)
	return openapi3filter.ValidateResponse(context.Background(), in)
}

// checkConforms checks one recorded response against the spec.
func checkConforms(t *testing.T, method, target string, r resp) {
	t.Helper()
	if err := responseError(t, method, target, r); err != nil {
		t.Errorf("%s %s → %d: %v", method, target, r.code, err)
	}
}

func TestConformChecker(t *testing.T) {
	js := http.Header{"Content-Type": {"application/json"}}
	for _, tc := range []struct {
		name, method, target string
		r                    resp
		ok                   bool
	}{
		{"good", "GET", "/v1/gpus", resp{200, js, []byte(`[{"index":0,"name":"n","memoryBytes":1}]`)}, true},
		{"not an integer", "GET", "/v1/gpus", resp{200, js, []byte(`[{"index":1.5,"name":"n","memoryBytes":1}]`)}, false},
		{"required missing", "GET", "/v1/gpus", resp{200, js, []byte(`[{"index":0,"name":"n"}]`)}, false},
		{"undeclared status", "GET", "/healthz", resp{418, js, []byte(`{"status":"ok"}`)}, false},
		{"wrong media type", "GET", "/v1/profiles/x", resp{404, js, []byte(`{"type":"t","title":"t","status":404}`)}, false},
		{"bad enum", "GET", "/v1/events", resp{200, js, []byte(`[{"id":1,"time":"2024-01-01T00:00:00Z","kind":"boot","action":"x"}]`)}, false},
		{"not in the spec", "GET", "/metrics", resp{200, http.Header{}, []byte("x 1")}, true},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			if err := responseError(t, tc.method, tc.target, tc.r); (err == nil) != tc.ok {
				t.Fatalf("ok %v, got %v", tc.ok, err)
			}
		})
	}
}
