package profiles

import (
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type metrics struct {
	reg           *prometheus.Registry
	reslices      *prometheus.CounterVec
	resliceDur    prometheus.Histogram
	eventsDropped prometheus.Counter
	decisions     *prometheus.CounterVec
	requests      *prometheus.CounterVec
	reqDur        *prometheus.HistogramVec
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		reslices: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kerf_reslices_total", Help: "Re-slices applied, by result (ok, error).",
		}, []string{"result"}),
		resliceDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "kerf_reslice_duration_seconds", Help: "How long re-slices took.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		eventsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kerf_events_dropped_total", Help: "Events dropped before reaching the event log, because the disk fell behind.",
		}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kerf_policy_decisions_total", Help: "Policy decisions, by rule and action.",
		}, []string{"rule", "action"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kerf_api_requests_total", Help: "Operator API requests, by method, route and status code.",
		}, []string{"method", "route", "code"}),
		reqDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kerf_api_request_duration_seconds", Help: "Operator API request latency (streams excluded).",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
	}
	m.reslices.WithLabelValues("ok")
	m.reslices.WithLabelValues("error")
	// A pool member labels every series with its name in the pool, so
	// that one Prometheus scraping every member tells them apart.
	var reg prometheus.Registerer = m.reg
	if s.cfg.MetricsNode != "" {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"node": s.cfg.MetricsNode}, m.reg)
	}
	reg.MustRegister(m.reslices, m.resliceDur, m.eventsDropped, m.decisions, m.requests, m.reqDur,
		&nodeCollector{s},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(s.deps.Collectors...)
	return m
}

// middleware counts requests by route pattern (never the raw path, so the
// label set stays bounded).
func (m *metrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		route := c.Path()
		if route == "" || route == "/*" {
			route = "other"
		}
		code := c.Response().Status
		if err != nil {
			code = toProblem(err).Status
		}
		m.requests.WithLabelValues(c.Request().Method, route, strconv.Itoa(code)).Inc()
		if route != "/v1/stream" {
			m.reqDur.WithLabelValues(c.Request().Method, route).Observe(time.Since(start).Seconds())
		}
		return err
	}
}

