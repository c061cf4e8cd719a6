package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labrunner/labrunner/provisioner"
)

const adminToken = "cli-test-admin-token-0123456789"

func startProvisioner(t *testing.T) string {
	t.Helper()
	srv, err := provisioner.New(provisioner.Config{DB: filepath.Join(t.TempDir(), "p.db"), AdminTokens: []string{adminToken}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs.URL
}

// run executes the CLI with args and returns its output and error.
func run(t *testing.T, url string, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(append([]string{"--url", url, "--token", adminToken}, args...))
	err := cmd.Execute()
	return out.String(), err
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPoolsApplyListShowDelete(t *testing.T) {
	url := startProvisioner(t)
	file := writeFile(t, "pools.yaml", `
pools:
  win11-hw:
    source: taskcluster
    taskQueueId: proj-releng/win11-hw
    constraints: {os: [windows], osVersion: "10\\.0\\.2.*"}
    minCapacity: 2
    maxCapacity: 20
    priority: 5
    workerConfig: {cachesDir: "C:\\caches"}
  mac-bb:
    source: buildbot
    builders: [mac-build]
    maxCapacity: 4
`)
	out, err := run(t, url, "pools", "apply", "-f", file)
	if err != nil || !strings.Contains(out, "applied win11-hw (taskcluster, 2-20 machines)") || !strings.Contains(out, "applied mac-bb") {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	out, err = run(t, url, "pools", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var pools []struct {
		PoolID string `json:"poolId"`
		Spec   struct {
			WorkerConfig map[string]string `json:"workerConfig"`
		} `json:"spec"`
	}
	if err := json.Unmarshal([]byte(out), &pools); err != nil || len(pools) != 2 || pools[1].Spec.WorkerConfig["cachesDir"] != `C:\caches` {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	out, err = run(t, url, "pools", "list")
	if err != nil || !strings.Contains(out, "POOL") || !strings.Contains(out, "proj-releng/win11-hw") {
		t.Fatalf("list table: %v\n%s", err, out)
	}
	out, err = run(t, url, "pools", "show", "win11-hw")
	if err != nil || !strings.Contains(out, "recommended 2") || !strings.Contains(out, "maxCapacity: 20") {
		t.Fatalf("show: %v\n%s", err, out)
	}
	if _, err := run(t, url, "pools", "delete", "mac-bb"); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, url, "pools", "show", "mac-bb"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("show deleted: %v", err)
	}
}

func TestPoolsApplyReportsPoolAndField(t *testing.T) {
	url := startProvisioner(t)
	file := writeFile(t, "bad.yaml", "pools:\n  p1:\n    source: taskcluster\n    taskQueueId: a/b\n    maxCapacity: 2\n    minCapcity: 1\n")
	_, err := run(t, url, "pools", "apply", "-f", file)
	if err == nil || !strings.Contains(err.Error(), "pool p1") || !strings.Contains(err.Error(), "minCapcity") {
		t.Fatalf("want an error naming pool p1 and minCapcity, got %v", err)
	}
	// The error says which call was refused, once: main adds the program's
	// "provisioner:" prefix, so the error must not carry another.
	if want := "PUT " + url + "/api/v1/pools/p1: 400 InvalidRequest: minCapcity"; !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "provisioner:") {
		t.Fatalf("error %q: want it to contain %q and no \"provisioner:\" prefix", err, want)
	}
	file = writeFile(t, "worse.yaml", "pool:\n  p1: {}\n")
	if _, err := run(t, url, "pools", "apply", "-f", file); err == nil || !strings.Contains(err.Error(), "pool") {
		t.Fatalf("want an error for the misspelt top-level key, got %v", err)
	}
}

func TestTokenAndMachines(t *testing.T) {
	url := startProvisioner(t)
	out, err := run(t, url, "token", "create", "--enroll", "3", "--description", "rack 4")
	if err != nil || !strings.Contains(out, "enroll token") || !strings.Contains(out, "3 uses") || !strings.Contains(out, "lre_") {
		t.Fatalf("token create: %v\n%s", err, out)
	}
	if _, err := run(t, url, "token", "create", "--admin", "--enroll", "2"); err == nil {
		t.Fatal("two token kinds accepted")
	}
	out, err = run(t, url, "machines", "list")
	if err != nil || !strings.Contains(out, "MACHINE") {
		t.Fatalf("machines list: %v\n%s", err, out)
	}
	if _, err := run(t, url, "machines", "quarantine", "m1", "--reason", "x"); err == nil || !strings.Contains(err.Error(), "--for") {
		t.Fatalf("quarantine without a length: %v", err)
	}
	if _, err := run(t, url, "machines", "reboot", "ghost"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("reboot unknown machine: %v", err)
	}
}

func TestServeConfig(t *testing.T) {
	bad := writeFile(t, "c.yaml", "db: x.db\nlisten: :1\nadminTokenz: []\n")
	if _, err := loadConfig(bad); err == nil || !strings.Contains(err.Error(), "adminTokenz") {
		t.Fatalf("unknown key: %v", err)
	}
	good := writeFile(t, "c.yaml", "db: x.db\nmoveInterval: soon\ncredentials:\n  default: {clientId: c, accessToken: t}\n")
	fc, err := loadConfig(good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fc.toConfig(slog.Default()); err == nil || !strings.Contains(err.Error(), "moveInterval") {
		t.Fatalf("bad duration: %v", err)
	}
	fc.MoveInterval = "20m"
	cfg, err := fc.toConfig(slog.Default())
	if err != nil || cfg.MoveInterval.Minutes() != 20 || cfg.DefaultCredentials == nil || cfg.DefaultCredentials.ClientID != "c" {
		t.Fatalf("toConfig = %+v, %v", cfg, err)
	}
}
