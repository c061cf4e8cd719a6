package devstack

// The demo's commands, in the style of the computer it runs on: argv
// lists run without a shell (sh for the little scripting) on Linux and
// macOS, cmd.exe command lines on Windows (platform.TaskCommandStyle).
// Nothing here needs more than a stock installation of either.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/bridge"
	"github.com/labrunner/labrunner/platform"
)

// cmdLines says whether commands are cmd.exe lines (Windows).
func cmdLines() bool { return platform.TaskCommandStyle() == platform.CmdLineCommands }

// demoCommand is a payload's command list running one script: sh on
// Linux and macOS, a cmd.exe line on Windows.
func demoCommand(sh, cmd string) any {
	if cmdLines() {
		return []string{cmd}
	}
	return [][]string{{"sh", "-c", sh}}
}

// payload is a generic-worker payload running one script.
func payload(sh, cmd string, maxRunTime int) json.RawMessage {
	raw, _ := json.Marshal(map[string]any{"command": demoCommand(sh, cmd), "maxRunTime": maxRunTime})
	return raw
}

// testPayload is a native test task: it reports on the build it tests.
func testPayload(suite string) json.RawMessage {
	return payload(
		fmt.Sprintf(`echo "running the %s tests"; sleep 1; echo "%s: 0 failures"`, suite, suite),
		fmt.Sprintf(`echo running the %s tests & ping -n 2 127.0.0.1 >nul & echo %s: 0 failures`, suite, suite),
		60)
}

// longPayload runs for ten minutes, unless cancelled.
func longPayload() json.RawMessage {
	return payload(`echo "a long soak test"; sleep 600`, `echo a long soak test & ping -n 600 127.0.0.1 >nul`, 900)
}

// breakingPayload leaves a stale lock on the machine it runs on, two
// levels above its task directory (the machine's directory, where the
// checks directory's check looks for it).
func breakingPayload() json.RawMessage {
	return payload(
		`echo "leaving a stale lock behind"; echo "left by task $TASK_ID" > ../../stale.lock`,
		`echo leaving a stale lock behind & echo left by task %TASK_ID%> ..\..\stale.lock`,
		60)
}

// holdPayload waits until the file release exists (at most ten minutes).
func holdPayload(release string) json.RawMessage {
	return payload(
		fmt.Sprintf(`echo "waiting for the release signal"; while [ ! -e %q ]; do sleep 0.1; done; echo released`, release),
		fmt.Sprintf(`echo waiting for the release signal & for /l %%%%i in (1,1,600) do @if not exist "%s" ping -n 2 127.0.0.1 >nul`, release),
		900)
}

// demoBuilders is the bridge's builders.yaml: what a machine of the
// Buildbot pool runs for the demo's builder.
func demoBuilders() map[string]bridge.BuilderDef {
	pause := []string{"sleep", "1"}
	if cmdLines() {
		pause = []string{"ping", "-n", "2", "127.0.0.1"}
	}
	return map[string]bridge.BuilderDef{
		demoBuilder: {MaxRunTime: 120, Steps: []bridge.StepDef{
			{Name: "configure", Command: []string{"echo", "configuring %(prop:product:-firefox)s"}},
			{Name: "compile", Command: pause},
			{Name: "package", Command: []string{"echo", "packaged %(prop:product:-firefox)s"}},
		}},
	}
}

// writeBuilders writes demoBuilders as builders.yaml (JSON is YAML).
func writeBuilders(path string) error {
	raw, err := json.MarshalIndent(map[string]any{"builders": demoBuilders()}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, raw, 0o600)
}

// rebootCommand is the demo machines' harmless reboot: it appends the
// reason to reboots.log in dir, and the demo's supervisor then restarts
// the runner. On Windows it is a batch file, since cmd.exe cannot parse
// the quoting Go gives a command line with a quoted path in it.
func rebootCommand(dir string) ([]string, error) {
	log := filepath.Join(dir, "reboots.log")
	if !cmdLines() {
		return []string{"sh", "-c", fmt.Sprintf(`echo "$LABRUNNER_REBOOT_REASON" >> %q`, log)}, nil
	}
	script := filepath.Join(dir, "reboot.cmd")
	body := "@echo %LABRUNNER_REBOOT_REASON%>> \"%~dp0reboots.log\"\r\n"
	if err := os.WriteFile(script, []byte(body), 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", script, err)
	}
	return []string{`C:\Windows\System32\cmd.exe`, "/d", "/c", script}, nil
}

// writeStaleLockCheck writes the check that fails (EXIT: quarantine) while
// lock exists, in both forms: platform.CheckCommand runs the executable
// script on Linux and macOS and the .cmd file on Windows, and each skips
// the other.
func writeStaleLockCheck(dir, lock string) error {
	sh := strings.Join([]string{
		"#!/bin/sh",
		fmt.Sprintf(`if [ -e %q ]; then`, lock),
		fmt.Sprintf(`  echo "%s: $(cat %q); remove it to release the machine"`, filepath.Base(lock), lock),
		"  exit 3",
		"fi",
		"echo no stale lock",
	}, "\n") + "\n"
	cmd := strings.Join([]string{
		"@echo off",
		fmt.Sprintf(`if exist "%s" (`, lock),
		fmt.Sprintf(`  set /p lockline=<"%s"`, lock),
		fmt.Sprintf(`  call echo %s: %%%%lockline%%%%; remove it to release the machine`, filepath.Base(lock)),
		"  exit /b 3",
		")",
		"echo no stale lock",
	}, "\r\n") + "\r\n"
	if err := os.WriteFile(filepath.Join(dir, "50-stale-lock"), []byte(sh), 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "50-stale-lock.cmd"), []byte(cmd), 0o600)
}

// SubmitHelloWorld creates a hello-world task for the demo's tests pool
// with client-go, exactly as a decision task would, and returns its
// taskId.
func SubmitHelloWorld(ctx context.Context, s *System) (string, error) {
	q := tcqueue.New(&s.Credentials, s.RootURL)
	q.Context = ctx
	taskID := slugid.Nice()
	now := time.Now()
	def := &tcqueue.TaskDefinitionRequest{
		TaskQueueID: TaskQueueID,
		Created:     tcclient.Time(now),
		Deadline:    tcclient.Time(now.Add(time.Hour)),
		Expires:     tcclient.Time(now.Add(24 * time.Hour)),
		Metadata: tcqueue.TaskMetadata{
			Name:        "hello world",
			Description: "A hello-world task.",
			Owner:       "demo@labrunner.invalid",
			Source:      "https://github.com/labrunner/labrunner",
		},
		Payload: payload(`echo "hello world"`, `echo hello world`, 60),
	}
	if _, err := q.CreateTask(taskID, def); err != nil {
		return "", fmt.Errorf("createTask: %w", err)
	}
	return taskID, nil
}
