package jobs

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the runner's Prometheus series, labelled by job (jobs are
// few: each is a stored document).
type Metrics struct {
	runs          *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	runningNow    *prometheus.GaugeVec
	startFailures *prometheus.CounterVec
}

// NewMetrics makes the series; register them with Collectors.
func NewMetrics() *Metrics {
	return &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kerf_job_runs_total", Help: "Ended instances of triggered jobs, by job and outcome (succeeded, failed, stopped).",
		}, []string{"job", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kerf_job_run_duration_seconds", Help: "How long instances of triggered jobs ran, by job.",
			Buckets: []float64{.1, .5, 1, 5, 15, 60, 300, 900, 3600},
		}, []string{"job"}),
		runningNow: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kerf_job_instances_running", Help: "Instances of triggered jobs running now, by job.",
		}, []string{"job"}),
		startFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kerf_job_start_failures_total", Help: "Instances of triggered jobs that could not start (no capacity, no program), by job.",
		}, []string{"job"}),
	}
}

// Collectors are the series to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.runs, m.duration, m.runningNow, m.startFailures}
}

func (m *Metrics) running(job string, n int) { m.runningNow.WithLabelValues(job).Set(float64(n)) }

func (m *Metrics) startFailed(job string) { m.startFailures.WithLabelValues(job).Inc() }

func (m *Metrics) ended(job, outcome string, d time.Duration, running int) {
	m.runs.WithLabelValues(job, outcome).Inc()
	m.duration.WithLabelValues(job).Observe(d.Seconds())
	m.running(job, running)
}

// forget drops a deleted job's series.
func (m *Metrics) forget(job string) {
	m.runs.DeletePartialMatch(prometheus.Labels{"job": job})
	m.duration.DeleteLabelValues(job)
	m.runningNow.DeleteLabelValues(job)
	m.startFailures.DeleteLabelValues(job)
}
