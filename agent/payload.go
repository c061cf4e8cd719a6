// Package agent runs one Taskcluster task from claim to resolution.
package agent

// Payload parsing: raw JSON ──schema (per platform.TaskCommandStyle)──▶
// unsupported-field check ──▶ typed Payload, or a PayloadError listing every
// problem with its field path and fix. The schemas are generic-worker v44's,
// embedded from schemas/ (see schemas/README.md).

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labrunner/labrunner/agent/mounts"
	"github.com/labrunner/labrunner/platform"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed schemas/*.json
var schemaFiles embed.FS

// Payload is a validated generic-worker v44 task payload.
type Payload struct {
	// Style says which of Argv or Lines holds the commands.
	Style platform.CommandStyle
	// Argv holds one argv list per command (platform.ArgvCommands).
	Argv [][]string
	// Lines holds one cmd.exe line per command (platform.CmdLineCommands).
	Lines []string
	// Env is the payload's environment variables.
	Env map[string]string
	// MaxRunTime bounds the run time of all commands together.
	MaxRunTime time.Duration
	// Artifacts are the files and directories to upload after the commands.
	Artifacts []PayloadArtifact
	// OnExitStatus maps exit codes to special resolutions.
	OnExitStatus ExitStatusPolicy
	// LiveLog is false only when the payload sets features.liveLog to false.
	LiveLog bool
	// TaskclusterProxy is features.taskclusterProxy: serve the task a
	// taskcluster-proxy on TASKCLUSTER_PROXY_URL.
	TaskclusterProxy bool
	// ChainOfTrust is features.chainOfTrust: publish a signed
	// chain-of-trust document of the run's artifacts.
	ChainOfTrust bool
	// SupersederURL is accepted for compatibility and, as in generic-worker, unused.
	SupersederURL string
	// Mounts are the files, directories and caches to mount, in order.
	Mounts []mounts.Mount
	// OSGroups are the local groups the task user joins for this task
	// (each needs generic-worker:os-group:<taskQueueId>/<group>).
	OSGroups []string
	// RunAsAdministrator is features.runAsAdministrator (Windows): the
	// commands get the task user's elevated token.
	RunAsAdministrator bool
}

// ArtifactType is the payload artifact kind: a single file or a directory tree.
type ArtifactType string

// The payload artifact types.
const (
	FileArtifact      ArtifactType = "file"
	DirectoryArtifact ArtifactType = "directory"
)

// PayloadArtifact is one payload artifact as the task author wrote it; defaults
// (name from path, expiry from the task) are applied at upload.
type PayloadArtifact struct {
	// Type is file or directory.
	Type ArtifactType
	// Path is relative to the task directory, with / or \ separators.
	Path string
	// Name is the published name; empty means derived from Path.
	Name string
	// Expires is zero when the payload leaves it to the task's expiry.
	Expires time.Time
	// ContentType is empty when it should be guessed from the file name.
	ContentType string
	// ContentEncoding is "", "identity" or "gzip"; empty means guessed.
	ContentEncoding string
}

// ExitStatusPolicy is the payload's onExitStatus.
type ExitStatusPolicy struct {
	// Retry exit codes resolve the run exception/intermittent-task.
	Retry []int
	// PurgeCaches exit codes remove the task's writable caches instead of
	// keeping them.
	PurgeCaches []int
}

// CommandCount is the number of commands in the payload.
func (p *Payload) CommandCount() int {
	if p.Style == platform.CmdLineCommands {
		return len(p.Lines)
	}
	return len(p.Argv)
}

// IsRetryExitCode reports whether a command's exit code asks for a rerun.
func (p *Payload) IsRetryExitCode(code int) bool {
	return slices.Contains(p.OnExitStatus.Retry, code)
}

// Problem is one thing wrong with a payload: the field and how to fix it.
type Problem struct {
	// Field is a path such as payload.artifacts[0].type.
	Field string
	// Message says what is wrong and what to do instead.
	Message string
}

// String renders the problem as one log line.
func (p Problem) String() string { return p.Field + ": " + p.Message }

// PayloadError is a malformed payload: every problem found, in field order.
type PayloadError struct {
	Problems []Problem
}

// Error lists the problems, one per line.
func (e *PayloadError) Error() string {
	lines := make([]string, 0, len(e.Problems)+1)
	lines = append(lines, fmt.Sprintf("malformed payload (%d problem(s)):", len(e.Problems)))
	for _, p := range e.Problems {
		lines = append(lines, "  "+p.String())
	}
	return strings.Join(lines, "\n")
}

// ParsePayload validates raw against the generic-worker v44 payload schema
// of this OS and decodes it. A bad payload gives a *PayloadError.
func ParsePayload(raw json.RawMessage) (*Payload, error) {
	return parsePayload(raw, platform.TaskCommandStyle())
}

// schemaFor maps a command style to its embedded schema file.
var schemaFor = map[platform.CommandStyle]string{
	platform.ArgvCommands:    "schemas/multiuser_posix.json",
	platform.CmdLineCommands: "schemas/multiuser_windows.json",
}

var compiled sync.Map // schema file name → *jsonschema.Schema

func payloadSchema(style platform.CommandStyle) (*jsonschema.Schema, error) {
	file, ok := schemaFor[style]
	if !ok {
		return nil, fmt.Errorf("no payload schema for command style %v", style)
	}
	if s, ok := compiled.Load(file); ok {
		return s.(*jsonschema.Schema), nil
	}
	b, err := schemaFiles.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read embedded %s: %w", file, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("parse embedded %s: %w", file, err)
	}
	url := "https://labrunner.invalid/" + file
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("load embedded %s: %w", file, err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("compile embedded %s: %w", file, err)
	}
	compiled.Store(file, s)
	return s, nil
}

// wirePayload is the wire form; Command is decoded per style.
type wirePayload struct {
	Command    json.RawMessage   `json:"command"`
	Env        map[string]string `json:"env"`
	MaxRunTime int64             `json:"maxRunTime"`
	Artifacts  []struct {
		Type            ArtifactType `json:"type"`
		Path            string       `json:"path"`
		Name            string       `json:"name"`
		Expires         *time.Time   `json:"expires"`
		ContentType     string       `json:"contentType"`
		ContentEncoding string       `json:"contentEncoding"`
	} `json:"artifacts"`
	Features struct {
		LiveLog          *bool `json:"liveLog"`
		TaskclusterProxy bool  `json:"taskclusterProxy"`
		ChainOfTrust     bool  `json:"chainOfTrust"`
		// RunAsAdministrator is in the Windows schema only.
		RunAsAdministrator bool `json:"runAsAdministrator"`
	} `json:"features"`
	OSGroups     []string `json:"osGroups"`
	OnExitStatus struct {
		Retry       []int `json:"retry"`
		PurgeCaches []int `json:"purgeCaches"`
	} `json:"onExitStatus"`
	SupersederURL string            `json:"supersederUrl"`
	Mounts        []json.RawMessage `json:"mounts"`
}

func parsePayload(raw json.RawMessage, style platform.CommandStyle) (*Payload, error) {
	schema, err := payloadSchema(style)
	if err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, &PayloadError{Problems: []Problem{{
			Field:   "payload",
			Message: fmt.Sprintf("is not valid JSON (%v); the payload must be a JSON object", err),
		}}}
	}
	unsupported := unsupportedFields(doc)
	var problems []Problem
	for _, u := range unsupported {
		problems = append(problems, Problem{Field: u, Message: "is not supported by labrunner yet; remove it or run the task on generic-worker (see docs/payload.md)"})
	}
	if err := schema.Validate(doc); err != nil {
		var verr *jsonschema.ValidationError
		if !errors.As(err, &verr) {
			return nil, fmt.Errorf("validate payload: %w", err)
		}
		for _, p := range schemaProblems(verr, style) {
			if !insideAny(p.Field, unsupported) {
				problems = append(problems, p)
			}
		}
	}
	if len(problems) > 0 {
		slices.SortStableFunc(problems, func(a, b Problem) int { return strings.Compare(a.Field, b.Field) })
		problems = slices.Compact(problems)
		return nil, &PayloadError{Problems: problems}
	}

	var rp wirePayload
	if err := json.Unmarshal(raw, &rp); err != nil {
		return nil, decodeProblems(err)
	}
	p := &Payload{
		Style:         style,
		Env:           rp.Env,
		MaxRunTime:    time.Duration(rp.MaxRunTime) * time.Second,
		LiveLog:       rp.Features.LiveLog == nil || *rp.Features.LiveLog,
		SupersederURL: rp.SupersederURL,
		OnExitStatus:  ExitStatusPolicy{Retry: rp.OnExitStatus.Retry, PurgeCaches: rp.OnExitStatus.PurgeCaches},
	}
	p.TaskclusterProxy = rp.Features.TaskclusterProxy
	p.ChainOfTrust = rp.Features.ChainOfTrust
	p.OSGroups = rp.OSGroups
	p.RunAsAdministrator = rp.Features.RunAsAdministrator
	if p.RunAsAdministrator && p.ChainOfTrust {
		// As generic-worker: an elevated task could forge its own
		// chain-of-trust document.
		return nil, &PayloadError{Problems: []Problem{{Field: "payload.features.runAsAdministrator",
			Message: "cannot be used with features.chainOfTrust (an elevated task could read the signing key); drop one of the two"}}}
	}
	if p.Env == nil {
		p.Env = map[string]string{}
	}
	switch style {
	case platform.CmdLineCommands:
		err = json.Unmarshal(rp.Command, &p.Lines)
	default:
		err = json.Unmarshal(rp.Command, &p.Argv)
	}
	if err != nil {
		return nil, fmt.Errorf("decode validated payload command: %w", err)
	}
	// Problems the schema cannot see: mount and artifact paths.
	var later []Problem
	if len(rp.Mounts) > 0 {
		ms, mprobs := mounts.Parse(rp.Mounts)
		for _, mp := range mprobs {
			later = append(later, Problem{Field: mp.Field, Message: mp.Message})
		}
		p.Mounts = ms
	}
	for i, a := range rp.Artifacts {
		if msg := checkArtifactPath(a.Path); msg != "" {
			// Stricter than generic-worker v44, which reads such paths
			// (artifactopen.go).
			later = append(later, Problem{Field: fmt.Sprintf("payload.artifacts[%d].path", i), Message: fmt.Sprintf(
				"%s%s; labrunner reads artifacts only from inside the task directory (docs/payload.md#artifacts)", msg, artifactLabel(a.Name))})
		}
		art := PayloadArtifact{Type: a.Type, Path: a.Path, Name: a.Name, ContentType: a.ContentType, ContentEncoding: a.ContentEncoding}
		if a.Expires != nil {
			art.Expires = *a.Expires
		}
		p.Artifacts = append(p.Artifacts, art)
	}
	if len(later) > 0 {
		slices.SortStableFunc(later, func(a, b Problem) int { return strings.Compare(a.Field, b.Field) })
		return nil, &PayloadError{Problems: later}
	}
	return p, nil
}

// artifactLabel names a payload artifact in a problem about its path, if
// it has a name.
func artifactLabel(name string) string {
	if name == "" {
		return ""
	}
	return fmt.Sprintf(" (artifact %q)", name)
}

// unsupportedFields lists the payload fields that generic-worker accepts but
// labrunner cannot honour yet. Empty lists and false flags are harmless and
// pass, so payloads that spell out defaults still run.
func unsupportedFields(doc any) []string {
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil
	}
	var out []string
	if _, ok := obj["rdpInfo"]; ok {
		out = append(out, "payload.rdpInfo")
	}
	return out
}

func insideAny(field string, parents []string) bool {
	for _, p := range parents {
		if field == p || strings.HasPrefix(field, p+".") || strings.HasPrefix(field, p+"[") {
			return true
		}
	}
	return false
}

// CheckArtifactExpiry applies generic-worker's task-dependent check: an
// artifact expiry given in the payload must fall between the task's
// deadline and its expiry (1 s of slack either way, for rounding upstream).
// A bad expiry gives a *PayloadError.
func (p *Payload) CheckArtifactExpiry(deadline, taskExpires time.Time) error {
	var problems []Problem
	for i, a := range p.Artifacts {
		if a.Expires.IsZero() {
			continue
		}
		field := fmt.Sprintf("payload.artifacts[%d].expires", i)
		if a.Expires.Add(time.Second).Before(deadline) {
			problems = append(problems, Problem{Field: field, Message: fmt.Sprintf(
				"%s is before the task deadline %s; set it to the deadline or later, or omit it to use the task's expiry",
				a.Expires.UTC().Format(time.RFC3339), deadline.UTC().Format(time.RFC3339))})
		}
		if a.Expires.After(taskExpires.Add(time.Second)) {
			problems = append(problems, Problem{Field: field, Message: fmt.Sprintf(
				"%s is after the task expiry %s; set it no later than the task expires, or omit it",
				a.Expires.UTC().Format(time.RFC3339), taskExpires.UTC().Format(time.RFC3339))})
		}
	}
	if len(problems) > 0 {
		return &PayloadError{Problems: problems}
	}
	return nil
}
