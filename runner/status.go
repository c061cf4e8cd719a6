package runner

// Status is what `runner status` shows, live from the control API or, when
// the service is not running, rebuilt from the state file. Its JSON form
// is stable and documented in docs/status.md: fields are only ever added.

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/labrunner/labrunner/platform"
)

// StatusSchemaVersion is the version of Status's JSON form.
const StatusSchemaVersion = 1

// Status is the runner's status.
type Status struct {
	SchemaVersion int           `json:"schemaVersion"`
	Version       string        `json:"version"`
	Service       ServiceStatus `json:"service"`
	Machine       MachineStatus `json:"machine"`
	// TaskUser is the account tasks run as: per-task, console or service
	// (docs/operations.md, "Task users"); empty in a status read from a
	// state file written before the field existed.
	TaskUser string `json:"taskUser"`
	// TaskUserKill, in per-task mode, is how the accounts' processes are
	// killed: cgroup, uid or token (platform.TaskUserKill).
	TaskUserKill string `json:"taskUserKill,omitempty"`
	State        string `json:"state"`
	Draining     bool   `json:"draining"`
	// DrainReason says who asked for the drain and why (while draining).
	DrainReason string `json:"drainReason,omitempty"`
	// Polling is true while a claim (claimWork, or the bridge's claim) is
	// in flight; a drain, move, quarantine or stop abandons it at once.
	Polling      bool                `json:"polling"`
	CurrentTasks []CurrentTaskStatus `json:"currentTasks"`
	RecentTasks  []RecentTaskStatus  `json:"recentTasks"`
	Checks       []CheckStatus       `json:"checks"`
	// PendingChecks names the checks that have not passed once since the
	// runner started (state booting): nothing is claimed until it is
	// empty. PendingDetail says why each is pending, PendingSince since
	// when (the runner's start).
	PendingChecks []string     `json:"pendingChecks"`
	PendingDetail string       `json:"pendingDetail,omitempty"`
	PendingSince  *time.Time   `json:"pendingSince,omitempty"`
	Quarantine    *Quarantine  `json:"quarantine"`
	Reboot        RebootStatus `json:"reboot"`
	// LastClaimAt is the last successful claimWork call (null if none).
	LastClaimAt *time.Time `json:"lastClaimAt"`
	// SinceLastClaimSeconds is the time since then (null if none).
	SinceLastClaimSeconds *float64 `json:"sinceLastClaimSeconds"`
	// ClaimFailure is set while claims fail: the queue (or the bridge) is
	// unreachable or refuses the worker's credentials (null otherwise).
	ClaimFailure *ClaimFailure `json:"claimFailure"`
	Counters     Counters      `json:"counters"`
	// UpdatedAt is when the state was last written.
	UpdatedAt time.Time `json:"updatedAt"`
	// Provisioner is the connection to the provisioner (null without one,
	// or when the runner is not running).
	Provisioner *LinkStatus `json:"provisioner"`
}

// ClaimFailure describes claims failing in a row.
type ClaimFailure struct {
	// Error is the last claim's error, with its root cause.
	Error string `json:"error"`
	// Since is when the first of the failures in a row happened.
	Since time.Time `json:"since"`
	// InARow counts the failed claims since then.
	InARow int `json:"inARow"`
}

// ServiceStatus says whether the runner answered.
type ServiceStatus struct {
	// Running is false when the status was read from the state file.
	Running       bool   `json:"running"`
	PID           int    `json:"pid,omitempty"`
	StateFile     string `json:"stateFile"`
	ControlSocket string `json:"controlSocket"`
	// Note explains a status read from the state file.
	Note string `json:"note,omitempty"`
	// Manager is what the OS service manager says (filled in by the CLI).
	Manager string `json:"manager,omitempty"`
}

// MachineStatus names the machine.
type MachineStatus struct {
	Hostname      string  `json:"hostname"`
	WorkerGroup   string  `json:"workerGroup"`
	WorkerID      string  `json:"workerId"`
	TaskQueueID   string  `json:"taskQueueId"`
	UptimeSeconds float64 `json:"uptimeSeconds"`
}

// CurrentTaskStatus is a running task.
type CurrentTaskStatus struct {
	CurrentTask
	ElapsedSeconds float64 `json:"elapsedSeconds"`
}

// RecentTaskStatus is a finished task.
type RecentTaskStatus struct {
	TaskRecord
	DurationSeconds float64 `json:"durationSeconds"`
}

