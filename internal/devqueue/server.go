package devqueue

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labrunner/labrunner/internal/pulse"
)

// Config configures a Server.
type Config struct {
	// RootURL is the deployment's root URL (e.g. "http://127.0.0.1:8080"),
	// used to build artifact upload and download URLs.
	RootURL string
	// Clients maps permanent clientIds to their accessTokens.
	Clients map[string]string
	// RootClientID issues the per-run temporary credentials; it must be in
	// Clients.
	RootClientID string
	// Publisher receives the queue's Pulse messages; nil drops them.
	Publisher pulse.Publisher
	// Logger is the structured logger; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ClaimTimeout is how long a claim lasts (TASK_CLAIM_TIMEOUT); default 1200 s.
	ClaimTimeout time.Duration
	// PollWait bounds the claimWork long poll and the quarantine sleep;
	// default 20 s.
	PollWait time.Duration
	// ResolverInterval is how often the claim-expiry and deadline resolvers
	// scan; default 1 s.
	ResolverInterval time.Duration
	// DeadlineDelay is how long after a deadline the deadline resolver acts;
	// default 60 s as in the real queue. Zero means the default; use a
	// negative value for no delay.
	DeadlineDelay time.Duration
}

// Server is an in-memory Taskcluster queue.
type Server struct {
	cfg          Config
	rootURL      string
	log          *slog.Logger
	clock        func() time.Time
	claimTimeout time.Duration
	pollWait     time.Duration
	interval     time.Duration
	deadlineWait time.Duration
	schemas      *schemaSet
	authn        authFunc
	rootToken    string
	out          *outbox
	started      time.Time
	waiting      atomic.Int64 // claimWork calls in the long poll

	mu         sync.Mutex
	tasks      map[string]*task
	dependents map[string][]string // required taskId → dependent taskIds
	groups     map[string]string   // taskGroupId → schedulerId
	// groupActive counts each task group's tasks that never resolved.
	groupActive map[string]int
	queues      map[string]*taskQueue
	workers     map[workerKey]*worker
	blobs       map[string]*blobRef // upload/download token → artifact

	// checkOutput makes every reply be validated against its output schema
	// (set by tests, as the real queue always does).
	checkOutput bool
}

// New validates cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.RootURL == "" {
		return nil, errors.New("devqueue: Config.RootURL is empty; set it to the URL clients use, e.g. http://127.0.0.1:8080")
	}
	u, err := url.Parse(cfg.RootURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("devqueue: Config.RootURL %q is not an absolute http(s) URL; set it to e.g. http://127.0.0.1:8080", cfg.RootURL)
	}
	if cfg.RootClientID == "" {
		return nil, errors.New("devqueue: Config.RootClientID is empty; name the client (in Config.Clients) that issues per-run credentials")
	}
	token, ok := cfg.Clients[cfg.RootClientID]
	if !ok {
		return nil, fmt.Errorf("devqueue: Config.RootClientID %q is not in Config.Clients; add it with its accessToken", cfg.RootClientID)
	}
	if token == "" {
		return nil, fmt.Errorf("devqueue: Config.Clients[%q] has an empty accessToken; give it a secret", cfg.RootClientID)
	}
	for id, tok := range cfg.Clients {
		if id == "" || tok == "" {
			return nil, fmt.Errorf("devqueue: Config.Clients has an empty clientId or accessToken (clientId %q); remove or complete it", id)
		}
	}
	for name, d := range map[string]time.Duration{"ClaimTimeout": cfg.ClaimTimeout, "PollWait": cfg.PollWait, "ResolverInterval": cfg.ResolverInterval} {
		if d < 0 {
			return nil, fmt.Errorf("devqueue: Config.%s is negative (%s); use a positive duration or 0 for the default", name, d)
		}
	}
	schemas, err := loadSchemas()
	if err != nil {
		return nil, fmt.Errorf("devqueue: %w", err)
	}
	s := &Server{
		cfg:          cfg,
		rootURL:      strings.TrimRight(cfg.RootURL, "/"),
		log:          cfg.Logger,
		clock:        cfg.Now,
		claimTimeout: orDefault(cfg.ClaimTimeout, 1200*time.Second),
		pollWait:     orDefault(cfg.PollWait, 20*time.Second),
		interval:     orDefault(cfg.ResolverInterval, time.Second),
		deadlineWait: orDefault(cfg.DeadlineDelay, 60*time.Second),
		schemas:      schemas,
		rootToken:    token,
		tasks:        map[string]*task{},
		dependents:   map[string][]string{},
		groups:       map[string]string{},
		groupActive:  map[string]int{},
		queues:       map[string]*taskQueue{},
		workers:      map[workerKey]*worker{},
		blobs:        map[string]*blobRef{},
		started:      time.Now(),
	}
	if cfg.DeadlineDelay < 0 {
		s.deadlineWait = 0
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	clients := make(map[string]string, len(cfg.Clients))
	for k, v := range cfg.Clients {
		clients[k] = v
	}
	s.authn = newAuth(clients, s.clock)
	s.out = newOutbox(cfg.Publisher, s.log)
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// now is the clock truncated to the millisecond precision of the API's dates,
// so that stored and serialized times compare equal.
func (s *Server) now() time.Time {
	return s.clock().UTC().Truncate(time.Millisecond)
}
