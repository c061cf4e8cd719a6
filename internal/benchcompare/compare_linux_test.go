//go:build linux

package benchcompare

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// mode is how much a comparison run measures.
type mode struct {
	name         string
	rounds       int
	idleWindow   time.Duration
	latencyTasks int
	noopTasks    map[string]int // by worker: generic-worker spends ≥ 5 s a task
	cancelTasks  int            // labrunner with Pulse; the others cancel one a round
	// cancelGiveUp bounds the wait for a cancelled task's processes to go
	// (generic-worker notices at its next reclaim, minutes later).
	cancelGiveUp time.Duration
}

var modes = map[string]mode{
	"quick": {name: "quick", rounds: 1, idleWindow: 5 * time.Second, latencyTasks: 3,
		noopTasks: map[string]int{Labrunner: 20, GenericWorker: 3}, cancelTasks: 3, cancelGiveUp: 15 * time.Second},
	"full": {name: "full", rounds: 3, idleWindow: 30 * time.Second, latencyTasks: 8,
		noopTasks: map[string]int{Labrunner: 100, GenericWorker: 5}, cancelTasks: 10, cancelGiveUp: 35 * time.Second},
}

// TestCompareWorkers is the comparison harness: LABRUNNER_BENCH_COMPARE=quick
// or full runs it, LABRUNNER_BENCH_DOC=path writes the table into that
// markdown file between the markers, LABRUNNER_BENCH_DIR (default
// <module>/.cache/bench) holds the binaries and each worker's files and log,
// LABRUNNER_BENCH_PULSE (default amqp://guest:guest@127.0.0.1:5672, the
// RabbitMQ of `make services`) is where devstack publishes Pulse messages.
func TestCompareWorkers(t *testing.T) {
	m, ok := modes[os.Getenv("LABRUNNER_BENCH_COMPARE")]
	if !ok {
		t.Skip("LABRUNNER_BENCH_COMPARE is not quick or full (`make bench-compare`, `make bench-quick`)")
	}
	dir := os.Getenv("LABRUNNER_BENCH_DIR")
	if dir == "" {
		dir = filepath.Join(goOut(t, ".", "list", "-m", "-f", "{{.Dir}}"), ".cache", "bench")
	}
	load := loadAverage()
	built := time.Now()
	b := buildBinaries(t, dir)
	t.Logf("built devstack, runner, generic-worker, livelog, taskcluster-proxy in %s", time.Since(built).Round(time.Second))
	runDir := filepath.Join(dir, "run-"+time.Now().UTC().Format("20060102T150405"))
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		t.Fatal(err)
	}
	pulseURL := os.Getenv("LABRUNNER_BENCH_PULSE")
	if pulseURL == "" {
		pulseURL = "amqp://guest:guest@127.0.0.1:5672"
	}
	s := startDevstack(t, b, runDir, pulseURL)
	cmdCost := commandCost(t)

	latP50 := Row{Figure: "createTask → command started, idle worker, p50", Unit: "ms"}
	latP99 := Row{Figure: "createTask → command started, idle worker, p99", Unit: "ms",
		Note: fmt.Sprintf("%d tasks a round (nearest rank: the p99 of fewer than 100 is their maximum)", m.latencyTasks)}
	noop1 := Row{Figure: "no-op tasks per second, capacity 1", Unit: "tasks/s", HigherIsBetter: true,
		Note: fmt.Sprintf("labrunner %d tasks, generic-worker %d a round; generic-worker lets ≥ 5 s pass between claimWork calls (not configurable)", m.noopTasks[Labrunner], m.noopTasks[GenericWorker])}
	over := Row{Figure: "worker time per no-op task beyond the command", Unit: "ms",
		Note: "per-task time minus /bin/true run directly (" + strconv.FormatFloat(float64(cmdCost.Microseconds())/1000, 'f', 1, 64) + " ms); includes generic-worker's claimWork spacing"}
	noop4 := Row{Figure: "no-op tasks per second, capacity 4", Unit: "tasks/s", HigherIsBetter: true,
		Note: "generic-worker v44 runs one task at a time"}
	giveUp := m.cancelGiveUp.String()
	cancelPulse := Row{Figure: "cancelTask → the task's process tree gone, labrunner with Pulse", Unit: "ms",
		Note: fmt.Sprintf("labrunner p50 of %d a round; generic-worker has no Pulse cancellation, so its cell is the row below's", m.cancelTasks)}
	cancelPoll := Row{Figure: "cancelTask → the task's process tree gone, without Pulse", Unit: "ms",
		Note: "one a round; labrunner polls a running task's status every cancelPollInterval (default 30 s); generic-worker notices at its next reclaim, the harness gives up after " + giveUp}
	logRSS := Row{Figure: "peak RSS while a task prints 50 MB of log (worker's process tree)", Unit: "MB",
		Note: "includes the task's own `yes` and `head` (the same on both sides) and generic-worker's livelog process"}
	logTime := Row{Figure: "task printing 50 MB of log: createTask → resolved", Unit: "s",
		Note: "log streamed live, then uploaded to devstack (gzip on both sides)"}
	termExit := Row{Figure: "SIGTERM → worker exited, with a task running", Unit: "ms",
		Note: "labrunner with runner.drainGrace 100ms (its default, 10 min, lets running tasks finish first), then it stops the task (SIGTERM to its process group, killGrace); generic-worker handles only SIGINT, so SIGTERM ends it at once; the harness gives up after 30 s"}
	termProcs := Row{Figure: "task processes left running after that SIGTERM", Unit: "",
		Note: "the task's background `sleep`"}
	termFiles := Row{Figure: "entries left in tasksDir after that SIGTERM", Unit: "",
		Note: "task directories and logs; the killed task's on generic-worker's side"}
	rss := Row{Figure: "idle RSS (peak, worker's process tree)", Unit: "MB",
		Note: "labrunner's includes its live log server, which generic-worker starts per task"}
	cpu := Row{Figure: "idle CPU", Unit: "% of a core", Note: fmt.Sprintf("over %s", m.idleWindow)}

	ws := workers()
	for round := range m.rounds {
		order := ws
		if round%2 == 1 {
			order = []worker{ws[1], ws[0]}
		}
		for _, w := range order {
			wdir := func(scenario string) (string, string) {
				wt := queueName(w.name, round, scenario)
				d := filepath.Join(runDir, wt)
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
				return d, wt
			}
			d, wt := wdir("idle")
			p := w.start(t, s, b, d, wt, startOpts{capacity: 1})
			r, c := idleFootprint(p, m.idleWindow)
			rss.Add(w.name, r)
			cpu.Add(w.name, c)
			lat := startLatencies(t, s, w, p, wt, d, m.latencyTasks)
			latP50.Add(w.name, Percentile(lat, 50))
			latP99.Add(w.name, Percentile(lat, 99))
			p.stop()
			t.Logf("round %d %s: idle RSS %.1f MB, CPU %.3f %%, start latency ms %v", round, w.name, r, c, lat)

			d, wt = wdir("noop1")
			perSec, ms := noopThroughput(t, s, b, w, d, wt, m.noopTasks[w.name], 1)
			noop1.Add(w.name, perSec)
			over.Add(w.name, ms-float64(cmdCost.Microseconds())/1000)
			t.Logf("round %d %s: capacity 1: %.2f tasks/s, %.1f ms a task", round, w.name, perSec, ms)
			if w.name == Labrunner {
				d, wt = wdir("cancel")
				p = w.start(t, s, b, d, wt, startOpts{capacity: 1, pulse: true})
				var lat []float64
				for i := range m.cancelTasks {
					ms, gone := cancelToGone(t, s, w, p, wt, d, i, m.cancelGiveUp)
					if !gone {
						t.Fatalf("labrunner with Pulse: a cancelled task's process outlived %s; log:\n%s", m.cancelGiveUp, p.tail())
					}
					lat = append(lat, ms)
				}
				p.stop()
				cancelPulse.Add(w.name, Percentile(lat, 50))
				t.Logf("round %d %s: cancel with Pulse, ms %v", round, w.name, lat)
			}
			d, wt = wdir("cancelpoll")
			p = w.start(t, s, b, d, wt, startOpts{capacity: 1})
			ms, gone := cancelToGone(t, s, w, p, wt, d, 0, m.cancelGiveUp)
			p.stop()
			rows := []*Row{&cancelPoll}
			if w.name == GenericWorker {
				rows = append(rows, &cancelPulse)
			}
			for _, r := range rows {
				if gone {
					r.Add(w.name, ms)
				} else {
					r.AddAtLeast(w.name, ms)
				}
			}
			t.Logf("round %d %s: cancel without Pulse: %.1f ms (gone: %v)", round, w.name, ms, gone)
			d, wt = wdir("log50")
			p = w.start(t, s, b, d, wt, startOpts{capacity: 1})
			time.Sleep(3 * time.Second) // start-up, as for the idle footprint
			peak, secs := logPeak(t, s, p, wt, 50)
			p.stop()
			logRSS.Add(w.name, peak)
			logTime.Add(w.name, secs)
			t.Logf("round %d %s: 50 MB log: peak RSS %.1f MB, %.1f s", round, w.name, peak, secs)

			d, wt = wdir("sigterm")
			p = w.start(t, s, b, d, wt, startOpts{capacity: 1, drainGrace: 100 * time.Millisecond})
			left := sigtermWithTask(t, s, p, wt, d, filepath.Join(d, "tasks"), 30*time.Second)
			if left.exited {
				termExit.Add(w.name, left.exitMS)
			} else {
				termExit.AddAtLeast(w.name, left.exitMS)
			}
			termProcs.Add(w.name, float64(left.processes))
			termFiles.Add(w.name, float64(left.taskDirents))
			t.Logf("round %d %s: SIGTERM with a task: %+v", round, w.name, left)

			if w.maxCapacity >= 4 {
				d, wt = wdir("noop4")
				perSec, ms = noopThroughput(t, s, b, w, d, wt, m.noopTasks[w.name], 4)
				noop4.Add(w.name, perSec)
				t.Logf("round %d %s: capacity 4: %.2f tasks/s, %.1f ms a task", round, w.name, perSec, ms)
			}
		}
	}

	machine := Machine{
		Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), GoVersion: runtime.Version(),
		OS: runtime.GOOS + "/" + runtime.GOARCH, CPUs: strconv.Itoa(runtime.NumCPU()), LoadAverage: load,
		GenericWorkerVersion: b.gwVersion, Rounds: m.rounds, Mode: m.name,
	}
	table := Markdown(machine, []Row{latP50, latP99, cancelPulse, cancelPoll, noop1, over, noop4, rss, cpu, logRSS, logTime, termExit, termProcs, termFiles})
	fmt.Println(table)
	if doc := os.Getenv("LABRUNNER_BENCH_DOC"); doc != "" {
		raw, err := os.ReadFile(doc)
		if err != nil {
			t.Fatalf("read %s: %v", doc, err)
		}
		out, err := ReplaceSection(string(raw), table)
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if err := os.WriteFile(doc, []byte(out), 0o644); err != nil {
			t.Fatalf("write %s: %v", doc, err)
		}
	}
}
