package installers

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// scriptSandbox is a copy of a pkg script whose absolute paths point into
// a temporary root, with the macOS tools (launchctl, defaults, chown,
// chmod, mkdir) and the runner replaced by recorders: the script's logic
// runs on Linux, its calls are checked.
type scriptSandbox struct {
	t         *testing.T
	root, log string
	script    string
}

func newScriptSandbox(t *testing.T, name string) *scriptSandbox {
	t.Helper()
	s := &scriptSandbox{t: t, root: t.TempDir()}
	s.log = filepath.Join(s.root, "calls.log")
	bin := filepath.Join(s.root, "fakebin")
	for _, d := range []string{bin, filepath.Join(s.root, "usr/local/labrunner"), filepath.Join(s.root, "Library/LaunchDaemons"), filepath.Join(s.root, "Library/Managed Preferences")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Each recorder logs its name, its arguments and the token it saw in
	// its environment.
	recorder := func(path, extra string) {
		body := "#!/bin/sh\necho \"$(basename \"$0\") $* token-env=${LABRUNNER_ENROLLMENT_TOKEN:-}\" >>" + s.log + "\n" + extra
		if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tool := range []string{"launchctl", "chown", "chmod", "mkdir"} {
		recorder(filepath.Join(bin, tool), "")
	}
	// defaults read PLIST KEY: the value from a KEY=value file beside it.
	recorder(filepath.Join(bin, "defaults"), `sed -n "s/^$3=//p" "$2.plist"`+"\n")
	config := filepath.Join(s.root, "Library/Application Support/labrunner/runner.yml")
	recorder(filepath.Join(s.root, "usr/local/labrunner/runner"),
		"[ \"$1\" = enroll ] || exit 0\n[ -f \""+s.root+"/runner-fails\" ] && exit 1\nmkdir -p \""+filepath.Dir(config)+"\" && touch \""+config+"\"\n")
	if err := os.WriteFile(filepath.Join(s.root, "Library/LaunchDaemons/org.labrunner.runner.plist"), []byte("<plist/>"), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "installers/macos/scripts", name))
	if err != nil {
		t.Fatal(err)
	}
	script := strings.NewReplacer(
		"/bin/launchctl", bin+"/launchctl", "/usr/bin/defaults", bin+"/defaults", "/usr/sbin/chown", bin+"/chown",
		"/bin/chmod", bin+"/chmod", "/bin/mkdir", bin+"/mkdir",
		"/usr/local/", s.root+"/usr/local/", "/Library/", s.root+"/Library/",
	).Replace(string(src))
	s.script = filepath.Join(s.root, name)
	if err := os.WriteFile(s.script, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return s
}

// run runs the script with env and returns its output, exit code and the
// calls it made.
func (s *scriptSandbox) run(env ...string) (string, int, []string) {
	s.t.Helper()
	_ = os.Remove(s.log)
	cmd := exec.Command("/bin/sh", s.script)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatal(err)
	}
	b, _ := os.ReadFile(s.log)
	return string(out), code, strings.Split(strings.TrimSpace(string(b)), "\n")
}

func hasCall(calls []string, prefix string) bool {
	for _, c := range calls {
		if strings.HasPrefix(c, prefix) {
			return true
		}
	}
	return false
}

// TestPostinstallEnrolsFromTheEnvironmentThenStarts: the token goes to
// runner enroll in its environment, never on its command line, and the
// daemon is bootstrapped after.
func TestPostinstallEnrolsFromTheEnvironmentThenStarts(t *testing.T) {
	s := newScriptSandbox(t, "postinstall")
	out, code, calls := s.run("LABRUNNER_PROVISIONER_URL=https://prov.example.com", "LABRUNNER_ENROLLMENT_TOKEN=lre_secret-0123", "LABRUNNER_POOL_HINT=mac-m2", "LABRUNNER_TAGS=gpu=yes")
	if code != 0 {
		t.Fatalf("postinstall exited %d:\n%s", code, out)
	}
	if !hasCall(calls, "runner enroll --provisioner https://prov.example.com --pool-hint mac-m2 --tags gpu=yes token-env=lre_secret-0123") {
		t.Errorf("no enrolment with the environment's settings in %q", calls)
	}
	for _, c := range calls {
		if strings.Contains(strings.SplitN(c, " token-env=", 2)[0], "lre_secret") {
			t.Errorf("the token is on a command line: %q", c)
		}
	}
	if !hasCall(calls, "chown root:wheel "+s.root+"/Library/LaunchDaemons/org.labrunner.runner.plist") ||
		!hasCall(calls, "launchctl enable system/org.labrunner.runner") ||
		!hasCall(calls, "launchctl bootstrap system "+s.root+"/Library/LaunchDaemons/org.labrunner.runner.plist") {
		t.Errorf("the daemon was not fixed up and bootstrapped: %q", calls)
	}
}

// TestPostinstallEnrolsFromManagedPreferences: with nothing in the
// environment, the MDM profile's keys are used.
func TestPostinstallEnrolsFromManagedPreferences(t *testing.T) {
	s := newScriptSandbox(t, "postinstall")
	prefs := "ProvisionerURL=https://mdm-prov.example.com\nEnrollmentToken=lre_from-profile\nPoolHint=mac-intel\n"
	if err := os.WriteFile(filepath.Join(s.root, "Library/Managed Preferences/org.labrunner.runner.plist"), []byte(prefs), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code, calls := s.run()
	if code != 0 || !hasCall(calls, "runner enroll --provisioner https://mdm-prov.example.com --pool-hint mac-intel --tags  token-env=lre_from-profile") {
		t.Fatalf("exit %d, calls %q\n%s", code, calls, out)
	}
	if !hasCall(calls, "launchctl bootstrap system") {
		t.Errorf("not bootstrapped: %q", calls)
	}
}

// TestPostinstallPassesTheTaskUserMode: a console pool's profile (or the
// install's environment) names the task-user mode, and enroll gets it; an
// empty one is left out (per-task, the default).
func TestPostinstallPassesTheTaskUserMode(t *testing.T) {
	s := newScriptSandbox(t, "postinstall")
	prefs := "ProvisionerURL=https://mdm-prov.example.com\nEnrollmentToken=lre_from-profile\nTaskUser=console\n"
	if err := os.WriteFile(filepath.Join(s.root, "Library/Managed Preferences/org.labrunner.runner.plist"), []byte(prefs), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code, calls := s.run()
	if code != 0 || !hasCall(calls, "runner enroll --provisioner https://mdm-prov.example.com --pool-hint  --tags  --task-user console token-env=lre_from-profile") {
		t.Fatalf("profile: exit %d, calls %q\n%s", code, calls, out)
	}
	out, code, calls = s.run("LABRUNNER_TASK_USER=service")
	if code != 0 || !hasCall(calls, "runner enroll --provisioner https://mdm-prov.example.com --pool-hint  --tags  --task-user service token-env=lre_from-profile") {
		t.Fatalf("environment over profile: exit %d, calls %q\n%s", code, calls, out)
	}
}

// TestPostinstallWithoutEnrolmentDoesNotStart and a refused token fails
// the install without starting anything.
func TestPostinstallWithoutEnrolmentDoesNotStart(t *testing.T) {
	s := newScriptSandbox(t, "postinstall")
	out, code, calls := s.run()
	if code != 0 || hasCall(calls, "runner enroll") || hasCall(calls, "launchctl bootstrap") || !strings.Contains(out, "not enrolled") {
		t.Errorf("no settings: exit %d, calls %q, output %q; want installed, not started, and told so", code, calls, out)
	}
	if err := os.WriteFile(filepath.Join(s.root, "runner-fails"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, code, calls = s.run("LABRUNNER_PROVISIONER_URL=https://prov.example.com", "LABRUNNER_ENROLLMENT_TOKEN=lre_spent")
	if code == 0 || hasCall(calls, "launchctl bootstrap") {
		t.Errorf("refused enrolment: exit %d, calls %q; want the install to fail with nothing started", code, calls)
	}
}

// TestPreinstallBootsOutARunningService and never fails the install.
func TestPreinstallBootsOutARunningService(t *testing.T) {
	s := newScriptSandbox(t, "preinstall")
	_, code, calls := s.run()
	if code != 0 || !hasCall(calls, "launchctl print system/org.labrunner.runner") || !hasCall(calls, "launchctl bootout system/org.labrunner.runner") {
		t.Errorf("exit %d, calls %q; want print then bootout", code, calls)
	}
}
