package agent

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Configuration mistakes as a person reads them: yaml.v3 says
// "line 15: field drainGrase not found in type runner.Config"; the
// operator wants the key's path in the file, the line where it is, and
// the key that was probably meant, without Go type names.

var (
	unknownFieldRE = regexp.MustCompile(`^line (\d+): field (\S+) not found in type \S+$`)
	typeMismatchRE = regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+) `(.*)` into (\\S+)$")
)

// YAMLProblems rewrites yaml.v3's decoding errors for a document decoded
// into root (a struct type) as "line N: path: what is wrong; the fix".
// doc is the same document parsed as a node tree, which gives each key's
// path.
func YAMLProblems(doc *yaml.Node, root reflect.Type, errs []string) []string {
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, yamlProblem(doc, root, e))
	}
	return out
}

func yamlProblem(doc *yaml.Node, root reflect.Type, e string) string {
	if m := unknownFieldRE.FindStringSubmatch(e); m != nil {
		line, name := atoi(m[1]), m[2]
		path := keyPath(doc, line, name)
		where := strings.Join(path, ".")
		if where == "" {
			where = name
		}
		msg := fmt.Sprintf("line %d: %s: unknown key", line, where)
		if s := closest(name, knownKeys(root, path[:max(len(path)-1, 0)])); s != "" {
			msg += fmt.Sprintf("; did you mean %s?", s)
		}
		return msg + " Fix or remove it (see docs/config.md)"
	}
	if m := typeMismatchRE.FindStringSubmatch(e); m != nil {
		line, value := atoi(m[1]), m[3]
		where := strings.Join(valuePath(doc, line), ".")
		if where == "" {
			where = "value"
		}
		return fmt.Sprintf("line %d: %s: want %s, not %q (see docs/config.md)", line, where, kindWord(m[4]), value)
	}
	return e + " (see docs/config.md)"
}

// UnknownTopLevelKeys lists the top-level keys of doc that root (a struct
// type) does not have and that are not in allowed, as problems with their
// line numbers.
func UnknownTopLevelKeys(doc *yaml.Node, root reflect.Type, allowed ...string) []string {
	m := mapping(doc)
	if m == nil {
		return nil
	}
	known := knownKeys(root, nil)
	var out []string
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if slices.Contains(known, k.Value) || slices.Contains(allowed, k.Value) {
			continue
		}
		msg := fmt.Sprintf("line %d: %s: unknown key", k.Line, k.Value)
		if s := closest(k.Value, append(known, allowed...)); s != "" {
			msg += fmt.Sprintf("; did you mean %s?", s)
		}
		out = append(out, msg+" Fix or remove it (see docs/config.md)")
	}
	return out
}

// mapping returns the document's top-level mapping, or nil.
func mapping(doc *yaml.Node) *yaml.Node {
	n := doc
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	return n
}

// keyPath finds the key named name on line and returns its path.
func keyPath(doc *yaml.Node, line int, name string) []string {
	var found []string
	walk(mapping(doc), nil, func(path []string, k, _ *yaml.Node) bool {
		if k.Line == line && k.Value == name {
			found = append(append([]string{}, path...), k.Value)
			return false
		}
		return true
	})
	return found
}

// valuePath finds the key whose scalar value sits on line.
func valuePath(doc *yaml.Node, line int) []string {
	var found []string
	walk(mapping(doc), nil, func(path []string, k, v *yaml.Node) bool {
		if v.Line == line && v.Kind != yaml.MappingNode {
			found = append(append([]string{}, path...), k.Value)
			return false
		}
		return true
	})
	return found
}

// walk visits every key of a mapping tree, depth first, until visit
// returns false.
func walk(m *yaml.Node, path []string, visit func(path []string, k, v *yaml.Node) bool) bool {
	if m == nil || m.Kind != yaml.MappingNode {
		return true
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if !visit(path, k, v) {
			return false
		}
		if !walk(v, append(path, k.Value), visit) {
			return false
		}
	}
	return true
}

// knownKeys lists the yaml keys of the struct reached from root by path.
func knownKeys(root reflect.Type, path []string) []string {
	t := root
	for _, p := range path {
		f, ok := fieldByKey(t, p)
		if !ok {
			return nil
		}
		t = f
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if strings.Contains(opts, "inline") {
			keys = append(keys, knownKeys(f.Type, nil)...)
			continue
		}
		if name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	sort.Strings(keys)
	return keys
}

// fieldByKey returns the type of t's field tagged key (looking into
// inlined structs).
func fieldByKey(t reflect.Type, key string) (reflect.Type, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil, false
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if strings.Contains(opts, "inline") {
			if ft, ok := fieldByKey(f.Type, key); ok {
				return ft, true
			}
			continue
		}
		if name == key {
			return f.Type, true
		}
	}
	return nil, false
}

// closest returns the known key nearest to name when it is a likely typo
// (edit distance at most a third of the name, and at most 3), else "".
func closest(name string, known []string) string {
	best, bestD := "", 4
	for _, k := range known {
		d := editDistance(strings.ToLower(name), strings.ToLower(k))
		if d < bestD && d <= max(1, len(name)/3) {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// kindWord names what a Go type wants, in a config writer's words.
func kindWord(goType string) string {
	switch {
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "a whole number"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "bool":
		return "true or false"
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["):
		return "a mapping"
	}
	return "a mapping of the keys in docs/config.md"
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
