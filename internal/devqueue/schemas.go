package devqueue

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// The queue's own schemas (copied from Taskcluster v44.23.4) are the
// contract: validating against them rather than re-stating their rules keeps
// devqueue's 400s identical in scope to the real queue's.
//
//go:embed schemas/constants.yml schemas/v1/*.yml
var schemaFS embed.FS

const schemaBase = "https://devqueue.invalid/schemas/queue/v1/"

// schemaSet holds the compiled queue schemas by file name ("task.yml").
type schemaSet struct {
	byName map[string]*jsonschema.Schema
}

// loadSchemas compiles every embedded schema, expanding Taskcluster's
// `{$const: name}` references from constants.yml as libraries/references does.
func loadSchemas() (*schemaSet, error) {
	constRaw, err := schemaFS.ReadFile("schemas/constants.yml")
	if err != nil {
		return nil, fmt.Errorf("read schema constants: %w", err)
	}
	var constants map[string]any
	if err := yaml.Unmarshal(constRaw, &constants); err != nil {
		return nil, fmt.Errorf("parse schema constants: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft6)
	c.AssertFormat()
	entries, err := fs.Glob(schemaFS, "schemas/v1/*.yml")
	if err != nil {
		return nil, fmt.Errorf("list schemas: %w", err)
	}
	var names []string
	for _, e := range entries {
		raw, err := schemaFS.ReadFile(e)
		if err != nil {
			return nil, fmt.Errorf("read schema %s: %w", e, err)
		}
		var doc any
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			return nil, fmt.Errorf("parse schema %s: %w", e, err)
		}
		doc = expandConsts(doc, constants)
		if m, ok := doc.(map[string]any); ok {
			delete(m, "$schema")
		}
		// Round-trip through JSON so numbers are what the validator expects.
		js, err := json.Marshal(doc)
		if err != nil {
			return nil, fmt.Errorf("encode schema %s: %w", e, err)
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
		if err != nil {
			return nil, fmt.Errorf("decode schema %s: %w", e, err)
		}
		name := path.Base(e)
		if err := c.AddResource(schemaBase+strings.TrimSuffix(name, ".yml")+".json", v); err != nil {
			return nil, fmt.Errorf("add schema %s: %w", e, err)
		}
		names = append(names, name)
	}
	set := &schemaSet{byName: map[string]*jsonschema.Schema{}}
	for _, n := range names {
		sch, err := c.Compile(schemaBase + strings.TrimSuffix(n, ".yml") + ".json")
		if err != nil {
			return nil, fmt.Errorf("compile schema %s: %w", n, err)
		}
		set.byName[n] = sch
	}
	return set, nil
}

func expandConsts(v any, constants map[string]any) any {
	switch t := v.(type) {
	case map[string]any:
		if name, ok := t["$const"].(string); ok && len(t) == 1 {
			return expandConsts(constants[name], constants)
		}
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = expandConsts(x, constants)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = expandConsts(x, constants)
		}
		return out
	default:
		return v
	}
}

// validate checks a JSON document against the named schema and returns a
// message naming the offending fields, or "" when it is valid.
func (s *schemaSet) validate(name string, body []byte) string {
	sch, ok := s.byName[name]
	if !ok {
		return "devqueue has no schema " + name
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return "request body is not valid JSON: " + err.Error()
	}
	if err := sch.Validate(v); err != nil {
		msg := err.Error()
		// The first line names devqueue's internal schema URL; replace it
		// with the schema's public name.
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		return fmt.Sprintf("Schema validation against %s failed; fix these fields:\n%s", strings.TrimSuffix(name, ".yml")+".json", msg)
	}
	return ""
}
