package profiles

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.yaml.in/yaml/v3"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/profiles/internal/apigen"
)

// AdminTokenPrefix starts the admin token. Tenant tokens start with
// auth.TokenPrefix ("kerf_") and are refused on the API.
const AdminTokenPrefix = "kerfadm_"

//go:embed openapi.yaml
var specYAML []byte

//go:embed web
var webFS embed.FS

// Server is the operator API, metrics and web page; it is an http.Handler.
type Server struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	store   *Store
	echo    *echo.Echo
	spec    []byte // JSON
	metrics *metrics
	events  *eventLog
	ctx     context.Context
	cancel  context.CancelFunc
}

var _ apigen.ServerInterface = (*handlers)(nil)

// handlers implements the generated server interface.
type handlers struct{ *Server }

// New opens the store under cfg.StateDir and builds the handler. A store
// that cannot be read is an error naming the file, which is kept.
func New(cfg Config, deps Deps) (*Server, error) {
	cfg.setDefaults()
	if cfg.StateDir == "" {
		return nil, errors.New("profiles: Config.StateDir is required")
	}
	if deps.Node == nil || deps.Tokens == nil {
		return nil, errors.New("profiles: Deps.Node and Deps.Tokens are required")
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	spec, err := specJSON()
	if err != nil {
		return nil, err
	}
	store, err := OpenStore(cfg.StorePath(), cfg.EventsKept)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, deps: deps, log: deps.Log, store: store, spec: spec}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.metrics = newMetrics(s)
	s.events = newEventLog(store, deps.Log, func(n int) { s.metrics.eventsDropped.Add(float64(n)) })
	s.echo = s.routes()
	return s, nil
}

// Bootstrap makes the admin token on the very first start and returns it;
// only its hash is stored, so the caller must show it to the operator
// now. Later starts return "".
func (s *Server) Bootstrap() (string, error) {
	tok, sum, err := newAdminToken()
	if err != nil {
		return "", err
	}
	stored, err := s.store.SetAdminHash(sum)
	if err != nil || !stored {
		return "", err
	}
	s.record(Event{Kind: KindAPI, Action: "admin-token.create", Actor: "kerfd"})
	return tok, nil
}

// RotateAdminToken replaces the admin token (the old one stops working at
// once) and returns the new one, to be shown once.
func (s *Server) RotateAdminToken() (string, error) {
	return rotateAdmin(s.store)
}

// ResetAdminToken replaces the admin token of a stopped kerfd's store
// (kerfd holds the store's lock while it runs) and returns the new one:
// the way back in for an operator who lost the token.
func ResetAdminToken(cfg Config) (string, error) {
	cfg.setDefaults()
	st, err := OpenStore(cfg.StorePath(), cfg.EventsKept)
	if err != nil {
		return "", err
	}
	defer st.Close()
	return rotateAdmin(st)
}

func rotateAdmin(st *Store) (string, error) {
	tok, sum, err := newAdminToken()
	if err != nil {
		return "", err
	}
	if err := st.ResetAdminHash(sum); err != nil {
		return "", err
	}
	if _, err := st.AppendEvent(Event{Kind: KindAPI, Action: "admin-token.rotate", Actor: "kerfd"}); err != nil {
		return "", err
	}
	return tok, nil
}

func newAdminToken() (string, [32]byte, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", raw, err
	}
	tok := AdminTokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	return tok, sha256.Sum256([]byte(tok)), nil
}

// Close ends open streams, writes the events still queued and closes the
// store.
func (s *Server) Close() error {
	s.cancel()
	s.events.close()
	return s.store.Close()
}

// Store is the API's store.
func (s *Server) Store() *Store { return s.store }

// Registry is the Prometheus registry behind /metrics, for adding
// collectors.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.reg }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// RecordReslice logs a re-slice (applied by the slicer, from a profile or
// a policy decision) in the event log and the metrics.
func (s *Server) RecordReslice(subject string, d time.Duration, err error) {
	e := Event{Kind: KindReslice, Action: "reslice", Subject: subject, DurationSeconds: d.Seconds(), Actor: "slicer"}
	result := "ok"
	if err != nil {
		e.Detail, result = err.Error(), "error"
	}
	s.metrics.reslices.WithLabelValues(result).Inc()
	s.metrics.resliceDur.Observe(d.Seconds())
	s.record(e)
}

