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
	name   string
	rounds int
	// parallel runs the two workers' scenarios at the same time (quick
	// mode: it checks that every scenario works, its figures are not
	// written anywhere); full mode runs them one after the other.
	parallel     bool
	startup      time.Duration // a fresh worker's start-up, before measuring its footprint
	idleWindow   time.Duration
	latencyTasks int
	noopTasks    map[string]int // by worker: generic-worker spends ≥ 5 s a task
	cancelTasks  int            // labrunner with Pulse; the others cancel one a round
	// cancelGiveUp bounds the wait for a cancelled task's processes to go
	// (generic-worker notices at its next reclaim, minutes later).
	cancelGiveUp time.Duration
	// statusWindow is how long the queue calls a worker makes while a
	// task runs are counted.
	statusWindow time.Duration
	logMB        int // the task printing a lot of log prints this many MB
	mountMB      int // the zip the mount scenario mounts
	servers      serverBench
}

var modes = map[string]mode{
	"quick": {name: "quick", rounds: 1, parallel: true, startup: time.Second, idleWindow: time.Second, latencyTasks: 1,
		noopTasks: map[string]int{Labrunner: 5, GenericWorker: 2}, cancelTasks: 1, cancelGiveUp: 2 * time.Second,
		statusWindow: 2 * time.Second, logMB: 2, mountMB: 2, servers: quickServers},
	"full": {name: "full", rounds: 3, startup: 3 * time.Second, idleWindow: 30 * time.Second, latencyTasks: 8,
		noopTasks: map[string]int{Labrunner: 100, GenericWorker: 5}, cancelTasks: 10, cancelGiveUp: 10 * time.Second,
		statusWindow: 5 * time.Second, logMB: 50, mountMB: 200, servers: fullServers},
}

// TestCompareWorkers is the comparison harness: LABRUNNER_BENCH_COMPARE=quick
// or full runs it, LABRUNNER_BENCH_DOC=path writes the tables into that
// markdown file between the markers, LABRUNNER_BENCH_DIR (default
// <module>/.cache/bench) holds the binaries and each worker's files and log,
// LABRUNNER_BENCH_PULSE (default amqp://guest:guest@127.0.0.1:5672, the
// RabbitMQ of `make services`) is where devstack publishes Pulse messages.
func TestCompareWorkers(t *testing.T) {
	m, ok := modes[os.Getenv("LABRUNNER_BENCH_COMPARE")]
	if !ok {
		t.Skip("LABRUNNER_BENCH_COMPARE is not quick or full (`make bench-compare`, `make bench-quick`)")
	}
	began := time.Now()
	dir := os.Getenv("LABRUNNER_BENCH_DIR")
	repo := goOut(t, ".", "list", "-m", "-f", "{{.Dir}}")
	if dir == "" {
		dir = filepath.Join(repo, ".cache", "bench")
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
	e := &run{m: m, s: s, b: b, dir: runDir, cmdCost: commandCost(t), tab: newTable(m)}
	e.tab.setCommandCost(float64(e.cmdCost.Microseconds()) / 1000)
	published := time.Now()
	e.up = publishZip(t, s, m.mountMB<<20)
	t.Logf("upstream task %s published a %.1f MB zip in %s", e.up.taskID, float64(e.up.bytes)/(1<<20), time.Since(published).Round(time.Millisecond))

	ws := workers()
	for round := range m.rounds {
		order := ws
		if round%2 == 1 {
			order = []worker{ws[1], ws[0]}
		}
		if !m.parallel {
			for _, w := range order {
				e.measure(t, w, round)
			}
			continue
		}
		t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) {
			for _, w := range order {
				t.Run(w.name, func(t *testing.T) {
					t.Parallel()
					e.measure(t, w, round)
				})
			}
		})
	}
	if t.Failed() {
		t.FailNow() // a worker's scenario failed: no table
	}
	workersDone := time.Now()
	serverOut := runServerBenchmarks(t, repo, m)
	t.Logf("workers measured in %s, servers in %s", workersDone.Sub(began).Round(time.Second), time.Since(workersDone).Round(time.Second))

	machine := Machine{
		Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), GoVersion: runtime.Version(),
		OS: runtime.GOOS + "/" + runtime.GOARCH, CPUs: strconv.Itoa(runtime.NumCPU()), LoadAverage: load, LoadAfter: loadAverage(),
		GenericWorkerVersion: b.gwVersion, Rounds: m.rounds, Mode: m.name, Took: time.Since(began).Round(time.Second).String(),
	}
	section := Markdown(machine, e.tab.rows()) + "\n" + serversHeading + "\n\n" + ServerMarkdown(serverRows, ParseBenchOutput(serverOut))
	fmt.Println(section)
	if doc := os.Getenv("LABRUNNER_BENCH_DOC"); doc != "" {
		raw, err := os.ReadFile(doc)
		if err != nil {
			t.Fatalf("read %s: %v", doc, err)
		}
		out, err := ReplaceSection(string(raw), section)
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if err := os.WriteFile(doc, []byte(out), 0o644); err != nil {
			t.Fatalf("write %s: %v", doc, err)
		}
	}
}

// pulseCancelBound is how long a cancel through Pulse may take before the
// harness fails: not a give-up (labrunner must stop the task), a bound
// loose enough for a loaded machine.
const pulseCancelBound = 30 * time.Second

// run is one comparison run: its mode, the devstack both workers use, the
// binaries, the upstream zip, and the table being filled.
type run struct {
	m       mode
	s       *stack
	b       binaries
	dir     string
	cmdCost time.Duration
	up      upstream
	tab     *table
}

