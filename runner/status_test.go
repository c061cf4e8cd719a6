package runner

import (
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/agent"
)

// The last tasks name each run's kind and, for a Buildbot build, its
// builder and number, as the current task does; a record written before
// runs had a kind is Taskcluster's.
func TestFormatStatusLastTasks(t *testing.T) {
	ended := time.Date(2026, 11, 26, 22, 27, 24, 0, time.UTC)
	s := &Status{State: PhaseIdle, RecentTasks: []RecentTaskStatus{
		{TaskRecord: TaskRecord{TaskID: "bbTask", RunID: 1, Ended: ended, Resolution: "completed", Kind: SourceBuildbot,
			Buildbot: &agent.BuildInfo{Builder: "linux-build", BuildNumber: 7, BuildRequestID: 12}}, DurationSeconds: 41},
		{TaskRecord: TaskRecord{TaskID: "tcTask", RunID: 2, Ended: ended, Resolution: "failed", ExitCode: 3, Kind: SourceTaskcluster}, DurationSeconds: 2},
		{TaskRecord: TaskRecord{TaskID: "oldTask", Ended: ended, Resolution: "completed"}, DurationSeconds: 1},
	}}
	var out strings.Builder
	if err := FormatStatus(&out, s); err != nil {
		t.Fatal(err)
	}
	_, last, ok := strings.Cut(out.String(), "last tasks:\n")
	if !ok {
		t.Fatalf("no last tasks section:\n%s", out.String())
	}
	lines := strings.Split(strings.TrimRight(last, "\n"), "\n")
	want := []string{
		"buildbot linux-build #7 (task bbTask run 1)  completed  exit 0  41s",
		"taskcluster tcTask run 2",
		"taskcluster oldTask run 0",
	}
	if len(lines) != len(want) {
		t.Fatalf("last tasks:\n%s\nwant %d lines", last, len(want))
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("last task line %d = %q, want it to contain %q", i, lines[i], w)
		}
	}
	if !strings.Contains(lines[1], "failed") || !strings.Contains(lines[1], "exit 3") {
		t.Errorf("line %q lacks the resolution and exit code", lines[1])
	}
}

// TestFormatCheckReportAligns: a long check name does not push its row's
// columns out of line with the others.
func TestFormatCheckReportAligns(t *testing.T) {
	rep := &CheckReport{Verdict: "ok", Checks: []CheckStatus{
		{Name: "disk", OK: true, Value: "74442 MB free", Threshold: ">= 10240 MB free"},
		{Name: "check:20-usb-hub-and-attached-phones", OK: false, Value: "exit 1", Threshold: "exit 0", Message: "2 phones missing"},
	}}
	var out strings.Builder
	if err := FormatCheckReport(&out, rep); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 4 || lines[0] != "checks directory: ok" {
		t.Fatalf("report:\n%s", out.String())
	}
	col := func(line, word string) int { return strings.Index(line, word) }
	if h, a, b := col(lines[1], "RESULT"), col(lines[2], "ok"), col(lines[3], "failing"); h != a || a != b {
		t.Errorf("RESULT column at %d, %d, %d:\n%s", h, a, b, out.String())
	}
	if h, a, b := col(lines[1], "THRESHOLD"), col(lines[2], ">= 10240"), col(lines[3], "exit 0"); h != a || a != b {
		t.Errorf("THRESHOLD column at %d, %d, %d:\n%s", h, a, b, out.String())
	}
}

// In per-task mode the status says how the accounts' processes are
// killed: through their cgroup, or found by uid (no cgroups) or token.
func TestFormatStatusTaskUserKill(t *testing.T) {
	for kill, want := range map[string]string{
		"cgroup": "task user     per-task (a fresh account for each task; its processes killed through its cgroup)",
		"uid":    "task user     per-task (a fresh account for each task; its processes found by uid and killed)",
		"":       "task user     per-task (a fresh account for each task)",
	} {
		var out strings.Builder
		if err := FormatStatus(&out, &Status{State: PhaseIdle, TaskUser: "per-task", TaskUserKill: kill}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(strings.Fields(out.String()), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("taskUserKill %q:\n%s\nwant a line %q", kill, out.String(), want)
		}
	}
}
