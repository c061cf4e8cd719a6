package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/platform"
)

// FuzzParsePayload feeds arbitrary bytes to the payload parser of both
// command styles. It must never panic; a refusal must be a *PayloadError
// whose every problem names a payload field and says what is wrong; an
// accepted payload must parse to the same result after a JSON
// re-encoding, and the typed Payload written back as a payload must be
// accepted again with the same meaning. The artifact-expiry check of an
// accepted payload must name the field of each problem it finds.
func FuzzParsePayload(f *testing.F) {
	for _, s := range []string{
		`{"command":[["true"]],"maxRunTime":1}`,
		`{"command":["echo hi"],"maxRunTime":30,"env":{"A":"b"}}`,
		`{"command":[["sh","-c","exit 3"]],"maxRunTime":60,"env":{"K":"v"},"onExitStatus":{"retry":[3],"purgeCaches":[4]},"features":{"liveLog":false},"supersederUrl":"https://example.com/s"}`,
		`{"command":[["true"]],"maxRunTime":1,"artifacts":[{"type":"file","path":"out/a.txt","name":"public/a.txt","expires":"2030-01-01T00:00:00Z","contentType":"text/plain","contentEncoding":"gzip"},{"type":"directory","path":"logs"}]}`,
		`{"command":[["true"]],"maxRunTime":1,"mounts":[{"directory":"x","content":{"url":"https://e/x"}}]}`,
		`{"command":[["true"]],"maxRunTime":1,"features":{"taskclusterProxy":true},"osGroups":["a"],"rdpInfo":"x"}`,
		`{"command":[["true"]],"maxRunTime":-1,"artifacts":[{"type":"link"}],"env":{"A":1}}`,
		`{"command":[["true"]],"maxRunTime":1,"maxRunTime":2}`,
		"{\"command\":[[\"\xff\"]],\"maxRunTime\":1}",
		`{"command":[["\ud800"]],"maxRunTime":1e3}`,
		`[]`, `null`, `{`, ``, `"x"`, `{"command":[[]]}`,
	} {
		f.Add([]byte(s))
	}
	deadline := time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC)
	expires := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, style := range []platform.CommandStyle{platform.ArgvCommands, platform.CmdLineCommands} {
			p, err := parsePayload(raw, style)
			if err != nil {
				checkRefusal(t, style, raw, err)
				continue
			}
			// The same JSON, re-encoded, means the same payload.
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			var generic any
			if err := dec.Decode(&generic); err != nil {
				t.Fatalf("%v: accepted %q, which encoding/json cannot read: %v", style, raw, err)
			}
			again, _ := json.Marshal(generic)
			p2, err := parsePayload(again, style)
			if err != nil {
				t.Fatalf("%v: accepted %q but refuses its re-encoding %s: %v", style, raw, again, err)
			}
			if !reflect.DeepEqual(p, p2) {
				t.Fatalf("%v: %q and its re-encoding %s parse differently:\n%+v\n%+v", style, raw, again, p, p2)
			}
			// What the agent runs is itself a valid payload.
			typed := wireOf(t, p)
			p3, err := parsePayload(typed, style)
			if err != nil {
				t.Fatalf("%v: accepted %q but refuses the payload it parsed to, %s: %v", style, raw, typed, err)
			}
			if p3.CommandCount() != p.CommandCount() || p3.MaxRunTime != p.MaxRunTime || !reflect.DeepEqual(p3.Env, p.Env) ||
				p3.LiveLog != p.LiveLog || len(p3.Artifacts) != len(p.Artifacts) || !reflect.DeepEqual(p3.OnExitStatus, p.OnExitStatus) {
				t.Fatalf("%v: %q parsed to %+v, written back as %s it parses to %+v", style, raw, p, typed, p3)
			}
			if err := p.CheckArtifactExpiry(deadline, expires); err != nil {
				checkRefusal(t, style, raw, err)
			}
		}
	})
}

// checkRefusal fails t unless err is a *PayloadError whose every problem
// names a payload field and says what is wrong.
func checkRefusal(t *testing.T, style platform.CommandStyle, raw []byte, err error) {
	t.Helper()
	var perr *PayloadError
	if !errors.As(err, &perr) {
		t.Fatalf("%v: %q refused with %T %v, not a *PayloadError", style, raw, err, err)
	}
	if len(perr.Problems) == 0 {
		t.Fatalf("%v: %q refused with no problem listed", style, raw)
	}
	for _, pr := range perr.Problems {
		if !strings.HasPrefix(pr.Field, "payload") || strings.TrimSpace(pr.Message) == "" {
			t.Fatalf("%v: %q: problem %+v names no payload field or says nothing", style, raw, pr)
		}
	}
}

// wireOf writes a parsed payload back in generic-worker's wire form.
func wireOf(t *testing.T, p *Payload) []byte {
	t.Helper()
	w := map[string]any{"maxRunTime": int64(p.MaxRunTime / time.Second), "env": p.Env}
	if p.Style == platform.CmdLineCommands {
		w["command"] = p.Lines
	} else {
		w["command"] = p.Argv
	}
	if !p.LiveLog {
		w["features"] = map[string]any{"liveLog": false}
	}
	if p.SupersederURL != "" {
		w["supersederUrl"] = p.SupersederURL
	}
	exit := map[string]any{}
	if p.OnExitStatus.Retry != nil {
		exit["retry"] = p.OnExitStatus.Retry
	}
	if p.OnExitStatus.PurgeCaches != nil {
		exit["purgeCaches"] = p.OnExitStatus.PurgeCaches
	}
	if len(exit) > 0 {
		w["onExitStatus"] = exit
	}
	if p.Artifacts != nil {
		var arts []map[string]any
		for _, a := range p.Artifacts {
			m := map[string]any{"type": a.Type, "path": a.Path}
			for k, v := range map[string]string{"name": a.Name, "contentType": a.ContentType, "contentEncoding": a.ContentEncoding} {
				if v != "" {
					m[k] = v
				}
			}
			if !a.Expires.IsZero() {
				m["expires"] = a.Expires.Format(time.RFC3339Nano)
			}
			arts = append(arts, m)
		}
		w["artifacts"] = arts
	}
	b, err := json.Marshal(w)
	if err != nil {
		t.Fatalf("encode parsed payload: %v", err)
	}
	return b
}

// TestIntegerFieldsWrittenAsExponents: JSON Schema's "integer" admits 1e3
// and 1e30, which Go's integers cannot hold as written; the payload is
// refused naming the field, not failed as an internal error.
func TestIntegerFieldsWrittenAsExponents(t *testing.T) {
	for raw, field := range map[string]string{
		`{"command":[["true"]],"maxRunTime":1e3}`:                               "payload.maxRunTime",
		`{"command":[["true"]],"maxRunTime":1,"onExitStatus":{"retry":[1e30]}}`: "payload.onExitStatus.retry",
	} {
		_, err := parsePayload([]byte(raw), platform.ArgvCommands)
		var perr *PayloadError
		if !errors.As(err, &perr) || len(perr.Problems) != 1 || perr.Problems[0].Field != field {
			t.Errorf("%s: %v, want a payload problem naming %s", raw, err, field)
		}
	}
}