// measure runs every scenario for one worker in one round, each with a
// fresh worker process on a fresh task queue.
func (e *run) measure(t *testing.T, w worker, round int) {
	m, s, b, tab := e.m, e.s, e.b, e.tab
	wdir := func(scenario string) (string, string) {
		wt := queueName(w.name, round, scenario)
		d := filepath.Join(e.dir, wt)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d, wt
	}
	d, wt := wdir("idle")
	p := w.start(t, s, b, d, wt, startOpts{capacity: 1})
	r, c := idleFootprint(p, m.startup, m.idleWindow)
	tab.add(&tab.rss, w.name, r)
	tab.add(&tab.cpu, w.name, c)
	lat := startLatencies(t, s, w, p, wt, d, m.latencyTasks)
	tab.add(&tab.latP50, w.name, Percentile(lat, 50))
	tab.add(&tab.latP99, w.name, Percentile(lat, 99))
	p.stop()
	t.Logf("round %d %s: idle RSS %.1f MB, CPU %.3f %%, start latency ms %v", round, w.name, r, c, lat)

	d, wt = wdir("noop1")
	perSec, ms := noopThroughput(t, s, b, w, d, wt, m.noopTasks[w.name], 1)
	tab.add(&tab.noop1, w.name, perSec)
	tab.add(&tab.over, w.name, ms-float64(e.cmdCost.Microseconds())/1000)
	t.Logf("round %d %s: capacity 1: %.2f tasks/s, %.1f ms a task", round, w.name, perSec, ms)
	if w.name == Labrunner {
		d, wt = wdir("cancel")
		p = w.start(t, s, b, d, wt, startOpts{capacity: 1, pulse: true})
		var lat []float64
		for i := range m.cancelTasks {
			ms, gone := cancelToGone(t, s, w, p, wt, d, i, pulseCancelBound, nil)
			if !gone {
				t.Fatalf("labrunner with Pulse: a cancelled task's process outlived %s; log:\n%s", pulseCancelBound, p.tail())
			}
			lat = append(lat, ms)
		}
		p.stop()
		tab.add(&tab.cancelPulse, w.name, Percentile(lat, 50))
		t.Logf("round %d %s: cancel with Pulse, ms %v", round, w.name, lat)
	}
	d, wt = wdir("cancelpoll")
	counter := newCountingProxy(t, s.rootURL)
	p = w.start(t, s, b, d, wt, startOpts{capacity: 1, rootURL: counter.srv.URL})
	var calls float64
	ms, gone := cancelToGone(t, s, w, p, wt, d, 0, m.cancelGiveUp, func() { calls = counter.rate(m.statusWindow) })
	p.stop()
	tab.add(&tab.queueCalls, w.name, calls)
	rows := []*Row{&tab.cancelPoll}
	if w.name == GenericWorker {
		rows = append(rows, &tab.cancelPulse)
	}
	for _, r := range rows {
		if gone {
			tab.add(r, w.name, ms)
		} else {
			tab.addAtLeast(r, w.name, ms)
		}
	}
	t.Logf("round %d %s: cancel without Pulse: %.1f ms (gone: %v); %.2f queue calls/s while the task ran", round, w.name, ms, gone, calls)

	d, wt = wdir("mount")
	p = w.start(t, s, b, d, wt, startOpts{capacity: 1})
	cold, warm := mountTimes(t, s, w, p, wt, d, e.up)
	p.stop()
	tab.add(&tab.mountCold, w.name, cold)
	tab.add(&tab.mountWarm, w.name, warm)
	t.Logf("round %d %s: %d MB zip mount: cold %.0f ms, warm %.0f ms", round, w.name, m.mountMB, cold, warm)

	d, wt = wdir("log")
	p = w.start(t, s, b, d, wt, startOpts{capacity: 1})
	time.Sleep(m.startup)
	peak, secs := logPeak(t, s, p, wt, m.logMB)
	p.stop()
	tab.add(&tab.logRSS, w.name, peak)
	tab.add(&tab.logTime, w.name, secs)
	t.Logf("round %d %s: %d MB log: peak RSS %.1f MB, %.2f s", round, w.name, m.logMB, peak, secs)

	d, wt = wdir("sigterm")
	p = w.start(t, s, b, d, wt, startOpts{capacity: 1, drainGrace: 100 * time.Millisecond})
	left := sigtermWithTask(t, s, p, wt, d, filepath.Join(d, "tasks"), 30*time.Second)
	if left.exited {
		tab.add(&tab.termExit, w.name, left.exitMS)
	} else {
		tab.addAtLeast(&tab.termExit, w.name, left.exitMS)
	}
	tab.add(&tab.termProcs, w.name, float64(left.processes))
	tab.add(&tab.termFiles, w.name, float64(left.taskDirents))
	t.Logf("round %d %s: SIGTERM with a task: %+v", round, w.name, left)

	if w.maxCapacity >= 4 {
		d, wt = wdir("noop4")
		perSec, ms = noopThroughput(t, s, b, w, d, wt, m.noopTasks[w.name], 4)
		tab.add(&tab.noop4, w.name, perSec)
		t.Logf("round %d %s: capacity 4: %.2f tasks/s, %.1f ms a task", round, w.name, perSec, ms)
	}
}

// mb is a size in MB for the rows' names.
func mb(n int) string { return strconv.Itoa(n) + " MB" }
