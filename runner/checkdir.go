package runner

// Checks in Mozilla runner's style: every executable of the checks
// directory, in name order, at boot and between tasks.
//
//	next check ──exit 0──▶ OK: next check ──none left──▶ all OK
//	    │──exit 2──▶ HALT: reboot
//	    │──exit 3──▶ EXIT: stop claiming; quarantine with the check's output
//	    └──other, or timeout──▶ RETRY the same check after a jittered wait
//	                              └──tries used up──▶ HALT (as Mozilla's runner)

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/labrunner/labrunner/platform"
)

// Check exit codes.
const (
	CheckOK   = 0
	CheckHalt = 2
	CheckExit = 3
)

// Verdicts of a run of the checks directory.
const (
	VerdictOK   = "ok"
	VerdictHalt = "halt"
	VerdictExit = "exit"
	// VerdictInterrupted is a run cut short because the runner is stopping
	// (or the caller gave up): it says nothing about the machine, so it
	// neither quarantines nor counts as a pass, and the checks stay due.
	VerdictInterrupted = "interrupted"
)

// DirVerdict is the outcome of running the checks directory.
type DirVerdict struct {
	// Verdict is ok, halt, exit or interrupted.
	Verdict string
	// Check is the check that halted or exited.
	Check string
	// Output is the end of that check's output.
	Output string
	// Results has one entry per check that ran.
	Results []CheckStatus
}

// maxCheckOutput bounds what is kept of a check's output: enough for a
// quarantine reason, not a log.
const maxCheckOutput = 2048

// RunCheckDir runs the checks directory; a missing or empty dir is all OK.
func RunCheckDir(ctx context.Context, cfg ChecksConfig, log *slog.Logger) DirVerdict {
	v := DirVerdict{Verdict: VerdictOK}
	if cfg.Dir == "" {
		return v
	}
	entries, err := os.ReadDir(cfg.Dir)
	if err != nil {
		// An unreadable directory is the machine's fault.
		return DirVerdict{Verdict: VerdictExit, Check: cfg.Dir, Output: fmt.Sprintf("read checks directory: %v", err)}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(cfg.Dir, e.Name())
		info, err := e.Info()
		if err != nil {
			continue
		}
		if _, ok := platform.CheckCommand(path, info); !ok {
			continue
		}
		st := CheckStatus{Name: "check:" + e.Name(), Kind: "script", Threshold: "exit 0"}
		var code int
		var out string
		for try := 1; ; try++ {
			code, out = runOneCheck(ctx, path, info, cfg.Timeout.Duration)
			st.CheckedAt = time.Now()
			st.Value = fmt.Sprintf("exit %d (try %d of %d)", code, try, cfg.Tries)
			st.Message = lastLine(out)
			if code == CheckOK || code == CheckHalt || code == CheckExit || ctx.Err() != nil {
				break
			}
			if try >= cfg.Tries {
				code = CheckHalt
				out = fmt.Sprintf("%s: still failing after %d tries: %s", e.Name(), try, out)
				break
			}
			wait := retryBackoff(cfg.RetryWait.Duration, try)
			log.Warn("check asks to retry", "check", e.Name(), "exitCode", code, "try", try, "wait", wait, "output", lastLine(out))
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
		if code != CheckOK && ctx.Err() != nil {
			return DirVerdict{Verdict: VerdictInterrupted, Check: e.Name(), Output: "interrupted: " + ctx.Err().Error(), Results: v.Results}
		}
		st.OK = code == CheckOK
		v.Results = append(v.Results, st)
		switch code {
		case CheckOK:
			continue
		case CheckExit:
			return DirVerdict{Verdict: VerdictExit, Check: e.Name(), Output: out, Results: v.Results}
		default:
			return DirVerdict{Verdict: VerdictHalt, Check: e.Name(), Output: out, Results: v.Results}
		}
	}
	return v
}

// runOneCheck runs a check once; a timeout or a failure to start is -1.
func runOneCheck(ctx context.Context, path string, info os.FileInfo, timeout time.Duration) (int, string) {
	cmd, _ := platform.CheckCommand(path, info)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.Dir = filepath.Dir(path)
	// A background child holding the output open must not hold the check.
	cmd.WaitDelay = 5 * time.Second
	tree, err := platform.StartProcessTree(cmd)
	if err != nil {
		return -1, fmt.Sprintf("start %s: %v", path, err)
	}
	defer tree.Close()
	limit := time.NewTimer(timeout)
	defer limit.Stop()
	select {
	case <-tree.Done():
	case <-limit.C:
		_ = tree.Stop(5 * time.Second)
		_, _ = tree.Wait()
		return -1, tail(buf.String()) + fmt.Sprintf("\n(timed out after %s)", timeout)
	case <-ctx.Done():
		_ = tree.Stop(5 * time.Second)
		_, _ = tree.Wait()
		return -1, tail(buf.String()) + "\n(interrupted)"
	}
	code, err := tree.Wait()
	if err != nil {
		return -1, tail(buf.String()) + fmt.Sprintf("\n(%v)", err)
	}
	return code, tail(buf.String())
}

// retryBackoff is Mozilla's 1.14^try growth with full jitter on top, so
// a lab of machines failing together does not retry in step.
func retryBackoff(base time.Duration, try int) time.Duration {
	d := float64(base) * math.Pow(1.14, float64(try))
	return time.Duration(d + rand.Float64()*d)
}

func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxCheckOutput {
		s = "…" + s[len(s)-maxCheckOutput:]
	}
	return s
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}