// RecordDecision logs a policy decision: the rule that fired, the action
// it chose (e.g. "grow", "shrink", "none"), and a free-form detail.
func (s *Server) RecordDecision(rule, action, detail string) {
	s.metrics.decisions.WithLabelValues(rule, action).Inc()
	s.record(Event{Kind: KindPolicy, Action: action, Subject: rule, Detail: detail, Actor: "policy"})
}

// record queues e for the event log; see eventLog.
func (s *Server) record(e Event) { s.events.add(e) }

func specJSON() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(specYAML, &doc); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	return json.Marshal(doc)
}

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.Use(s.metrics.middleware, s.limitBody, s.auth, s.audit)
	apigen.RegisterHandlers(e, handlers{s})
	e.GET("/openapi.json", func(c echo.Context) error { return c.JSONBlob(http.StatusOK, s.spec) })
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})))
	e.GET("/*", serveWeb)
	return e
}

// serveWeb serves the embedded page; anything else is a 404 problem.
func serveWeb(c echo.Context) error {
	sub, _ := fs.Sub(webFS, "web")
	name := strings.TrimPrefix(path.Clean("/"+c.Param("*")), "/")
	if name == "" {
		name = "index.html"
	}
	if fi, err := fs.Stat(sub, name); err != nil || fi.IsDir() {
		return problem(http.StatusNotFound, "no such page")
	}
	c.Response().Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(c.Response(), c.Request(), sub, name)
	return nil
}

// limitBody caps request bodies; reading past the cap fails with
// *http.MaxBytesError, which becomes a 413.
func (s *Server) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength > s.cfg.MaxBodyBytes {
			return problem(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", s.cfg.MaxBodyBytes))
		}
		r.Body = http.MaxBytesReader(c.Response(), r.Body, s.cfg.MaxBodyBytes)
		return next(c)
	}
}

func needsAdmin(path string) bool {
	return strings.HasPrefix(path, "/v1/") || path == "/v1"
}

func (s *Server) auth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := c.Request().URL.Path
		if !needsAdmin(p) && !(p == "/metrics" && !s.cfg.PublicMetrics) {
			return next(c)
		}
		h := c.Request().Header.Get("Authorization")
		tok, ok := strings.CutPrefix(h, "Bearer ")
		tok = strings.TrimSpace(tok)
		switch {
		case h == "" || !ok || tok == "":
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="kerf"`)
			return problem(http.StatusUnauthorized, "this endpoint needs the admin bearer token")
		case strings.HasPrefix(tok, auth.TokenPrefix):
			return problem(http.StatusForbidden, "tenant tokens cannot use the operator API; use the admin token")
		case !s.store.CheckAdmin(tok):
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="kerf", error="invalid_token"`)
			return problem(http.StatusUnauthorized, "wrong admin token")
		}
		c.Set("actor", "admin")
		return next(c)
	}
}

// audit records every authenticated write (any method but GET, HEAD and
// OPTIONS), whatever its outcome. Requests refused by auth are not logged
// (anyone could flood the log with them); kerf_api_requests_total counts
// them.
func (s *Server) audit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		actor, _ := c.Get("actor").(string)
		if actor == "" || r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions {
			return next(c)
		}
		err := next(c)
		status, detail := c.Response().Status, ""
		if err != nil {
			p := toProblem(err)
			status, detail = p.Status, p.Detail
		}
		s.record(Event{Kind: KindAPI, Action: r.Method + " " + c.Path(), Subject: r.URL.Path, Actor: actor, Status: status, Detail: detail})
		return err
	}
}

// Problem is an RFC 7807 problem document; as an error it is the response.
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
}

func (p *Problem) Error() string { return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail) }

func problem(status int, detail string) *Problem {
	return &Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail}
}

func invalid(detail string, fields []FieldError) *Problem {
	p := problem(http.StatusUnprocessableEntity, detail)
	p.Type, p.Errors = "https://kerf.dev/problems/validation", fields
	return p
}

// toProblem maps an error from a handler or middleware to its problem.
func toProblem(err error) *Problem {
	var p *Problem
	var he *echo.HTTPError
	var ve *ValidationError
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &ve):
		return invalid("the document is not valid", ve.Fields)
	case errors.As(err, &he):
		msg := fmt.Sprint(he.Message)
		if he.Internal != nil {
			msg += ": " + he.Internal.Error()
		}
		return problem(he.Code, msg)
	case errors.Is(err, ErrNotFound):
		return problem(http.StatusNotFound, err.Error())
	case errors.Is(err, ErrExists):
		return problem(http.StatusConflict, err.Error())
	}
	return problem(http.StatusInternalServerError, err.Error())
}

