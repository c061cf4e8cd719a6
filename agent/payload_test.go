package agent

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/platform"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
)

func mustParse(t *testing.T, style platform.CommandStyle, payload string) *Payload {
	t.Helper()
	p, err := parsePayload(json.RawMessage(payload), style)
	if err != nil {
		t.Fatalf("parsePayload(%s): %v", payload, err)
	}
	return p
}

// problems parses a payload that must be rejected and returns its problems.
func problems(t *testing.T, style platform.CommandStyle, payload string) []Problem {
	t.Helper()
	_, err := parsePayload(json.RawMessage(payload), style)
	var perr *PayloadError
	if !errors.As(err, &perr) {
		t.Fatalf("parsePayload(%s) error = %v, want *PayloadError", payload, err)
	}
	if len(perr.Problems) == 0 {
		t.Fatalf("PayloadError with no problems for %s", payload)
	}
	return perr.Problems
}

// hasProblem asserts that one problem names field and contains every word.
func hasProblem(t *testing.T, probs []Problem, field string, words ...string) {
	t.Helper()
	for _, p := range probs {
		if p.Field != field {
			continue
		}
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(p.Message, w)
		}
		if ok {
			return
		}
	}
	t.Fatalf("no problem for %s containing %q in %v", field, words, probs)
}

func TestParsePosixPayloadFull(t *testing.T) {
	p := mustParse(t, platform.ArgvCommands, `{
		"command": [["echo", "hello"], ["sh", "-c", "exit 3"]],
		"env": {"FOO": "bar"},
		"maxRunTime": 600,
		"artifacts": [
			{"type": "file", "path": "out/a.txt", "name": "public/a.txt", "expires": "2030-01-02T03:04:05.000Z",
			 "contentType": "text/plain", "contentEncoding": "identity"},
			{"type": "directory", "path": "dist"}
		],
		"features": {"liveLog": true, "taskclusterProxy": false},
		"onExitStatus": {"retry": [3, 4], "purgeCaches": [5]},
		"supersederUrl": "https://example.com/s",
		"mounts": [],
		"osGroups": []
	}`)
	if p.Style != platform.ArgvCommands || p.CommandCount() != 2 {
		t.Fatalf("style %v count %d", p.Style, p.CommandCount())
	}
	if !reflect.DeepEqual(p.Argv, [][]string{{"echo", "hello"}, {"sh", "-c", "exit 3"}}) {
		t.Fatalf("Argv = %q", p.Argv)
	}
	if p.Env["FOO"] != "bar" || p.MaxRunTime != 10*time.Minute || !p.LiveLog {
		t.Fatalf("env %v maxRunTime %v liveLog %v", p.Env, p.MaxRunTime, p.LiveLog)
	}
	want := []PayloadArtifact{
		{Type: FileArtifact, Path: "out/a.txt", Name: "public/a.txt", Expires: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
			ContentType: "text/plain", ContentEncoding: "identity"},
		{Type: DirectoryArtifact, Path: "dist"},
	}
	if len(p.Artifacts) != 2 || !p.Artifacts[0].Expires.Equal(want[0].Expires) {
		t.Fatalf("Artifacts = %+v", p.Artifacts)
	}
	p.Artifacts[0].Expires = want[0].Expires
	if !reflect.DeepEqual(p.Artifacts, want) {
		t.Fatalf("Artifacts = %+v, want %+v", p.Artifacts, want)
	}
	if !p.IsRetryExitCode(3) || !p.IsRetryExitCode(4) || p.IsRetryExitCode(5) || p.IsRetryExitCode(0) {
		t.Fatalf("retry codes %v", p.OnExitStatus.Retry)
	}
	if !reflect.DeepEqual(p.OnExitStatus.PurgeCaches, []int{5}) || p.SupersederURL != "https://example.com/s" {
		t.Fatalf("purgeCaches %v superseder %q", p.OnExitStatus.PurgeCaches, p.SupersederURL)
	}
}

