package runner

// A pool's kind of work (runner.source): taskcluster (the default) claims
// from the queue, buildbot from the bridge's master API for
// runner.buildbot.builders, both from either in rotation
// (agent.MultiSource). A provisioner assignment naming a source and
// builders replaces the file's.

import (
	"fmt"
	"net/url"
	"slices"

	"github.com/labrunner/labrunner/agent"
	bbclient "github.com/labrunner/labrunner/bridge/client"
)

// Pool sources a runner claims from.
const (
	SourceTaskcluster = "taskcluster"
	SourceBuildbot    = "buildbot"
	SourceBoth        = "both"
)

// BuildbotConfig is the `runner.buildbot` section: the bridge this
// machine claims Buildbot builds from.
type BuildbotConfig struct {
	// BridgeURL is the bridge's master API base URL.
	BridgeURL string `yaml:"bridgeURL"`
	// Builders are the builders this machine runs.
	Builders []string `yaml:"builders"`
	// Results maps exit codes to Buildbot results per builder (default 0
	// SUCCESS, other FAILURE).
	Results map[string]agent.BuilderResults `yaml:"results"`
	// LogUploadURL is where build logs are PUT (see agent.BBSourceConfig).
	LogUploadURL string `yaml:"logUploadURL"`
	// KillGrace is the time between interrupting a stopped build's
	// processes and killing them (default agent.DefaultBuildKillGrace);
	// the agent's killGrace stays for Taskcluster tasks.
	KillGrace Duration `yaml:"killGrace"`
}

// sourceProblems checks runner.source and runner.buildbot.
func (c *Config) sourceProblems() []string {
	var p []string
	switch g := c.Buildbot.KillGrace; {
	case g.bad != "":
		p = append(p, fmt.Sprintf("runner.buildbot.killGrace: %q is not a duration; write e.g. \"500ms\" or \"1s\"", g.bad))
	case g.Duration < 0:
		p = append(p, fmt.Sprintf("runner.buildbot.killGrace: %s is negative; use a positive duration or remove the key for the default %s", g.Duration, agent.DefaultBuildKillGrace))
	}
	switch c.Source {
	case "", SourceTaskcluster:
		return p
	case SourceBuildbot, SourceBoth:
	default:
		return []string{fmt.Sprintf("runner.source: %q is not a source; use taskcluster, buildbot or both", c.Source)}
	}
	if u, err := url.Parse(c.Buildbot.BridgeURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		p = append(p, fmt.Sprintf("runner.buildbot.bridgeURL: %q is not an http(s) URL; give the bridge's address, e.g. https://bridge.example.com", c.Buildbot.BridgeURL))
	}
	if len(c.Buildbot.Builders) == 0 && !c.Provisioner.Enabled() {
		p = append(p, "runner.buildbot.builders: empty; list the builders this machine runs")
	}
	if slices.Contains(c.Buildbot.Builders, "") {
		p = append(p, "runner.buildbot.builders: an empty builder name; remove it")
	}
	return p
}

// poolSource puts the configured kind of work behind the agent: tc is the
// Taskcluster source the agent was given.
func (r *Runner) poolSource(c *agent.Config, tc agent.Source) (agent.Source, error) {
	r.mu.Lock()
	source, builders := r.cfg.Source, r.cfg.Buildbot.Builders
	if r.assignedSource != "" {
		source = r.assignedSource
		if len(r.assignedBuilders) > 0 {
			builders = r.assignedBuilders
		}
	}
	r.mu.Unlock()
	if source == "" || source == SourceTaskcluster {
		return tc, nil
	}
	if r.cfg.Buildbot.BridgeURL == "" {
		return nil, fmt.Errorf("the pool's source is %s but runner.buildbot.bridgeURL is not set; set it", source)
	}
	cl, err := bbclient.New(r.cfg.Buildbot.BridgeURL, bbclient.Options{Logger: r.log})
	if err != nil {
		return nil, fmt.Errorf("runner.buildbot.bridgeURL: %w", err)
	}
	bcfg := agent.BBSourceConfig{Client: cl, Builders: builders, WorkerID: c.WorkerID,
		Results: r.cfg.Buildbot.Results, LogUploadURL: r.cfg.Buildbot.LogUploadURL, KillGrace: r.cfg.Buildbot.KillGrace.Duration, Logger: r.log}
	if source == SourceBoth {
		// The queue's claimWork already long-polls; a second long wait at
		// the bridge would only delay Taskcluster tasks.
		bcfg.ClaimWait = 1
	}
	bb, err := agent.NewBBSource(bcfg)
	if err != nil {
		return nil, fmt.Errorf("agent.NewBBSource for the Buildbot builders: %w", err)
	}
	if source == SourceBuildbot {
		return bb, nil
	}
	return agent.NewMultiSource(r.log, tc, bb)
}

// runKind describes a run for status: its kind and, for a Buildbot
// build, which one.
func runKind(run agent.Run) (string, *agent.BuildInfo) {
	if b, ok := agent.BuildOf(run); ok {
		return SourceBuildbot, &b
	}
	return SourceTaskcluster, nil
}

// describeRun names a current run for people: "buildbot linux-build #3
// (task X run 0)" or "taskcluster X run 0" (a state written before runs
// had a kind is Taskcluster's).
func describeRun(c CurrentTask) string {
	if c.Buildbot != nil {
		return fmt.Sprintf("%s %s #%d (task %s run %d)", SourceBuildbot, c.Buildbot.Builder, c.Buildbot.BuildNumber, c.TaskID, c.RunID)
	}
	kind := c.Kind
	if kind == "" {
		kind = SourceTaskcluster
	}
	return fmt.Sprintf("%s %s run %d", kind, c.TaskID, c.RunID)
}
