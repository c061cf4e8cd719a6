package bridge

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/labrunner/labrunner/internal/pulse"
)

// Config is a bridge instance's configuration: the keys of BBB's v1 JSON and
// v2 YAML configs mapped to one YAML file, plus what the multihomed Go bridge
// adds. docs/bridge.md, "Configuration", documents every key and the BBB key
// it replaces.
type Config struct {
	// InstanceID names this instance in leases, logs and metrics (default
	// hostname-pid). It must differ between instances sharing a database.
	InstanceID string `yaml:"instance_id"`
	// Listen is the HTTP address of the master API, /metrics and the status
	// endpoint (default 127.0.0.1:8090).
	Listen string `yaml:"listen"`

	Taskcluster TaskclusterConfig `yaml:"taskcluster"`
	// BBBDB is the bridge DB (v1 `bbb_db`, v2 `bbb.uri`).
	BBBDB DBConfig `yaml:"bbb_db"`
	// SchedulerDB is Buildbot's database (v1 `buildbot_scheduler_db`, v2 `bb.uri`).
	SchedulerDB DBConfig    `yaml:"buildbot_scheduler_db"`
	Pulse       PulseConfig `yaml:"pulse"`

	// SelfServeURL is BuildAPI's self-serve root (v1 `selfserve_url`); empty
	// applies self-serve's effect to the SchedulerDB directly (docs/bridge.md,
	// "Cancelling in Buildbot").
	SelfServeURL string `yaml:"selfserve_url"`
	// RestrictedBuilders are regexes of builders that need a
	// buildbot-bridge:builder-name:<name> scope on the task.
	RestrictedBuilders []string `yaml:"restricted_builders"`
	// IgnoredBuilders are regexes (anchored at the start) of builders this
	// deployment leaves to another one.
	IgnoredBuilders []string `yaml:"ignored_builders"`
	// AllThingsURL is allthethings.json, the list of builders the masters
	// know; empty means only the builders of BuildersFile are known.
	AllThingsURL string `yaml:"allthethings_url"`
	// BuildersFile is builders.yaml: what an agent runs for each builder.
	BuildersFile string `yaml:"builders_file"`

	TCListener TCListenerConfig `yaml:"tclistener"`
	BBListener BBListenerConfig `yaml:"bblistener"`
	Reflector  ReflectorConfig  `yaml:"reflector"`
	Retry      RetryConfig      `yaml:"retry"`

	// Bus, when set, is used instead of dialling Pulse.URL (devstack passes
	// its in-process bus). Not read from YAML.
	Bus pulse.Bus `yaml:"-"`
	// Builders, when set, replaces BuildersFile. Not read from YAML.
	Builders map[string]BuilderDef `yaml:"-"`
	// Logger receives the bridge's logs (default slog.Default()).
	Logger *slog.Logger `yaml:"-"`
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time `yaml:"-"`
}

// TaskclusterConfig is how the bridge reaches the queue.
type TaskclusterConfig struct {
	RootURL     string `yaml:"root_url"`
	ClientID    string `yaml:"client_id"`
	AccessToken string `yaml:"access_token"`
	// WorkerGroup and WorkerID go on every claim (v1 tc_worker_group,
	// tc_worker_id; default buildbot-bridge).
	WorkerGroup string `yaml:"worker_group"`
	WorkerID    string `yaml:"worker_id"`
}

// DBConfig names a database: dialect sqlite, mysql (MariaDB) or postgres
// (bridge DB only) and a DSN.
type DBConfig struct {
	Dialect string `yaml:"dialect"`
	DSN     string `yaml:"dsn"`
	// MaxOpenConns bounds this instance's connections to the database
	// (default 32, the reflector's default concurrency). The SchedulerDB is
	// shared with the Buildbot masters and MySQL refuses connections past
	// its max_connections (151 by default), so each bridge instance takes a
	// bounded share; statements past the bound wait for a free connection.
	MaxOpenConns int `yaml:"max_open_conns"`
}

// PulseConfig is the Pulse connection and queue naming.
type PulseConfig struct {
	// URL is the AMQP URL (v1 pulse_user/pulse_password go in it).
	URL string `yaml:"url"`
	// QueueBasename prefixes the durable queues (v1 pulse_queue_basename,
	// default queue/buildbot-bridge): <basename>/task-pending and so on.
	QueueBasename string `yaml:"queue_basename"`
	// Prefetch bounds the unacknowledged deliveries per queue (default 8).
	Prefetch int `yaml:"prefetch"`
	// DeadLetterExchange receives messages that kept failing (default
	// exchange/buildbot-bridge/v1/dead-letter), bound to <basename>/dead-letter.
	DeadLetterExchange string `yaml:"dead_letter_exchange"`
}

// TCListenerConfig is v1's tclistener section.
type TCListenerConfig struct {
	ExchangeBasename string `yaml:"pulse_exchange_basename"` // default exchange/taskcluster-queue/v1
	ProvisionerID    string `yaml:"provisioner_id"`          // default buildbot-bridge
	WorkerType       string `yaml:"worker_type"`             // default buildbot-bridge
}

// BBListenerConfig is v1's bblistener section.
type BBListenerConfig struct {
	Exchange string `yaml:"pulse_exchange"` // default exchange/build
}