func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	p := *toProblem(err)
	if p.Status == http.StatusInternalServerError {
		s.log.Error("API", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	}
	p.Instance = c.Request().URL.Path
	b, _ := json.Marshal(p)
	c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
	c.Response().WriteHeader(p.Status)
	if c.Request().Method != http.MethodHead {
		c.Response().Write(b)
	}
}

// decode reads a JSON body strictly: one document, known fields only,
// within the size limit; errors name the field.
func decode(c echo.Context, v any) error {
	ct := c.Request().Header.Get("Content-Type")
	if ct != "" && !strings.HasPrefix(ct, "application/json") {
		return problem(http.StatusUnsupportedMediaType, "send application/json")
	}
	dec := json.NewDecoder(c.Request().Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, err2 := dec.Token(); err2 != io.EOF {
			err = errors.New("more than one JSON document in the body")
		}
	}
	if err == nil {
		return nil
	}
	var mbe *http.MaxBytesError
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &mbe):
		return problem(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", mbe.Limit))
	case errors.As(err, &te):
		p := problem(http.StatusBadRequest, "a field has the wrong type")
		field := te.Field
		if field == "" {
			field = "(document)"
		}
		p.Errors = []FieldError{{field, fmt.Sprintf("want %s, got JSON %s", jsonKind(te.Type.String()), te.Value)}}
		return p
	case errors.As(err, &se):
		return problem(http.StatusBadRequest, fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se))
	case errors.Is(err, io.EOF):
		return problem(http.StatusBadRequest, "empty body; send a JSON document")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		p := problem(http.StatusBadRequest, "unknown field")
		p.Errors = []FieldError{{f, "unknown field"}}
		return p
	}
	return problem(http.StatusBadRequest, err.Error())
}

func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "an integer"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "string", goType == "time.Time":
		return "a string"
	case goType == "bool":
		return "a boolean"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	}
	return "an object"
}

// --- handlers ---

