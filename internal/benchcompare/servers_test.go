package benchcompare

import (
	"strings"
	"testing"
)

const benchOutput = `goos: linux
goarch: amd64
pkg: github.com/labrunner/labrunner/bridge
cpu: Intel(R) Xeon(R)
BenchmarkPendingToBuildRequest/handlers=1-2         	      10	   4000000 ns/op	       250.0 requests/s
BenchmarkPendingToBuildRequest/handlers=32-2        	      10	   1000000 ns/op	      1000 requests/s	         0.8 bridge-cpu-ms/req	 1300 req/s-per-2-cores
some log line with Benchmark in it
BenchmarkAssignPlan10kMachines200Pools-2   	      20	   9300000 ns/op	      1497 moves
BenchmarkHeartbeatsSQLite 100 50000 ns/op 7324 heartbeats/s 25.5 p99-ms
PASS
ok  	github.com/labrunner/labrunner/bridge	12.3s
`

func TestParseBenchOutput(t *testing.T) {
	res := ParseBenchOutput(benchOutput)
	if len(res) != 4 {
		t.Fatalf("parsed %d results, want 4: %v", len(res), res)
	}
	one := res["BenchmarkPendingToBuildRequest/handlers=1"]
	if one.Iterations != 10 || one.Metrics["requests/s"] != 250 || one.Metrics["ns/op"] != 4e6 {
		t.Errorf("handlers=1 parsed as %+v", one)
	}
	if got := res["BenchmarkPendingToBuildRequest/handlers=32"].Metrics["req/s-per-2-cores"]; got != 1300 {
		t.Errorf("req/s-per-2-cores = %v, want 1300", got)
	}
	if _, ok := res["BenchmarkHeartbeatsSQLite"]; !ok {
		t.Error("a name without the -GOMAXPROCS suffix was not parsed")
	}
}

func TestServerMarkdownAnchors(t *testing.T) {
	rows := []ServerRow{
		{Figure: "base", Benchmark: "BenchmarkPendingToBuildRequest/handlers=1", Metric: "requests/s", Unit: "requests/s"},
		{Figure: "many", Benchmark: "BenchmarkPendingToBuildRequest/handlers=32", Metric: "requests/s", Unit: "requests/s", Baseline: "base"},
		{Figure: "decision", Benchmark: "BenchmarkAssignPlan10kMachines200Pools", Metric: "ns/op", Unit: "ms", Scale: 1e-6, Anchor: 1000},
		{Figure: "rate", Benchmark: "BenchmarkHeartbeatsSQLite", Metric: "heartbeats/s", Unit: "heartbeats/s", Anchor: 10000, AtLeast: true},
		{Figure: "p99", Benchmark: "BenchmarkHeartbeatsSQLite", Metric: "p99-ms", Unit: "ms", Anchor: 20},
		{Figure: "absent", Benchmark: "BenchmarkNothing", Metric: "x/s", Unit: "x/s", Anchor: 1},
	}
	md := ServerMarkdown(rows, ParseBenchOutput(benchOutput))
	for _, want := range []string{
		"| many | 1000 requests/s | the row “base” | 4.00× of it |",
		"| decision | 9.30 ms | ≤ 1000 ms | met |",
		"| rate | 7324 heartbeats/s | ≥ 10000 heartbeats/s | not met |",
		"| p99 | 25.5 ms | ≤ 20.0 ms | not met |",
		"| absent | not measured | ≤ 1.00 x/s | – |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
}
