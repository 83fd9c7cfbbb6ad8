package profiles

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/labstack/echo/v4"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/profiles/api"
)

// specValidator checks requests against openapi.yaml with kin-openapi.
// Its middleware checks every operation's path and query parameters;
// checkBody checks a body its handler has decoded. A value of the wrong
// kind is a 400, a value the spec's constraints refuse a 422 that names
// the field (gpus[0].slices[1].computeShare).
type specValidator struct {
	routes map[string]*routers.Route // by method and echo path: "PUT /v1/profiles/:name"
}

func newSpecValidator(spec []byte) (*specValidator, error) {
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	// The auth middleware checks the admin token; kin-openapi would read
	// the whole body for it, past the body limit.
	doc.Security = nil
	v := &specValidator{routes: map[string]*routers.Route{}}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			op.Security = nil
			v.routes[method+" "+echoPath(path)] = &routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: op}
		}
	}
	return v, nil
}

var pathParamRE = regexp.MustCompile(`\{([^}]+)\}`)

// echoPath turns /v1/profiles/{name} into echo's /v1/profiles/:name.
func echoPath(path string) string { return pathParamRE.ReplaceAllString(path, ":$1") }

func (v *specValidator) route(c echo.Context) *routers.Route {
	return v.routes[c.Request().Method+" "+c.Path()]
}

var validateOptions = &openapi3filter.Options{
	ExcludeRequestBody:  true, // checkBody's
	MultiError:          true,
	SkipSettingDefaults: true,
}

// params is the middleware checking the parameters of spec operations.
func (v *specValidator) params(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		rt := v.route(c)
		if rt == nil {
			return next(c)
		}
		pp := map[string]string{}
		for i, name := range c.ParamNames() {
			// As the generated binding sees it.
			val := c.ParamValues()[i]
			if u, err := url.PathUnescape(val); err == nil {
				val = u
			}
			pp[name] = val
		}
		in := &openapi3filter.RequestValidationInput{Request: c.Request(), PathParams: pp, Route: rt, Options: validateOptions}
		if err := openapi3filter.ValidateRequest(c.Request().Context(), in); err != nil {
			fields, malformed := specFields(err, "")
			if malformed {
				p := problem(http.StatusBadRequest, "a parameter is malformed")
				p.Errors = fields
				return p
			}
			return invalid("a parameter is not valid", fields)
		}
		return next(c)
	}
}

// checkBody checks doc, the generic JSON of the request's body, against
// its operation's schema; the constraints it breaks are added to ve.
func (v *specValidator) checkBody(c echo.Context, doc any, ve *ValidationError) {
	rt := v.route(c)
	if rt == nil || rt.Operation.RequestBody == nil {
		return
	}
	mt := rt.Operation.RequestBody.Value.Content.Get("application/json")
	if mt == nil || mt.Schema == nil {
		return
	}
	err := mt.Schema.Value.VisitJSON(doc, openapi3.MultiErrors(), openapi3.VisitAsRequest(),
		openapi3.DisableReadOnlyValidation()) // created and updated are ignored, not refused
	fields, _ := specFields(err, "")
	ve.Fields = append(ve.Fields, fields...)
}

// specFields flattens kin-openapi's errors into field errors under
// prefix; malformed says some value could not be parsed at all.
func specFields(err error, prefix string) (fields []api.FieldError, malformed bool) {
	switch e := err.(type) {
	case nil:
	case openapi3.MultiError:
		for _, e := range e {
			f, m := specFields(e, prefix)
			fields, malformed = append(fields, f...), malformed || m
		}
	case *openapi3filter.RequestError:
		if e.Parameter != nil {
			prefix = e.Parameter.Name
		}
		if e.Err == nil {
			return []api.FieldError{{Field: fieldOr(prefix), Message: e.Error()}}, false
		}
		return specFields(e.Err, prefix)
	case *openapi3.SchemaError:
		field := joinField(prefix, e.JSONPointer())
		msg := e.Reason
		if e.SchemaField == "required" { // the path names the missing field
			msg = "required"
		}
		return []api.FieldError{{Field: fieldOr(field), Message: msg}}, false
	case *openapi3filter.ParseError:
		return []api.FieldError{{Field: fieldOr(prefix), Message: e.Error()}}, true
	default:
		return []api.FieldError{{Field: fieldOr(prefix), Message: err.Error()}}, false
	}
	return fields, malformed
}

func fieldOr(field string) string {
	if field == "" {
		return "(document)"
	}
	return field
}

// joinField appends a JSON pointer's parts to field: gpus, 0, gpu
// becomes gpus[0].gpu.
func joinField(field string, parts []string) string {
	var b strings.Builder
	b.WriteString(field)
	for _, p := range parts {
		if _, err := strconv.Atoi(p); err == nil {
			b.WriteString("[" + p + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

// checkProfile adds what openapi.yaml cannot say about a profile: each
// GPU once, exactly one of memoryFraction and memoryBytes per slice, a
// tenant named by auth's rule and at most once per GPU, and per GPU memory fractions and compute
// shares adding up to at most 1.
func checkProfile(v *ValidationError, p api.Profile) {
	seen := map[int]bool{}
	for i, g := range p.GPUs {
		gf := fmt.Sprintf("gpus[%d]", i)
		if seen[g.GPU] {
			v.add(gf+".gpu", "GPU %d appears more than once", g.GPU)
		}
		seen[g.GPU] = true
		var frac, share float64
		tenants := map[string]bool{}
		for j, s := range g.Slices {
			sf := fmt.Sprintf("%s.slices[%d]", gf, j)
			switch {
			case s.MemoryFraction != 0 && s.MemoryBytes != 0:
				v.add(sf, "give memoryFraction or memoryBytes, not both")
			case s.MemoryFraction == 0 && s.MemoryBytes == 0:
				v.add(sf, "give memoryFraction or memoryBytes")
			}
			frac += s.MemoryFraction
			share += s.ComputeShare
			if s.Tenant != "" {
				if err := auth.CheckTenantName(s.Tenant); err != nil {
					v.add(sf+".tenant", "%v", err)
				}
				if tenants[s.Tenant] {
					v.add(sf+".tenant", "tenant %q has two slices on this GPU", s.Tenant)
				}
				tenants[s.Tenant] = true
			}
		}
		if frac > 1+1e-9 {
			v.add(gf+".slices", "memory fractions add up to %.3g, more than 1", frac)
		}
		if share > 1+1e-9 {
			v.add(gf+".slices", "compute shares add up to %.3g, more than 1", share)
		}
	}
}
