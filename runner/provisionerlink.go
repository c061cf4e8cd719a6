package runner

// ProvisionerLink is the runner's connection to the provisioner: it
// registers the machine, keeps its Taskcluster credentials current,
// heartbeats and delivers directives. The runner wires it in; the link knows
// nothing of the agent.
//
//	           NewProvisionerLink (state file: machine id, token, last directive)
//	                 │ no saved machine token
//	                 ▼
//	  ┌────────▶ registering ──4xx (bad token, bad facts)──▶ Run returns the error
//	  │              │ registered (or saved token)            transient: retried with backoff
//	  │              ▼
//	  │           linked ──▶ heartbeat loop: Snapshot() every interval ─┐
//	  │              │   └─▶ long-poll loop: GET directives?after=N ────┤ directives
//	  │              │                                                   ▼
//	  │              │       deliver: id ≤ last handled → dropped; new-credentials and
//	  │              │       reassign update the assignment; Handle(d); last = id (persisted)
//	  └── 401/404 ───┘ (machine token refused or machine forgotten: register again)
//
// A directive can come twice, once in a heartbeat answer and once from the
// long-poll; deliveries are serialized and deduplicated by id, so Handle
// sees each once. After a crash between Handle and saving the state file,
// one directive can be handled again: Handle must be idempotent.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"

	"github.com/labrunner/labrunner/platform"
	"github.com/labrunner/labrunner/provisioner/client"
)

// LinkConfig configures a ProvisionerLink.
type LinkConfig struct {
	// URL is the provisioner's base URL (https://prov.example.com).
	URL string
	// EnrollmentToken proves the machine's identity at registration, unless
	// EC2 is set.
	EnrollmentToken string
	// EC2 is the instance identity (MachineRegistration reads it); when set
	// it is used instead of EnrollmentToken.
	EC2 *client.EC2Identity
	// Facts describe the machine (MachineRegistration collects them).
	Facts client.Facts
	// StatePath is the link's JSON state file (machine id and token, last
	// handled directive, assignment); it holds a secret and is written 0600.
	StatePath string
	// HeartbeatInterval is the time between heartbeats (default 30s).
	HeartbeatInterval time.Duration
	// PollWait is how long one directives long-poll waits (default 30s).
	PollWait time.Duration
	// RetryMin and RetryMax bound the backoff after a failed call (default
	// 1s and 1m); the client below also retries each call a few times.
	RetryMin, RetryMax time.Duration
	// Snapshot returns the machine's state for each heartbeat. Required.
	Snapshot func() client.HeartbeatRequest
	// Handle acts on a directive. It must not block on long work (a drain
	// sets a flag; the task finishes on its own) and must be idempotent. An
	// error means "try again": the directive is delivered again later.
	// Required.
	Handle func(ctx context.Context, d client.Directive) error
	// OnAssignment, when set, is called with the new assignment whenever it
	// or its credentials change (registration, reassign, new-credentials),
	// before Handle sees the directive.
	OnAssignment func(client.Assignment)
	// ClientOptions adjust the provisioner client (TLS, retries).
	ClientOptions []client.Option
	// Logger receives the link's logs (default slog.Default()); tokens and
	// credentials are never logged.
	Logger *slog.Logger
}

// linkState is the state file's content.
type linkState struct {
	Version       int                `json:"version"`
	URL           string             `json:"url"`
	MachineID     string             `json:"machineId"`
	MachineToken  string             `json:"machineToken"`
	LastDirective int64              `json:"lastDirective"`
	Assignment    *client.Assignment `json:"assignment,omitempty"`
	// PendingRuns are finished runs not yet taken by the provisioner
	// (runreports.go).
	PendingRuns []client.RunReport `json:"pendingRuns,omitempty"`
}

// ProvisionerLink keeps a machine registered with the provisioner.
type ProvisionerLink struct {
	cfg  LinkConfig
	anon *client.Client
	log  *slog.Logger

	regMu     sync.Mutex // one registration at a time
	deliverMu sync.Mutex // one delivery at a time, in id order

	mu     sync.Mutex // guards st and the status fields below
	st     linkState
	status LinkStatus

	// runsRefused is set when the provisioner has no run reports route
	// (it predates it): runs are no longer queued in this process.
	runsRefused bool

	ready     chan struct{}
	readyOnce sync.Once
	kick      chan struct{}
}

