package runner

// Prometheus metrics of the runner, served at /metrics on the control
// channel and, if runner.metricsListen is set, on that TCP address.

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var allPhases = []string{PhaseBooting, PhaseIdle, PhaseRunning, PhaseDraining, PhaseDrained, PhaseRebooting, PhaseQuarantined, PhaseStopped}

type metrics struct {
	reg        *prometheus.Registry
	phase      *prometheus.GaugeVec
	tasks      *prometheus.CounterVec
	sinceBoot  prometheus.Gauge
	quarantine prometheus.Gauge
	checkOK    *prometheus.GaugeVec
	tripped    *prometheus.GaugeVec
	leftovers  prometheus.Counter
	reboots    prometheus.Counter
	watchdog   prometheus.Counter
	lastClaim  prometheus.Gauge
	running    prometheus.Gauge
}

func newMetrics(r *Runner) *metrics {
	m := &metrics{
		reg:        prometheus.NewRegistry(),
		phase:      prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "labrunner_runner_state", Help: "1 for the runner's current state."}, []string{"state"}),
		tasks:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "labrunner_runner_tasks_total", Help: "Finished runs by resolution, since the runner started."}, []string{"resolution"}),
		sinceBoot:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "labrunner_runner_tasks_since_boot", Help: "Tasks run since the last reboot."}),
		quarantine: prometheus.NewGauge(prometheus.GaugeOpts{Name: "labrunner_runner_quarantined", Help: "1 while the machine is quarantined."}),
		checkOK:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "labrunner_runner_check_ok", Help: "1 if the check's latest sample passed."}, []string{"check"}),
		tripped:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "labrunner_runner_check_tripped", Help: "1 while the check is tripped."}, []string{"check"}),
		leftovers:  prometheus.NewCounter(prometheus.CounterOpts{Name: "labrunner_runner_leftover_processes_killed_total", Help: "Processes of earlier tasks killed."}),
		reboots:    prometheus.NewCounter(prometheus.CounterOpts{Name: "labrunner_runner_reboots_total", Help: "Reboots issued by this runner process."}),
		watchdog:   prometheus.NewCounter(prometheus.CounterOpts{Name: "labrunner_runner_watchdog_restarts_total", Help: "Agent loop restarts by the watchdog."}),
		lastClaim:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "labrunner_runner_last_claim_timestamp_seconds", Help: "Unix time of the last successful claimWork call."}),
		running:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "labrunner_runner_running_tasks", Help: "Tasks running now."}),
	}
	m.reg.MustRegister(m.phase, m.tasks, m.sinceBoot, m.quarantine, m.checkOK, m.tripped, m.leftovers, m.reboots, m.watchdog, m.lastClaim, m.running)
	return m
}

// update mirrors the state into the gauges.
func (m *metrics) update(st *State) {
	for _, p := range allPhases {
		v := 0.0
		if p == st.Phase {
			v = 1
		}
		m.phase.WithLabelValues(p).Set(v)
	}
	m.sinceBoot.Set(float64(st.TasksSinceBoot))
	q := 0.0
	if st.Quarantine != nil {
		q = 1
	}
	m.quarantine.Set(q)
	for _, c := range st.Checks {
		m.checkOK.WithLabelValues(c.Name).Set(b2f(c.OK))
		m.tripped.WithLabelValues(c.Name).Set(b2f(c.Tripped))
	}
	if !st.LastClaimAt.IsZero() {
		m.lastClaim.Set(float64(st.LastClaimAt.UnixNano()) / 1e9)
	}
	m.running.Set(float64(len(st.CurrentTasks)))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// metricsOnlyHandler serves /metrics and nothing else, for the TCP listener.
func (r *Runner) metricsOnlyHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", r.metrics.handler())
	return mux
}