// RebootStatus is the reboot policy's progress.
type RebootStatus struct {
	TasksSinceBoot   int     `json:"tasksSinceBoot"`
	AfterEveryTask   bool    `json:"afterEveryTask"`
	AfterTasks       int     `json:"afterTasks"`
	UptimeSeconds    float64 `json:"uptimeSeconds"`
	MaxUptimeSeconds float64 `json:"maxUptimeSeconds"`
	OnExitCodes      []int   `json:"onExitCodes"`
	// Next says what the policy will reboot for next.
	Next    string  `json:"next"`
	Pending *Reboot `json:"pending"`
	Issued  *Reboot `json:"issued"`
	// Last is the reboot that preceded this boot.
	Last *Reboot `json:"last"`
	// RecentReboots counts reboots within the boot-loop window.
	RecentReboots         int     `json:"recentReboots"`
	BootLoopMax           int     `json:"bootLoopMax"`
	BootLoopWindowSeconds float64 `json:"bootLoopWindowSeconds"`
}

// Counters are the runner's running totals.
type Counters struct {
	TasksTotal          int `json:"tasksTotal"`
	InfraFailuresInARow int `json:"infraFailuresInARow"`
	LeftoversKilled     int `json:"leftoversKilled"`
	WatchdogRestarts    int `json:"watchdogRestarts"`
}

// BuildStatus makes a Status from a state; running says whether it is the
// live state of a running runner.
func BuildStatus(st State, cfg *Config, version string, running bool, now time.Time, uptime time.Duration) Status {
	host, _ := os.Hostname()
	s := Status{
		SchemaVersion: StatusSchemaVersion,
		Version:       version,
		Service:       ServiceStatus{Running: running, StateFile: cfg.StateFile, ControlSocket: cfg.ControlSocket},
		Machine:       MachineStatus{Hostname: host, WorkerGroup: st.WorkerGroup, WorkerID: st.WorkerID, TaskQueueID: st.TaskQueueID, UptimeSeconds: uptime.Seconds()},
		TaskUser:      st.TaskUser,
		TaskUserKill:  st.TaskUserKill,
		State:         st.Phase,
		Draining:      st.Draining,
		DrainReason:   st.DrainReason,
		CurrentTasks:  []CurrentTaskStatus{},
		RecentTasks:   []RecentTaskStatus{},
		Checks:        st.Checks,
		PendingChecks: []string{},
		Quarantine:    st.Quarantine,
		Counters:      Counters{TasksTotal: st.TasksTotal, InfraFailuresInARow: st.InfraFailuresInARow, LeftoversKilled: st.LeftoversKilled, WatchdogRestarts: st.WatchdogRestarts},
		UpdatedAt:     st.UpdatedAt,
	}
	if s.Checks == nil {
		s.Checks = []CheckStatus{}
	}
	if running {
		s.Service.PID = os.Getpid()
	} else {
		s.Service.Note = "the runner is not running; this is the last state it wrote"
		if s.State != PhaseStopped && s.State != "" {
			s.Service.Note += fmt.Sprintf(" (it was %s: it did not stop cleanly)", s.State)
		}
		s.State = PhaseStopped
	}
	for _, c := range st.CurrentTasks {
		s.CurrentTasks = append(s.CurrentTasks, CurrentTaskStatus{CurrentTask: c, ElapsedSeconds: now.Sub(c.Started).Seconds()})
	}
	for _, t := range st.RecentTasks {
		s.RecentTasks = append(s.RecentTasks, RecentTaskStatus{TaskRecord: t, DurationSeconds: t.Ended.Sub(t.Started).Seconds()})
	}
	if !st.LastClaimAt.IsZero() {
		at := st.LastClaimAt
		since := now.Sub(at).Seconds()
		s.LastClaimAt, s.SinceLastClaimSeconds = &at, &since
	}
	rb := cfg.Reboot
	s.Reboot = RebootStatus{
		TasksSinceBoot: st.TasksSinceBoot, AfterEveryTask: rb.AfterEveryTask, AfterTasks: rb.AfterTasks,
		UptimeSeconds: uptime.Seconds(), MaxUptimeSeconds: rb.MaxUptime.Seconds(), OnExitCodes: rb.OnExitCodes,
		Next: nextRebootReason(&st, cfg, uptime), Pending: st.RebootPending, Issued: st.RebootIssued, Last: st.LastReboot,
		BootLoopMax: rb.BootLoopMax, BootLoopWindowSeconds: rb.BootLoopWindow.Seconds(),
	}
	if s.Reboot.OnExitCodes == nil {
		s.Reboot.OnExitCodes = []int{}
	}
	for _, t := range st.RebootHistory {
		if now.Sub(t) < rb.BootLoopWindow.Duration {
			s.Reboot.RecentReboots++
		}
	}
	return s
}