func TestParseProxyAndChainOfTrustFeatures(t *testing.T) {
	for _, style := range []platform.CommandStyle{platform.ArgvCommands, platform.CmdLineCommands} {
		command := `[["true"]]`
		if style == platform.CmdLineCommands {
			command = `["echo"]`
		}
		on := mustParse(t, style, `{"command": `+command+`, "maxRunTime": 5, "features": {"taskclusterProxy": true, "chainOfTrust": true}}`)
		off := mustParse(t, style, `{"command": `+command+`, "maxRunTime": 5}`)
		if !on.TaskclusterProxy || off.TaskclusterProxy {
			t.Errorf("style %v: features.taskclusterProxy true gives %v, absent gives %v", style, on.TaskclusterProxy, off.TaskclusterProxy)
		}
		if !on.ChainOfTrust || off.ChainOfTrust {
			t.Errorf("style %v: features.chainOfTrust true gives %v, absent gives %v", style, on.ChainOfTrust, off.ChainOfTrust)
		}
	}
}

func TestParseMinimalPayloadDefaults(t *testing.T) {
	p := mustParse(t, platform.ArgvCommands, `{"command": [["true"]], "maxRunTime": 1}`)
	if p.Env == nil || len(p.Env) != 0 || len(p.Artifacts) != 0 || !p.LiveLog || p.MaxRunTime != time.Second {
		t.Fatalf("defaults wrong: %+v", p)
	}
	off := mustParse(t, platform.ArgvCommands, `{"command": [["true"]], "maxRunTime": 1, "features": {"liveLog": false}}`)
	if off.LiveLog {
		t.Fatal("features.liveLog false not honoured")
	}
}

func TestParseWindowsPayload(t *testing.T) {
	p := mustParse(t, platform.CmdLineCommands, `{
		"command": ["set FOO=1", "echo %FOO% > out.txt"],
		"maxRunTime": 30,
		"osGroups": []
	}`)
	if p.CommandCount() != 2 || !reflect.DeepEqual(p.Lines, []string{"set FOO=1", "echo %FOO% > out.txt"}) || p.Argv != nil {
		t.Fatalf("Lines = %q Argv = %q", p.Lines, p.Argv)
	}
}

func TestCommandShapeOfTheOtherOS(t *testing.T) {
	probs := problems(t, platform.ArgvCommands, `{"command": ["echo hello"], "maxRunTime": 5}`)
	hasProblem(t, probs, "payload.command[0]", "must be array", "list of arguments")
	probs = problems(t, platform.CmdLineCommands, `{"command": [["echo", "hello"]], "maxRunTime": 5}`)
	hasProblem(t, probs, "payload.command[0]", "must be string", "cmd.exe line")
}

func TestSchemaProblemsNameFieldAndFix(t *testing.T) {
	probs := problems(t, platform.ArgvCommands, `{
		"command": [],
		"maxRunTime": 100000,
		"artifacts": [{"type": "tarball", "path": "x", "expires": "tomorrow"}, {"path": "y"}],
		"env": {"N": 3},
		"onExitStatus": {"retry": [0]},
		"comand": 1
	}`)
	hasProblem(t, probs, "payload.command", "at least one command")
	hasProblem(t, probs, "payload.maxRunTime", "at most 86400", "100000", "seconds")
	hasProblem(t, probs, "payload.artifacts[0].type", `"file"`, `"directory"`, "tarball")
	hasProblem(t, probs, "payload.artifacts[0].expires", "RFC 3339", "tomorrow")
	hasProblem(t, probs, "payload.artifacts[1].type", "required", "file")
	hasProblem(t, probs, "payload.env.N", "must be string", "number")
	hasProblem(t, probs, "payload.onExitStatus.retry[0]", "at least 1")
	hasProblem(t, probs, "payload.comand", "not a generic-worker v44 payload field", "spelling")
}

func TestMissingRequiredFields(t *testing.T) {
	probs := problems(t, platform.ArgvCommands, `{}`)
	hasProblem(t, probs, "payload.command", "required", `[["echo", "hello"]]`)
	hasProblem(t, probs, "payload.maxRunTime", "required", "seconds")
	probs = problems(t, platform.CmdLineCommands, `{"maxRunTime": 5}`)
	hasProblem(t, probs, "payload.command", "required", `["echo hello"]`)
}