var (
	descGPUMem       = prometheus.NewDesc("kerf_gpu_memory_bytes", "A GPU's total memory.", []string{"gpu", "name"}, nil)
	descGPUUtil      = prometheus.NewDesc("kerf_gpu_utilization_ratio", "Share of the last sample period a kernel ran (NVML).", []string{"gpu"}, nil)
	descGPUTemp      = prometheus.NewDesc("kerf_gpu_temperature_celsius", "GPU temperature (NVML).", []string{"gpu"}, nil)
	descGPUPower     = prometheus.NewDesc("kerf_gpu_power_watts", "GPU power draw (NVML).", []string{"gpu"}, nil)
	descGPUInfo      = prometheus.NewDesc("kerf_gpu_info", "A GPU Kerf serves: always 1; emulated=\"true\" for the emulated GPU.", []string{"gpu", "name", "emulated"}, nil)
	descGPUAlloc     = prometheus.NewDesc("kerf_gpu_memory_used_bytes", "Memory used by the slices of a GPU.", []string{"gpu"}, nil)
	descGPUSlices    = prometheus.NewDesc("kerf_gpu_slices", "Slices on a GPU.", []string{"gpu"}, nil)
	descSliceUsed    = prometheus.NewDesc("kerf_slice_memory_used_bytes", "Memory a slice uses.", []string{"gpu", "tenant"}, nil)
	descSliceLimit   = prometheus.NewDesc("kerf_slice_memory_limit_bytes", "A slice's memory limit.", []string{"gpu", "tenant"}, nil)
	descShareTarget  = prometheus.NewDesc("kerf_slice_compute_share_target_ratio", "A slice's target compute share (0-1).", []string{"gpu", "tenant"}, nil)
	descShareAchieve = prometheus.NewDesc("kerf_slice_compute_share_achieved_ratio", "A slice's achieved compute share (0-1).", []string{"gpu", "tenant"}, nil)
	descSlicePending = prometheus.NewDesc("kerf_slice_pending", "1 while a re-slice is changing the slice.", []string{"gpu", "tenant"}, nil)
	descTenantSess   = prometheus.NewDesc("kerf_tenant_sessions", "A tenant's live sessions.", []string{"tenant"}, nil)
	descTenantCalls  = prometheus.NewDesc("kerf_tenant_calls_total", "CUDA calls a tenant made.", []string{"tenant"}, nil)
	descTenantErrs   = prometheus.NewDesc("kerf_tenant_errors_total", "CUDA calls of a tenant that failed.", []string{"tenant"}, nil)
	descTenantBytes  = prometheus.NewDesc("kerf_tenant_transfer_bytes_total", "Bytes a tenant moved, by direction (in: to the appliance).", []string{"tenant", "direction"}, nil)
	descTenantMem    = prometheus.NewDesc("kerf_tenant_memory_used_bytes", "GPU memory a tenant uses.", []string{"tenant"}, nil)
	descIngestMsgs   = prometheus.NewDesc("kerf_ingest_messages_total", "Load-signal messages ingested, by source.", []string{"source"}, nil)
	descIngestBytes  = prometheus.NewDesc("kerf_ingest_bytes_total", "Load-signal bytes ingested, by source.", []string{"source"}, nil)
	descIngestDrops  = prometheus.NewDesc("kerf_ingest_dropped_total", "Load-signal messages dropped, by source.", []string{"source"}, nil)
	descIngestBad    = prometheus.NewDesc("kerf_ingest_malformed_total", "Load-signal messages refused as malformed, by source.", []string{"source"}, nil)
	descIngestSeries = prometheus.NewDesc("kerf_ingest_series", "Load-signal series (source, metric) the rule engine tracks.", []string{"source"}, nil)
	descIngestSRef   = prometheus.NewDesc("kerf_ingest_series_refused_total", "New load-signal series refused at the engine's cap.", []string{"source"}, nil)
	descIngestSForg  = prometheus.NewDesc("kerf_ingest_series_forgotten_total", "Load-signal series forgotten after going quiet for ingest.series_ttl.", []string{"source"}, nil)
	descIngestUnread = prometheus.NewDesc("kerf_ingest_unread_series", "Load-signal series no rule reads, counted but not windowed.", []string{"source"}, nil)
	descIngestRefSig = prometheus.NewDesc("kerf_ingest_signals_refused_total", "Signals of new load-signal series refused, by reason (table_full, publisher_cap, unread_pool_full).", []string{"source", "reason"}, nil)
)

// nodeCollector reads the live node at scrape time.
type nodeCollector struct{ s *Server }

func (n *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descGPUInfo, descGPUUtil, descGPUTemp, descGPUPower, descGPUMem, descGPUAlloc, descGPUSlices, descSliceUsed, descSliceLimit,
		descShareTarget, descShareAchieve, descSlicePending, descTenantSess, descTenantCalls, descTenantErrs,
		descTenantBytes, descTenantMem, descIngestMsgs, descIngestBytes, descIngestDrops, descIngestBad,
		descIngestSeries, descIngestSRef, descIngestSForg, descIngestUnread, descIngestRefSig} {
		ch <- d
	}
}

