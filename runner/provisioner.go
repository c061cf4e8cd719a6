package runner

// The runner with a provisioner (runner.provisioner.url set): the link
// registers the machine; its assignment replaces the file's root URL, task
// queue, worker names and credentials; heartbeats carry the runner's state;
// directives act on the runner:
//
//	start ──link ready (registered or saved token)──▶ assignment applied ──▶ boot, agent
//	drain ──▶ stop claiming ──no task, no claim in flight──▶ heartbeat "drained" (at once)
//	reassign ──▶ drain ends; new pool ──idle──▶ agent loop restarted with it
//	new-credentials ──▶ the next claimWork uses them (no restart)
//	reboot ──▶ after the running task       quarantine/unquarantine ──▶ source "provisioner"
//	quarantine with a canary ──▶ run it while quarantined, report it (canary.go)
//	cancel-task ──▶ the run's CancelWatcher fires; the agent kills its process tree

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"gopkg.in/yaml.v3"

	"github.com/labrunner/labrunner/agent"
	"github.com/labrunner/labrunner/platform"
	"github.com/labrunner/labrunner/provisioner/client"
)

// startLink makes the provisioner link and runs it in bg until the
// returned stop is called. A refusal that retrying cannot fix (enrollment
// token or EC2 identity refused) is recorded and fail is called, which
// stops the runner.
func (r *Runner) startLink(ctx context.Context, bg *sync.WaitGroup, fail func()) (*ProvisionerLink, func(), error) {
	var lc LinkConfig
	var err error
	if r.facts != nil {
		lc = r.cfg.Provisioner.linkConfigFor(*r.facts, nil, r.baseCfg.StateDir)
	} else {
		lc, err = r.cfg.Provisioner.LinkConfig(ctx, r.baseCfg.StateDir)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("runner.provisioner: %w", err)
	}
	lc.Snapshot, lc.Handle, lc.OnAssignment, lc.Logger = r.snapshot, r.handleDirective, r.onAssignment, r.log
	link, err := NewProvisionerLink(lc)
	if err != nil {
		return nil, nil, fmt.Errorf("runner.provisioner: %w", err)
	}
	r.mu.Lock()
	r.link = link
	r.mu.Unlock()
	linkCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	bg.Go(func() {
		err := link.Run(linkCtx)
		if err == nil || linkCtx.Err() != nil {
			return
		}
		r.log.Error("the provisioner refused the machine; stopping", "error", err)
		r.mu.Lock()
		r.linkErr = fmt.Errorf("the provisioner refused the machine: %w", err)
		r.mu.Unlock()
		fail()
	})
	return link, stop, nil
}

// linkFailure is why the link stopped the runner, or nil.
func (r *Runner) linkFailure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.linkErr
}

// assigned says whether the agent has a pool to claim from: a task queue,
// or a Buildbot pool's builders and a bridge to claim them from. Caller
// holds r.mu.
func (r *Runner) assigned() bool {
	if !r.cfg.Provisioner.Enabled() || r.agentCfg.Load().TaskQueueID != "" {
		return true
	}
	return r.assignedSource == SourceBuildbot && r.cfg.Buildbot.BridgeURL != "" &&
		(len(r.assignedBuilders) > 0 || len(r.cfg.Buildbot.Builders) > 0)
}

// onAssignment applies a new assignment (registration, reassign,
// new-credentials). A change of pool or worker identity restarts the agent
// loop once no task runs; new credentials alone reach the next claim
// through claimCredentials.
func (r *Runner) onAssignment(a client.Assignment) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ac := r.assignedConfig(a)
	r.agentCfg.Store(ac)
	source, builders := a.Source, a.Builders
	if a.PoolID == "" {
		source, builders = "", nil
	}
	sameSource := source == r.assignedSource && slices.Equal(builders, r.assignedBuilders)
	r.assignedSource, r.assignedBuilders = source, builders
	r.st.WorkerGroup, r.st.WorkerID, r.st.TaskQueueID = ac.WorkerGroup, ac.WorkerID, ac.TaskQueueID
	r.st.TaskUser, r.st.TaskUserKill = ac.TaskUser, taskUserKill(ac.TaskUser)
	if r.loopCfg != nil && (!sameAgentSetup(r.loopCfg, ac) || !sameSource) {
		r.log.Info("new assignment: the agent restarts with it once idle", "pool", a.PoolID, "source", source, "taskQueueId", ac.TaskQueueID, "builders", builders)
		r.restartPending = true
	}
	r.commit()
}

