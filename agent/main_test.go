//go:build unix

package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/labrunner/labrunner/platform"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
)

// helperEnv carries a helperConfig to the test binary re-run as an agent.
const helperEnv = "LABRUNNER_AGENT_TEST_HELPER"

// helperConfig is the agent a child process runs.
type helperConfig struct {
	RootURL, ClientID, AccessToken     string
	TaskQueueID, WorkerGroup, WorkerID string
	TasksDir, JournalDir               string
}

func TestMain(m *testing.M) {
	if raw := os.Getenv(helperEnv); raw != "" {
		os.Exit(runHelperAgent(raw))
	}
	if mode := os.Getenv(taskHelperEnv); mode != "" {
		os.Exit(runTaskHelper(mode))
	}
	os.Exit(m.Run())
}

// runHelperAgent runs an agent until the process is killed.
func runHelperAgent(raw string) int {
	var hc helperConfig
	if err := json.Unmarshal([]byte(raw), &hc); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	j, err := OpenJournal(hc.JournalDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	a, err := New(Config{TaskUser: platform.TaskUserService,
		Source: NewTCSource(TCSourceConfig{
			RootURL: hc.RootURL, Credentials: tcclient.Credentials{ClientID: hc.ClientID, AccessToken: hc.AccessToken},
			TaskQueueID: hc.TaskQueueID, WorkerGroup: hc.WorkerGroup, WorkerID: hc.WorkerID,
		}),
		Journal: j, WorkerGroup: hc.WorkerGroup, WorkerID: hc.WorkerID, RootURL: hc.RootURL,
		TasksDir: hc.TasksDir, Version: "test-child",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := a.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startAgentProcess runs an agent in a child process.
func startAgentProcess(t *testing.T, hc helperConfig) *exec.Cmd {
	t.Helper()
	raw, err := json.Marshal(hc)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}
