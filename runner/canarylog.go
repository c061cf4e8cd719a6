package runner

// The tail of a canary's log, as its report carries it to the provisioner
// (docs/provisioner.md, "Black holes"): the last client.MaxRunLog bytes
// of what the agent logged (its own lines and the canary's output), made
// fit to show on a web page and a terminal: valid UTF-8, terminal escape
// sequences removed, carriage returns as line ends, other control
// characters (U+0000 among them, which the provisioner refuses) as U+FFFD.
// When the log was longer, a first line says so.

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labrunner/labrunner/provisioner/client"
)

// escapeRE matches terminal escape sequences: CSI (colours, cursor moves),
// OSC (window titles, links) and the two-byte ones.
var escapeRE = regexp.MustCompile(`\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]`)

// readLogTail reads the tail of the log file at path.
func readLogTail(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read the canary's log: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("read the canary's log: %w", err)
	}
	from := max(0, fi.Size()-client.MaxRunLog)
	b, err := io.ReadAll(io.NewSectionReader(f, from, client.MaxRunLog))
	if err != nil {
		return "", fmt.Errorf("read the canary's log %s: %w", path, err)
	}
	return fitLog(cleanLog(b), from > 0, from > 0), nil
}

// readLeftLog reads the log a canary cut short by a crash left behind,
// where the state file says it is: only a task log of the agent's tasks
// directory (task_….log), and not a link, is read.
func readLeftLog(tasksDir, path string) (string, error) {
	name := filepath.Base(path)
	if path == "" || filepath.Dir(path) != filepath.Clean(tasksDir) || !strings.HasPrefix(name, "task_") || !strings.HasSuffix(name, ".log") {
		return "", fmt.Errorf("the state file names %q as the canary's log, which is not a task log of %s; not reading it", path, tasksDir)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return "", fmt.Errorf("read the canary's log: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("the canary's log %s is not a regular file; not reading it", path)
	}
	return readLogTail(path)
}

// cleanLog makes b fit to show as text.
func cleanLog(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	s = escapeRE.ReplaceAllString(s, "")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r == '\r':
			return '\n'
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return utf8.RuneError
		}
		return r
	}, s)
}

// cutMarker begins a log whose start was left out.
const cutMarker = "[labrunner] … earlier output left out; the end of the log follows\n"

// fitLog keeps the end of s within client.MaxRunLog bytes. cut says the
// log's start is already left out, partial that s begins mid-line. A log
// cut here or before begins with cutMarker, and a partial first line is
// left out.
func fitLog(s string, cut, partial bool) string {
	if len(s) <= client.MaxRunLog && !cut {
		return s
	}
	if budget := client.MaxRunLog - len(cutMarker); len(s) > budget {
		i := len(s) - budget
		for i < len(s) && !utf8.RuneStart(s[i]) {
			i++
		}
		s, partial = s[i:], true
	}
	if j := strings.IndexByte(s, '\n'); partial && j >= 0 && j < 1024 {
		s = s[j+1:]
	}
	return cutMarker + s
}

// logNote is a line the runner adds to a canary's log, in the agent's
// form (agent/logs.go).
func logNote(at time.Time, format string, args ...any) string {
	return fmt.Sprintf("[labrunner %s] %s\n", at.UTC().Format(time.RFC3339Nano), fmt.Sprintf(format, args...))
}

// withNote is log with a line added at its end, kept within the bound.
func withNote(log, note string) string {
	if log != "" && !strings.HasSuffix(log, "\n") {
		log += "\n"
	}
	log, cut := strings.CutPrefix(log, cutMarker)
	return fitLog(log+note, cut, false)
}
