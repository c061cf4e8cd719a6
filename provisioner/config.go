package provisioner

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"

	"github.com/labrunner/labrunner/internal/pulse"
)

// Config configures a Server. Store (or DB) is required; everything else has
// a working default.
type Config struct {
	// Store is the registry; when nil, DB is opened with OpenStore.
	Store Store
	// DB is a SQLite path or a postgres:// URL, used when Store is nil.
	DB string
	// RootURL is the Taskcluster root URL handed to machines and used for
	// pendingTasks and quarantineWorker.
	RootURL string
	// Credentials are the permanent Taskcluster credentials per pool id
	// from which temporary ones are issued; DefaultCredentials serve pools
	// not listed. They also call pendingTasks and quarantineWorker.
	Credentials        map[string]tcclient.Credentials
	DefaultCredentials *tcclient.Credentials
	// CredentialLifetime is how long issued credentials last (default
	// 24 h, at most 31 days); RenewBefore is how long before expiry a
	// new-credentials directive is queued (default 30 min).
	CredentialLifetime time.Duration
	RenewBefore        time.Duration
	// AdminTokens and ReadOnlyTokens are accepted in addition to tokens
	// created through the API.
	AdminTokens    []string
	ReadOnlyTokens []string
	// DashboardSecret signs the dashboard's session cookies (at least 32
	// characters, the same on every replica). Empty: a random key per
	// process, so sign-ins end when it restarts and hold only on the
	// replica that made them.
	DashboardSecret string
	// DashboardPublicURL is the address browsers reach the dashboard at,
	// such as https://prov.lab.example.com when a TLS-terminating proxy
	// stands in front of the provisioner. When it is https, sign-in
	// cookies are Secure and __Host- prefixed, and form posts must come
	// from exactly its origin. Empty: both are judged from the request
	// (plain HTTP for development; TLS when the provisioner serves it).
	DashboardPublicURL string
	// EC2Certificates maps an AWS region to the PEM certificate that signs
	// its instance identity documents; EC2Accounts, when set, limits
	// registration to these account ids.
	EC2Certificates map[string]string
	EC2Accounts     []string
	// Pulse, when set, delivers the queue's task-exception messages so
	// that cancellations reach machines at once; PulseQueue names the
	// durable queue (default queue/labrunner/provisioner-cancel).
	Pulse      pulse.Consumer
	PulseQueue string
	// CancelPollInterval, without Pulse, is how often the status of
	// running tasks is polled for cancellation (default 15 s; negative
	// disables).
	CancelPollInterval time.Duration
	// Demand overrides where pending counts come from (tests, bridges);
	// by default Taskcluster pools ask the queue and Buildbot pools ask
	// BuildbotDemand.
	Demand         Demand
	BuildbotDemand BuildbotDemand
	// AssignInterval is the assigner's period (default 30 s);
	// MoveInterval is the least time between two moves of one machine
	// (default 15 min); OfflineAfter is how long without a heartbeat
	// makes a machine offline (default 5 min).
	AssignInterval time.Duration
	MoveInterval   time.Duration
	OfflineAfter   time.Duration
	// SizingWindow is how far back task durations are read (default 24 h).
	SizingWindow time.Duration
	// RunRetention is how long reported runs are kept (default 7 days);
	// a pool's black-hole window reaches at most this far back.
	RunRetention time.Duration
	// DetectInterval is how often the black-hole detector runs besides
	// after run reports (default 30 s; negative disables the detector).
	DetectInterval time.Duration
	// ReplicaPoll is how often a replica on a shared database looks for
	// directives queued by other replicas (default 1 s).
	ReplicaPoll time.Duration
	// MaxWait caps the long-poll of directives (default 60 s).
	MaxWait time.Duration
	// HistoryInterval is how often the assigner replica samples pools and
	// machines for the dashboard's history (default 1 min);
	// HistoryRetention is how long samples are kept (default 8 days, so
	// that the 7-day charts are whole).
	HistoryInterval  time.Duration
	HistoryRetention time.Duration
	// ReplicaID names this replica on the system map (default
	// hostname-pid).
	ReplicaID string
	// Bridges are the Buildbot Bridge instances whose status endpoints
	// the system map and "why is this task not running?" ask.
	Bridges []BridgeEndpoint
	// Logger receives logs (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults(ctx context.Context) error {
	if c.Store == nil {
		s, err := OpenStore(ctx, c.DB)
		if err != nil {
			return err
		}
		c.Store = s
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.CredentialLifetime, 24*time.Hour)
	def(&c.RenewBefore, 30*time.Minute)
	def(&c.CancelPollInterval, 15*time.Second)
	def(&c.AssignInterval, 30*time.Second)
	def(&c.MoveInterval, 15*time.Minute)
	def(&c.OfflineAfter, 5*time.Minute)
	def(&c.SizingWindow, 24*time.Hour)
	def(&c.ReplicaPoll, time.Second)
	def(&c.RunRetention, 7*24*time.Hour)
	def(&c.DetectInterval, 30*time.Second)
	def(&c.MaxWait, 60*time.Second)
	def(&c.HistoryInterval, time.Minute)
	def(&c.HistoryRetention, 8*24*time.Hour)
	if c.HistoryRetention < c.HistoryInterval {
		return fmt.Errorf("historyRetention %s is shorter than historyInterval %s: keep at least one sample", c.HistoryRetention, c.HistoryInterval)
	}
	if c.ReplicaID == "" {
		c.ReplicaID = defaultReplicaID()
	}
	if err := checkBridges(c.Bridges); err != nil {
		return err
	}
	if c.CredentialLifetime > 31*24*time.Hour {
		return fmt.Errorf("credentialLifetime %s is longer than Taskcluster's 31-day limit: shorten it", c.CredentialLifetime)
	}
	if c.RenewBefore >= c.CredentialLifetime {
		return fmt.Errorf("renewBefore %s must be shorter than credentialLifetime %s", c.RenewBefore, c.CredentialLifetime)
	}
	if c.PulseQueue == "" {
		c.PulseQueue = "queue/labrunner/provisioner-cancel"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}