// assignedConfig is the file's agent configuration with the assignment
// applied: the pool's workerConfig (agent keys) first, then the root URL,
// task queue, worker names and credentials. Caller holds r.mu.
func (r *Runner) assignedConfig(a client.Assignment) *agent.FileConfig {
	c := *r.baseCfg
	if len(a.WorkerConfig) > 0 {
		// JSON is YAML: the pool's workerConfig uses the file's keys.
		if err := yaml.Unmarshal(a.WorkerConfig, &c); err != nil {
			r.log.Warn("the pool's workerConfig does not fit the agent's configuration; ignored", "pool", a.PoolID, "error", err)
			c = *r.baseCfg
		}
		c.StateDir, c.TasksDir = r.baseCfg.StateDir, r.baseCfg.TasksDir
		if mode, err := platform.ParseTaskUserMode(c.TaskUser); err != nil {
			r.log.Warn("the pool's workerConfig has a bad taskUser; the file's is used", "pool", a.PoolID, "error", err, "taskUser", r.baseCfg.TaskUser)
			c.TaskUser = r.baseCfg.TaskUser
		} else {
			c.TaskUser = string(mode)
		}
		// The signing key is the machine's secret: only its own file names
		// it. The task accounts' ids are the machine's too (they must miss
		// its directory services' and containers' ids).
		c.ChainOfTrust = r.baseCfg.ChainOfTrust
		c.TaskUserIDs = r.baseCfg.TaskUserIDs
	}
	if a.RootURL != "" {
		c.RootURL = a.RootURL
	}
	c.TaskQueueID, c.ProvisionerID, c.WorkerType = "", "", ""
	if a.PoolID != "" && a.TaskQueueID != "" {
		c.TaskQueueID = a.TaskQueueID
		c.ProvisionerID, c.WorkerType, _ = strings.Cut(a.TaskQueueID, "/")
	}
	if a.WorkerGroup != "" {
		c.WorkerGroup = a.WorkerGroup
	}
	if a.WorkerID != "" {
		c.WorkerID = a.WorkerID
	}
	if cr := a.Credentials; cr != nil {
		c.Credentials = agent.FileCredentials{ClientID: cr.ClientID, AccessToken: cr.AccessToken, Certificate: cr.Certificate}
	}
	return &c
}

// sameAgentSetup says whether two configurations differ only in their
// credentials, which the running agent picks up without a restart.
func sameAgentSetup(a, b *agent.FileConfig) bool {
	x, y := *a, *b
	x.Credentials, y.Credentials = agent.FileCredentials{}, agent.FileCredentials{}
	return x == y
}

// claimCredentials are the credentials for the next claimWork: the link's
// current ones.
func (r *Runner) claimCredentials() tcclient.Credentials {
	r.mu.Lock()
	link := r.link
	r.mu.Unlock()
	if link != nil {
		if c, ok := link.Credentials(); ok {
			return c
		}
	}
	fc := r.agentCfg.Load().Credentials
	return tcclient.Credentials{ClientID: fc.ClientID, AccessToken: fc.AccessToken, Certificate: fc.Certificate}
}

// followProvisioner restarts the agent loop for a new assignment once it
// is idle, and heartbeats at once when the reported state changes (above
// all to "drained", which a move waits for). Called by commit with r.mu held.
func (r *Runner) followProvisioner() {
	if r.restartPending && !r.restartIssued && r.stopAgent != nil && !r.agentHalted && len(r.st.CurrentTasks) == 0 && r.polling == 0 {
		r.restartIssued = true
		r.stopAgent(errReassign)
	}
	if r.link == nil {
		return
	}
	if s := r.heartbeatState(); s != r.lastHBState {
		r.lastHBState = s
		r.link.HeartbeatNow()
	}
}

// heartbeatState is the machine state reported to the provisioner. Drained
// means nothing runs and nothing can be claimed any more (no claimWork in
// flight). Caller holds r.mu.
func (r *Runner) heartbeatState() string {
	busy := len(r.st.CurrentTasks) > 0
	switch {
	case r.st.RebootIssued != nil:
		return client.StateRebooting
	case r.booting:
		return client.StateStarting
	case busy && (r.st.Draining || r.stopping || r.st.RebootPending != nil):
		return client.StateDraining
	case busy:
		return client.StateBusy
	case r.st.RebootPending != nil:
		return client.StateRebooting
	case r.stopping:
		return client.StateDraining
	case r.st.Draining && r.polling == 0:
		return client.StateDrained
	case r.st.Draining:
		return client.StateDraining
	case !r.firstPassDone:
		// Not every check has passed since the start: nothing is claimed.
		return client.StateStarting
	}
	return client.StateIdle
}

