// Package bridge is the Buildbot Bridge, keeping the observable behaviour of
// Mozilla's mozilla/buildbot-bridge (docs/bridge.md): the TC listener turns pending Taskcluster tasks into SchedulerDB build requests
// and Taskcluster cancellations into self-serve cancels; the BB listener
// turns Buildbot's started and log_uploaded events into claims, artifacts
// and resolutions; the reflector keeps running tasks claimed and notices
// requests cancelled in Buildbot before they started; the master API lets
// labrunner agents take the place of a Buildbot master.
//
// Any number of instances run side by side on the same Pulse queues
// (competing consumers) and databases. Every handler is idempotent under
// duplicate and reordered messages; a message that keeps failing is retried
// with backoff a bounded number of times and then parked as a dead letter.
package bridge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/bridge/schedulerdb"
	"github.com/labrunner/labrunner/bridge/store"
	"github.com/labrunner/labrunner/internal/pulse"
)

// Bridge is one bridge instance.
type Bridge struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	queue    *tcqueue.Queue
	store    *store.Store
	sdb      *schedulerdb.DB
	bus      pulse.Bus
	ownsBus  bool
	builders map[string]BuilderDef

	ignored, restricted []*regexp.Regexp
	known               *knownBuilders
	cancel              canceller
	http                *http.Client
	rhttp               *retryablehttp.Client
	metrics             *metrics
	tables              *ownTables

	lastMessage  syncTime
	readyMu      sync.Mutex
	readyQueues  map[string]bool
	readyChanged chan struct{}
}

// New opens the databases (applying migrations and creating the SchedulerDB
// schema if it is missing), connects to Pulse unless cfg.Bus is given, and
// returns a bridge ready to Run. Close releases what it opened.
func New(ctx context.Context, cfg Config) (*Bridge, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bridge: config: %w", err)
	}
	b := &Bridge{cfg: cfg, log: cfg.Logger.With("component", "bridge", "instance", cfg.InstanceID), now: cfg.Now,
		ignored: compileAll(cfg.IgnoredBuilders), restricted: compileAll(cfg.RestrictedBuilders),
		http: &http.Client{Timeout: 60 * time.Second}, readyQueues: map[string]bool{}, readyChanged: make(chan struct{})}
	b.rhttp = newRetryingClient(b.log)
	b.builders = cfg.Builders
	if b.builders == nil && cfg.BuildersFile != "" {
		defs, err := LoadBuilders(cfg.BuildersFile)
		if err != nil {
			return nil, err
		}
		b.builders = defs
	}
	for name, def := range b.builders {
		if err := def.check(); err != nil {
			return nil, fmt.Errorf("bridge: builders[%q]: %w", name, err)
		}
	}
	b.known = &knownBuilders{url: cfg.AllThingsURL, local: b.builders, client: b.http, now: b.now}
	if cfg.AllThingsURL == "" && len(b.builders) == 0 {
		b.log.Warn("no allthethings_url and no builders: every builder name is accepted")
	}
	var err error
	ok := false
	defer func() {
		if !ok {
			_ = b.Close()
		}
	}()
	sdbDialect, err := schedulerdb.ParseDialect(cfg.SchedulerDB.Dialect)
	if err != nil {
		return nil, fmt.Errorf("bridge: buildbot_scheduler_db.dialect: %w", err)
	}
	if b.sdb, err = schedulerdb.Open(ctx, sdbDialect, cfg.SchedulerDB.DSN); err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	if err := b.sdb.CreateSchema(ctx); err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	b.sdb.SetClock(b.now)
	storeDialect, err := store.ParseDialect(cfg.BBBDB.Dialect)
	if err != nil {
		return nil, fmt.Errorf("bridge: bbb_db.dialect: %w", err)
	}
	if b.store, err = store.Open(ctx, storeDialect, cfg.BBBDB.DSN); err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	b.store.SetClock(b.now)
	// database/sql keeps 2 idle connections by default: with dozens of
	// handlers in flight that means a new connection per statement. Idle
	// connections are kept up to the open bound, which is what protects the
	// shared SchedulerDB from a busy bridge.
	for db, n := range map[*sql.DB]int{b.store.SQL(): cfg.BBBDB.MaxOpenConns, b.sdb.SQL(): cfg.SchedulerDB.MaxOpenConns} {
		db.SetMaxOpenConns(n)
		db.SetMaxIdleConns(n)
	}
	if b.tables, err = openOwnTables(ctx, b.store.SQL(), storeDialect); err != nil {
		return nil, err
	}
	b.queue = tcqueue.New(&tcclient.Credentials{ClientID: cfg.Taskcluster.ClientID, AccessToken: cfg.Taskcluster.AccessToken}, cfg.Taskcluster.RootURL)
	b.queue.HTTPClient = queueHTTPClient()
	if cfg.SelfServeURL != "" {
		b.cancel = &selfServe{root: cfg.SelfServeURL, client: b.rhttp}
	} else {
		b.cancel = &directCancel{sdb: b.sdb}
	}
	b.metrics = newMetrics(b)
	if cfg.Bus != nil {
		b.bus = cfg.Bus
	} else {
		bus, err := pulse.DialAMQP(ctx, cfg.Pulse.URL, b.log)
		if err != nil {
			return nil, fmt.Errorf("bridge: pulse.url: %w", err)
		}
		b.bus, b.ownsBus = bus, true
	}
	ok = true
	return b, nil
}

