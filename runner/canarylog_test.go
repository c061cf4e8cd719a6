package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/labrunner/labrunner/provisioner/client"
)

// TestCanaryLogTail: what a canary's report carries of its log is its
// end, within client.MaxRunLog bytes even after invalid UTF-8 and
// control characters (which the provisioner refuses, or a terminal would
// obey) are replaced, with terminal escapes gone, carriage returns as
// line ends, a first line saying that earlier output was left out, and
// no partial first line; a note added later keeps the bound.
func TestCanaryLogTail(t *testing.T) {
	dir := testTempDir(t) // t.TempDir cannot remove it under Wine
	write := func(name, s string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	check := func(what, got string) {
		t.Helper()
		if len(got) > client.MaxRunLog || !utf8.ValidString(got) {
			t.Fatalf("%s: %d bytes (valid UTF-8 %v), want at most %d of valid UTF-8", what, len(got), utf8.ValidString(got), client.MaxRunLog)
		}
		for _, r := range got {
			if r != '\n' && r != '\t' && (r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0)) {
				t.Fatalf("%s: control character %U left in", what, r)
			}
		}
	}

	small := write("small.log", "\x1b[1;31merror:\x1b[0m GPU \x00missing\r\nprogress 10%\rprogress 100%\n\x1b]0;title\x07done \xff\n")
	got, err := readLogTail(small)
	if err != nil {
		t.Fatal(err)
	}
	check("short log", got)
	if want := "error: GPU \uFFFDmissing\nprogress 10%\nprogress 100%\ndone \uFFFD\n"; got != want {
		t.Errorf("short log read as %q, want %q", got, want)
	}

	// A long log of control characters and broken UTF-8, each of which
	// grows when replaced, ending with the lines that matter.
	var b strings.Builder
	for i := 0; b.Len() < 3*client.MaxRunLog; i++ {
		b.WriteString("noise \x01\x02\x03 \xe2\x82 line ")
		b.WriteString(strings.Repeat("x", i%200))
		b.WriteString("\n")
	}
	b.WriteString("the last line but one\nexit code 1\n")
	long := write("long.log", b.String())
	got, err = readLogTail(long)
	if err != nil {
		t.Fatal(err)
	}
	check("long log", got)
	if !strings.HasPrefix(got, cutMarker) || !strings.HasSuffix(got, "the last line but one\nexit code 1\n") {
		t.Errorf("long log: begins %q … ends %q; want the marker first and the log's end last", got[:min(len(got), 120)], got[max(0, len(got)-60):])
	}
	if first, _, _ := strings.Cut(strings.TrimPrefix(got, cutMarker), "\n"); !strings.HasPrefix(first, "noise ") {
		t.Errorf("long log: first line after the marker %q is partial", first)
	}
	noted := withNote(got, logNote(time.Now(), "interrupted twice"))
	check("long log with a note", noted)
	if !strings.HasPrefix(noted, cutMarker) || strings.Count(noted, cutMarker) != 1 || !strings.HasSuffix(noted, "interrupted twice\n") || !strings.Contains(noted, "exit code 1\n[labrunner ") {
		t.Errorf("long log with a note ends %q", noted[max(0, len(noted)-120):])
	}
	if got := withNote("", "only a note\n"); got != "only a note\n" {
		t.Errorf("a note on no log: %q", got)
	}

	// After a crash, only a task log of the tasks directory is read.
	tasks := filepath.Join(dir, "tasks")
	if err := os.Mkdir(tasks, 0o700); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(tasks, "task_1.log")
	if err := os.WriteFile(left, []byte("before the crash\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := readLeftLog(tasks, left); err != nil || got != "before the crash\n" {
		t.Errorf("left log: %q, %v", got, err)
	}
	refused := []string{small, filepath.Join(tasks, "..", "small.log"), filepath.Join(tasks, "other.log"), ""}
	// A link named as a task log (where the OS lets a test make one).
	if link := filepath.Join(tasks, "task_2.log"); os.Symlink(small, link) == nil {
		refused = append(refused, link)
	}
	for _, p := range refused {
		if got, err := readLeftLog(tasks, p); err == nil {
			t.Errorf("read %q as the canary's left log: %q", p, got)
		}
	}
}