// NewProvisionerLink checks cfg and loads the state file, if any.
func NewProvisionerLink(cfg LinkConfig) (*ProvisionerLink, error) {
	if cfg.URL == "" {
		return nil, errors.New("provisioner link: url is empty: set the provisioner's URL (https://…)")
	}
	if !strings.HasPrefix(cfg.URL, "https://") && !strings.HasPrefix(cfg.URL, "http://") {
		return nil, fmt.Errorf("provisioner link: url %q: want an http(s):// URL", cfg.URL)
	}
	if cfg.StatePath == "" {
		return nil, errors.New("provisioner link: statePath is empty: name a file for the machine id and token")
	}
	if cfg.Facts.Hostname == "" || cfg.Facts.OS == "" {
		return nil, errors.New("provisioner link: facts need hostname and os: use MachineRegistration")
	}
	if cfg.Snapshot == nil || cfg.Handle == nil {
		return nil, errors.New("provisioner link: Snapshot and Handle are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.HeartbeatInterval, 30*time.Second)
	def(&cfg.PollWait, 30*time.Second)
	def(&cfg.RetryMin, time.Second)
	def(&cfg.RetryMax, time.Minute)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	l := &ProvisionerLink{
		cfg:   cfg,
		anon:  client.New(cfg.URL, "", cfg.ClientOptions...),
		log:   cfg.Logger.With("component", "provisioner-link"),
		ready: make(chan struct{}),
		kick:  make(chan struct{}, 1),
	}
	l.status = LinkStatus{URL: cfg.URL, Identity: "enrollment-token"}
	if cfg.EC2 != nil {
		l.status.Identity = "ec2"
	}
	st, err := readLinkState(cfg.StatePath)
	if err != nil {
		return nil, err
	}
	// A state file of another provisioner holds a token this one refuses.
	if st.MachineToken != "" && st.URL == cfg.URL {
		l.st = st
		l.markReady()
	} else if cfg.EnrollmentToken == "" && cfg.EC2 == nil {
		// `runner enroll` leaves a machine token and no enrollment token.
		return nil, fmt.Errorf("provisioner link: not enrolled: no machine token for %s in %s, no enrollmentToken, and this is not an EC2 instance: enrol the machine with `runner enroll --provisioner URL --token T` (a token from `provisioner token create --enroll 1`)", cfg.URL, cfg.StatePath)
	}
	return l, nil
}

// MachineRegistration collects this machine's facts and, on an EC2
// instance (asked at imdsEndpoint, platform.DefaultIMDSEndpoint when
// empty), its signed identity, with instance type, region, AMI and tags
// added to the facts. On other machines the identity is nil.
func MachineRegistration(ctx context.Context, imdsEndpoint string) (client.Facts, *client.EC2Identity, error) {
	mf, err := platform.CollectMachineFacts(ctx)
	if err != nil {
		return client.Facts{}, nil, err
	}
	facts := client.Facts{
		Hostname: mf.Hostname, OS: mf.OS, OSVersion: mf.OSVersion, Arch: mf.Arch, Model: mf.Model,
		CPUs: mf.CPUs, MemoryMB: mf.MemoryMB, DiskGB: mf.DiskGB, Serial: mf.Serial,
	}
	inst, err := platform.EC2Identity(ctx, imdsEndpoint)
	if errors.Is(err, platform.ErrNotEC2) {
		return facts, nil, nil
	}
	if err != nil {
		return facts, nil, fmt.Errorf("EC2 instance identity: %w", err)
	}
	facts.InstanceID, facts.InstanceType, facts.Region = inst.InstanceID, inst.InstanceType, inst.Region
	facts.AMI, facts.AvailabilityZ, facts.Tags = inst.ImageID, inst.AvailabilityZone, inst.Tags
	return facts, &client.EC2Identity{Document: inst.Document, Signature: inst.Signature}, nil
}

// Ready is closed once the machine has a machine token (saved or newly
// registered); Assignment and Credentials are meaningful from then on.
func (l *ProvisionerLink) Ready() <-chan struct{} { return l.ready }

// Assignment returns the current assignment: pool, task queue, worker
// config, policies, root URL and credentials. ok is false before the
// first registration.
func (l *ProvisionerLink) Assignment() (a client.Assignment, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st.Assignment == nil {
		return client.Assignment{}, false
	}
	return *l.st.Assignment, true
}

// Credentials returns the current temporary Taskcluster credentials; ok is
// false while the machine has none (no pool, or a pool without
// credentials configured in the provisioner).
func (l *ProvisionerLink) Credentials() (tcclient.Credentials, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st.Assignment == nil || l.st.Assignment.Credentials == nil {
		return tcclient.Credentials{}, false
	}
	c := l.st.Assignment.Credentials
	return tcclient.Credentials{ClientID: c.ClientID, AccessToken: c.AccessToken, Certificate: c.Certificate}, true
}

// MachineID returns the machine's id (its Taskcluster workerId), or "".
func (l *ProvisionerLink) MachineID() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st.MachineID
}

// Status returns the connection's status for `runner status`.
func (l *ProvisionerLink) Status() LinkStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.status
	s.MachineID = l.st.MachineID
	s.Registered = l.st.MachineToken != ""
	s.LastDirective = l.st.LastDirective
	if a := l.st.Assignment; a != nil {
		s.PoolID, s.Source, s.Builders = a.PoolID, a.Source, a.Builders
		if a.Credentials != nil {
			exp := a.Credentials.Expires
			s.CredentialsExpire = &exp
		}
	}
	return s
}

