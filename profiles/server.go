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
	"html"
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
	"github.com/kerf-edge/kerf/profiles/api"
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
	check   *specValidator
	metrics *metrics
	events  *eventLog
	history *recorder
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
	check, err := newSpecValidator(specYAML)
	if err != nil {
		return nil, err
	}
	store, err := OpenStore(cfg.StorePath(), cfg.EventsKept)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, deps: deps, log: deps.Log, store: store, spec: spec, check: check}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.metrics = newMetrics(s)
	s.events = newEventLog(store, deps.Log, func(n int) { s.metrics.eventsDropped.Add(float64(n)) })
	s.history = newRecorder(cfg)
	s.echo = s.routes()
	go s.sampleHistory(s.ctx)
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
	s.record(api.Event{Kind: api.EventKindAPI, Action: "admin-token.create", Actor: "kerfd"})
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
	if _, err := st.AppendEvent(api.Event{Kind: api.EventKindAPI, Action: "admin-token.rotate", Actor: "kerfd"}); err != nil {
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

// Registry is the Prometheus registry behind /metrics, for reading it;
// further collectors come in through Deps.Collectors, so that they carry
// the node label too.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.reg }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// RecordReslice logs a re-slice (applied by the slicer, from a profile or
// a policy decision) in the event log and the metrics.
func (s *Server) RecordReslice(subject string, d time.Duration, err error) {
	s.record(s.resliceEvent(subject, "slicer", d, err))
}

func (s *Server) resliceEvent(subject, actor string, d time.Duration, err error) api.Event {
	e := api.Event{Kind: api.EventKindReslice, Action: "reslice", Subject: subject, DurationSeconds: d.Seconds(), Actor: actor,
		Summary: fmt.Sprintf("%s: re-sliced to %s in %s", actor, subject, roundDuration(d))}
	result := "ok"
	if err != nil {
		e.Detail, result = err.Error(), "error"
		e.Summary = fmt.Sprintf("%s: re-slice to %s failed: %v", actor, subject, err)
	}
	s.metrics.reslices.WithLabelValues(result).Inc()
	s.metrics.resliceDur.Observe(d.Seconds())
	return e
}

// RuleReslice is a re-slice a policy rule asked for.
type RuleReslice struct {
	Rule   string
	Metric string // the metric the rule reads
	// Why is the rule's reading in words: "max of queue = 85 ≥ threshold 80".
	Why               string
	Reason            string // scale-up, scale-down, a fallback
	Target            string // "node" or "gpu 0"
	Profile, Previous string
	Duration          time.Duration
	Err               error
}

// RecordRuleReslice logs a policy rule's re-slice as one event naming the
// rule, its metric and its reading, and counts the decision.
func (s *Server) RecordRuleReslice(r RuleReslice) {
	s.metrics.decisions.WithLabelValues(r.Rule, r.Reason).Inc()
	e := s.resliceEvent("profile "+r.Profile+" on "+r.Target, "policy", r.Duration, r.Err)
	e.Rule, e.Metric, e.Subject = r.Rule, r.Metric, "rule "+r.Rule
	was := ""
	if r.Previous != "" {
		was = " (was " + r.Previous + ")"
	}
	e.Summary = fmt.Sprintf("rule %s, %s: %s, re-sliced %s to %s%s in %s", r.Rule, r.Why, r.Reason, r.Target, r.Profile, was, roundDuration(r.Duration))
	if r.Err != nil {
		e.Summary = fmt.Sprintf("rule %s, %s: %s, re-slicing %s to %s failed: %v", r.Rule, r.Why, r.Reason, r.Target, r.Profile, r.Err)
	}
	s.record(e)
}

// RecordDecision logs a policy decision: the rule that fired, the action
// it chose (e.g. "grow", "shrink", "none"), and a free-form detail.
func (s *Server) RecordDecision(rule, action, detail string) {
	s.metrics.decisions.WithLabelValues(rule, action).Inc()
	s.record(api.Event{Kind: api.EventKindPolicy, Action: action, Subject: rule, Detail: detail, Actor: "policy", Rule: rule,
		Summary: fmt.Sprintf("rule %s: %s (%s)", rule, action, detail)})
}

func roundDuration(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Microsecond)
}

