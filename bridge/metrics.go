package bridge

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the bridge's Prometheus series, on a registry of its own so
// that several instances can live in one process (tests, devstack).
type metrics struct {
	reg           *prometheus.Registry
	messages      *prometheus.CounterVec
	handleSeconds *prometheus.HistogramVec
	deadLetters   prometheus.Counter
	injected      prometheus.Counter
	tcCalls       *prometheus.CounterVec
	reclaims      *prometheus.CounterVec
	masterCalls   *prometheus.CounterVec
}

func newMetrics(b *Bridge) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_messages_total",
			Help: "Pulse messages handled, by queue and outcome (ok, dead-letter)."}, []string{"queue", "outcome"}),
		handleSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bridge_message_handle_seconds",
			Help: "Time to handle one Pulse message, retries included.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"queue"}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{Name: "bridge_dead_letters_total",
			Help: "Messages parked on the dead-letter queue by this instance."}),
		injected: prometheus.NewCounter(prometheus.CounterOpts{Name: "bridge_build_requests_injected_total",
			Help: "Build requests written to the SchedulerDB for pending tasks."}),
		tcCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_task_actions_total",
			Help: "Taskcluster actions taken, by action (claim, completed, failed, exception, rerun, cancel, malformed)."}, []string{"action"}),
		reclaims: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_reflector_reclaims_total",
			Help: "Reflector reclaim steps, by outcome."}, []string{"outcome"}),
		masterCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_master_api_requests_total",
			Help: "Master API requests, by endpoint and status code."}, []string{"endpoint", "code"}),
	}
	m.reg.MustRegister(m.messages, m.handleSeconds, m.deadLetters, m.injected, m.tcCalls, m.reclaims, m.masterCalls)
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "bridge_tasks_tracked",
		Help: "Rows in the bridge DB tasks table."}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := b.status(ctx)
		if err != nil {
			return -1
		}
		return float64(st.Tasks)
	}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
