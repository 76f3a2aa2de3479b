// Package metrics owns the hub's Prometheus registry: the metrics
// JupyterHub exports, under JupyterHub's names so existing dashboards and
// alerts keep working, plus hubd's own (the PAM worker pool, the admin
// socket, proxy errors, login failures). Other packages record through the
// methods of *Metrics and never import the Prometheus client; a nil
// *Metrics records nothing, so tests and tools need not build one.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// spawnBuckets are JupyterHub 5's buckets for
// jupyterhub_server_spawn_duration_seconds: spawns take from under a
// second to minutes.
func spawnBuckets() []float64 { return []float64{0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 180, 300, 600} }

// Spawn outcomes, JupyterHub's values of the status label.
const (
	SpawnSuccess   = "success"
	SpawnFailure   = "failure"
	SpawnPending   = "already-pending"
	SpawnThrottled = "throttled"
)

// Stop outcomes.
const (
	StopSuccess = "success"
	StopFailure = "failure"
)

// Counts are the hub's totals, read from the database at each scrape.
type Counts struct {
	Users          int
	RunningServers int
}

// PoolStats is the PAM worker pool at one moment.
type PoolStats struct {
	Workers, Busy, Waiting int
}

// Sources are read at scrape time. Any may be nil.
type Sources struct {
	Counts func(ctx context.Context) (Counts, error)
	PAM    func() PoolStats
	// AdminWaiting is how many admin-socket requests wait for a slot.
	AdminWaiting func() int
}

// Metrics records the hub's metrics.
type Metrics struct {
	reg *prometheus.Registry
	log *slog.Logger

	requests      *prometheus.HistogramVec
	spawns        *prometheus.HistogramVec
	stops         *prometheus.HistogramVec
	startup       prometheus.Histogram
	proxyErrors   *prometheus.CounterVec
	loginFailures *prometheus.CounterVec
	logins        prometheus.Counter
	pamWait       prometheus.Histogram
	admin         *prometheus.HistogramVec
}

// New builds the registry with the Go runtime and process collectors and
// every hub metric. Label values known in advance are created at once, so
// a dashboard sees zero rather than nothing before the first failure.
func New(log *slog.Logger) *Metrics {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{reg: reg, log: log.With("component", "metrics")}

	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "jupyterhub_request_duration_seconds",
		Help: "request duration for all HTTP requests to the hub's own pages and API (not proxied user traffic)",
	}, []string{"method", "handler", "code"})
	m.spawns = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "jupyterhub_server_spawn_duration_seconds",
		Help:    "time taken for server spawning operation",
		Buckets: spawnBuckets(),
	}, []string{"status"})
	m.stops = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "jupyterhub_server_stop_seconds",
		Help: "time taken for server stopping operation",
	}, []string{"status"})
	m.startup = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "jupyterhub_hub_startup_duration_seconds",
		Help: "time taken for the hub to start (servers re-attached, listeners serving)",
	})
	m.proxyErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hubd_proxy_errors_total",
		Help: "proxied requests a user server did not answer, by the status the browser got (502 bad answer, 503 not running, 504 too slow)",
	}, []string{"code"})
	m.loginFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hubd_login_failures_total",
		Help: "refused logins by reason",
	}, []string{"reason"})
	m.logins = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hubd_logins_total",
		Help: "accepted logins",
	})
	m.pamWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "hubd_pam_wait_seconds",
		Help:    "time a login waited for a PAM worker",
		Buckets: []float64{0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	})
	m.admin = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "hubd_admin_request_duration_seconds",
		Help: "admin socket requests (hubtui, the hubd CLI) by endpoint and status",
	}, []string{"method", "endpoint", "code"})
	for _, c := range []prometheus.Collector{m.requests, m.spawns, m.stops, m.startup, m.proxyErrors,
		m.loginFailures, m.logins, m.pamWait, m.admin} {
		f(c)
	}
	for _, s := range []string{SpawnSuccess, SpawnFailure, SpawnPending, SpawnThrottled} {
		m.spawns.WithLabelValues(s)
	}
	for _, s := range []string{StopSuccess, StopFailure} {
		m.stops.WithLabelValues(s)
	}
	for _, c := range []int{http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout} {
		m.proxyErrors.WithLabelValues(strconv.Itoa(c))
	}
	return m
}

