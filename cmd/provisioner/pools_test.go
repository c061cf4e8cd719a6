package main

import (
	"strings"
	"testing"
)

// TestPoolsListShowsQueueAndBuilders: each source's table row shows its
// task queue and its builders, both for a pool of source both.
func TestPoolsListShowsQueueAndBuilders(t *testing.T) {
	url := startProvisioner(t)
	file := writeFile(t, "pools.yaml", `
pools:
  tc:
    source: taskcluster
    taskQueueId: proj/tc
    maxCapacity: 2
  bb:
    source: buildbot
    builders: [linux-build, linux-test]
    maxCapacity: 3
  mixed:
    source: both
    taskQueueId: proj/mixed
    builders: [mac-build]
    maxCapacity: 4
`)
	if out, err := run(t, url, "pools", "apply", "-f", file); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	out, err := run(t, url, "pools", "list")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		rows[f[0]] = f
	}
	for pool, want := range map[string][]string{
		"POOL":  {"POOL", "SOURCE", "QUEUE", "BUILDERS", "MIN", "MAX", "PRIORITY"},
		"tc":    {"tc", "taskcluster", "proj/tc", "-", "0", "2", "0"},
		"bb":    {"bb", "buildbot", "-", "linux-build,linux-test", "0", "3", "0"},
		"mixed": {"mixed", "both", "proj/mixed", "mac-build", "0", "4", "0"},
	} {
		if got := strings.Join(rows[pool], " "); got != strings.Join(want, " ") {
			t.Errorf("row %s: %q, want %q\n%s", pool, got, strings.Join(want, " "), out)
		}
	}
}
