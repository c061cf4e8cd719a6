package devstack

// What the demo shows while it runs and at the end: a progress line
// (rewritten in place on a terminal), one line per outcome checked, the
// summary table of tasks and the total time.

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// DemoOutcome is one thing the demo expected, and whether it happened.
type DemoOutcome struct {
	// What is expected, in words.
	What string
	// OK is true when it happened.
	OK bool
	// Detail is what was seen (the reason, the machine, the error).
	Detail string
}

// DemoTask is one task of the demo, as the summary table shows it.
type DemoTask struct {
	// Name is the demo's name for it (build, test-unit, …).
	Name   string
	TaskID string
	// Kind is buildbot (a bridge-routed build) or taskcluster (native).
	Kind string
	// Machine ran its last run ("" if none did).
	Machine string
	// Result is the queue's final state, with the reason for exceptions
	// (completed, failed, exception/canceled).
	Result string
	// Expected is the result the demo expects.
	Expected string
	// Duration is the last run's, as the machine's runner recorded it.
	Duration time.Duration
}

// reporter writes the progress line and the outcomes to out.
type reporter struct {
	mu       sync.Mutex
	out      io.Writer
	tty      bool
	start    time.Time
	progress string
	outcomes []DemoOutcome
}

func newReporter(out io.Writer) *reporter {
	r := &reporter{out: out, start: time.Now()}
	if f, ok := out.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			r.tty = true
		}
	}
	return r
}

// elapsed is the time since the demo started, as printed.
func (r *reporter) elapsed() string {
	return fmt.Sprintf("%5.1fs", time.Since(r.start).Seconds())
}

// step shows what is happening now: on a terminal it replaces the
// progress line; elsewhere (a pipe, a test) it is a line of its own.
func (r *reporter) step(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.progress = fmt.Sprintf(format, args...)
	if r.tty {
		fmt.Fprintf(r.out, "\r\033[K%s  %s", r.elapsed(), r.progress)
		return
	}
	fmt.Fprintf(r.out, "%s  %s\n", r.elapsed(), r.progress)
}

// println prints a line that stays, above the progress line.
func (r *reporter) println(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tty {
		fmt.Fprint(r.out, "\r\033[K")
	}
	fmt.Fprintf(r.out, format+"\n", args...)
	if r.tty && r.progress != "" {
		fmt.Fprintf(r.out, "%s  %s", r.elapsed(), r.progress)
	}
}

// endProgress leaves the progress line behind before the summary.
func (r *reporter) endProgress() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tty {
		fmt.Fprint(r.out, "\r\033[K")
	}
	r.progress = ""
}

// expect records an outcome and prints it.
func (r *reporter) expect(ok bool, what, detail string) bool {
	r.mu.Lock()
	r.outcomes = append(r.outcomes, DemoOutcome{What: what, OK: ok, Detail: detail})
	r.mu.Unlock()
	mark := "ok  "
	if !ok {
		mark = "FAIL"
	}
	if detail != "" {
		detail = ": " + detail
	}
	r.println("%s  %s %s%s", r.elapsed(), mark, what, detail)
	return ok
}

// failed counts the outcomes that did not happen.
func (r *reporter) failed() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, o := range r.outcomes {
		if !o.OK {
			n++
		}
	}
	return n
}

// printTasks prints the summary table.
func printTasks(out io.Writer, tasks []DemoTask) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tKIND\tMACHINE\tRESULT\tDURATION\tEXPECTED\tTASK ID")
	for _, t := range tasks {
		machine := t.Machine
		if machine == "" {
			machine = "-"
		}
		dur := "-"
		if t.Machine != "" {
			dur = fmt.Sprintf("%.1fs", t.Duration.Seconds())
		}
		expected := "yes"
		if t.Result != t.Expected {
			expected = "NO, expected " + t.Expected
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Kind, machine, t.Result, dur, expected, t.TaskID)
	}
	_ = tw.Flush()
}

// indent prefixes every line of s.
func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}
