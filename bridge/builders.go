package bridge

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"

	"gopkg.in/yaml.v3"
)

// BuilderDef says what an agent runs for a builder (builders.yaml).
type BuilderDef struct {
	// Steps run in order; the build fails at the first failing step.
	Steps []StepDef `yaml:"steps" json:"steps"`
	// Env is added to every step's environment.
	Env map[string]string `yaml:"env" json:"env,omitempty"`
	// MaxRunTime bounds the whole build, in seconds (default 3600).
	MaxRunTime int `yaml:"maxRunTime" json:"maxRunTime"`
}

// StepDef is one command of a builder.
type StepDef struct {
	Name    string   `yaml:"name" json:"name,omitempty"`
	Command []string `yaml:"command" json:"command"`
}

// buildersFile is builders.yaml: `builders: {name: BuilderDef}`.
type buildersFile struct {
	Builders map[string]BuilderDef `yaml:"builders"`
}

// LoadBuilders reads builders.yaml and checks every builder.
func LoadBuilders(path string) (map[string]BuilderDef, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bridge: read builders file: %w", err)
	}
	var f buildersFile
	if err := yaml.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("bridge: builders file %s: %w", path, err)
	}
	for name, b := range f.Builders {
		if err := b.check(); err != nil {
			return nil, fmt.Errorf("bridge: builders file %s: builders[%q]: %w", path, name, err)
		}
	}
	return f.Builders, nil
}

func (b BuilderDef) check() error {
	if len(b.Steps) == 0 {
		return fmt.Errorf("steps is empty: give at least one step with a command")
	}
	for i, s := range b.Steps {
		if len(s.Command) == 0 {
			return fmt.Errorf("steps[%d].command is empty: give the program and its arguments as a list", i)
		}
	}
	if b.MaxRunTime < 0 {
		return fmt.Errorf("maxRunTime %d is negative: give seconds", b.MaxRunTime)
	}
	return nil
}

// propRef is Buildbot's WithProperties form %(prop:name)s, with the
// optional %(prop:name:-default)s.
var propRef = regexp.MustCompile(`%\(prop:([^):]+)(?::-([^)]*))?\)s`)

// Interpolate returns the builder with every %(prop:name)s in its commands
// and env replaced by the property's value (strings as they are, other JSON
// values in their JSON form); a missing property gives its default or "".
func (b BuilderDef) Interpolate(props map[string]json.RawMessage) BuilderDef {
	sub := func(s string) string {
		return propRef.ReplaceAllStringFunc(s, func(m string) string {
			g := propRef.FindStringSubmatch(m)
			raw, ok := props[g[1]]
			if !ok || string(raw) == "null" {
				return g[2]
			}
			return propString(raw)
		})
	}
	out := BuilderDef{MaxRunTime: b.MaxRunTime, Env: map[string]string{}}
	if out.MaxRunTime == 0 {
		out.MaxRunTime = 3600
	}
	for k, v := range b.Env {
		out.Env[k] = sub(v)
	}
	for _, s := range b.Steps {
		ns := StepDef{Name: s.Name}
		for _, a := range s.Command {
			ns.Command = append(ns.Command, sub(a))
		}
		out.Steps = append(out.Steps, ns)
	}
	return out
}

func propString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
			return strconv.FormatInt(i, 10)
		}
		return n.String()
	}
	return string(raw)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