// HeartbeatNow asks for a heartbeat at once, e.g. when the runner becomes
// drained, so that the provisioner can move the machine without waiting
// for the next interval.
func (l *ProvisionerLink) HeartbeatNow() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Run registers when needed, then heartbeats and long-polls directives
// until ctx ends. It returns ctx's error, or the provisioner's refusal to
// register the machine (a bad or used-up enrollment token, an unverifiable
// EC2 identity), which retrying cannot fix.
//
// A machine with a saved token registers again only when the token is
// refused, since each registration spends a use of the enrollment token;
// an EC2 instance, whose proof costs nothing, registers at every Run so
// that its facts and credentials are fresh after a stop and start.
func (l *ProvisionerLink) Run(ctx context.Context) error {
	if _, tok, _ := l.session(); tok == "" || l.cfg.EC2 != nil {
		if err := l.register(ctx, ""); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go func() { errc <- l.heartbeatLoop(ctx) }()
	go func() { errc <- l.pollLoop(ctx) }()
	err := <-errc
	cancel()
	<-errc
	return err
}

// session returns the machine id, its token and the last handled directive.
func (l *ProvisionerLink) session() (id, token string, after int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st.MachineID, l.st.MachineToken, l.st.LastDirective
}

// register registers the machine, retrying transient failures; refused
// is the machine token that was just refused ("" at first registration),
// so that two loops refused at once register only once.
func (l *ProvisionerLink) register(ctx context.Context, refused string) error {
	l.regMu.Lock()
	defer l.regMu.Unlock()
	if _, tok, _ := l.session(); refused != "" && tok != refused {
		return nil
	}
	req := client.RegisterRequest{Facts: l.cfg.Facts}
	if l.cfg.EC2 == nil && l.cfg.EnrollmentToken == "" {
		return fmt.Errorf("register with the provisioner at %s: it refused the machine token and there is no enrollment token to register again with: enrol the machine again with `runner enroll --force --provisioner URL --token T`", l.cfg.URL)
	}
	if l.cfg.EC2 != nil {
		req.EC2 = l.cfg.EC2
	} else {
		req.EnrollmentToken = l.cfg.EnrollmentToken
	}
	for failures := 0; ; failures++ {
		reg, err := l.anon.Register(ctx, req)
		if err == nil {
			l.contact()
			l.registered(reg)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.failed(err)
		if st := client.StatusOf(err); st >= 400 && st < 500 && st != http.StatusTooManyRequests && st != http.StatusRequestTimeout {
			return fmt.Errorf("register with the provisioner at %s: %w", l.cfg.URL, err)
		}
		l.log.Warn("registration failed; retrying", "error", err)
		if err := l.backoff(ctx, failures); err != nil {
			return err
		}
	}
}

// registered saves a registration's machine id, token and assignment.
func (l *ProvisionerLink) registered(reg *client.RegisterResponse) {
	as := reg.Assignment
	l.mu.Lock()
	if l.st.MachineID != reg.MachineID {
		// Directive ids are per provisioner, but a new machine has
		// handled none of its own.
		l.st.LastDirective = 0
	}
	l.st.Version, l.st.URL = linkStateVersion, l.cfg.URL
	l.st.MachineID, l.st.MachineToken, l.st.Assignment = reg.MachineID, reg.MachineToken, &as
	err := l.saveLocked()
	l.mu.Unlock()
	if err != nil {
		l.log.Error("cannot save the provisioner link state; the machine will register again at restart", "error", err)
	}
	l.log.Info("registered with the provisioner", "machine", reg.MachineID, "pool", as.PoolID)
	// The assignment is handed over before Ready, so that whoever waits on
	// Ready finds it applied.
	if l.cfg.OnAssignment != nil {
		l.cfg.OnAssignment(as)
	}
	l.markReady()
}

func (l *ProvisionerLink) markReady() { l.readyOnce.Do(func() { close(l.ready) }) }

// refusedToken reports whether err means the machine token is no longer
// good: replaced by a newer registration, or the machine deleted.
func refusedToken(err error) bool {
	st := client.StatusOf(err)
	return st == http.StatusUnauthorized || st == http.StatusNotFound
}

// readLinkState reads the state file; a missing file is an empty state.
func readLinkState(path string) (linkState, error) {
	var st linkState
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("provisioner link state %s: %w", path, err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("provisioner link state %s is corrupt (%v): delete it and the machine registers again", path, err)
	}
	if st.Version > linkStateVersion {
		return st, fmt.Errorf("provisioner link state %s has version %d, newer than this runner's %d: upgrade the runner or delete the file", path, st.Version, linkStateVersion)
	}
	return st, nil
}

// saveLocked writes the state file atomically (temp file, fsync, rename);
// l.mu is held.
func (l *ProvisionerLink) saveLocked() error {
	path := l.cfg.StatePath
	data, err := json.MarshalIndent(l.st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode provisioner link state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("provisioner link state: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("provisioner link state: %w", err)
	}
	tmp := f.Name()
	// CreateTemp makes the file 0600: the machine token stays private.
	_, werr := f.Write(append(data, '\n'))
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write provisioner link state %s: %w", path, werr)
	}
	return nil
}
