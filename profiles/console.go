package profiles

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kerf-edge/kerf/profiles/api"
	"github.com/kerf-edge/kerf/profiles/history"
)

// The node's recent history, for the page: load signals as they arrive,
// and the slices and tenants sampled every step. It lives in memory,
// bounded by the window, the step and the series caps.

// maxLayoutsPerGPU bounds the layouts kept for a GPU within the window.
const maxLayoutsPerGPU = 256

// recorder keeps the history behind /v1/history.
type recorder struct {
	signals *history.Set // key: source + " " + metric; a source has no space
	node    *history.Set // keys from sliceKey and tenantKey

	mu      sync.Mutex
	last    time.Time
	prev    map[string]float64 // counters at the last sample, by series key
	layouts map[int][]layout   // by GPU, oldest first
	tenants map[string]time.Time
}

type layout struct {
	at    time.Time
	bands []api.LayoutBand
}

func newRecorder(cfg Config) *recorder {
	o := history.Options{Window: cfg.HistoryWindow, Step: cfg.HistoryStep, MaxSeries: cfg.HistoryMaxSeries}
	sig := o
	sig.Mode = history.Max
	return &recorder{signals: history.New(sig), node: history.New(o), prev: map[string]float64{},
		layouts: map[int][]layout{}, tenants: map[string]time.Time{}}
}

func sliceKey(id, what string) string    { return "slice\x00" + id + "\x00" + what }
func tenantKey(name, what string) string { return "tenant\x00" + name + "\x00" + what }

// ObserveSignal records one load-signal value for the page's history.
func (s *Server) ObserveSignal(source, metric string, t time.Time, v float64) {
	s.history.signals.Add(source+" "+metric, t, v)
}

