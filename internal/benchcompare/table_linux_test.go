//go:build linux

package benchcompare

import (
	"fmt"
	"strconv"
	"sync"
)

// table is the comparison's rows, filled by both workers' scenarios (at
// the same time in quick mode, hence the lock).
type table struct {
	mu                                  sync.Mutex
	latP50, latP99                      Row
	cancelPulse, cancelPoll, queueCalls Row
	noop1, over, noop4                  Row
	rss, cpu                            Row
	mountCold, mountWarm                Row
	logRSS, logTime                     Row
	termExit, termProcs, termFiles      Row
}

func newTable(m mode) *table {
	giveUp := m.cancelGiveUp.String()
	mount := mb(m.mountMB) + " zip"
	return &table{
		latP50: Row{Figure: "createTask → command started, idle worker, p50", Unit: "ms"},
		latP99: Row{Figure: "createTask → command started, idle worker, p99", Unit: "ms",
			Note: fmt.Sprintf("%d tasks a round (nearest rank: the p99 of fewer than 100 is their maximum)", m.latencyTasks)},
		cancelPulse: Row{Figure: "cancelTask → the task's process tree gone, labrunner with Pulse", Unit: "ms",
			Note: fmt.Sprintf("labrunner p50 of %d a round; generic-worker has no Pulse cancellation, so its cell is the row below's", m.cancelTasks)},
		cancelPoll: Row{Figure: "cancelTask → the task's process tree gone, without Pulse", Unit: "ms",
			Note: "one a round; labrunner polls a running task's status every cancelPollInterval (default 1 s); generic-worker notices at its next reclaim, the harness gives up after " + giveUp},
		queueCalls: Row{Figure: "queue calls per second while one task runs, without Pulse", Unit: "calls/s",
			Note: fmt.Sprintf("counted by a proxy in front of devstack over %s of a running task: labrunner's are its status polls (one unauthenticated queue.status GET a second); the load the row above costs", m.statusWindow)},
		noop1: Row{Figure: "no-op tasks per second, capacity 1", Unit: "tasks/s", HigherIsBetter: true,
			Note: fmt.Sprintf("labrunner %d tasks, generic-worker %d a round; generic-worker lets ≥ 5 s pass between claimWork calls (not configurable)", m.noopTasks[Labrunner], m.noopTasks[GenericWorker])},
		over: Row{Figure: "worker time per no-op task beyond the command", Unit: "ms"},
		noop4: Row{Figure: "no-op tasks per second, capacity 4", Unit: "tasks/s", HigherIsBetter: true,
			Note: "generic-worker v44 runs one task at a time"},
		rss: Row{Figure: "idle RSS (peak, worker's process tree)", Unit: "MB",
			Note: "labrunner's includes its live log server, which generic-worker starts per task"},
		cpu: Row{Figure: "idle CPU", Unit: "% of a core", Note: fmt.Sprintf("over %s", m.idleWindow)},
		mountCold: Row{Figure: "createTask → command started, mounting a " + mount + " artifact, cold", Unit: "ms",
			Note: "read-only directory mount from an upstream task's s3 artifact, sha256 given; a fresh worker: download, hash, unpack"},
		mountWarm: Row{Figure: "the same, warm (second task on that worker)", Unit: "ms",
			Note: "the zip in the worker's download cache: labrunner re-hashes it (a damaged cache is never used) and unpacks; generic-worker unpacks"},
		logRSS: Row{Figure: "peak RSS while a task prints " + mb(m.logMB) + " of log (worker's process tree)", Unit: "MB",
			Note: "includes the task's own `yes` and `head` (the same on both sides) and generic-worker's livelog process"},
		logTime: Row{Figure: "task printing " + mb(m.logMB) + " of log: createTask → resolved", Unit: "s",
			Note: "log streamed live, then uploaded to devstack (gzip on both sides)"},
		termExit: Row{Figure: "SIGTERM → worker exited, with a task running", Unit: "ms",
			Note: "labrunner with runner.drainGrace 100ms (its default, 10 min, lets running tasks finish first), then it stops the task (SIGTERM to its process group, killGrace); generic-worker handles only SIGINT, so SIGTERM ends it at once; the harness gives up after 30 s"},
		termProcs: Row{Figure: "task processes left running after that SIGTERM", Unit: "",
			Note: "the task's background `sleep`"},
		termFiles: Row{Figure: "entries left in tasksDir after that SIGTERM", Unit: "",
			Note: "task directories and logs; the killed task's on generic-worker's side"},
	}
}

// setCommandCost notes in the overhead row what was subtracted.
func (tab *table) setCommandCost(ms float64) {
	tab.over.Note = "per-task time minus /bin/true run directly (" + strconv.FormatFloat(ms, 'f', 1, 64) + " ms); includes generic-worker's claimWork spacing"
}

func (tab *table) add(r *Row, worker string, v float64) {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	r.Add(worker, v)
}

func (tab *table) addAtLeast(r *Row, worker string, v float64) {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	r.AddAtLeast(worker, v)
}

// rows is the table in the order the document shows it.
func (tab *table) rows() []Row {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	return []Row{tab.latP50, tab.latP99, tab.cancelPulse, tab.cancelPoll, tab.queueCalls, tab.noop1, tab.over, tab.noop4,
		tab.rss, tab.cpu, tab.mountCold, tab.mountWarm, tab.logRSS, tab.logTime, tab.termExit, tab.termProcs, tab.termFiles}
}
