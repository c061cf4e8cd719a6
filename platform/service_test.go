package platform

import (
	"testing"

	"howett.net/plist"
)

func TestLaunchdPlistIsAValidDaemonDefinition(t *testing.T) {
	args := []string{"run", "--config", "/Library/Application Support/labrunner/runner.yml"}
	raw := LaunchdPlist("org.labrunner.runner", "/usr/local/bin/runner & co", args)
	var job struct {
		Label             string
		ProgramArguments  []string
		RunAtLoad         bool
		KeepAlive         bool
		StandardOutPath   string
		StandardErrorPath string
		UserName          string
	}
	format, err := plist.Unmarshal(raw, &job)
	if err != nil {
		t.Fatalf("plist does not parse: %v\n%s", err, raw)
	}
	if format != plist.XMLFormat {
		t.Errorf("format %d, want XML", format)
	}
	if job.Label != "org.labrunner.runner" || !job.RunAtLoad || !job.KeepAlive {
		t.Errorf("job %+v: want the label, RunAtLoad and KeepAlive", job)
	}
	want := append([]string{"/usr/local/bin/runner & co"}, args...)
	if len(job.ProgramArguments) != len(want) {
		t.Fatalf("ProgramArguments %q, want %q", job.ProgramArguments, want)
	}
	for i := range want {
		if job.ProgramArguments[i] != want[i] {
			t.Errorf("ProgramArguments[%d] = %q, want %q", i, job.ProgramArguments[i], want[i])
		}
	}
	if job.StandardOutPath != "/Library/Logs/labrunner/runner.out.log" || job.StandardErrorPath != "/Library/Logs/labrunner/runner.err.log" {
		t.Errorf("logs go to %q and %q, want /Library/Logs/labrunner/", job.StandardOutPath, job.StandardErrorPath)
	}
	// A LaunchDaemon runs as root unless told otherwise: no UserName.
	if job.UserName != "" {
		t.Errorf("UserName %q set", job.UserName)
	}
}
