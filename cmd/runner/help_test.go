//go:build unix

package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden help texts in testdata/help")

// helpCommands lists every command path of the CLI, root first.
func helpCommands(c *cobra.Command, prefix []string) [][]string {
	paths := [][]string{prefix}
	for _, sub := range c.Commands() {
		if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
			continue
		}
		paths = append(paths, helpCommands(sub, append(append([]string{}, prefix...), sub.Name()))...)
	}
	return paths
}

// flagLine is one line of a "Flags:" block: the flag, its value type, text.
var flagLine = regexp.MustCompile(`^\s+(?:-\w, )?--([\w-]+)(?: (\S+(?: \S+)*?))?\s{2,}(.*)$`)

// TestHelpTexts compares every command's --help with testdata/help (run
// `go test ./cmd/runner -run TestHelpTexts -update` after a deliberate
// change and review the diff), and checks what a reader is misled by:
// a flag's value type must be a type, not words lifted from backquotes in
// its usage; --state only where the state file is read; the service
// command says what it does on each OS.
func TestHelpTexts(t *testing.T) {
	types := map[string]bool{"string": true, "duration": true, "int": true, "uint": true, "float": true, "strings": true, "stringArray": true, "stringToString": true, "int32": true, "int64": true, "uint32": true}
	for _, path := range helpCommands(newRootCommand(), nil) {
		name := strings.Join(append([]string{"runner"}, path...), "_")
		t.Run(name, func(t *testing.T) {
			_, out, errOut := execute(context.Background(), append(path, "--help")...)
			if errOut != "" {
				t.Fatalf("stderr: %s", errOut)
			}
			inFlags := false
			for _, line := range strings.Split(out, "\n") {
				if strings.HasSuffix(line, "Flags:") {
					inFlags = true
					continue
				}
				if inFlags && strings.TrimSpace(line) == "" {
					inFlags = false
				}
				if !inFlags {
					continue
				}
				m := flagLine.FindStringSubmatch(line)
				if m == nil {
					t.Errorf("unparsed flag line %q", line)
					continue
				}
				if m[2] != "" && !types[m[2]] {
					t.Errorf("--%s shows value type %q (backquotes in its usage?): %q", m[1], m[2], line)
				}
				if m[1] == "state" && (len(path) == 0 || path[0] != "status") {
					t.Errorf("%s offers --state, which only status reads", name)
				}
			}
			if len(path) == 1 && path[0] == "service" {
				for _, os := range []string{"Windows", "macOS", "Linux", "LaunchDaemon", "systemd", "delayed"} {
					if !strings.Contains(out, os) {
						t.Errorf("service --help does not mention %s", os)
					}
				}
			}
			golden := filepath.Join("testdata", "help", name+".golden")
			if *updateGolden {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if string(want) != out {
				t.Errorf("%s --help differs from %s (run with -update after a deliberate change):\n--- want\n%s\n--- got\n%s", name, golden, want, out)
			}
		})
	}
}
