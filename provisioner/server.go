package provisioner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/prometheus/client_golang/prometheus"
)

// Server is the provisioner: its API handler and background loops.
type Server struct {
	cfg     Config
	store   Store
	log     *slog.Logger
	static  []staticToken
	notify  *notifier
	metrics *metrics
	routes  []route
	handler http.Handler
	demand  Demand
	ec2     *ec2Verifier
	tc      *taskcluster

	authCache authCache
	// dashKey signs dashboard sessions and form tokens.
	dashKey []byte
	// dashOrigin is where browsers reach the dashboard
	// (Config.DashboardPublicURL); nil when unset.
	dashOrigin *webOrigin
	// cancelReady is closed once the task-exception consumer is bound.
	cancelReady chan struct{}
	// kick wakes the assigner early after a change (pool edited, machine
	// registered).
	kick chan struct{}
	// detectKick wakes the black-hole detector after new run reports.
	detectKick chan struct{}
	// runs is the detector's copy of the pools' recent runs.
	runs runCache
	// assignMu serialises assigner passes with actions that move machines.
	assignMu sync.Mutex
	// leading is true while this replica holds the assigner lock.
	leadingMu sync.Mutex
	leading   bool
	// lockAttempts counts tries for the assigner lock.
	lockAttempts atomic.Int64
	// cancelPolls counts passes of the cancellation poll.
	cancelPolls atomic.Int64
	// leaderTerms counts how often this replica took the lock.
	leaderTerms atomic.Int64
	// hist is the history sampler's state (history_sampler.go).
	hist historyState
	// probes remembers the system map's last error of each component.
	probes probeLog
	// bridgeHTTP calls the bridges' read-only endpoints (bridges.go).
	bridgeHTTP *retryablehttp.Client
}

// handlerFunc serves one route for an authenticated caller.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p *principal) *apiError

// route is one API endpoint; the list feeds the mux and the OpenAPI test.
type route struct {
	method, pattern string
	access          access
	h               handlerFunc
}

// New builds a Server from cfg, opening the store if needed.
func New(cfg Config) (_ *Server, err error) {
	// A store New opened itself (from cfg.DB) is New's to close when the
	// rest of the configuration is refused.
	opened := cfg.Store == nil
	defer func() {
		if err != nil && opened && cfg.Store != nil {
			_ = cfg.Store.Close()
		}
	}()
	if err := cfg.setDefaults(context.Background()); err != nil {
		return nil, fmt.Errorf("provisioner config: %w", err)
	}
	static, err := staticTokens(cfg.AdminTokens, cfg.ReadOnlyTokens)
	if err != nil {
		return nil, fmt.Errorf("provisioner config: %w", err)
	}
	ec2, err := newEC2Verifier(cfg.EC2Certificates, cfg.EC2Accounts)
	if err != nil {
		return nil, fmt.Errorf("provisioner config: %w", err)
	}
	dashKey, err := dashboardKey(cfg.DashboardSecret)
	if err != nil {
		return nil, fmt.Errorf("provisioner config: %w", err)
	}
	dashOrigin, err := parseDashboardURL(cfg.DashboardPublicURL)
	if err != nil {
		return nil, fmt.Errorf("provisioner config: %w", err)
	}
	if cfg.DashboardSecret == "" && cfg.Store.Shared() {
		cfg.Logger.Warn("dashboardSecret is not set: dashboard sign-ins hold only on the replica that made them; set the same dashboardSecret on every replica")
	}
	s := &Server{
		cfg:     cfg,
		store:   cfg.Store,
		log:     cfg.Logger,
		static:  static,
		notify:  newNotifier(),
		ec2:     ec2,
		dashKey: dashKey,
		kick:    make(chan struct{}, 1),

		detectKick: make(chan struct{}, 1),

		cancelReady: make(chan struct{}),
		dashOrigin:  dashOrigin,
		tc:          newTaskcluster(cfg),
		bridgeHTTP:  newBridgeHTTP(),
	}
	s.demand = cfg.Demand
	if s.demand == nil {
		s.demand = &sourceDemand{tc: s.tc, buildbot: cfg.BuildbotDemand}
	}
	s.metrics = newMetrics(s)
	s.routes = s.apiRoutes()
	s.handler = s.buildHandler()
	return s, nil
}

// Store returns the registry the server uses.
func (s *Server) Store() Store { return s.store }

// Close releases the store.
func (s *Server) Close() error { return s.store.Close() }

func (s *Server) now() time.Time { return s.cfg.Now().UTC() }

// Handler serves /api/v1/…, /openapi.json, /metrics and /dashboard.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) buildHandler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes {
		mux.Handle(rt.method+" "+rt.pattern, s.wrap(rt))
	}
	mux.HandleFunc("GET /openapi.json", serveOpenAPI)
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.metrics.collectors()...)
	mux.Handle("GET /metrics", promHandler(reg))
	s.mountDashboard(mux)
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errStatus(http.StatusNotFound, "NotFound", "no endpoint %s %s: see /openapi.json", r.Method, r.URL.Path))
	})
	return mux
}

// wrap authenticates, authorizes, times and runs a route's handler.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			s.metrics.observeRequest(rt.method+" "+rt.pattern, sw.status, time.Since(start))
		}()
		r.Body = http.MaxBytesReader(sw, r.Body, maxBody+1)
		p := &principal{kind: "public", name: "anonymous"}
		if rt.access != accessPublic {
			var aerr *apiError
			p, aerr = s.authenticate(r.Context(), r)
			if aerr == nil {
				aerr = authorize(p, rt.access, r.PathValue("id"))
			}
			if aerr != nil {
				writeError(sw, aerr)
				return
			}
		}
		if op := r.Header.Get("X-Labrunner-Operator"); op != "" && p.kind == "admin" {
			p = &principal{kind: p.kind, name: fmt.Sprintf("%.64s via %s", op, p.name), machineID: p.machineID}
		}
		if aerr := rt.h(sw, r, p); aerr != nil {
			if aerr.status >= 500 {
				s.log.Error("request failed", "route", rt.pattern, "error", aerr.msg)
			}
			writeError(sw, aerr)
		}
	})
}

// statusWriter records the status for metrics; it passes Flush through
// for long-polls.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// storeError maps a store failure to an answer.
func storeError(what string, err error) *apiError {
	switch {
	case errors.Is(err, ErrNotFound):
		return errStatus(http.StatusNotFound, "NotFound", "%s: %v", what, err)
	case errors.Is(err, ErrConflict):
		return errStatus(http.StatusConflict, "Conflict", "%s: %v", what, err)
	case errors.Is(err, context.Canceled):
		return errStatus(499, "Canceled", "%s: request canceled", what)
	}
	return errStatus(http.StatusInternalServerError, "InternalError", "%s: %v", what, err)
}

// changed wakes the assigner for an early pass.
func (s *Server) changed() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run drives the background loops (assigner under the leader lock,
// credential renewal, cancellation push, replica wake-ups) until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errc := make(chan error, 6)
	start := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	start("assigner", s.runLeader)
	start("cancellations", s.runCancellations)
	start("history", s.runHistory)
	start("black-hole detector", s.runDetector)
	if s.store.Shared() {
		start("replica wake-ups", s.runReplicaPoll)
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// Leading reports whether this replica currently runs the assigner.
func (s *Server) Leading() bool {
	s.leadingMu.Lock()
	defer s.leadingMu.Unlock()
	return s.leading
}

func (s *Server) setLeading(v bool) {
	s.leadingMu.Lock()
	s.leading = v
	s.leadingMu.Unlock()
}
