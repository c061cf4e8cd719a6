package provisioner

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the provisioner's Prometheus series. Machines by pool and
// state are read from the store at scrape time, so every replica reports
// the same registry.
type metrics struct {
	s             *Server
	pending       *prometheus.GaugeVec
	assignments   *prometheus.CounterVec
	directives    *prometheus.CounterVec
	heartbeats    prometheus.Counter
	registrations prometheus.Counter
	requests      *prometheus.HistogramVec
	runReports    *prometheus.CounterVec
	blackHoles    *prometheus.CounterVec
	// blackHoleCapped counts black holes left in service by the pool's cap.
	blackHoleCapped *prometheus.CounterVec
	// canaries counts black holes' recovery probes by outcome.
	canaries      *prometheus.CounterVec
	blackHoleDesc *prometheus.Desc
	machinesDesc  *prometheus.Desc
	leaderDesc    *prometheus.Desc
}

func newMetrics(s *Server) *metrics {
	return &metrics{
		s: s,
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "labrunner_provisioner_pending_tasks", Help: "Pending tasks per pool at the last assigner pass.",
		}, []string{"pool"}),
		assignments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "labrunner_provisioner_assignments_total", Help: "Machines assigned to a pool (empty pool: released).",
		}, []string{"pool"}),
		directives: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "labrunner_provisioner_directives_total", Help: "Directives queued for machines, by kind.",
		}, []string{"kind"}),
		heartbeats: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "labrunner_provisioner_heartbeats_total", Help: "Heartbeats received.",
		}),
		registrations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "labrunner_provisioner_registrations_total", Help: "Successful machine registrations.",
		}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "labrunner_provisioner_api_request_seconds", Help: "API latency by route and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 30, 60},
		}, []string{"route", "code"}),
		runReports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "labrunner_provisioner_run_reports_total", Help: "Finished runs reported by machines, new ones only, by result.",
		}, []string{"result"}),
		blackHoles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "labrunner_provisioner_blackhole_quarantines_total", Help: "Machines quarantined by the black-hole detector, by pool.",
		}, []string{"pool"}),
		blackHoleCapped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "labrunner_provisioner_blackhole_capped_total", Help: "Black holes left in service because the pool's cap of automatic quarantines was reached.",
		}, []string{"pool"}),
		canaries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "labrunner_provisioner_blackhole_canaries_total", Help: "Canary runs of quarantined black holes, by pool and outcome (started, passed, failed, timeout).",
		}, []string{"pool", "outcome"}),
		blackHoleDesc: prometheus.NewDesc("labrunner_provisioner_blackhole_quarantined", "Machines in a quarantine set by the black-hole detector, by pool.", []string{"pool"}, nil),
		machinesDesc:  prometheus.NewDesc("labrunner_provisioner_machines", "Machines by pool and state (offline, quarantined, draining, or the reported state).", []string{"pool", "state"}, nil),
		leaderDesc:    prometheus.NewDesc("labrunner_provisioner_assigner_leader", "1 when this replica runs the assigner.", nil, nil),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.pending, m.assignments, m.directives, m.heartbeats, m.registrations, m.requests, m.runReports, m.blackHoles, m.blackHoleCapped, m.canaries, m}
}

func (m *metrics) observeRequest(route string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Observe(d.Seconds())
}

// Describe implements prometheus.Collector for the store-backed gauges.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.machinesDesc
	ch <- m.leaderDesc
	ch <- m.blackHoleDesc
}

// Collect implements prometheus.Collector for the store-backed gauges.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	leader := 0.0
	if m.s.Leading() {
		leader = 1
	}
	ch <- prometheus.MustNewConstMetric(m.leaderDesc, prometheus.GaugeValue, leader)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	machines, err := m.s.store.ListMachines(ctx)
	if err != nil {
		m.s.log.Warn("metrics: list machines", "error", err)
		return
	}
	type key struct{ pool, state string }
	counts := map[key]int{}
	now := m.s.now()
	for _, mc := range machines {
		counts[key{mc.PoolID, machineStatus(mc, now, m.s.cfg.OfflineAfter)}]++
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(m.machinesDesc, prometheus.GaugeValue, float64(n), k.pool, k.state)
	}
	watches, err := m.s.store.Watches(ctx)
	if err != nil {
		m.s.log.Warn("metrics: read black-hole watch", "error", err)
		return
	}
	auto := map[string]int{}
	for _, mc := range machines {
		if detectorHolds(mc, watches[mc.MachineID], now) {
			auto[mc.PoolID]++
		}
	}
	for pool, n := range auto {
		ch <- prometheus.MustNewConstMetric(m.blackHoleDesc, prometheus.GaugeValue, float64(n), pool)
	}
}

// machineStatus summarises a machine for metrics and tables.
func machineStatus(m *MachineRecord, now time.Time, offlineAfter time.Duration) string {
	switch {
	case quarantined(m, now):
		return "quarantined"
	case !online(m, now, offlineAfter):
		return "offline"
	case m.Draining || m.MovingTo != "":
		return "draining"
	}
	return m.State
}

func promHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