func TestNotJSONObject(t *testing.T) {
	hasProblem(t, problems(t, platform.ArgvCommands, `{"command":`), "payload", "not valid JSON")
	hasProblem(t, problems(t, platform.ArgvCommands, `[1]`), "payload", "must be object")
}

func TestUnsupportedFieldsRejected(t *testing.T) {
	win := `"command": ["echo"], "maxRunTime": 5`
	probs := problems(t, platform.CmdLineCommands, `{`+win+`, "rdpInfo": "public/rdp.json"}`)
	hasProblem(t, probs, "payload.rdpInfo", "not supported by labrunner yet")
	if len(probs) != 1 {
		t.Errorf("rdpInfo: want exactly one problem, got %v", probs)
	}
}

// osGroups is accepted on every OS (generic-worker's posix schema allows
// only an empty list; labrunner has groups there too); runAsAdministrator
// is a Windows field, and never goes with chainOfTrust.
func TestTaskUserPayloadFields(t *testing.T) {
	posix := `"command": [["true"]], "maxRunTime": 5`
	win := `"command": ["echo"], "maxRunTime": 5`
	p, err := parsePayload(json.RawMessage(`{`+posix+`, "osGroups": ["audio", "video"]}`), platform.ArgvCommands)
	if err != nil || !slices.Equal(p.OSGroups, []string{"audio", "video"}) {
		t.Errorf("posix osGroups: %v, %v", p, err)
	}
	p, err = parsePayload(json.RawMessage(`{`+win+`, "osGroups": ["Administrators"], "features": {"runAsAdministrator": true}}`), platform.CmdLineCommands)
	if err != nil || !p.RunAsAdministrator || !slices.Equal(p.OSGroups, []string{"Administrators"}) {
		t.Errorf("windows osGroups and runAsAdministrator: %v, %v", p, err)
	}
	hasProblem(t, problems(t, platform.ArgvCommands, `{`+posix+`, "features": {"runAsAdministrator": true}}`), "payload.features.runAsAdministrator", "not a generic-worker v44 payload field")
	hasProblem(t, problems(t, platform.CmdLineCommands, `{`+win+`, "features": {"runAsAdministrator": true, "chainOfTrust": true}}`),
		"payload.features.runAsAdministrator", "chainOfTrust")
}

// osGroups and runAsAdministrator need generic-worker's scopes for the
// task's pool (provisionerId/workerType); a missing one is named.
func TestTaskUserScopes(t *testing.T) {
	task := &tcqueue.TaskDefinitionResponse{
		ProvisionerID: "lab", WorkerType: "win11-gpu", TaskQueueID: "lab/win11-gpu",
		Deadline: tcclient.Time(time.Now().Add(time.Hour)), Expires: tcclient.Time(time.Now().Add(24 * time.Hour)),
		Payload: json.RawMessage(`{"command": ["echo"], "maxRunTime": 5, "osGroups": ["Administrators", "Hyper-V Administrators"], "features": {"runAsAdministrator": true}}`),
		Scopes:  []string{"generic-worker:os-group:lab/win11-gpu/Administrators"},
	}
	if platform.TaskCommandStyle() != platform.CmdLineCommands {
		task.Payload = json.RawMessage(`{"command": [["true"]], "maxRunTime": 5, "osGroups": ["Administrators", "Hyper-V Administrators"]}`)
	}
	_, err := parseTaskPayload(task)
	var perr *PayloadError
	if !errors.As(err, &perr) {
		t.Fatalf("parseTaskPayload without the scopes = %v; want a *PayloadError", err)
	}
	hasProblem(t, perr.Problems, "task.scopes", "generic-worker:os-group:lab/win11-gpu/Hyper-V Administrators", "payload.osGroups")
	if platform.TaskCommandStyle() == platform.CmdLineCommands {
		hasProblem(t, perr.Problems, "task.scopes", "generic-worker:run-as-administrator:lab/win11-gpu", "payload.features.runAsAdministrator")
	}
	task.Scopes = []string{"generic-worker:os-group:lab/win11-gpu/*", "generic-worker:run-as-administrator:lab/win11-gpu"}
	if _, err := parseTaskPayload(task); err != nil {
		t.Errorf("parseTaskPayload with the scopes (one by a trailing *): %v", err)
	}
}

