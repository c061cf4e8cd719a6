package installers

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// wineBin is Debian's wine64 (scripts/ensure-wine.sh installs it).
const wineBin = "/usr/lib/wine/wine64"

// winePrefix is a Wine prefix for installs only: the service these tests
// install must not meet the other Windows tests (`make wintest` uses
// $HOME/.wine-labrunner).
type winePrefix struct {
	t   *testing.T
	dir string
}

// newWinePrefix prepares the installer tests' prefix with
// scripts/ensure-wine.sh and removes whatever an earlier run left in it.
func newWinePrefix(t *testing.T) *winePrefix {
	t.Helper()
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	w := &winePrefix{t: t, dir: filepath.Join(home, ".wine-labrunner-installers")}
	run(t, repoRoot(t), w.env(), "scripts/ensure-wine.sh")
	w.stop()
	t.Cleanup(w.stop)
	for _, code := range w.installedProducts() {
		w.msiexec("/x", code, "/qn", "REMOVE_DATA=1")
	}
	_ = os.RemoveAll(w.path(`C:\ProgramData\labrunner`))
	return w
}

func (w *winePrefix) env() []string {
	return []string{"WINEPREFIX=" + w.dir, "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml="}
}

// stop ends every Wine process of the prefix, the service included.
func (w *winePrefix) stop() {
	cmd := exec.Command("/usr/lib/wine/wineserver", "-k")
	cmd.Env = append(os.Environ(), w.env()...)
	_ = cmd.Run()
	cmd = exec.Command("/usr/lib/wine/wineserver", "-w")
	cmd.Env = append(os.Environ(), w.env()...)
	_ = cmd.Run()
}

// path maps a Windows path of the prefix to this machine's.
func (w *winePrefix) path(win string) string {
	rest := strings.TrimPrefix(win, `C:\`)
	return filepath.Join(w.dir, "drive_c", filepath.FromSlash(strings.ReplaceAll(rest, `\`, "/")))
}

// wine runs a Windows program in the prefix; it returns the output and
// the exit code.
func (w *winePrefix) wine(args ...string) (string, int) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, wineBin, args...)
	cmd.Env = append(os.Environ(), w.env()...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		w.t.Fatalf("wine %s: timed out\n%s", strings.Join(args, " "), out)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		w.t.Fatalf("wine %s: %v", strings.Join(args, " "), err)
	}
	return string(out), code
}

// msiexec runs msiexec with a verbose log and returns the log, the exit
// code and how long it took.
func (w *winePrefix) msiexec(args ...string) (log string, code int, took time.Duration) {
	w.t.Helper()
	logFile := filepath.Join(w.t.TempDir(), "msiexec.log")
	start := time.Now()
	out, code := w.wine(append(append([]string{"msiexec"}, args...), "/l*v", `Z:`+strings.ReplaceAll(logFile, "/", `\`))...)
	took = time.Since(start)
	b, _ := os.ReadFile(logFile)
	return out + "\n" + decodeLog(b), code, took
}

// decodeLog reads a log that Windows may have written as UTF-16.
func decodeLog(b []byte) string {
	if len(b) >= 2 && b[0] == 0xff && b[1] == 0xfe {
		var sb strings.Builder
		for i := 2; i+1 < len(b); i += 2 {
			sb.WriteRune(rune(uint16(b[i]) | uint16(b[i+1])<<8))
		}
		return sb.String()
	}
	return string(b)
}

// winPath is a path of this machine as Wine's Z: drive names it.
func winPath(p string) string { return `Z:` + strings.ReplaceAll(p, "/", `\`) }

var productCode = regexp.MustCompile(`\{[0-9A-F-]{36}\}`)

// installedProducts lists the product codes of installed labrunner MSIs,
// from the Add/Remove Programs keys.
func (w *winePrefix) installedProducts() []string {
	out, _ := w.wine("reg", "query", `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall`)
	var codes []string
	for _, line := range strings.Split(out, "\n") {
		code := productCode.FindString(line)
		if code == "" {
			continue
		}
		if name, _ := w.regValue(`HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\`+code, "DisplayName"); name == "labrunner" {
			codes = append(codes, code)
		}
	}
	return codes
}

// regValue reads one registry value with reg query.
func (w *winePrefix) regValue(key, name string) (string, bool) {
	out, code := w.wine("reg", "query", key, "/v", name)
	if code != 0 {
		return "", false
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(strings.TrimSpace(line))
		if len(f) >= 3 && strings.EqualFold(f[0], name) && strings.HasPrefix(f[1], "REG_") {
			return strings.Join(f[2:], " "), true
		}
	}
	return "", false
}

// serviceState is the labrunner service's state as sc query shows it
// ("RUNNING", "STOPPED"), or "" when there is no such service.
func (w *winePrefix) serviceState() string {
	out, code := w.wine("sc", "query", "labrunner")
	if code != 0 {
		return ""
	}
	m := regexp.MustCompile(`STATE\s*:\s*\d+\s+(\w+)`).FindStringSubmatch(out)
	if m == nil {
		return "?"
	}
	return m[1]
}