// Status is the live status.
func (r *Runner) Status() Status {
	up, _ := r.probes.Uptime()
	r.mu.Lock()
	s := BuildStatus(r.st.clone(), r.cfg, r.version, true, r.now(), up)
	s.Polling = r.polling > 0
	link := r.link
	if f := r.claimFailure; f != nil {
		cp := *f
		s.ClaimFailure = &cp
	}
	if r.startedAt.IsZero() {
		// Nothing is measured or claimed before the provisioner has
		// answered: the state file's phase is the previous process's.
		s.State = PhaseStarting
		s.PendingDetail = "waiting for the provisioner's assignment"
		s.Checks = []CheckStatus{}
	} else if p := r.pendingChecks(); len(p) > 0 {
		since := r.startedAt
		s.PendingChecks, s.PendingDetail, s.PendingSince = p, r.pendingDetail(p), &since
	}
	r.mu.Unlock()
	if link != nil {
		ls := link.Status()
		s.Provisioner = &ls
	}
	return s
}

// FormatStatus writes the status for people.
func FormatStatus(w io.Writer, s *Status) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	svc := "running"
	if !s.Service.Running {
		svc = "NOT RUNNING — " + s.Service.Note
	} else if s.Service.PID != 0 {
		svc += fmt.Sprintf(" (pid %d)", s.Service.PID)
	}
	p("runner\t%s", s.Version)
	p("service\t%s", svc)
	if s.Service.Manager != "" {
		p("  manager\t%s", s.Service.Manager)
	}
	p("machine\t%s", s.Machine.Hostname)
	switch {
	case s.Machine.WorkerID == "" && s.Provisioner != nil:
		p("worker\tnone yet (the provisioner assigns it)")
	case s.Machine.TaskQueueID == "":
		p("worker\t%s/%s, no task queue", s.Machine.WorkerGroup, s.Machine.WorkerID)
	default:
		p("worker\t%s/%s in %s", s.Machine.WorkerGroup, s.Machine.WorkerID, s.Machine.TaskQueueID)
	}
	if s.Provisioner != nil {
		p("provisioner\t%s", s.Provisioner.Summary(time.Now()))
	}
	state := s.State
	if s.Draining && state != PhaseDraining && state != PhaseDrained {
		state += " (drain requested)"
	}
	if s.Draining && s.DrainReason != "" {
		state += " by " + s.DrainReason
	}
	if s.PendingDetail != "" {
		state += ": " + s.PendingDetail
		if s.PendingSince != nil {
			state += fmt.Sprintf(" (started %s ago)", secs(time.Since(*s.PendingSince).Seconds()))
		}
	}
	p("state\t%s", state)
	if s.TaskUser != "" {
		p("task user\t%s", describeTaskUser(s.TaskUser, s.TaskUserKill))
	}
	if len(s.CurrentTasks) == 0 {
		p("current task\tnone")
	}
	for _, c := range s.CurrentTasks {
		p("current task\t%s, %s elapsed", describeRun(c.CurrentTask), secs(c.ElapsedSeconds))
		p("  log\t%s", c.LogURL)
	}
	if q := s.Quarantine; q != nil {
		until := "until lifted"
		if q.Until != nil {
			until = "until " + q.Until.Local().Format(time.RFC3339)
		}
		p("quarantine\t%s, %s, since %s", q.Source, until, q.Since.Local().Format(time.RFC3339))
		p("  reason\t%s", q.Reason)
		if q.Queue != "" {
			p("  queue\t%s", q.Queue)
		}
	} else {
		p("quarantine\tno")
	}
	last := "never"
	if s.SinceLastClaimSeconds != nil {
		last = fmt.Sprintf("%s ago (%s)", secs(*s.SinceLastClaimSeconds), s.LastClaimAt.Local().Format(time.RFC3339))
	}
	if f := s.ClaimFailure; f != nil {
		last += fmt.Sprintf("; FAILING for %s (%s in a row)", secs(time.Since(f.Since).Seconds()), plural(f.InARow, "claim", "claims"))
	}
	p("last claim\t%s", last)
	if f := s.ClaimFailure; f != nil {
		p("  error\t%s", f.Error)
	}
	rb := s.Reboot
	upMax := "no maximum"
	if rb.MaxUptimeSeconds > 0 {
		upMax = "max " + secs(rb.MaxUptimeSeconds)
	}
	after := "no limit"
	if rb.AfterEveryTask {
		after = "reboot after every task"
	} else if rb.AfterTasks > 0 {
		after = fmt.Sprintf("reboot after %d", rb.AfterTasks)
	}
	p("reboot policy\t%s since boot (%s); uptime %s (%s)", plural(rb.TasksSinceBoot, "task", "tasks"), after, secs(rb.UptimeSeconds), upMax)
	p("  next reboot\t%s", rb.Next)
	p("  boot loop\t%d of %d reboots within %s", rb.RecentReboots, rb.BootLoopMax, secs(rb.BootLoopWindowSeconds))
	if rb.Last != nil {
		l := fmt.Sprintf("%s (%s)", rb.Last.Reason, rb.Last.IssuedAt.Local().Format(time.RFC3339))
		if rb.Last.Error != "" {
			l += " FAILED: " + rb.Last.Error
		}
		p("  last reboot\t%s", l)
	}
	p("counters\t%s in all, %d infrastructure failures in a row, %s killed, %s",
		plural(s.Counters.TasksTotal, "task", "tasks"), s.Counters.InfraFailuresInARow,
		plural(s.Counters.LeftoversKilled, "leftover process", "leftover processes"), plural(s.Counters.WatchdogRestarts, "watchdog restart", "watchdog restarts"))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nchecks:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tRESULT\tVALUE\tTHRESHOLD\tNOTE")
	for _, c := range s.Checks {
		res := "ok"
		switch {
		case slices.Contains(s.PendingChecks, c.Name):
			switch {
			case c.CheckedAt.IsZero():
				res = "PENDING (not run yet)"
			case c.FailuresInARow > 0:
				res = fmt.Sprintf("PENDING (no pass since start, %d failures)", c.FailuresInARow)
			default:
				res = "PENDING (no pass since start)"
			}
		case c.Tripped:
			res = fmt.Sprintf("TRIPPED (%d passes)", c.PassesInARow)
		case !c.OK && c.CheckedAt.IsZero():
			res = "not run"
		case !c.OK:
			res = fmt.Sprintf("failing (%d in a row)", c.FailuresInARow)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", c.Name, res, c.Value, c.Threshold, c.Message)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nlast tasks:")
	if len(s.RecentTasks) == 0 {
		fmt.Fprintln(w, "  none")
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range s.RecentTasks {
		run := describeRun(CurrentTask{TaskID: t.TaskID, RunID: t.RunID, Kind: t.Kind, Buildbot: t.Buildbot})
		fmt.Fprintf(tw, "  %s\t%s\texit %d\t%s\t%s\n", run, t.Resolution, t.ExitCode, secs(t.DurationSeconds), t.Ended.Local().Format(time.RFC3339))
	}
	return tw.Flush()
}

// secs prints seconds as a rounded duration.
func secs(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d >= time.Hour:
		d = d.Round(time.Minute)
	case d >= time.Second:
		d = d.Round(time.Second)
	default:
		d = d.Round(time.Millisecond)
	}
	out := d.String()
	if strings.HasSuffix(out, "m0s") {
		out = strings.TrimSuffix(out, "0s")
	}
	return out
}

// plural renders "1 claim", "3 claims".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// describeTaskUser is the task-user mode with what it means, and how a
// per-task account's processes are killed.
func describeTaskUser(mode, kill string) string {
	switch mode {
	case "service":
		return "service (tasks run as the runner's own account: no isolation)"
	case "per-task":
		switch kill {
		case platform.TaskKillCgroup:
			return "per-task (a fresh account for each task; its processes killed through its cgroup)"
		case platform.TaskKillUID:
			return "per-task (a fresh account for each task; its processes found by uid and killed)"
		case platform.TaskKillToken:
			return "per-task (a fresh account for each task; its processes found by token and killed)"
		}
		return "per-task (a fresh account for each task)"
	case "console":
		return "console (the console's logged-in user)"
	}
	return mode
}