// snapshot is the heartbeat: state, current task, checks, the runner's own
// quarantine as a failing health result, counters.
func (r *Runner) snapshot() client.HeartbeatRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	hb := client.HeartbeatRequest{
		State: r.heartbeatState(),
		Counters: map[string]int64{
			"tasksTotal": int64(r.st.TasksTotal), "tasksSinceBoot": int64(r.st.TasksSinceBoot),
			"infraFailuresInARow": int64(r.st.InfraFailuresInARow), "leftoversKilled": int64(r.st.LeftoversKilled),
			"watchdogRestarts": int64(r.st.WatchdogRestarts),
		},
	}
	if len(r.st.CurrentTasks) > 0 && r.st.CurrentTasks[0].Kind != SourceCanary {
		// A canary is no task of the pool's (and no kind a heartbeat names).
		hb.CurrentTask = taskRef(r.st.CurrentTasks[0])
	}
	for _, c := range r.st.Checks {
		if c.CheckedAt.IsZero() {
			continue
		}
		msg := c.Message
		if msg == "" {
			msg = c.Value
		}
		hb.Health = append(hb.Health, client.HealthResult{Name: c.Name, OK: c.OK && !c.Tripped, Message: msg})
	}
	if p := r.pendingChecks(); len(p) > 0 {
		hb.Health = append(hb.Health, client.HealthResult{Name: "first-pass", OK: false, Message: r.pendingDetail(p)})
	}
	if q := r.st.Quarantine; q != nil && q.Source != SourceProvisioner {
		hb.Health = append(hb.Health, client.HealthResult{Name: "quarantine", OK: false, Message: q.Source + ": " + q.Reason})
	}
	return hb
}

// taskRef is a run as the provisioner sees it: for a Buildbot build its
// kind, builder and build number, as `runner status` shows. A Taskcluster
// run names no kind (the provisioner's default), which provisioners that
// predate the field also accept.
func taskRef(ct CurrentTask) *client.TaskRef {
	ref := &client.TaskRef{TaskID: ct.TaskID, RunID: ct.RunID}
	if ct.Kind == SourceBuildbot && ct.Buildbot != nil && ct.Buildbot.Builder != "" {
		ref.Kind, ref.Builder, ref.BuildNumber = client.KindBuildbot, ct.Buildbot.Builder, ct.Buildbot.BuildNumber
	}
	return ref
}

// handleDirective acts on a directive without waiting for long work; each
// branch is idempotent, since a directive can come again after a crash.
func (r *Runner) handleDirective(_ context.Context, d client.Directive) error {
	reason := d.Reason
	if reason == "" {
		reason = "no reason given"
	}
	switch d.Kind {
	case client.DirectiveDrain:
		r.mu.Lock()
		if !r.st.Draining {
			r.log.Info("drain requested by the provisioner", "reason", reason)
		}
		r.st.Draining, r.st.DrainReason = true, "the provisioner: "+reason
		r.commit()
		r.mu.Unlock()
	case client.DirectiveReassign:
		// onAssignment has the new pool; the drain that preceded the move ends.
		r.mu.Lock()
		r.st.Draining, r.st.DrainReason = false, ""
		r.commit()
		r.mu.Unlock()
	case client.DirectiveReboot:
		r.mu.Lock()
		if r.st.RebootPending == nil && r.st.RebootIssued == nil {
			r.requestReboot("requested by the provisioner, after the running task: "+reason, true, 0)
		}
		r.commit()
		r.mu.Unlock()
		go r.maybeReboot()
	case client.DirectiveQuarantine:
		r.mu.Lock()
		q := &Quarantine{Source: SourceProvisioner, Reason: "provisioner: " + reason, Until: d.Until}
		if cur := r.st.Quarantine; cur == nil || cur.Source != q.Source || cur.Reason != q.Reason || !sameTime(cur.Until, q.Until) {
			r.setQuarantine(q)
		}
		r.keepCanary(d.Canary)
		r.commit()
		r.mu.Unlock()
	case client.DirectiveUnquarantine:
		r.mu.Lock()
		if q := r.st.Quarantine; q != nil {
			r.log.Info("quarantine lifted by the provisioner", "source", q.Source, "reason", reason)
			if q.Source == SourceBootLoop {
				r.st.RebootHistory = nil
			}
		}
		r.liftQuarantine()
		r.st.Canary = nil
		r.commit()
		r.mu.Unlock()
	case client.DirectiveCancelTask:
		if d.Task == nil || d.Task.TaskID == "" {
			r.log.Warn("cancel-task directive without a task ignored", "directive", d.ID)
			return nil
		}
		r.log.Info("task cancelled: stopping it", "taskId", d.Task.TaskID, "runId", d.Task.RunID, "reason", reason)
		r.pushCancel.cancel(d.Task.TaskID, d.Task.RunID)
	case client.DirectiveNewCredentials:
		// The link swapped them and onAssignment applied them.
	default:
		// Retrying cannot help an unknown kind, and it would hold back
		// the directives after it.
		r.log.Warn("directive of an unknown kind ignored; upgrade the runner", "kind", d.Kind, "directive", d.ID)
	}
	return nil
}

// sameTime compares optional times.
func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}
