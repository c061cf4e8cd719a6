//go:build linux

package benchcompare

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// serverBench is how the bridge's and the provisioner's benchmarks are run:
// each entry one `go test -bench` of a package, with its benchtime and
// environment.
type serverBench []benchRun

// benchRun is one `go test -run '^$' -bench pattern -benchtime t pkg`.
type benchRun struct {
	pkg, pattern, benchtime string
	env                     []string
}

// fullServers is what `make bench-compare` runs: the sizes docs/bridge.md
// and docs/provisioner.md describe.
var fullServers = serverBench{
	{pkg: "./bridge/", pattern: "^BenchmarkPendingToBuildRequest$", benchtime: "1000x"},
	{pkg: "./bridge/", pattern: "^BenchmarkReflectorReclaim$", benchtime: "1x", env: []string{"LABRUNNER_BENCH_RECLAIM=2000"}},
	{pkg: "./provisioner/", pattern: "^BenchmarkAssignPlan10kMachines200Pools$", benchtime: "20x"},
	{pkg: "./provisioner/", pattern: "^BenchmarkAssignPass10kMachinesSQLite$", benchtime: "2x"},
	{pkg: "./provisioner/", pattern: "^BenchmarkHeartbeats(SQLite|Postgres)$", benchtime: "3s"},
}

// quickServers runs every one of them once with tiny counts: it checks
// that they still run and parse, not how fast they are.
var quickServers = serverBench{
	{pkg: "./bridge/", pattern: "^BenchmarkPendingToBuildRequest$", benchtime: "10x"},
	{pkg: "./bridge/", pattern: "^BenchmarkReflectorReclaim$", benchtime: "1x", env: []string{"LABRUNNER_BENCH_RECLAIM=10"}},
	{pkg: "./provisioner/", pattern: "^BenchmarkAssign(Plan10kMachines200Pools|Pass10kMachinesSQLite)$", benchtime: "1x", env: []string{"LABRUNNER_BENCH_FLEET=400"}},
	{pkg: "./provisioner/", pattern: "^BenchmarkHeartbeats(SQLite|Postgres)$", benchtime: "100x"},
}

// runServerBenchmarks runs m's server benchmarks in the module at repo, one
// after the other, and returns their output together; a benchmark that
// fails fails the test. Quick mode builds them as `make unit` does (cgo,
// -race), so that within `make test` they reuse its build cache: their
// figures then mean nothing, and quick mode writes none.
func runServerBenchmarks(t testing.TB, repo string, m mode) string {
	t.Helper()
	var all strings.Builder
	for _, r := range m.servers {
		args := []string{"test", "-count=1", "-run", "^$", "-bench", r.pattern, "-benchtime", r.benchtime, "-timeout", "20m"}
		cgo := "CGO_ENABLED=0"
		if m.parallel {
			args, cgo = append(args, "-race"), "CGO_ENABLED=1"
		}
		cmd := exec.Command("go", append(args, r.pkg)...)
		cmd.Dir = repo
		cmd.Env = append(append(os.Environ(), cgo), r.env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go test -bench %s %s: %v\n%s", r.pattern, r.pkg, err, out)
		}
		all.Write(out)
	}
	res := ParseBenchOutput(all.String())
	for _, row := range serverRows {
		if _, ok := res[row.Benchmark].Metrics[row.Metric]; !ok {
			t.Errorf("no %s from %s in the benchmarks' output:\n%s", row.Metric, row.Benchmark, all.String())
		}
	}
	return all.String()
}

// serversHeading introduces the servers' table in the generated section.
const serversHeading = "Central servers, in the same run (`go test -bench` of `./bridge/` and `./provisioner/`, against the MariaDB, PostgreSQL and RabbitMQ of `make services`; [bridge.md](bridge.md#benchmarks) and [provisioner.md](provisioner.md#benchmarks) describe each benchmark):"

// bridgeBaseline is the row the bridge's concurrent figure is set against.
const bridgeBaseline = "bridge: task-pending → build request, one handler"

// serverRows are the bridge's and the provisioner's figures and anchors.
var serverRows = []ServerRow{
	{Figure: bridgeBaseline, Benchmark: "BenchmarkPendingToBuildRequest/handlers=1", Metric: "requests/s", Unit: "requests/s",
		Note: "one task-pending message handled at a time, as BBB's single-threaded listener did: the baseline; MariaDB, the dev queue in a process of its own"},
	{Figure: "bridge: the same, 32 handlers", Benchmark: "BenchmarkPendingToBuildRequest/handlers=32", Metric: "requests/s", Unit: "requests/s",
		Baseline: bridgeBaseline, Note: "32 deliveries in flight; all three processes on the same two cores"},
	{Figure: "bridge: 32 handlers, on two cores given to the bridge and MariaDB alone", Benchmark: "BenchmarkPendingToBuildRequest/handlers=32", Metric: "req/s-per-2-cores", Unit: "requests/s",
		Anchor: 1000, AtLeast: true, Note: "2 000 ms over the bridge's and mariadbd's CPU ms per request: steadier than the measured rate on a shared machine"},
	{Figure: "bridge: reflector pass, running tasks reclaimed per second", Benchmark: "BenchmarkReflectorReclaim", Metric: "reclaims/s", Unit: "tasks/s",
		Anchor: 10000.0 / 60, AtLeast: true, Note: "the target: 10 000 running tasks reclaimed within a 60 s pass; 64 in flight"},
	{Figure: "provisioner: one assigner decision, 10 000 machines over 200 pools", Benchmark: "BenchmarkAssignPlan10kMachines200Pools", Metric: "ns/op", Unit: "ms", Scale: 1e-6,
		Anchor: 1000},
	{Figure: "provisioner: a full assigner pass through SQLite, 10 000 machines", Benchmark: "BenchmarkAssignPass10kMachinesSQLite", Metric: "ns/op", Unit: "s", Scale: 1e-9,
		Note: "read, decide, write every assignment in one transaction"},
	{Figure: "provisioner: heartbeats per second, SQLite", Benchmark: "BenchmarkHeartbeatsSQLite", Metric: "heartbeats/s", Unit: "heartbeats/s",
		Anchor: 5000, AtLeast: true, Note: "8 clients over loopback HTTP, 500 machines"},
	{Figure: "provisioner: heartbeat p99, SQLite", Benchmark: "BenchmarkHeartbeatsSQLite", Metric: "p99-ms", Unit: "ms", Anchor: 20},
	{Figure: "provisioner: heartbeats per second, PostgreSQL", Benchmark: "BenchmarkHeartbeatsPostgres", Metric: "heartbeats/s", Unit: "heartbeats/s",
		Note: "the same load; commits asynchronous"},
	{Figure: "provisioner: heartbeat p99, PostgreSQL", Benchmark: "BenchmarkHeartbeatsPostgres", Metric: "p99-ms", Unit: "ms"},
}
