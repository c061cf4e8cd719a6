package bridge

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bridge.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`
taskcluster: {root_url: "https://tc.example.com", client_id: c, access_token: t}
bbb_db: {dialect: mysql, dsn: "u:p@tcp(db:3306)/bbb"}
buildbot_scheduler_db: {dialect: mysql, dsn: "u:p@tcp(db:3306)/sched"}
pulse: {url: "amqps://u:p@pulse:5671/", queue_basename: queue/buildbot-bridge-dev}
restricted_builders: ["^release-.*$"]
ignored_builders: ["alder|birch"]
tclistener: {provisioner_id: buildbot-bridge, worker_type: buildbot-bridge}
reflector: {interval: 30s, reclaim_threshold: 10m}
`)
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Reflector.Interval != 30*time.Second || cfg.Reflector.ReclaimThreshold != 10*time.Minute || cfg.Pulse.QueueBasename != "queue/buildbot-bridge-dev" ||
		cfg.TCListener.ExchangeBasename != "exchange/taskcluster-queue/v1" || cfg.BBListener.Exchange != "exchange/build" || cfg.Taskcluster.WorkerID != "buildbot-bridge" {
		t.Errorf("config = %+v", cfg)
	}
	for _, c := range []struct{ yaml, want string }{
		{"taskcluster: {root_url: x}\nbogus: 1\n", "bogus"},
		{"taskcluster: {root_url: x}\nbbb_db: {dsn: a}\nbuildbot_scheduler_db: {dsn: b}\npulse: {url: amqp://x}\nignored_builders: ['(']\n", "ignored_builders[0]"},
		{"bbb_db: {dsn: a}\nbuildbot_scheduler_db: {dsn: b}\npulse: {url: amqp://x}\n", "taskcluster.root_url"},
	} {
		write(c.yaml)
		if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("LoadConfig(%q) = %v, want an error naming %s", c.yaml, err, c.want)
		}
	}
}

func TestLoadBuildersAndInterpolate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "builders.yaml")
	if err := os.WriteFile(path, []byte(`
builders:
  "WINNT 10.0 x64 mozilla-central opt test mochitest-1":
    maxRunTime: 7200
    env: {MOZ_PRODUCT: "%(prop:product)s"}
    steps:
      - name: run
        command: ["python", "run.py", "--revision=%(prop:revision:-tip)s", "--n=%(prop:chunk)s", "%(prop:missing)s"]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	defs, err := LoadBuilders(path)
	if err != nil {
		t.Fatal(err)
	}
	def := defs["WINNT 10.0 x64 mozilla-central opt test mochitest-1"]
	got := def.Interpolate(map[string]json.RawMessage{"product": json.RawMessage(`"firefox"`), "chunk": json.RawMessage(`3`)})
	want := []string{"python", "run.py", "--revision=tip", "--n=3", ""}
	if strings.Join(got.Steps[0].Command, "|") != strings.Join(want, "|") || got.Env["MOZ_PRODUCT"] != "firefox" || got.MaxRunTime != 7200 {
		t.Errorf("interpolated = %+v, want %v", got, want)
	}
	if err := os.WriteFile(path, []byte("builders:\n  b: {steps: [{command: []}]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadBuilders(path); err == nil || !strings.Contains(err.Error(), "steps[0].command") {
		t.Errorf("LoadBuilders with an empty command = %v, want an error naming steps[0].command", err)
	}
}
