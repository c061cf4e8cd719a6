package bridge

// Validation of a pending task, in BBB's order (docs/bridge.md, "Validation"):
//
//	payload schema (buildername, properties.product)   -> "invalid schema"
//	restricted builder without the builder-name scope  -> "not authorized"
//	builder unknown to the masters                     -> "invalid buildername"
//
// Any failure makes the TC listener claim the run and resolve it
// malformed-payload.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// payloadSchema is BBB's bbb/schemas/payload.yml as JSON (docs/bridge.md,
// "Task payload").
const payloadSchema = `{
  "$schema": "http://json-schema.org/draft-04/schema#",
  "id": "http://schemas.taskcluster.net/buildbot-bridge/v1/payload.json",
  "type": "object",
  "additionalProperties": false,
  "required": ["buildername", "properties"],
  "properties": {
    "buildername": {"type": "string", "minLength": 1},
    "sourcestamp": {
      "type": "object",
      "additionalProperties": false,
      "required": ["branch"],
      "properties": {
        "branch": {"type": "string", "minLength": 3},
        "revision": {"type": "string", "minLength": 1},
        "repository": {"type": "string", "minLength": 1},
        "project": {"type": "string", "minLength": 1}
      }
    },
    "properties": {
      "type": "object",
      "required": ["product"],
      "properties": {"product": {"type": "string", "minLength": 1}}
    }
  }
}`

var compiledPayloadSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(payloadSchema))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("payload.json", doc); err != nil {
		return nil, err
	}
	return c.Compile("payload.json")
})

// Payload is a bridged task's payload.
type Payload struct {
	BuilderName string                     `json:"buildername"`
	Sourcestamp *PayloadSourcestamp        `json:"sourcestamp,omitempty"`
	Properties  map[string]json.RawMessage `json:"properties"`
}

// PayloadSourcestamp is payload.sourcestamp.
type PayloadSourcestamp struct {
	Branch     string `json:"branch"`
	Revision   string `json:"revision,omitempty"`
	Repository string `json:"repository,omitempty"`
	Project    string `json:"project,omitempty"`
}

// validatePayload checks raw against the payload schema and decodes it.
func validatePayload(raw json.RawMessage) (Payload, error) {
	sch, err := compiledPayloadSchema()
	if err != nil {
		return Payload{}, fmt.Errorf("compile payload schema: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return Payload{}, fmt.Errorf("invalid schema: payload is not JSON: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		return Payload{}, fmt.Errorf("invalid schema: %w", err)
	}
	var p Payload
	if err := json.Unmarshal(raw, &p); err != nil {
		return Payload{}, fmt.Errorf("invalid schema: %w", err)
	}
	if n := utf8.RuneCountInString(p.BuilderName); n > 256 {
		return Payload{}, fmt.Errorf("invalid schema: payload.buildername is %d characters; buildrequests.buildername holds 256", n)
	}
	if ss := p.Sourcestamp; ss != nil {
		for field, v := range map[string]string{"branch": ss.Branch, "revision": ss.Revision} {
			if n := utf8.RuneCountInString(v); n > 256 {
				return Payload{}, fmt.Errorf("invalid schema: payload.sourcestamp.%s is %d characters; the SchedulerDB holds 256", field, n)
			}
		}
	}
	for name, v := range p.Properties {
		if n := utf8.RuneCountInString(name); n > 256 {
			return Payload{}, fmt.Errorf("invalid schema: property name %.40q… is %d characters; the SchedulerDB holds 256", name, n)
		}
		// buildset_properties.property_value is VARCHAR(1024) and holds
		// [value, "bbb"] as Python's json.dumps writes it; a longer value is
		// refused here rather than truncated or failing the insert
		// (docs/bridge.md, "Known problems of BBB fixed here", long
		// properties).
		if n := pythonJSONLen(v) + len(`[, "bbb"]`); n > 1024 {
			return Payload{}, fmt.Errorf("invalid schema: payload.properties.%s takes %d characters stored as [value, \"bbb\"]; the SchedulerDB holds 1024", name, n)
		}
	}
	return p, nil
}

// pythonJSONLen estimates the length of v as Python's json.dumps (ASCII
// only) writes it: every non-ASCII rune becomes \uXXXX (two for runes
// outside the BMP), and ", " / ": " separators add a space each.
func pythonJSONLen(v json.RawMessage) int {
	var compact bytes.Buffer
	if json.Compact(&compact, v) != nil {
		return len(v)
	}
	n := 0
	inString, escaped := false, false
	for _, r := range compact.String() {
		switch {
		case r > 0xFFFF:
			n += 12
		case r > 127:
			n += 6
		default:
			n++
			if !inString && (r == ',' || r == ':') {
				n++
			}
		}
		switch {
		case escaped:
			escaped = false
		case r == '\\':
			escaped = true
		case r == '"':
			inString = !inString
		}
	}
	return n
}

// builderNameOf reads payload.buildername without validating anything else;
// "" when it is missing or not a string, so that the ignore check cannot
// fail on it (BBB crashed there) and validation refuses the task.
func builderNameOf(raw json.RawMessage) string {
	var p struct {
		BuilderName any `json:"buildername"`
	}
	if json.Unmarshal(raw, &p) != nil {
		return ""
	}
	s, _ := p.BuilderName.(string)
	return s
}

// matchAny reports whether s matches any regex anchored at the start, as
// Python's re.match does.
func matchAny(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if loc := re.FindStringIndex(s); loc != nil && loc[0] == 0 {
			return true
		}
	}
	return false
}