func TestPayloadErrorMessageListsEveryProblem(t *testing.T) {
	_, err := parsePayload(json.RawMessage(`{"command": [["true"]], "maxRunTime": 0, "mounts": [{"file": "a"}]}`), platform.ArgvCommands)
	if err == nil {
		t.Fatal("want error")
	}
	msg := err.Error()
	for _, want := range []string{"malformed payload (2 problem(s))", "payload.maxRunTime: must be at least 1", "payload.mounts[0].content: is required"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}

func TestParsePayloadUsesPlatformStyle(t *testing.T) {
	var payload string
	if platform.TaskCommandStyle() == platform.CmdLineCommands {
		payload = `{"command": ["echo hi"], "maxRunTime": 5}`
	} else {
		payload = `{"command": [["echo", "hi"]], "maxRunTime": 5}`
	}
	p, err := ParsePayload(json.RawMessage(payload))
	if err != nil || p.Style != platform.TaskCommandStyle() {
		t.Fatalf("ParsePayload = %+v, %v", p, err)
	}
}

func TestCheckArtifactExpiry(t *testing.T) {
	p := mustParse(t, platform.ArgvCommands, `{"command": [["true"]], "maxRunTime": 5, "artifacts": [
		{"type": "file", "path": "early", "expires": "2030-01-01T00:00:00Z"},
		{"type": "file", "path": "ok", "expires": "2030-06-01T00:00:00Z"},
		{"type": "file", "path": "late", "expires": "2031-06-01T00:00:00Z"},
		{"type": "file", "path": "default"},
		{"type": "file", "path": "rounded", "expires": "2030-01-31T23:59:59.500Z"}
	]}`)
	deadline := time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC)
	expires := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	err := p.CheckArtifactExpiry(deadline, expires)
	var perr *PayloadError
	if !errors.As(err, &perr) {
		t.Fatalf("CheckArtifactExpiry = %v, want *PayloadError", err)
	}
	hasProblem(t, perr.Problems, "payload.artifacts[0].expires", "before the task deadline")
	hasProblem(t, perr.Problems, "payload.artifacts[2].expires", "after the task expiry")
	if len(perr.Problems) != 2 {
		t.Fatalf("problems %v, want only artifacts 0 and 2", perr.Problems)
	}
	p.Artifacts = p.Artifacts[1:2]
	if err := p.CheckArtifactExpiry(deadline, expires); err != nil {
		t.Fatalf("valid expiry rejected: %v", err)
	}
}

func TestMountsParsedAndCheckedInPayload(t *testing.T) {
	p, err := parsePayload(json.RawMessage(`{"command": [["true"]], "maxRunTime": 5, "mounts": [
		{"file": "a/b.txt", "content": {"raw": "x"}},
		{"directory": "d", "format": "tar.zst", "content": {"url": "https://example.com/t.tar.zst"}},
		{"directory": "c", "cacheName": "my-cache"}]}`), platform.ArgvCommands)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Mounts) != 3 || p.Mounts[2].CacheName != "my-cache" {
		t.Fatalf("mounts %+v", p.Mounts)
	}
	// A mount of no kind names the kind it is closest to.
	probs := problems(t, platform.ArgvCommands, `{"command": [["true"]], "maxRunTime": 5, "mounts": [{"directory": "d", "format": "zip"}]}`)
	hasProblem(t, probs, "payload.mounts[0].content", "required")
	if len(probs) != 1 {
		t.Errorf("want one problem, got %v", probs)
	}
	hasProblem(t, problems(t, platform.ArgvCommands, `{"command": [["true"]], "maxRunTime": 5, "mounts": [{"file": "../x", "content": {"raw": "x"}}]}`),
		"payload.mounts[0].file", "leaves the task directory")
	hasProblem(t, problems(t, platform.ArgvCommands, `{"command": [["true"]], "maxRunTime": 5, "mounts": [{"directory": "d", "format": "7z", "content": {"raw": "x"}}]}`),
		"payload.mounts[0].format", "tar.zst")
}
