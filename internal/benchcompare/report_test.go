package benchcompare

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{7}, 7},
	} {
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("Median(nil) is not NaN")
	}
	in := []float64{3, 1, 2}
	Median(in)
	if in[0] != 3 {
		t.Error("Median sorted its argument in place")
	}
}

func TestPercentileNearestRank(t *testing.T) {
	three := []float64{30, 10, 20}
	if got := Percentile(three, 99); got != 30 {
		t.Errorf("p99 of three = %v, want the maximum 30", got)
	}
	if got := Percentile(three, 50); got != 20 {
		t.Errorf("p50 of three = %v, want 20", got)
	}
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // 100 … 1
	}
	if got := Percentile(hundred, 99); got != 99 {
		t.Errorf("p99 of 1…100 = %v, want 99", got)
	}
	if got := Percentile(hundred, 0); got != 1 {
		t.Errorf("p0 of 1…100 = %v, want 1", got)
	}
}

func TestRatioAndVerdict(t *testing.T) {
	lat := Row{Figure: "latency", Unit: "ms"}
	lat.Add(Labrunner, 10)
	lat.Add(Labrunner, 30)
	lat.Add(GenericWorker, 100)
	if got := lat.Ratio(); got != 0.2 {
		t.Fatalf("ratio = %v, want median 20 / 100 = 0.2", got)
	}
	tput := Row{Figure: "throughput", Unit: "tasks/s", HigherIsBetter: true}
	tput.Add(Labrunner, 0.1)
	tput.Add(GenericWorker, 0.2)
	only := Row{Figure: "capacity 4", Unit: "tasks/s", HigherIsBetter: true, Note: "one at a time"}
	only.Add(Labrunner, 50)
	table := Markdown(Machine{Date: "2026-01-02 03:04 UTC", GoVersion: "go1.x", OS: "linux/amd64", CPUs: "2",
		LoadAverage: "1.00 2.00 3.00", GenericWorkerVersion: "v44.23.4", Rounds: 3, Mode: "full"}, []Row{lat, tput, only})
	for _, want := range []string{
		"| latency | 20.0 ms | 100 ms | 0.2× (labrunner ahead) |  |",
		"| throughput | 0.1 tasks/s | 0.2 tasks/s | 0.5× (labrunner behind) |  |",
		"| capacity 4 | 50.0 tasks/s | not measured | – | one at a time |",
		"load average 1.00 2.00 3.00", "3 round(s)", "generic-worker v44.23.4",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

func TestReplaceSection(t *testing.T) {
	doc := "# Title\n\nintro\n\n" + BeginMarker + "\nold table\n" + EndMarker + "\n\n## After\nkept\n"
	out, err := ReplaceSection(doc, "new table\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Title\n\nintro\n\n" + BeginMarker + "\nnew table\n" + EndMarker + "\n\n## After\nkept\n"
	if out != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out, want)
	}
	again, err := ReplaceSection(out, "new table\n")
	if err != nil || again != out {
		t.Fatalf("replacing twice changed the document: %v\n%s", err, again)
	}
	for _, bad := range []string{"no markers", EndMarker + "\n" + BeginMarker, BeginMarker + " only"} {
		if _, err := ReplaceSection(bad, "x"); !errors.Is(err, ErrNoMarkers) {
			t.Errorf("ReplaceSection(%q) error = %v, want ErrNoMarkers", bad, err)
		}
	}
}

// The repository's docs/benchmarks.md keeps the markers the harness
// writes between.
func TestBenchmarksDocHasMarkers(t *testing.T) {
	raw, err := os.ReadFile("../../docs/benchmarks.md")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReplaceSection(string(raw), "table"); err != nil {
		t.Fatalf("docs/benchmarks.md: %v", err)
	}
}

func TestLowerBounds(t *testing.T) {
	cancel := Row{Figure: "cancel", Unit: "ms"}
	cancel.Add(Labrunner, 5)
	cancel.AddAtLeast(GenericWorker, 30000)
	slowLab := Row{Figure: "slow", Unit: "ms"}
	slowLab.AddAtLeast(Labrunner, 100)
	slowLab.Add(GenericWorker, 10)
	open := Row{Figure: "open", Unit: "ms"}
	open.Add(Labrunner, 100)
	open.AddAtLeast(GenericWorker, 10)
	both := Row{Figure: "both", Unit: "ms"}
	both.AddAtLeast(Labrunner, 1)
	both.AddAtLeast(GenericWorker, 1)
	tiny := Row{Figure: "tiny", Unit: "ms"}
	tiny.Add(Labrunner, 0.0000123)
	tiny.Add(GenericWorker, 1)
	table := Markdown(Machine{}, []Row{cancel, slowLab, open, both, tiny})
	for _, want := range []string{
		"| cancel | 5.00 ms | > 30000 ms | < 0.000167× (labrunner ahead) |",
		"| tiny | 0.0000123 ms | 1.00 ms | 0.0000123× (labrunner ahead) |",
		"| slow | > 100 ms | 10.0 ms | > 10.0× (labrunner behind) |",
		"| open | 100 ms | > 10.0 ms | < 10.0× (not settled) |",
		"| both | > 1.00 ms | > 1.00 ms | – |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}