// ReflectorConfig is the reflector's timing (v1 reflector.interval, v2
// bbb.poll_interval and bbb.reclaim-threshold).
type ReflectorConfig struct {
	Interval         time.Duration `yaml:"interval"`          // default 60s
	ReclaimThreshold time.Duration `yaml:"reclaim_threshold"` // default 600s
	// LeaseBatch bounds the rows one instance leases per pass (default 20000).
	LeaseBatch int `yaml:"lease_batch"`
	// Concurrency bounds the queue calls in flight per pass (default 32).
	Concurrency int `yaml:"concurrency"`
	// UnboundAfter is when a row still without a build request counts as an
	// interrupted injection to finish (default 60s).
	UnboundAfter time.Duration `yaml:"unbound_after"`
	// LostEventAfter is how long after Buildbot completed a request the
	// reflector resolves its task itself when no log_uploaded came
	// (default 10m).
	LostEventAfter time.Duration `yaml:"lost_event_after"`
}

// RetryConfig bounds how a failing message is retried before it is parked
// on the dead-letter queue.
type RetryConfig struct {
	Attempts int           `yaml:"attempts"` // default 6
	Min      time.Duration `yaml:"min"`      // default 200ms
	Max      time.Duration `yaml:"max"`      // default 10s
}

// LoadConfig reads a YAML config file and applies defaults; unknown keys are
// errors so that a typo is not silently ignored.
func LoadConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("bridge: read config: %w", err)
	}
	defer func() { _ = f.Close() }()
	var cfg Config
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("bridge: config %s: %w", path, err)
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("bridge: config %s: %w", path, err)
	}
	return cfg, nil
}

func (c *Config) applyDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	if c.InstanceID == "" {
		host, _ := os.Hostname()
		c.InstanceID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	def(&c.Listen, "127.0.0.1:8090")
	def(&c.Taskcluster.WorkerGroup, "buildbot-bridge")
	def(&c.Taskcluster.WorkerID, "buildbot-bridge")
	def(&c.BBBDB.Dialect, "sqlite")
	def(&c.SchedulerDB.Dialect, "sqlite")
	for _, db := range []*DBConfig{&c.BBBDB, &c.SchedulerDB} {
		if db.MaxOpenConns == 0 {
			db.MaxOpenConns = 32
		}
	}
	def(&c.Pulse.QueueBasename, "queue/buildbot-bridge")
	def(&c.Pulse.DeadLetterExchange, "exchange/buildbot-bridge/v1/dead-letter")
	if c.Pulse.Prefetch == 0 {
		c.Pulse.Prefetch = 8
	}
	def(&c.TCListener.ExchangeBasename, "exchange/taskcluster-queue/v1")
	def(&c.TCListener.ProvisionerID, "buildbot-bridge")
	def(&c.TCListener.WorkerType, "buildbot-bridge")
	def(&c.BBListener.Exchange, "exchange/build")
	dur := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	dur(&c.Reflector.Interval, 60*time.Second)
	dur(&c.Reflector.ReclaimThreshold, 600*time.Second)
	dur(&c.Reflector.UnboundAfter, 60*time.Second)
	dur(&c.Reflector.LostEventAfter, 10*time.Minute)
	if c.Reflector.LeaseBatch == 0 {
		c.Reflector.LeaseBatch = 20000
	}
	if c.Reflector.Concurrency == 0 {
		c.Reflector.Concurrency = 32
	}
	if c.Retry.Attempts == 0 {
		c.Retry.Attempts = 6
	}
	dur(&c.Retry.Min, 200*time.Millisecond)
	dur(&c.Retry.Max, 10*time.Second)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports the first bad field with the fix.
func (c *Config) Validate() error {
	var errs []error
	need := func(v, key, fix string) {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is empty: %s", key, fix))
		}
	}
	need(c.Taskcluster.RootURL, "taskcluster.root_url", "give the Taskcluster root URL")
	need(c.BBBDB.DSN, "bbb_db.dsn", "give an SQLite path, a MySQL DSN or a PostgreSQL URL")
	need(c.SchedulerDB.DSN, "buildbot_scheduler_db.dsn", "give an SQLite path or a MySQL DSN")
	if c.Bus == nil {
		need(c.Pulse.URL, "pulse.url", "give the AMQP URL (amqps://user:password@host:5671/)")
	}
	for key, list := range map[string][]string{"restricted_builders": c.RestrictedBuilders, "ignored_builders": c.IgnoredBuilders} {
		for i, re := range list {
			if _, err := regexp.Compile(re); err != nil {
				errs = append(errs, fmt.Errorf("%s[%d] %q is not a valid regular expression: %w", key, i, re, err))
			}
		}
	}
	if c.Reflector.ReclaimThreshold <= 0 || c.Reflector.Interval <= 0 {
		errs = append(errs, errors.New("reflector.interval and reflector.reclaim_threshold must be positive durations such as 60s"))
	}
	for key, n := range map[string]int{"bbb_db.max_open_conns": c.BBBDB.MaxOpenConns, "buildbot_scheduler_db.max_open_conns": c.SchedulerDB.MaxOpenConns} {
		if n < 1 {
			errs = append(errs, fmt.Errorf("%s is %d: use at least 1 (default 32)", key, n))
		}
	}
	if c.Retry.Attempts < 1 {
		errs = append(errs, fmt.Errorf("retry.attempts is %d: use at least 1", c.Retry.Attempts))
	}
	return errors.Join(errs...)
}
