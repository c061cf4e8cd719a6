package agent

// Turns jsonschema's nested validation errors into one Problem per leaf, each
// naming the payload field and saying how to fix it, because task authors
// read these in a task log, not in a debugger.

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/labrunner/labrunner/platform"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

var englishPrinter = message.NewPrinter(language.English)

func schemaProblems(verr *jsonschema.ValidationError, style platform.CommandStyle) []Problem {
	var out []Problem
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if _, ok := e.ErrorKind.(*kind.OneOf); ok && len(e.Causes) > 1 {
			// A mount or its content matched none of its kinds: report
			// the kind it came closest to, not every kind's complaints.
			walk(closestBranch(e.Causes))
			return
		}
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		out = append(out, leafProblems(e, style)...)
	}
	walk(verr)
	return out
}

// closestBranch is the oneOf branch with the fewest leaf errors (the
// first on a tie).
func closestBranch(branches []*jsonschema.ValidationError) *jsonschema.ValidationError {
	var leaves func(e *jsonschema.ValidationError) int
	leaves = func(e *jsonschema.ValidationError) int {
		if len(e.Causes) == 0 {
			return 1
		}
		n := 0
		for _, c := range e.Causes {
			n += leaves(c)
		}
		return n
	}
	best, bestN := branches[0], leaves(branches[0])
	for _, b := range branches[1:] {
		if n := leaves(b); n < bestN {
			best, bestN = b, n
		}
	}
	return best
}

// fieldPath renders a JSON instance location as payload.a.b[0].c.
func fieldPath(loc []string) string {
	var sb strings.Builder
	sb.WriteString("payload")
	for _, tok := range loc {
		if _, err := strconv.Atoi(tok); err == nil {
			sb.WriteString("[" + tok + "]")
		} else {
			sb.WriteString("." + tok)
		}
	}
	return sb.String()
}

func leafProblems(e *jsonschema.ValidationError, style platform.CommandStyle) []Problem {
	field := fieldPath(e.InstanceLocation)
	one := func(msg string) []Problem { return []Problem{{Field: field, Message: msg}} }
	switch k := e.ErrorKind.(type) {
	case *kind.AdditionalProperties:
		var out []Problem
		for _, name := range k.Properties {
			out = append(out, Problem{
				Field:   fieldPath(append(append([]string{}, e.InstanceLocation...), name)),
				Message: "is not a generic-worker v44 payload field; check its spelling or remove it (see docs/payload.md)",
			})
		}
		return out
	case *kind.Required:
		var out []Problem
		for _, name := range k.Missing {
			sub := fieldPath(append(append([]string{}, e.InstanceLocation...), name))
			out = append(out, Problem{Field: sub, Message: "is required; " + requiredHint(sub, style)})
		}
		return out
	case *kind.Type:
		msg := fmt.Sprintf("must be %s, not %s", strings.Join(k.Want, " or "), k.Got)
		if hint := commandHint(e.InstanceLocation, style); hint != "" {
			msg += "; " + hint
		}
		return one(msg)
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = fmt.Sprintf("%q", fmt.Sprint(w))
		}
		return one(fmt.Sprintf("must be one of %s, not %q", strings.Join(want, ", "), fmt.Sprint(k.Got)))
	case *kind.Minimum:
		return one(fmt.Sprintf("must be at least %s, not %s%s", k.Want.RatString(), k.Got.RatString(), rangeHint(field)))
	case *kind.Maximum:
		return one(fmt.Sprintf("must be at most %s, not %s%s", k.Want.RatString(), k.Got.RatString(), rangeHint(field)))
	case *kind.MultipleOf:
		return one(fmt.Sprintf("must be a whole number, not %s%s", k.Got.RatString(), rangeHint(field)))
	case *kind.Format:
		if k.Want == "date-time" {
			return one(fmt.Sprintf("must be an RFC 3339 date-time such as 2030-01-02T15:04:05.000Z, not %q", fmt.Sprint(k.Got)))
		}
		return one(fmt.Sprintf("must be a valid %s, not %q", k.Want, fmt.Sprint(k.Got)))
	case *kind.MinItems:
		if field == "payload.command" {
			return one("must list at least one command")
		}
		return one(fmt.Sprintf("must have at least %d item(s), not %d", k.Want, k.Got))
	case *kind.MaxItems:
		return one(fmt.Sprintf("must have at most %d item(s), not %d", k.Want, k.Got))
	case *kind.UniqueItems:
		return one(fmt.Sprintf("items %d and %d are the same; remove the duplicate", k.Duplicates[0], k.Duplicates[1]))
	}
	return one(e.ErrorKind.LocalizedString(englishPrinter))
}

func requiredHint(field string, style platform.CommandStyle) string {
	switch field {
	case "payload.command":
		if style == platform.CmdLineCommands {
			return `add the commands as a list of cmd.exe lines, e.g. "command": ["echo hello"]`
		}
		return `add the commands as a list of argv lists, e.g. "command": [["echo", "hello"]]`
	case "payload.maxRunTime":
		return `add the maximum run time in seconds, e.g. "maxRunTime": 3600`
	}
	if strings.HasPrefix(field, "payload.artifacts[") {
		return `every artifact needs "type" ("file" or "directory") and "path" (relative to the task directory)`
	}
	return "add it"
}

// commandHint explains the command shape for this OS when a command has the
// other OS's shape, the commonest mistake when porting a task.
func commandHint(loc []string, style platform.CommandStyle) string {
	if len(loc) == 0 || loc[0] != "command" {
		return ""
	}
	if style == platform.CmdLineCommands {
		return `on Windows each command is one cmd.exe line, e.g. "command": ["echo hello", "dir"]`
	}
	return `on Linux and macOS each command is a list of arguments, e.g. "command": [["echo", "hello"], ["ls", "-l"]]`
}

func rangeHint(field string) string {
	if field == "payload.maxRunTime" {
		return " (seconds, 1 to 86400)"
	}
	return ""
}

// decodeProblems explains why encoding/json cannot decode a payload the
// schema accepted: JSON Schema's "integer" admits 1e3 and 3.0, and integers
// beyond int64, which Go's integers do not. Such a value gets a Problem
// naming its field; any other failure is a mismatch between schema and
// struct, an internal error.
func decodeProblems(err error) error {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) && typ.Field != "" {
		return &PayloadError{Problems: []Problem{{
			Field:   "payload." + typ.Field,
			Message: fmt.Sprintf("must be a whole number written without a fraction or exponent, within 64 bits (e.g. 3600), not %s", typ.Value),
		}}}
	}
	return fmt.Errorf("decode validated payload: %w", err)
}