// sampleHistory samples the node every step until the server closes.
func (s *Server) sampleHistory(ctx context.Context) {
	t := time.NewTicker(s.history.node.Step())
	defer t.Stop()
	for {
		s.history.sample(time.Now(), s.deps.Node.Slices(), s.deps.Node.Tenants())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sample records the slices' memory and layout, and, from the second
// sample on, the rates of the counters since the one before.
func (r *recorder) sample(now time.Time, sl []api.Slice, ts []api.Tenant) {
	r.mu.Lock()
	defer r.mu.Unlock()
	dt := now.Sub(r.last).Seconds()
	first := r.last.IsZero()
	r.last = now
	rate := func(key string, counter float64) {
		old, seen := r.prev[key]
		r.prev[key] = counter
		if !first && seen && dt > 0 {
			r.node.Add(key, now, max(counter-old, 0)/dt) // a counter that fell: its sessions ended
		}
	}
	live := map[string]bool{}
	byGPU := map[int][]api.LayoutBand{}
	for _, s := range sl {
		id := s.ID
		if id == "" {
			id = fmt.Sprintf("gpu%d/%d", s.GPU, len(byGPU[s.GPU]))
		}
		byGPU[s.GPU] = append(byGPU[s.GPU], api.LayoutBand{ID: id, Tenant: s.Tenant, MemoryLimitBytes: s.MemoryLimitBytes, ShareTarget: s.ShareTarget})
		k := sliceKey(id, "gpu")
		live[k] = true
		rate(k, s.GPUSeconds)
		r.node.Add(sliceKey(id, "mem"), now, float64(s.MemoryUsedBytes))
	}
	for g, bands := range byGPU {
		ls := r.layouts[g]
		if n := len(ls); n == 0 || !slices.Equal(ls[n-1].bands, bands) {
			ls = append(ls, layout{at: now, bands: bands})
		}
		r.layouts[g] = pruneLayouts(ls, now.Add(-r.node.Window()))
	}
	for _, t := range ts {
		r.tenants[t.Name] = now
		for what, c := range map[string]float64{"calls": float64(t.Calls), "errors": float64(t.Errors),
			"bytes": float64(t.BytesIn + t.BytesOut), "gpu": t.GPUSeconds} {
			k := tenantKey(t.Name, what)
			live[k] = true
			rate(k, c)
		}
	}
	for k := range r.prev {
		if !live[k] {
			delete(r.prev, k)
		}
	}
	for name, seen := range r.tenants {
		if now.Sub(seen) > r.node.Window() {
			delete(r.tenants, name)
		}
	}
	r.node.Sweep(now)
	r.signals.Sweep(now)
}

// pruneLayouts drops the layouts that ended before since, keeping the one
// in force then, and the oldest past maxLayoutsPerGPU.
func pruneLayouts(ls []layout, since time.Time) []layout {
	drop := 0
	for drop+1 < len(ls) && !ls[drop+1].at.After(since) {
		drop++
	}
	drop = max(drop, len(ls)-maxLayoutsPerGPU)
	return slices.Delete(ls, 0, drop)
}

func points(p history.Points) api.Points {
	return api.Points{T: nonNil(p.T), V: nonNil(p.V)}
}

func (h handlers) ListSignalHistory(c echo.Context, params api.ListSignalHistoryParams) error {
	limit := params.Limit
	if limit == 0 {
		limit = 20
	}
	sig := h.history.signals
	total, keys := sig.Keys(params.Q, params.Offset, limit)
	now := time.Now()
	out := api.SignalHistory{WindowSeconds: sig.Window().Seconds(), StepSeconds: sig.Step().Seconds(),
		Total: total, Offset: params.Offset, Series: []api.SignalSeries{}}
	for _, k := range keys {
		source, metric, _ := strings.Cut(k, " ")
		out.Series = append(out.Series, api.SignalSeries{Source: source, Metric: metric, Points: points(sig.Points(k, now))})
	}
	return c.JSON(http.StatusOK, out)
}

func (h handlers) GetGPUHistory(c echo.Context) error {
	r := h.history
	now := time.Now()
	out := api.GPUHistory{WindowSeconds: r.node.Window().Seconds(), StepSeconds: r.node.Step().Seconds(), GPUs: []api.GPUHistoryEntry{}}
	r.mu.Lock()
	defer r.mu.Unlock()
	gpus := make([]int, 0, len(r.layouts))
	for g := range r.layouts {
		gpus = append(gpus, g)
	}
	sort.Ints(gpus)
	for _, g := range gpus {
		e := api.GPUHistoryEntry{GPU: g, Layouts: []api.Layout{}, Slices: []api.SliceHistory{}}
		tenant := map[string]string{}
		var order []string
		for _, l := range r.layouts[g] {
			e.Layouts = append(e.Layouts, api.Layout{Time: l.at.UTC(), Slices: l.bands})
			for _, b := range l.bands {
				if _, ok := tenant[b.ID]; !ok {
					order = append(order, b.ID)
				}
				tenant[b.ID] = b.Tenant
			}
		}
		for _, id := range order {
			e.Slices = append(e.Slices, api.SliceHistory{ID: id, Tenant: tenant[id],
				GPUTime: points(r.node.Points(sliceKey(id, "gpu"), now)), MemoryUsedBytes: points(r.node.Points(sliceKey(id, "mem"), now))})
		}
		out.GPUs = append(out.GPUs, e)
	}
	return c.JSON(http.StatusOK, out)
}

func (h handlers) GetTenantHistory(c echo.Context) error {
	r := h.history
	now := time.Now()
	out := api.TenantHistory{WindowSeconds: r.node.Window().Seconds(), StepSeconds: r.node.Step().Seconds(), Tenants: []api.TenantSeries{}}
	r.mu.Lock()
	names := make([]string, 0, len(r.tenants))
	for n := range r.tenants {
		names = append(names, n)
	}
	r.mu.Unlock()
	sort.Strings(names)
	for _, n := range names {
		p := func(what string) api.Points { return points(r.node.Points(tenantKey(n, what), now)) }
		out.Tenants = append(out.Tenants, api.TenantSeries{Name: n, Calls: p("calls"), Errors: p("errors"), Bytes: p("bytes"), GPUTime: p("gpu")})
	}
	return c.JSON(http.StatusOK, out)
}

// eventRecorded, set on a request, tells audit that the handler recorded
// the request's event itself.
const eventRecorded = "event-recorded"

// apiSummary words an API write: "admin: apply profile two → 200 OK".
// It names what the request touched, never the route's template.
func apiSummary(actor, method, escapedPath string, status int, detail string) string {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(escapedPath, "/v1/"), "/"), "/")
	kind := strings.TrimSuffix(parts[0], "s")
	var what string
	switch {
	case len(parts) >= 3 && slices.Contains([]string{"apply", "plan", "validate", "evict"}, parts[2]):
		what = parts[2] + " " + kind + " " + parts[1]
	case len(parts) >= 3:
		what = strings.ToLower(method) + " " + strings.Join(parts[2:], "/") + " of " + kind + " " + parts[1]
	case len(parts) == 2:
		what = map[string]string{http.MethodPut: "put", http.MethodDelete: "delete", http.MethodPost: "post to"}[method] + " " + kind + " " + parts[1]
	case method == http.MethodPost:
		what = "create a " + kind
	default:
		what = strings.ToLower(method) + " " + kind
	}
	s := fmt.Sprintf("%s: %s → %d %s", actor, what, status, http.StatusText(status))
	if detail != "" {
		s += " (" + detail + ")"
	}
	return s
}