func compileAll(list []string) []*regexp.Regexp {
	out := make([]*regexp.Regexp, 0, len(list))
	for _, s := range list {
		out = append(out, regexp.MustCompile(s)) // Config.Validate compiled them already
	}
	return out
}

// authorized reports whether a task with scopes may run builder
// (docs/bridge.md, "Validation"): restricted builders need buildbot-bridge:builder-name:<builder> or
// the project:releng: form; a held scope ending in * matches as a prefix.
func authorized(restricted []*regexp.Regexp, builder string, scopes []string) bool {
	if !matchAny(restricted, builder) {
		return true
	}
	for _, want := range []string{"buildbot-bridge:builder-name:" + builder, "project:releng:buildbot-bridge:builder-name:" + builder} {
		for _, have := range scopes {
			if have == want || (strings.HasSuffix(have, "*") && strings.HasPrefix(want, strings.TrimSuffix(have, "*"))) {
				return true
			}
		}
	}
	return false
}

// knownBuilders answers whether the masters know a builder: the builders of
// builders.yaml, plus allthethings.json's when a URL is configured, fetched
// again when older than allThingsMaxAge and kept when a fetch fails.
type knownBuilders struct {
	url    string
	local  map[string]BuilderDef
	client *http.Client
	now    func() time.Time

	mu      sync.Mutex
	names   map[string]bool
	fetched time.Time
	fetches int
}

// allThingsMaxAge is BBB's refresh age for allthethings.json.
const allThingsMaxAge = 300 * time.Second

func (k *knownBuilders) known(ctx context.Context, builder string) (bool, error) {
	if _, ok := k.local[builder]; ok {
		return true, nil
	}
	if k.url == "" {
		return len(k.local) == 0, nil // nothing configured: every builder is accepted
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.names == nil || k.now().Sub(k.fetched) > allThingsMaxAge {
		names, err := k.fetch(ctx)
		switch {
		case err == nil:
			k.names, k.fetched = names, k.now()
		case k.names == nil:
			return false, err
		}
	}
	return k.names[builder], nil
}

func (k *knownBuilders) fetch(ctx context.Context) (map[string]bool, error) {
	k.fetches++
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("allthethings_url %q: %w", k.url, err)
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch allthethings.json: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch allthethings.json: HTTP %d", resp.StatusCode)
	}
	var doc struct {
		Builders map[string]json.RawMessage `json:"builders"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return nil, fmt.Errorf("decode allthethings.json: %w", err)
	}
	if doc.Builders == nil {
		return nil, errors.New("allthethings.json has no builders object")
	}
	names := make(map[string]bool, len(doc.Builders))
	for n := range doc.Builders {
		names[n] = true
	}
	return names, nil
}
