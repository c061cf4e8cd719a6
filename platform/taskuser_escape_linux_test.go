package platform

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// setuidHelperEnv makes the test binary act as a setuid daemon starter
// ("daemonise": take the file owner's uid in all three slots, start
// itself again in a session of its own with no terminal or pipes, exit) or
// as that daemon ("sleep").
const setuidHelperEnv = "LABRUNNER_PLATFORM_SETUID_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(setuidHelperEnv) {
	case "daemonise":
		os.Exit(daemoniseAsFileOwner())
	case "sleep":
		time.Sleep(10 * time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// daemoniseAsFileOwner is what a task's setuid program can do: become
// its file's owner for good (setresuid) and leave a process behind that
// its caller's uid scan does not see.
func daemoniseAsFileOwner() int {
	e := os.Geteuid()
	if err := syscall.Setresuid(e, e, e); err != nil {
		return 2
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return 2
	}
	fd := null.Fd()
	_, err = syscall.ForkExec(os.Args[0], []string{os.Args[0]}, &syscall.ProcAttr{
		Env:   []string{setuidHelperEnv + "=sleep"},
		Files: []uintptr{fd, fd, fd},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		return 3
	}
	return 0
}

// plantSetuidHelper is what task a leaves in /tmp: a copy of this test
// binary, its own, setuid.
func plantSetuidHelper(t *testing.T, a *TaskUser) string {
	t.Helper()
	self, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	path := filepath.Join("/tmp", "labrunner-test-"+randomMark(t)+"-suid")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(f, self)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chown(path, int(a.sys.uid), int(a.sys.gid))
	}
	if err == nil {
		err = os.Chmod(path, os.ModeSetuid|0o755) // after chown, which clears the bit
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
	return path
}

// startHelper runs the helper as task d; the daemon it leaves runs as
// the helper's owner.
func startHelper(t *testing.T, d *TaskUser, helper string) error {
	t.Helper()
	cmd := exec.Command(helper)
	cmd.Env = []string{setuidHelperEnv + "=daemonise"}
	if err := d.RunAs(cmd); err != nil {
		t.Fatal(err)
	}
	return cmd.Run()
}

// killUIDForTest kills what a test left running as uid.
func killUIDForTest(t *testing.T, uid uint32) {
	t.Cleanup(func() { _, _ = killAccountProcesses(uid) })
}

// Two tasks at once: task A leaves a setuid program of its own, task D
// runs it and the program leaves a daemon with A's uid in every slot.
// D's processes are killed through D's cgroup, which holds the daemon
// whatever its uid: it dies with D, not later with A.
func TestSetuidDaemonDiesWithTheTaskThatStartedIt(t *testing.T) {
	needRoot(t)
	if sup := taskCgroupSupport(); sup.parent == "" {
		t.Skipf("no task cgroups on this machine (%s); TestSetuidDaemonWithoutCgroups covers the uid scan", sup.why)
	}
	a, d := newTestTaskUser(t), newTestTaskUser(t)
	killUIDForTest(t, a.sys.uid)
	helper := plantSetuidHelper(t, a)
	if err := startHelper(t, d, helper); err != nil {
		t.Fatalf("task D ran task A's setuid program: %v", err)
	}
	if pids, _ := processesOf(a.sys.uid); len(pids) != 1 {
		t.Fatalf("processes with task A's uid after D ran its program: %v; want the daemon", pids)
	}
	if _, err := d.KillProcesses(); err != nil {
		t.Fatal(err)
	}
	if pids, _ := processesOf(a.sys.uid); len(pids) != 0 {
		t.Errorf("the daemon task D started through A's setuid program survives D's kill: %v", pids)
	}
	if err := d.Remove(); err != nil {
		t.Fatal(err)
	}
}

// The same without cgroups: the daemon has A's uid, so D's uid scan
// misses it, but A's kill finds it, and A's removal takes the setuid
// program with the account, so that no later task can run it.
func TestSetuidDaemonWithoutCgroups(t *testing.T) {
	needRoot(t)
	withTaskCgroups(t, cgroupSupport{why: "turned off by the test"})
	a, d := newTestTaskUser(t), newTestTaskUser(t)
	killUIDForTest(t, a.sys.uid)
	helper := plantSetuidHelper(t, a)
	if err := startHelper(t, d, helper); err != nil {
		t.Fatalf("task D ran task A's setuid program: %v", err)
	}
	if pids, _ := processesOf(a.sys.uid); len(pids) != 1 {
		t.Fatalf("processes with task A's uid after D ran its program: %v; want the daemon", pids)
	}
	if _, err := a.KillProcesses(); err != nil {
		t.Fatal(err)
	}
	if err := a.Remove(); err != nil {
		t.Fatal(err)
	}
	if pids, _ := processesOf(a.sys.uid); len(pids) != 0 {
		t.Errorf("the daemon with task A's uid survives A: %v", pids)
	}
	if _, err := os.Lstat(helper); !os.IsNotExist(err) {
		t.Fatalf("task A's setuid program outlives A: %v", err)
	}
	if err := startHelper(t, d, helper); err == nil {
		t.Errorf("task D still ran task A's setuid program after A was removed")
	}
}