// Run consumes the four Pulse queues and runs the reflector until ctx ends.
func (b *Bridge) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	// Before any consumer runs, so that no dead letter is published to an
	// exchange with nothing bound to it.
	if err := b.declareDeadLetterQueue(ctx); err != nil {
		return err
	}
	tc := b.cfg.TCListener
	tcKey := "*.*.*.*.*." + tc.ProvisionerID + "." + tc.WorkerType + ".#"
	run("task-pending", b.consumer("task-pending", pulse.Binding{Exchange: tc.ExchangeBasename + "/task-pending", RoutingKeyPattern: tcKey}, b.handlePending))
	run("task-exception", b.consumer("task-exception", pulse.Binding{Exchange: tc.ExchangeBasename + "/task-exception", RoutingKeyPattern: tcKey}, b.handleException))
	// "#", not "*.*": a log_uploaded key keeps the builder's name, dots
	// and all, so it can be more than one word.
	run("started", b.consumer("started", pulse.Binding{Exchange: b.cfg.BBListener.Exchange, RoutingKeyPattern: "build.#.started"}, b.handleStarted))
	run("log_uploaded", b.consumer("log_uploaded", pulse.Binding{Exchange: b.cfg.BBListener.Exchange, RoutingKeyPattern: "build.#.log_uploaded"}, b.handleLogUploaded))
	run("reflector", b.runReflector)
	wg.Wait()
	close(errs)
	if _, err := b.store.ReleaseLeases(context.WithoutCancel(ctx), b.cfg.InstanceID); err != nil {
		b.log.Warn("release reflector leases", "err", err)
	}
	return <-errs
}

// deadLetterQueueMax caps the dead-letter queue; RabbitMQ drops the oldest
// beyond it. bridge_dead_letters keeps every one.
const deadLetterQueueMax = 100000

// declareDeadLetterQueue declares <basename>/dead-letter, bound to the
// dead-letter exchange, so that parked messages wait in RabbitMQ for an
// operator as well as in bridge_dead_letters. A bus that cannot hold a
// queue nobody consumes leaves the table as the only record.
func (b *Bridge) declareDeadLetterQueue(ctx context.Context) error {
	p, ok := b.bus.(pulse.Parker)
	if !ok {
		b.log.Warn("the Pulse bus cannot declare the dead-letter queue; dead letters are kept in bridge_dead_letters only")
		return nil
	}
	q := b.cfg.Pulse.QueueBasename + "/dead-letter"
	if err := p.DeclareQueue(ctx, pulse.ConsumeOptions{Queue: q, MaxLength: deadLetterQueueMax},
		[]pulse.Binding{{Exchange: b.cfg.Pulse.DeadLetterExchange, RoutingKeyPattern: "#"}}); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("declare the dead-letter queue %s: %w", q, err)
	}
	return nil
}

// WaitReady blocks until the four Pulse queues are bound, so that messages
// published afterwards reach this bridge.
func (b *Bridge) WaitReady(ctx context.Context) error {
	for {
		b.readyMu.Lock()
		n, ch := len(b.readyQueues), b.readyChanged
		b.readyMu.Unlock()
		if n == 4 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("bridge: wait for Pulse queues: %w", ctx.Err())
		}
	}
}

func (b *Bridge) markReady(queue string) {
	b.readyMu.Lock()
	defer b.readyMu.Unlock()
	if !b.readyQueues[queue] {
		b.readyQueues[queue] = true
		close(b.readyChanged)
		b.readyChanged = make(chan struct{})
	}
}

// Close releases the databases and the Pulse connection the bridge opened.
func (b *Bridge) Close() error {
	var errs []error
	if b.ownsBus && b.bus != nil {
		errs = append(errs, b.bus.Close())
	}
	if b.store != nil {
		errs = append(errs, b.store.Close())
	}
	if b.sdb != nil {
		errs = append(errs, b.sdb.Close())
	}
	return errors.Join(errs...)
}

// Store returns the bridge DB (for tools and tests).
func (b *Bridge) Store() *store.Store { return b.store }

// SchedulerDB returns the SchedulerDB (for tools and tests).
func (b *Bridge) SchedulerDB() *schedulerdb.DB { return b.sdb }

// syncTime is a time readable from several goroutines.
type syncTime struct {
	mu sync.Mutex
	t  time.Time
}

func (s *syncTime) set(t time.Time) { s.mu.Lock(); s.t = t; s.mu.Unlock() }
func (s *syncTime) get() time.Time  { s.mu.Lock(); defer s.mu.Unlock(); return s.t }