func (h handlers) GetHealth(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (h handlers) GetReady(c echo.Context) error {
	if h.deps.Ready != nil {
		if err := h.deps.Ready(); err != nil {
			return problem(http.StatusServiceUnavailable, err.Error())
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

func (h handlers) ListGPUs(c echo.Context) error {
	return c.JSON(http.StatusOK, nonNil(h.deps.Node.GPUs()))
}

func (h handlers) ListSlices(c echo.Context) error {
	return c.JSON(http.StatusOK, nonNil(h.deps.Node.Slices()))
}

func (h handlers) ListTenants(c echo.Context) error {
	return c.JSON(http.StatusOK, nonNil(h.deps.Node.Tenants()))
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

func (h handlers) EvictTenant(c echo.Context, tenant apigen.TenantName) error {
	if err := h.deps.Node.Evict(c.Request().Context(), tenant); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// State is GET /v1/state and each /v1/stream event.
type State struct {
	GPUs    []GPU    `json:"gpus"`
	Slices  []Slice  `json:"slices"`
	Tenants []Tenant `json:"tenants"`
	Events  []Event  `json:"events"`
}

func (s *Server) state() (State, error) {
	s.events.flush()
	ev, err := s.store.Events(20, 0, "")
	return State{nonNil(s.deps.Node.GPUs()), nonNil(s.deps.Node.Slices()), nonNil(s.deps.Node.Tenants()), ev}, err
}

func (h handlers) GetState(c echo.Context) error {
	st, err := h.state()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func (h handlers) GetStream(c echo.Context) error {
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	wake, cancel := h.store.subscribe()
	defer cancel()
	t := time.NewTicker(h.cfg.StreamInterval)
	defer t.Stop()
	ctx := c.Request().Context()
	var last []byte
	for {
		st, err := h.state()
		if err != nil {
			return nil // the response is committed; end the stream
		}
		b, _ := json.Marshal(st)
		if !bytes.Equal(b, last) {
			if _, err := fmt.Fprintf(w, "event: state\ndata: %s\n\n", b); err != nil {
				return nil
			}
			last = b
		} else if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
			return nil
		}
		w.Flush()
		select {
		case <-ctx.Done():
			return nil
		case <-h.ctx.Done():
			return nil
		case <-wake:
		case <-t.C:
		}
	}
}

// profiles

func (h handlers) ListProfiles(c echo.Context) error {
	ps, err := h.store.Profiles()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ps)
}

func (h handlers) readProfile(c echo.Context, name string) (Profile, error) {
	var p Profile
	if err := decode(c, &p); err != nil {
		return p, err
	}
	if name != "" {
		if p.Name == "" {
			p.Name = name
		} else if p.Name != name {
			return p, invalid("the body names another profile", []FieldError{{"name", fmt.Sprintf("%q differs from the path's %q", p.Name, name)}})
		}
	}
	p.Created, p.Updated = time.Time{}, time.Time{}
	if err := ValidateProfile(p); err != nil {
		return p, err
	}
	return p, nil
}

func (h handlers) CreateProfile(c echo.Context) error {
	p, err := h.readProfile(c, "")
	if err != nil {
		return err
	}
	p, _, err = h.store.PutProfile(p, true)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, p)
}

func (h handlers) GetProfile(c echo.Context, name apigen.Name) error {
	p, err := h.store.Profile(name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (h handlers) PutProfile(c echo.Context, name apigen.Name) error {
	if err := checkPathName(name); err != nil {
		return err
	}
	p, err := h.readProfile(c, name)
	if err != nil {
		return err
	}
	p, existed, err := h.store.PutProfile(p, false)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if !existed {
		status = http.StatusCreated
	}
	return c.JSON(status, p)
}

func checkPathName(name string) error {
	v := &ValidationError{}
	checkName(v, "name", name)
	if err := v.orNil(); err != nil {
		return invalid("bad name in the path", v.Fields)
	}
	return nil
}

func (h handlers) DeleteProfile(c echo.Context, name apigen.Name) error {
	if err := h.store.DeleteProfile(name); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// nodeProfile loads a stored profile and checks it against the node.
func (h handlers) nodeProfile(name string) (Profile, error) {
	p, err := h.store.Profile(name)
	if err != nil {
		return p, err
	}
	if err := h.deps.Node.Validate(p); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			return p, invalid("the profile does not fit this node", ve.Fields)
		}
		return p, invalid("the profile does not fit this node: "+err.Error(), nil)
	}
	return p, nil
}

func (h handlers) ValidateProfile(c echo.Context, name apigen.Name) error {
	if _, err := h.nodeProfile(name); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]bool{"valid": true})
}

func (h handlers) PlanProfile(c echo.Context, name apigen.Name) error {
	p, err := h.nodeProfile(name)
	if err != nil {
		return err
	}
	plan, err := h.deps.Node.Plan(c.Request().Context(), p)
	if err != nil {
		return planProblem(err)
	}
	plan.Steps = nonNil(plan.Steps)
	return c.JSON(http.StatusOK, plan)
}

func planProblem(err error) error {
	var ve *ValidationError
	if errors.As(err, &ve) || errors.Is(err, ErrNotFound) {
		return err
	}
	return problem(http.StatusConflict, err.Error())
}

func (h handlers) ApplyProfile(c echo.Context, name apigen.Name) error {
	p, err := h.nodeProfile(name)
	if err != nil {
		return err
	}
	start := time.Now()
	plan, err := h.deps.Node.Apply(c.Request().Context(), p)
	h.RecordReslice("profile "+name, time.Since(start), err)
	if err != nil {
		return planProblem(err)
	}
	plan.Steps, plan.Applied = nonNil(plan.Steps), true
	return c.JSON(http.StatusOK, plan)
}

// rules

func (h handlers) ListRules(c echo.Context) error {
	rs, err := h.store.Rules()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rs)
}

func (h handlers) readRule(c echo.Context, name string) (Rule, error) {
	var in struct {
		Name    string          `json:"name"`
		Rule    json.RawMessage `json:"rule"`
		Created time.Time       `json:"created"`
		Updated time.Time       `json:"updated"`
	}
	if err := decode(c, &in); err != nil {
		return Rule{}, err
	}
	r := Rule{Name: in.Name, Rule: in.Rule}
	if name != "" && r.Name == "" {
		r.Name = name
	}
	v := &ValidationError{}
	checkName(v, "name", r.Name)
	if name != "" && r.Name != name {
		v.add("name", "%q differs from the path's %q", r.Name, name)
	}
	if t := bytes.TrimSpace(r.Rule); len(t) == 0 || t[0] != '{' {
		v.add("rule", "want a JSON object")
	}
	if err := v.orNil(); err != nil {
		return r, err
	}
	if h.deps.Rules != nil {
		if err := h.deps.Rules.ValidateRule(r.Name, r.Rule); err != nil {
			var ve *ValidationError
			if errors.As(err, &ve) {
				fs := make([]FieldError, len(ve.Fields))
				for i, f := range ve.Fields {
					fs[i] = FieldError{"rule." + f.Field, f.Message}
				}
				return r, invalid("the rule is not valid", fs)
			}
			return r, invalid("the rule is not valid: "+err.Error(), []FieldError{{"rule", err.Error()}})
		}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, r.Rule); err == nil {
		r.Rule = compact.Bytes()
	}
	return r, nil
}

func (h handlers) CreateRule(c echo.Context) error {
	r, err := h.readRule(c, "")
	if err != nil {
		return err
	}
	r, _, err = h.store.PutRule(r, true)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, r)
}

func (h handlers) GetRule(c echo.Context, name apigen.Name) error {
	r, err := h.store.Rule(name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (h handlers) PutRule(c echo.Context, name apigen.Name) error {
	if err := checkPathName(name); err != nil {
		return err
	}
	r, err := h.readRule(c, name)
	if err != nil {
		return err
	}
	r, existed, err := h.store.PutRule(r, false)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if !existed {
		status = http.StatusCreated
	}
	return c.JSON(status, r)
}

func (h handlers) DeleteRule(c echo.Context, name apigen.Name) error {
	if err := h.store.DeleteRule(name); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// tokens

// TokenRequest is the body of POST /v1/tokens.
type TokenRequest struct {
	Tenant           string `json:"tenant"`
	MemoryLimitBytes uint64 `json:"memoryLimitBytes,omitempty"`
}

// IssuedToken is the answer to POST /v1/tokens; the token is shown once.
type IssuedToken struct {
	Tenant           string `json:"tenant"`
	Token            string `json:"token"`
	MemoryLimitBytes uint64 `json:"memoryLimitBytes,omitempty"`
}

// TokenRecord is an issued token's record, without the token.
type TokenRecord struct {
	Tenant           string    `json:"tenant"`
	MemoryLimitBytes uint64    `json:"memoryLimitBytes,omitempty"`
	Issued           time.Time `json:"issued"`
	Revoked          time.Time `json:"revoked,omitzero"`
}

func (h handlers) ListTokens(c echo.Context) error {
	out := []TokenRecord{}
	for _, r := range h.deps.Tokens.List() {
		out = append(out, TokenRecord{r.Tenant, r.MemLimit, r.Issued, r.Revoked})
	}
	return c.JSON(http.StatusOK, out)
}

func (h handlers) IssueToken(c echo.Context) error {
	var req TokenRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.Tenant == "" || strings.ContainsAny(req.Tenant, " \t\n/") || len(req.Tenant) > 64 {
		return invalid("bad tenant name", []FieldError{{"tenant", "want 1-64 characters without spaces or slashes"}})
	}
	tok, err := h.deps.Tokens.Issue(req.Tenant, req.MemoryLimitBytes)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, IssuedToken{req.Tenant, tok, req.MemoryLimitBytes})
}

func (h handlers) RevokeTokens(c echo.Context, tenant apigen.TenantName) error {
	n, err := h.deps.Tokens.Revoke(tenant)
	if err != nil {
		return err
	}
	if n == 0 {
		return problem(http.StatusNotFound, fmt.Sprintf("tenant %q has no live tokens", tenant))
	}
	return c.JSON(http.StatusOK, map[string]any{"tenant": tenant, "revoked": n})
}

// events

func (h handlers) ListEvents(c echo.Context, params apigen.ListEventsParams) error {
	limit, after, kind := 100, uint64(0), ""
	v := &ValidationError{}
	if params.Limit != nil {
		if limit = *params.Limit; limit < 1 || limit > 1000 {
			v.add("limit", "must be in [1, 1000]")
		}
	}
	if params.After != nil {
		if *params.After < 0 {
			v.add("after", "must be 0 or more")
		}
		after = uint64(max(*params.After, 0))
	}
	if params.Kind != nil {
		switch kind = string(*params.Kind); kind {
		case KindAPI, KindReslice, KindPolicy:
		default:
			v.add("kind", "want api, reslice or policy")
		}
	}
	if err := v.orNil(); err != nil {
		return invalid("bad query", v.Fields)
	}
	h.events.flush()
	ev, err := h.store.Events(limit, after, kind)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ev)
}
