package agent

// The Buildbot source claims bridge-routed build requests through the
// bridge's master API, in the place of a Buildbot master:
//
//	claim(builders) ──▶ bbRun: the builder's steps as the task's commands,
//	                   its env and maxRunTime (interpolated by the bridge)
//	running ──heartbeat every HeartbeatInterval──▶ cancelled? stop the tree (KillGrace), finish CANCELLED
//	commands end ──▶ log gzipped and PUT to LogUploadURL
//	             ──▶ finish(result, properties, log URL)
//
// Exit codes map to Buildbot results per builder (BuilderResults); by
// default 0 is SUCCESS and any other code FAILURE. The run's resolution
// maps as: completed → SUCCESS; failed → WARNINGS when the exit code is one
// of the builder's warnings codes, else FAILURE; exception/intermittent-task
// (a retry code) and exception/worker-shutdown → RETRY; other exceptions →
// EXCEPTION; cancelled by the bridge → CANCELLED.
//
// A build's process tree is stopped as a native task's is (interrupt, then
// kill), but with the source's short KillGrace in place of the agent's, as
// a Buildbot slave kills a build's processes outright. A cancellation made
// in the bridge therefore ends the tree within HeartbeatInterval (the next
// heartbeat hears it) + KillGrace + one heartbeat's round trip: with the
// defaults 1 s + 0.5 s + milliseconds, inside the 2 s a cancelled build
// is given.
//
// Properties the steps set are read from PropertiesFileName in the task
// directory ($TASK_WORKDIR): a JSON object of name → value, merged over the
// request's properties.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	bbclient "github.com/labrunner/labrunner/bridge/client"
	"github.com/labrunner/labrunner/platform"
)

// PropertiesFileName is the file in the task directory where a Buildbot
// build's steps write the properties they set.
const PropertiesFileName = "buildbot-properties.json"

// DefaultHeartbeatInterval is how often a running build is heartbeated;
// it bounds how late a cancellation is noticed.
const DefaultHeartbeatInterval = time.Second

// DefaultBuildKillGrace is how long a stopped build's processes get
// between the interrupt and the kill; with DefaultHeartbeatInterval it
// keeps a cancelled build's end within 2 s of the cancellation.
const DefaultBuildKillGrace = 500 * time.Millisecond

// BuilderResults maps a builder's exit codes to Buildbot results beyond
// the default (0 SUCCESS, other FAILURE).
type BuilderResults struct {
	// Warnings are exit codes that end the build WARNINGS.
	Warnings []int `yaml:"warnings" json:"warnings,omitempty"`
	// Retry are exit codes that end the build RETRY (the bridge re-queues
	// the same build request).
	Retry []int `yaml:"retry" json:"retry,omitempty"`
}