// Watch registers the values read at scrape time.
func (m *Metrics) Watch(s Sources) {
	if m == nil {
		return
	}
	if s.Counts != nil {
		m.reg.MustRegister(&countsCollector{read: s.Counts, log: m.log,
			users:   prometheus.NewDesc("jupyterhub_total_users", "total number of users", nil, nil),
			running: prometheus.NewDesc("jupyterhub_running_servers", "the number of user servers currently running", nil, nil),
		})
	}
	if s.PAM != nil {
		gauge := func(name, help string, v func(PoolStats) int) {
			m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
				func() float64 { return float64(v(s.PAM())) }))
		}
		gauge("hubd_pam_workers", "PAM workers (auth.pam_workers)", func(p PoolStats) int { return p.Workers })
		gauge("hubd_pam_workers_busy", "PAM workers checking a password now", func(p PoolStats) int { return p.Busy })
		gauge("hubd_pam_queue_length", "logins waiting for a PAM worker", func(p PoolStats) int { return p.Waiting })
	}
	if s.AdminWaiting != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hubd_admin_queue_length", Help: "admin socket requests waiting for their turn",
		}, func() float64 { return float64(s.AdminWaiting()) }))
	}
}

// Handler serves the registry in Prometheus' text (or protobuf) format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// Gather returns the current values (for tests and tools).
func (m *Metrics) Gather() prometheus.Gatherer { return m.reg }

// Request records one request to the hub's own pages or API; handler is
// the route pattern it matched ("" for none).
func (m *Metrics) Request(method, handler string, code int, took time.Duration) {
	if m == nil {
		return
	}
	if handler == "" {
		handler = "unmatched"
	}
	m.requests.WithLabelValues(method, handler, strconv.Itoa(code)).Observe(took.Seconds())
}

// Spawn records the outcome of one start request.
func (m *Metrics) Spawn(status string, took time.Duration) {
	if m == nil {
		return
	}
	m.spawns.WithLabelValues(status).Observe(took.Seconds())
}

// Stop records the outcome of one stop.
func (m *Metrics) Stop(ok bool, took time.Duration) {
	if m == nil {
		return
	}
	status := StopSuccess
	if !ok {
		status = StopFailure
	}
	m.stops.WithLabelValues(status).Observe(took.Seconds())
}

// Started records how long the hub took to start.
func (m *Metrics) Started(took time.Duration) {
	if m == nil {
		return
	}
	m.startup.Observe(took.Seconds())
}

// ProxyError records a proxied request answered with code because the
// user's server did not answer.
func (m *Metrics) ProxyError(code int) {
	if m == nil {
		return
	}
	m.proxyErrors.WithLabelValues(strconv.Itoa(code)).Inc()
}

// Login records a login attempt: reason is "" when it was accepted.
func (m *Metrics) Login(reason string) {
	if m == nil {
		return
	}
	if reason == "" {
		m.logins.Inc()
		return
	}
	m.loginFailures.WithLabelValues(reason).Inc()
}

// PAMWait records how long a login waited for a PAM worker.
func (m *Metrics) PAMWait(took time.Duration) {
	if m == nil {
		return
	}
	m.pamWait.Observe(took.Seconds())
}

// Admin records one admin socket request; endpoint is the route pattern
// ("" for an unknown path).
func (m *Metrics) Admin(method, endpoint string, code int, took time.Duration) {
	if m == nil {
		return
	}
	if endpoint == "" {
		endpoint = "unknown"
	}
	m.admin.WithLabelValues(method, endpoint, strconv.Itoa(code)).Observe(took.Seconds())
}

// countsCollector reads the totals from the database at scrape time, so
// they are never stale and cost nothing between scrapes. A failed read
// leaves the metrics out of that scrape rather than reporting a wrong 0.
type countsCollector struct {
	read           func(context.Context) (Counts, error)
	log            *slog.Logger
	users, running *prometheus.Desc
}

func (c *countsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.users
	ch <- c.running
}

func (c *countsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := c.read(ctx)
	if err != nil {
		c.log.Warn("read the totals for a scrape", "err", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.users, prometheus.GaugeValue, float64(n.Users))
	ch <- prometheus.MustNewConstMetric(c.running, prometheus.GaugeValue, float64(n.RunningServers))
}
