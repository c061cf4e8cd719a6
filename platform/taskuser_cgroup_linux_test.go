package platform

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// withTaskCgroups makes the test's task users see sup, as on a machine
// that answers so (found first, so that the real answer does not come
// over it later).
func withTaskCgroups(t *testing.T, sup cgroupSupport) {
	t.Helper()
	old := taskCgroupSupport()
	cgroupSup = sup
	t.Cleanup(func() { cgroupSup = old })
}

// Where the runner may make cgroups, a task user's commands start inside
// its own (none runs a moment outside it), what they leave is killed
// through it, and it is gone with the account.
func TestTaskUserCommandsRunInItsCgroup(t *testing.T) {
	needRoot(t)
	sup := taskCgroupSupport()
	if sup.parent == "" {
		t.Skipf("no task cgroups on this machine: %s", sup.why)
	}
	if k := TaskUserKill(); k.Method != TaskKillCgroup || !strings.Contains(k.Detail, sup.parent) {
		t.Errorf("TaskUserKill = %+v; want cgroup, naming %s", k, sup.parent)
	}
	u := newTestTaskUser(t)
	if u.sys.cgroup == nil {
		t.Fatal("the task user has no cgroup")
	}
	dir := u.sys.cgroup.dir
	out := runAsTaskUser(t, u, `grep '^0::' /proc/self/cgroup; (setsid sleep 1000.4243 >/dev/null 2>&1 &)`)
	if want := "/" + filepath.Base(dir) + "\n"; !strings.HasSuffix(out, want) {
		t.Errorf("the command's cgroup: %q; want one ending %q", out, want)
	}
	if pids, err := u.Survivors(); err != nil || len(pids) != 1 {
		t.Fatalf("the account's processes: %v, %v; want the sleep", pids, err)
	}
	if n, err := u.KillProcesses(); err != nil || n != 1 {
		t.Errorf("KillProcesses = %d, %v; want the sleep killed", n, err)
	}
	if pids, err := u.Survivors(); err != nil || len(pids) != 0 {
		t.Errorf("processes survive the kill: %v, %v", pids, err)
	}
	if err := u.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the cgroup %s outlives the account: %v", dir, err)
	}
}

// Without cgroups the processes are found by uid and killed, and the
// runner is told why cgroups are not used.
func TestTaskUserWithoutCgroups(t *testing.T) {
	needRoot(t)
	withTaskCgroups(t, cgroupSupport{why: "turned off by the test"})
	if k := TaskUserKill(); k.Method != TaskKillUID || !strings.Contains(k.Detail, "turned off by the test") {
		t.Errorf("TaskUserKill = %+v; want uid, with the reason", k)
	}
	u := newTestTaskUser(t)
	if u.sys.cgroup != nil {
		t.Fatalf("the task user has a cgroup: %+v", u.sys.cgroup)
	}
	runAsTaskUser(t, u, `(setsid sleep 1000.4244 >/dev/null 2>&1 &)`)
	if n, err := u.KillProcesses(); err != nil || n != 1 {
		t.Errorf("KillProcesses = %d, %v; want the sleep killed", n, err)
	}
	if pids, err := u.Survivors(); err != nil || len(pids) != 0 {
		t.Errorf("processes survive the kill: %v, %v", pids, err)
	}
}

// A pid found by uid is killed only if it still is a process of that uid
// when signalled.
func TestKillProcessOfChecksTheUID(t *testing.T) {
	needRoot(t)
	cmd := exec.Command("sleep", "1000.4245")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if killed, err := killProcessOf(cmd.Process.Pid, 71099); killed || err != nil {
		t.Errorf("killProcessOf(root's sleep, uid 71099) = %v, %v; want it left alone", killed, err)
	}
	if killed, err := killProcessOf(cmd.Process.Pid, 0); !killed || err != nil {
		t.Errorf("killProcessOf(root's sleep, uid 0) = %v, %v; want it killed", killed, err)
	}
}

// mountinfo escapes spaces and kin in paths; a unit that does not
// delegate is named with the fix; a cgroup systemd marked delegated is
// the runner's to divide, also from a subgroup of it.
func TestCgroupDetectionHelpers(t *testing.T) {
	if got := unescapeMountinfo(`/sys/fs/cgroup\040x\134y`); got != `/sys/fs/cgroup x\y` {
		t.Errorf("unescapeMountinfo = %q", got)
	}
	why := notDelegated(testTempDir(t), "/system.slice/labrunner-test-no-such.service")
	if !strings.Contains(why, "Delegate=yes") || !strings.Contains(why, "/system.slice/labrunner-test-no-such.service") {
		t.Errorf("notDelegated = %q; want the cgroup and the fix named", why)
	}
	if why := notDelegated(testTempDir(t), "/"); why != "" {
		t.Errorf("the root of the hierarchy it sees is the runner's to divide: %q", why)
	}
	if os.Geteuid() != 0 {
		return
	}
	// systemd marks the delegated cgroup; the runner may be in a subgroup.
	unit := filepath.Join(testTempDir(t), "labrunner.service")
	if err := os.MkdirAll(filepath.Join(unit, "supervisor"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(unit, "trusted.delegate", []byte("1"), 0); err != nil {
		t.Skipf("no trusted attributes here: %v", err)
	}
	if why := notDelegated(filepath.Join(unit, "supervisor"), "/system.slice/labrunner.service/supervisor"); why != "" {
		t.Errorf("a subgroup of a delegated cgroup: %q; want it the runner's to divide", why)
	}
}