func (n *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	g := prometheus.GaugeValue
	c := prometheus.CounterValue
	used := map[int]float64{}
	count := map[int]float64{}
	seen := map[[2]string]bool{}
	for _, s := range n.s.deps.Node.Slices() {
		gpu := strconv.Itoa(s.GPU)
		if seen[[2]string{gpu, s.Tenant}] {
			continue // one series per (gpu, tenant)
		}
		seen[[2]string{gpu, s.Tenant}] = true
		used[s.GPU] += float64(s.MemoryUsedBytes)
		count[s.GPU]++
		ch <- prometheus.MustNewConstMetric(descSliceUsed, g, float64(s.MemoryUsedBytes), gpu, s.Tenant)
		ch <- prometheus.MustNewConstMetric(descSliceLimit, g, float64(s.MemoryLimitBytes), gpu, s.Tenant)
		ch <- prometheus.MustNewConstMetric(descShareTarget, g, s.ShareTarget, gpu, s.Tenant)
		ch <- prometheus.MustNewConstMetric(descShareAchieve, g, s.ShareAchieved, gpu, s.Tenant)
		p := 0.0
		if s.Pending {
			p = 1
		}
		ch <- prometheus.MustNewConstMetric(descSlicePending, g, p, gpu, s.Tenant)
	}
	for _, d := range n.s.deps.Node.GPUs() {
		gpu := strconv.Itoa(d.Index)
		ch <- prometheus.MustNewConstMetric(descGPUMem, g, float64(d.MemoryBytes), gpu, d.Name)
		ch <- prometheus.MustNewConstMetric(descGPUInfo, g, 1, gpu, d.Name, strconv.FormatBool(d.Emulated))
		if d.Sampled {
			ch <- prometheus.MustNewConstMetric(descGPUUtil, g, d.UtilizationRatio, gpu)
			ch <- prometheus.MustNewConstMetric(descGPUTemp, g, d.TemperatureCelsius, gpu)
			ch <- prometheus.MustNewConstMetric(descGPUPower, g, d.PowerWatts, gpu)
		}
		ch <- prometheus.MustNewConstMetric(descGPUAlloc, g, used[d.Index], gpu)
		ch <- prometheus.MustNewConstMetric(descGPUSlices, g, count[d.Index], gpu)
	}
	tseen := map[string]bool{}
	for _, t := range n.s.deps.Node.Tenants() {
		if tseen[t.Name] {
			continue
		}
		tseen[t.Name] = true
		ch <- prometheus.MustNewConstMetric(descTenantSess, g, float64(t.Sessions), t.Name)
		ch <- prometheus.MustNewConstMetric(descTenantCalls, c, float64(t.Calls), t.Name)
		ch <- prometheus.MustNewConstMetric(descTenantErrs, c, float64(t.Errors), t.Name)
		ch <- prometheus.MustNewConstMetric(descTenantBytes, c, float64(t.BytesIn), t.Name, "in")
		ch <- prometheus.MustNewConstMetric(descTenantBytes, c, float64(t.BytesOut), t.Name, "out")
		ch <- prometheus.MustNewConstMetric(descTenantMem, g, float64(t.MemoryUsedBytes), t.Name)
	}
	if n.s.deps.Ingest != nil {
		sseen := map[string]bool{}
		for _, st := range n.s.deps.Ingest.IngestStats() {
			if sseen[st.Source] {
				continue
			}
			sseen[st.Source] = true
			ch <- prometheus.MustNewConstMetric(descIngestMsgs, c, float64(st.Messages), st.Source)
			ch <- prometheus.MustNewConstMetric(descIngestBytes, c, float64(st.Bytes), st.Source)
			ch <- prometheus.MustNewConstMetric(descIngestDrops, c, float64(st.Dropped), st.Source)
			ch <- prometheus.MustNewConstMetric(descIngestBad, c, float64(st.Malformed), st.Source)
			ch <- prometheus.MustNewConstMetric(descIngestSeries, g, float64(st.Series), st.Source)
			ch <- prometheus.MustNewConstMetric(descIngestSRef, c, float64(st.SeriesRefused), st.Source)
			ch <- prometheus.MustNewConstMetric(descIngestSForg, c, float64(st.SeriesForgotten), st.Source)
			ch <- prometheus.MustNewConstMetric(descIngestUnread, g, float64(st.UnreadSeries), st.Source)
			for reason, n := range st.Refused {
				ch <- prometheus.MustNewConstMetric(descIngestRefSig, c, float64(n), st.Source, reason)
			}
		}
	}
}