// RecordJob logs what the job runner did: an instance started, ended
// (with its exit code and how long it ran) or failed to start. The
// runner's detail says it in words, so the summary is the job and it.
func (s *Server) RecordJob(job, action, detail string, d time.Duration) {
	s.record(api.Event{Kind: api.EventKindJob, Action: action, Subject: job, Detail: detail, DurationSeconds: d.Seconds(), Actor: "jobs",
		Summary: "job " + job + ": " + detail})
}

// record queues e for the event log; see eventLog.
func (s *Server) record(e api.Event) { s.events.add(e) }

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
	e.Use(s.metrics.middleware, s.limitBody, s.auth, s.audit, s.check.params)
	apigen.RegisterHandlers(e, handlers{s})
	e.GET("/openapi.json", func(c echo.Context) error { return c.JSONBlob(http.StatusOK, s.spec) })
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})))
	e.GET("/*", s.serveWeb)
	return e
}

// serveWeb serves the embedded page; anything else is a 404 problem.
func (s *Server) serveWeb(c echo.Context) error {
	sub, _ := fs.Sub(webFS, "web")
	name := strings.TrimPrefix(path.Clean("/"+c.Param("*")), "/")
	if name == "" {
		name = "index.html"
	}
	if fi, err := fs.Stat(sub, name); err != nil || fi.IsDir() {
		return problem(http.StatusNotFound, "no such page")
	}
	c.Response().Header().Set("Cache-Control", "no-cache")
	if name == "index.html" {
		return c.HTMLBlob(http.StatusOK, s.indexPage(sub))
	}
	http.ServeFileFS(c.Response(), c.Request(), sub, name)
	return nil
}

// indexPage is index.html with the admin token's files named.
func (s *Server) indexPage(web fs.FS) []byte {
	b, _ := fs.ReadFile(web, "index.html")
	files := s.cfg.AdminTokenFiles
	if len(files) == 0 {
		files = []string{"admin-token in kerfd's state directory"}
	}
	quoted := make([]string, len(files))
	for i, f := range files {
		quoted[i] = "<code>" + html.EscapeString(f) + "</code>"
	}
	b = bytes.ReplaceAll(b, []byte("{{ADMIN_TOKEN_FILES}}"), []byte(strings.Join(quoted, " and ")))
	return bytes.ReplaceAll(b, []byte("{{ADMIN_TOKEN_FILE}}"), []byte(html.EscapeString(files[0])))
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
		if recorded, _ := c.Get(eventRecorded).(bool); recorded {
			return err // the handler's own event says it
		}
		// The escaped path: a name the spec refused stays escaped in the log.
		s.record(api.Event{Kind: api.EventKindAPI, Action: r.Method + " " + c.Path(), Subject: r.URL.EscapedPath(), Actor: actor, Status: status, Detail: detail,
			Summary: apiSummary(actor, r.Method, r.URL.EscapedPath(), status, detail)})
		return err
	}
}

func problem(status int, detail string) *api.Problem {
	return &api.Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail}
}

func invalid(detail string, fields []api.FieldError) *api.Problem {
	p := problem(http.StatusUnprocessableEntity, detail)
	p.Type, p.Errors = "https://kerf.dev/problems/validation", fields
	return p
}