// BBSourceConfig configures a BBSource.
type BBSourceConfig struct {
	// Client calls the bridge's master API (required).
	Client *bbclient.Client
	// Builders are the builders this agent runs (required).
	Builders []string
	// WorkerID names the agent to the bridge (required).
	WorkerID string
	// Results maps exit codes per builder name.
	Results map[string]BuilderResults
	// LogUploadURL is where build logs are PUT, gzipped, as
	// <LogUploadURL>/<builder>/<build id>.log.gz; the URL is reported to
	// the bridge, which makes it the task's log artifact. Empty keeps logs
	// local (no log URL is reported).
	LogUploadURL string
	// HeartbeatInterval defaults to DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// KillGrace is the time between interrupting a stopped build's
	// processes (cancelled, past maxRunTime, agent shutdown) and killing
	// them; it replaces the agent's KillGrace for builds (default
	// DefaultBuildKillGrace).
	KillGrace time.Duration
	// ClaimWait is how many seconds a claim may wait for work (default 20).
	ClaimWait int
	// HTTPClient uploads logs (default http.DefaultClient with retries).
	HTTPClient *http.Client
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// BBSource claims Buildbot build requests from a bridge.
type BBSource struct {
	cfg         BBSourceConfig
	incarnation string
	log         *slog.Logger
}

// NewBBSource checks cfg and returns a Buildbot source.
func NewBBSource(cfg BBSourceConfig) (*BBSource, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("agent: BBSourceConfig.Client is nil; give a client of the bridge's master API")
	case len(cfg.Builders) == 0:
		return nil, errors.New("agent: BBSourceConfig.Builders is empty; name the builders this agent runs")
	case cfg.WorkerID == "":
		return nil, errors.New("agent: BBSourceConfig.WorkerID is empty; give the worker id")
	}
	if cfg.LogUploadURL != "" {
		if u, err := url.Parse(cfg.LogUploadURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("agent: BBSourceConfig.LogUploadURL %q is not an http(s) URL; give the log store's base URL", cfg.LogUploadURL)
		}
	}
	if cfg.KillGrace < 0 {
		return nil, fmt.Errorf("agent: BBSourceConfig.KillGrace is %s; use a positive duration, or 0 for the default %s", cfg.KillGrace, DefaultBuildKillGrace)
	}
	if cfg.KillGrace == 0 {
		cfg.KillGrace = DefaultBuildKillGrace
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.ClaimWait <= 0 {
		cfg.ClaimWait = 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	return &BBSource{cfg: cfg, incarnation: hex.EncodeToString(id), log: cfg.Logger}, nil
}

// GiveBackTimeout bounds giving back what an abandoned claim claimed: the
// look for a held Buildbot build and its RETRY finish (BBSource.Claim), or
// resolving Taskcluster tasks worker-shutdown (TCSource.Claim).
const GiveBackTimeout = 3 * time.Second

// Claim claims at most one build (the master API hands out one per call).
//
// When ctx is done while the claim is in flight (a drain, a move or a
// shutdown), the call is abandoned at once. The bridge may have claimed a
// build for it in that instant, its answer lost or arriving too late; that
// build is given back rather than left claimed by an agent that will not
// run it: a claim with no wait for the same incarnation returns the build
// this incarnation holds (the master API's rule for a claim whose answer
// was lost), and finishing it RETRY puts the same request back in the
// queue (Buildbot's own way of handing back a build it cannot run; the
// bridge resolves the task's run and adds a new one). A build answered
// after ctx was done is given back the same way.
func (s *BBSource) Claim(ctx context.Context, max int) ([]Run, error) {
	if max < 1 || ctx.Err() != nil {
		return nil, nil
	}
	var sent atomic.Bool
	tctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(w httptrace.WroteRequestInfo) {
		if w.Err == nil {
			sent.Store(true)
		}
	}})
	b, err := s.cfg.Client.Claim(tctx, bbclient.ClaimRequest{WorkerID: s.cfg.WorkerID, Incarnation: s.incarnation,
		Builders: s.cfg.Builders, Wait: s.cfg.ClaimWait})
	if ctx.Err() != nil {
		switch {
		case b != nil:
			s.giveBack(ctx, b)
		case sent.Load():
			// The bridge heard the claim: it may hold a build for it.
			s.giveBack(ctx, nil)
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim a Buildbot build of %v: %w", s.cfg.Builders, err)
	}
	if b == nil {
		return nil, nil
	}
	r, err := s.newRun(b)
	if err != nil {
		// The bridge holds the request; report it so it is not left claimed.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_, ferr := s.cfg.Client.Finish(fctx, bbclient.FinishRequest{WorkerID: s.cfg.WorkerID, Incarnation: b.Incarnation, BuildID: b.BuildID, Result: bbclient.Exception})
		return nil, errors.Join(err, ferr)
	}
	go r.heartbeat(s.cfg.HeartbeatInterval)
	return []Run{r}, nil
}

// giveBack finishes RETRY the build b claimed for an abandoned claim or,
// with b nil, the build this incarnation holds if the bridge claimed one
// (a claim with no wait returns it; with none held it may claim a request
// that just became pending, which is given back too). It takes at most
// GiveBackTimeout; a build it cannot give back stays claimed until the
// next incarnation of this worker claims it or the claim goes stale.
func (s *BBSource) giveBack(ctx context.Context, b *bbclient.Build) {
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), GiveBackTimeout)
	defer cancel()
	if b == nil {
		var err error
		b, err = s.cfg.Client.Claim(gctx, bbclient.ClaimRequest{WorkerID: s.cfg.WorkerID, Incarnation: s.incarnation, Builders: s.cfg.Builders})
		if err != nil {
			s.log.Warn("could not look for a Buildbot build held by the abandoned claim; a build it claimed stays claimed until this worker claims again or the claim goes stale",
				"builders", s.cfg.Builders, "error", err)
			return
		}
		if b == nil {
			return
		}
	}
	_, err := s.cfg.Client.Finish(gctx, bbclient.FinishRequest{WorkerID: s.cfg.WorkerID, Incarnation: b.Incarnation, BuildID: b.BuildID, Result: bbclient.Retry})
	if err != nil && !errors.Is(err, bbclient.ErrConflict) {
		s.log.Warn("could not give back a Buildbot build claimed as the claim was abandoned", "builder", b.BuilderName, "build", b.BuildNumber, "error", err)
		return
	}
	s.log.Info("gave back (RETRY) a Buildbot build claimed as the claim was abandoned", "builder", b.BuilderName, "build", b.BuildNumber, "buildRequest", b.BuildRequestID)
}