// toProblem maps an error from a handler or middleware to its problem.
func toProblem(err error) *api.Problem {
	var p *api.Problem
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
	case errors.Is(err, ErrExists), errors.Is(err, ErrInUse), errors.Is(err, ErrBuiltIn):
		return problem(http.StatusConflict, err.Error())
	case errors.Is(err, ErrUnavailable):
		return problem(http.StatusServiceUnavailable, err.Error())
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

// decode reads a JSON body strictly into v: one document, known fields
// only, values of the right kinds, within the size limit; errors name the
// field. It returns the document as generic JSON too, for checkBody.
func decode(c echo.Context, v any) (map[string]any, error) {
	ct := c.Request().Header.Get("Content-Type")
	if ct != "" && !strings.HasPrefix(ct, "application/json") {
		return nil, problem(http.StatusUnsupportedMediaType, "send application/json")
	}
	data, err := io.ReadAll(c.Request().Body)
	if err == nil {
		err = decodeStrict(data, v)
	}
	var mbe *http.MaxBytesError
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case err == nil:
		var doc map[string]any
		json.Unmarshal(data, &doc) // an object or null: the strict decode took it
		if doc == nil {
			doc = map[string]any{} // null, decoded as {}
		}
		return doc, nil
	case errors.As(err, &mbe):
		return nil, problem(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", mbe.Limit))
	case errors.As(err, &te):
		p := problem(http.StatusBadRequest, "a field has the wrong type")
		field := te.Field
		if field == "" {
			field = "(document)"
		}
		p.Errors = []api.FieldError{{Field: field, Message: fmt.Sprintf("want %s, got JSON %s", jsonKind(te.Type.String()), te.Value)}}
		return nil, p
	case errors.As(err, &se):
		return nil, problem(http.StatusBadRequest, fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se))
	case errors.Is(err, io.EOF):
		return nil, problem(http.StatusBadRequest, "empty body; send a JSON document")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		p := problem(http.StatusBadRequest, "unknown field")
		p.Errors = []api.FieldError{{Field: f, Message: "unknown field"}}
		return nil, p
	}
	return nil, problem(http.StatusBadRequest, err.Error())
}

// decodeStrict decodes the one JSON document in data into v, refusing
// unknown fields.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, err2 := dec.Token(); err2 != io.EOF {
			err = errors.New("more than one JSON document in the body")
		}
	}
	return err
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
	return c.JSON(http.StatusOK, api.Status{Status: "ok"})
}

func (h handlers) GetReady(c echo.Context) error {
	if h.deps.Ready != nil {
		if err := h.deps.Ready(); err != nil {
			return problem(http.StatusServiceUnavailable, err.Error())
		}
	}
	return c.JSON(http.StatusOK, api.Status{Status: "ready"})
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

func (h handlers) EvictTenant(c echo.Context, tenant api.TenantName) error {
	if err := h.deps.Node.Evict(c.Request().Context(), tenant); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (h handlers) GetTenantPolicy(c echo.Context, tenant api.TenantName) error {
	if h.deps.Policies == nil {
		return problem(http.StatusNotImplemented, "this node keeps no tenant policies")
	}
	return c.JSON(http.StatusOK, h.deps.Policies.TenantPolicy(tenant))
}

func (h handlers) PutTenantPolicy(c echo.Context, tenant api.TenantName) error {
	if h.deps.Policies == nil {
		return problem(http.StatusNotImplemented, "this node keeps no tenant policies")
	}
	var p api.TenantPolicy
	v, err := h.readBody(c, &p, nil, "")
	if err != nil {
		return err
	}
	if err := v.orNil(); err != nil {
		return err
	}
	out, err := h.deps.Policies.SetTenantPolicy(tenant, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// state is GET /v1/state and each /v1/stream event.
func (s *Server) state() (api.State, error) {
	s.events.flush()
	ev, err := s.store.Events(20, 0, "")
	return api.State{GPUs: nonNil(s.deps.Node.GPUs()), Slices: nonNil(s.deps.Node.Slices()), Tenants: nonNil(s.deps.Node.Tenants()), Events: ev}, err
}

func (h handlers) GetState(c echo.Context) error {
	st, err := h.state()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

// streamWriteTimeout bounds the write of one /v1/stream event: a reader
// that stops reading is dropped, while the stream itself outlives the
// HTTP server's read and write timeouts.
const streamWriteTimeout = 30 * time.Second

func (h handlers) GetStream(c echo.Context) error {
	w := c.Response()
	// The stream lives as long as the page: it lifts the server's
	// deadline for reading the request and sets one for each write.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
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
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
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

// readBody decodes the body into v and checks it against openapi.yaml;
// the constraints it breaks come back in the *ValidationError. name is
// v's name field (nil: none), pathName the path's name, if any: a
// document without a name takes the path's, one with another is refused.
func (h handlers) readBody(c echo.Context, v any, name *string, pathName string) (*ValidationError, error) {
	doc, err := decode(c, v)
	if err != nil {
		return nil, err
	}
	ve := &ValidationError{}
	if name != nil && pathName != "" {
		if *name == "" {
			*name, doc["name"] = pathName, pathName
		} else if *name != pathName {
			ve.add("name", "%q differs from the path's %q", *name, pathName)
		}
	}
	h.check.checkBody(c, doc, ve)
	return ve, nil
}

// readProfile reads the profile in the body; name is the path's, if any.
// It checks the profile against openapi.yaml and checkProfile.
func (h handlers) readProfile(c echo.Context, name string) (api.Profile, error) {
	var p api.Profile
	v, err := h.readBody(c, &p, &p.Name, name)
	if err != nil {
		return p, err
	}
	checkProfile(v, p)
	p.Created, p.Updated, p.BuiltIn = time.Time{}, time.Time{}, false
	return p, v.orNil()
}

func (h handlers) CreateProfile(c echo.Context) error {
	p, err := h.readProfile(c, "")
	if err != nil {
		return err
	}
	if _, err := h.store.Profile(p.Name); err == nil {
		return fmt.Errorf("profile %q: %w", p.Name, ErrExists)
	}
	if err := h.share(SharedProfile, p.Name, p); err != nil {
		return err
	}
	// Shared, it is stored here already (Server.ApplyShared).
	p, _, err = h.store.PutProfile(p, h.deps.Shared == nil)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, p)
}

func (h handlers) GetProfile(c echo.Context, name api.Name) error {
	p, err := h.store.Profile(name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (h handlers) PutProfile(c echo.Context, name api.Name) error {
	if err := h.mutable(name, "replaced"); err != nil {
		return err
	}
	p, err := h.readProfile(c, name)
	if err != nil {
		return err
	}
	_, err = h.store.Profile(p.Name)
	existed := err == nil
	if err := h.share(SharedProfile, p.Name, p); err != nil {
		return err
	}
	p, _, err = h.store.PutProfile(p, false)
	if err != nil {
		return err
	}
	return c.JSON(putStatus(existed), p)
}

// putStatus is a PUT's status: 200 replaced, 201 created.
func putStatus(existed bool) int {
	if existed {
		return http.StatusOK
	}
	return http.StatusCreated
}

func (h handlers) DeleteProfile(c echo.Context, name api.Name) error {
	if _, err := h.store.Profile(name); err != nil {
		return err
	}
	if err := h.mutable(name, "deleted"); err != nil {
		return err
	}
	if err := h.deps.Node.DeleteProfile(name); err != nil {
		return err
	}
	if err := h.share(SharedProfile, name, nil); err != nil {
		return err
	}
	if err := h.store.DeleteProfile(name); err != nil && !(h.deps.Shared != nil && errors.Is(err, ErrNotFound)) {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// mutable refuses to change a built-in profile.
func (h handlers) mutable(name, verb string) error {
	if p, err := h.store.Profile(name); err == nil && p.BuiltIn {
		return fmt.Errorf("profile %q is %w: it cannot be %s; store a copy under another name to change it", name, ErrBuiltIn, verb)
	}
	return nil
}

// nodeProfile loads a stored profile and checks it against the node.
func (h handlers) nodeProfile(name string) (api.Profile, error) {
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

func (h handlers) ValidateProfile(c echo.Context, name api.Name) error {
	if _, err := h.nodeProfile(name); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, api.Validation{Valid: true})
}

func (h handlers) PlanProfile(c echo.Context, name api.Name, params api.PlanProfileParams) error {
	p, err := h.nodeProfile(name)
	if err != nil {
		return err
	}
	plan, err := h.deps.Node.Plan(c.Request().Context(), p, ApplyOptions{Force: params.Force})
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

func (h handlers) ApplyProfile(c echo.Context, name api.Name, params api.ApplyProfileParams) error {
	p, err := h.nodeProfile(name)
	if err != nil {
		return err
	}
	start := time.Now()
	plan, err := h.deps.Node.Apply(c.Request().Context(), p, ApplyOptions{Force: params.Force})
	// One event for the request and the re-slice it made.
	actor, _ := c.Get("actor").(string)
	e := h.resliceEvent("profile "+name, actor, time.Since(start), err)
	e.Status = http.StatusOK
	if err != nil {
		e.Status = toProblem(planProblem(err)).Status
	}
	h.record(e)
	c.Set(eventRecorded, true)
	if err != nil {
		return planProblem(err)
	}
	plan.Steps, plan.Applied = nonNil(plan.Steps), true
	return c.JSON(http.StatusOK, plan)
}

// rules

// configRules are the config file's rules, marked read-only.
func (h handlers) configRules() []api.Rule {
	if h.deps.Rules == nil {
		return nil
	}
	rs := h.deps.Rules.ConfigRules()
	for i := range rs {
		rs[i].Source, rs[i].ReadOnly = api.RuleSourceConfig, true
	}
	return rs
}

// configRule is the config file's rule called name, if there is one.
func (h handlers) configRule(name string) (api.Rule, bool) {
	for _, r := range h.configRules() {
		if r.Name == name {
			return r, true
		}
	}
	return api.Rule{}, false
}

// withState sets r's state as the rule engine has it.
func (h handlers) withState(r api.Rule) api.Rule {
	if r.Source == "" {
		r.Source = api.RuleSourceAPI
	}
	if h.deps.Rules != nil {
		r.State, r.Reason = h.deps.Rules.RuleState(r)
		if act, ok := h.deps.Rules.RuleActivity(r); ok && r.State == api.RuleStateActive {
			r.Phase, r.Why, r.LastDecision, r.LastDecisionTime = act.Phase, act.Why, act.LastDecision, act.LastDecisionTime
		}
	}
	return r
}

func (h handlers) ListRules(c echo.Context) error {
	stored, err := h.store.Rules()
	if err != nil {
		return err
	}
	out := []api.Rule{}
	for _, r := range append(h.configRules(), stored...) {
		out = append(out, h.withState(r))
	}
	return c.JSON(http.StatusOK, out)
}

// readOnlyRule is the refusal to change a config rule.
func readOnlyRule(name string) error {
	return problem(http.StatusConflict, fmt.Sprintf("rule %q comes from kerfd's config file and is read-only here: change it in the config file (ingest.rules) and restart kerfd", name))
}

// readRule reads the rule in the body as readProfile does, then has
// Deps.Rules check it against the other rules and the stored profiles.
// A config rule's name is refused.
func (h handlers) readRule(c echo.Context, name string) (api.Rule, error) {
	var r api.Rule
	v, err := h.readBody(c, &r, &r.Name, name)
	if err != nil {
		return r, err
	}
	if err := v.orNil(); err != nil {
		return r, err
	}
	if _, ok := h.configRule(r.Name); ok {
		return r, readOnlyRule(r.Name)
	}
	if h.deps.Rules != nil {
		if err := h.checkRule(r); err != nil {
			return r, err
		}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, r.Rule); err == nil {
		r.Rule = compact.Bytes()
	}
	r.Created, r.Updated = time.Time{}, time.Time{}
	r.Source, r.ReadOnly, r.State, r.Reason = "", false, "", ""
	return r, nil
}

// checkRule has Deps.Rules check r as it would join the rules in force.
func (h handlers) checkRule(r api.Rule) error {
	stored, err := h.store.Rules()
	if err != nil {
		return err
	}
	others := h.configRules()
	for _, o := range stored {
		if o.Name != r.Name {
			others = append(others, o)
		}
	}
	ps, err := h.store.Profiles()
	if err != nil {
		return err
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	err = h.deps.Rules.ValidateRule(r, others, names)
	var ve *ValidationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ve):
		fs := make([]api.FieldError, len(ve.Fields))
		for i, f := range ve.Fields {
			fs[i] = api.FieldError{Field: "rule." + f.Field, Message: f.Message}
		}
		return invalid("the rule is not valid", fs)
	}
	return invalid("the rule is not valid: "+err.Error(), []api.FieldError{{Field: "rule", Message: err.Error()}})
}

func (h handlers) CreateRule(c echo.Context) error {
	r, err := h.readRule(c, "")
	if err != nil {
		return err
	}
	if _, err := h.store.Rule(r.Name); err == nil {
		return fmt.Errorf("rule %q: %w", r.Name, ErrExists)
	}
	if err := h.share(SharedRule, r.Name, r); err != nil {
		return err
	}
	r, _, err = h.store.PutRule(r, h.deps.Shared == nil)
	if err != nil {
		return err
	}
	h.rulesChanged()
	return c.JSON(http.StatusCreated, h.withState(r))
}

func (h handlers) GetRule(c echo.Context, name api.Name) error {
	r, ok := h.configRule(name)
	if !ok {
		var err error
		if r, err = h.store.Rule(name); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusOK, h.withState(r))
}

func (h handlers) PutRule(c echo.Context, name api.Name) error {
	r, err := h.readRule(c, name)
	if err != nil {
		return err
	}
	_, err = h.store.Rule(r.Name)
	existed := err == nil
	if err := h.share(SharedRule, r.Name, r); err != nil {
		return err
	}
	r, _, err = h.store.PutRule(r, false)
	if err != nil {
		return err
	}
	h.rulesChanged()
	return c.JSON(putStatus(existed), h.withState(r))
}

// ValidateRule is PutRule's dry run.
func (h handlers) ValidateRule(c echo.Context, name api.Name) error {
	if _, err := h.readRule(c, name); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, api.Validation{Valid: true})
}

func (h handlers) DeleteRule(c echo.Context, name api.Name) error {
	if _, ok := h.configRule(name); ok {
		return readOnlyRule(name)
	}
	if _, err := h.store.Rule(name); err != nil {
		return err
	}
	if err := h.share(SharedRule, name, nil); err != nil {
		return err
	}
	if err := h.store.DeleteRule(name); err != nil && !(h.deps.Shared != nil && errors.Is(err, ErrNotFound)) {
		return err
	}
	h.rulesChanged()
	return c.NoContent(http.StatusNoContent)
}

// rulesChanged tells Deps.Rules that the stored rules changed.
func (h handlers) rulesChanged() {
	if h.deps.Rules != nil {
		h.deps.Rules.RulesChanged()
	}
}

// tokens

func (h handlers) ListTokens(c echo.Context) error {
	out := []api.TokenRecord{}
	for _, r := range h.deps.Tokens.List() {
		out = append(out, api.TokenRecord{Tenant: r.Tenant, MemoryLimitBytes: r.MemLimit, Issued: r.Issued, Revoked: r.Revoked})
	}
	return c.JSON(http.StatusOK, out)
}

func (h handlers) IssueToken(c echo.Context) error {
	var req api.TokenRequest
	v, err := h.readBody(c, &req, nil, "")
	if err != nil {
		return err
	}
	if err := v.orNil(); err != nil {
		return err
	}
	tok, replaced, err := h.deps.Tokens.Replace(req.Tenant, req.MemoryLimitBytes)
	if err != nil {
		return err
	}
	out := api.IssuedToken{Tenant: req.Tenant, Token: tok, MemoryLimitBytes: req.MemoryLimitBytes, Replaced: replaced}
	if h.deps.Reach != nil {
		b := h.deps.Reach()
		out.Quic, out.Socket, out.Fingerprint = b.QUIC, b.Socket, b.Fingerprint
		for _, m := range b.Pool {
			out.Pool = append(out.Pool, api.PoolReach{Node: m.Node, Quic: m.QUIC, Fingerprint: m.Fingerprint})
		}
	}
	return c.JSON(http.StatusCreated, out)
}

func (h handlers) RevokeTokens(c echo.Context, tenant api.TenantName) error {
	n, err := h.deps.Tokens.Revoke(tenant)
	if err != nil {
		return err
	}
	if n == 0 {
		return problem(http.StatusNotFound, fmt.Sprintf("tenant %q has no live tokens", tenant))
	}
	return c.JSON(http.StatusOK, api.Revoked{Tenant: tenant, Revoked: n})
}

// events

// ListEvents answers with the events after params.After (the spec's
// checks on the parameters passed in the middleware).
func (h handlers) ListEvents(c echo.Context, params api.ListEventsParams) error {
	limit := params.Limit
	if limit == 0 {
		limit = 100
	}
	h.events.flush()
	ev, err := h.store.Events(limit, params.After, params.Kind)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ev)
}