func (s *BBSource) newRun(b *bbclient.Build) (*bbRun, error) {
	res := s.cfg.Results[b.BuilderName]
	var commands any
	if platform.TaskCommandStyle() == platform.CmdLineCommands {
		lines := make([]string, 0, len(b.Steps))
		for _, st := range b.Steps {
			lines = append(lines, quoteCommand(st.Command))
		}
		commands = lines
	} else {
		argv := make([][]string, 0, len(b.Steps))
		for _, st := range b.Steps {
			argv = append(argv, st.Command)
		}
		commands = argv
	}
	payload := map[string]any{"command": commands, "maxRunTime": max(b.MaxRunTime, 1), "features": map[string]bool{"liveLog": false}}
	if len(b.Env) > 0 {
		payload["env"] = b.Env
	}
	if len(res.Retry) > 0 {
		payload["onExitStatus"] = map[string]any{"retry": res.Retry}
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode the steps of %s build %d: %w", b.BuilderName, b.BuildNumber, err)
	}
	now := time.Now()
	taskID := b.TaskID
	if taskID == "" {
		taskID = "buildbot-" + strconv.FormatInt(b.BuildID, 10)
	}
	task := &tcqueue.TaskDefinitionResponse{
		TaskQueueID: "buildbot/" + b.BuilderName,
		Created:     tcclient.Time(now),
		Deadline:    tcclient.Time(now.Add(time.Duration(b.MaxRunTime)*time.Second + time.Hour)),
		Expires:     tcclient.Time(now.Add(30 * 24 * time.Hour)),
		Payload:     raw,
		Metadata:    tcqueue.TaskMetadata{Name: fmt.Sprintf("%s build %d", b.BuilderName, b.BuildNumber)},
	}
	return &bbRun{src: s, build: b, taskID: taskID, task: task, results: res,
		cancelled: make(chan struct{}), done: make(chan struct{})}, nil
}

// BuildInfo names the Buildbot build a run is, for status.
type BuildInfo struct {
	// Builder is the builder's name.
	Builder string `json:"builder"`
	// BuildNumber is the build's number on the builder.
	BuildNumber int `json:"buildNumber"`
	// BuildRequestID is the SchedulerDB build request.
	BuildRequestID int64 `json:"buildRequestId"`
}

// BuildOf reports which Buildbot build run is; ok is false for runs of
// other sources.
func BuildOf(run Run) (BuildInfo, bool) {
	r, ok := run.(*bbRun)
	if !ok {
		return BuildInfo{}, false
	}
	return BuildInfo{Builder: r.build.BuilderName, BuildNumber: r.build.BuildNumber, BuildRequestID: r.build.BuildRequestID}, true
}

// selfWatching is a run that learns of its own cancellation.
type selfWatching interface {
	watchCancel() <-chan struct{}
}

// sourceCancelWatcher lets runs that watch themselves (Buildbot builds)
// do so, and passes the others to the configured watcher.
type sourceCancelWatcher struct{ inner CancelWatcher }

// Watch returns the run's own channel or the inner watcher's.
func (w sourceCancelWatcher) Watch(ctx context.Context, run Run) <-chan struct{} {
	if s, ok := run.(selfWatching); ok {
		return s.watchCancel()
	}
	return w.inner.Watch(ctx, run)
}

// endedRun is a run told how its commands ended before it is reported.
type endedRun interface {
	ended(ctx context.Context, taskDir string, o outcome)
}
