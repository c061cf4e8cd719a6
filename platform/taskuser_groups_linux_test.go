package platform

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testName is a short random account or group name with prefix.
func testName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// runAsOutput runs a shell script as u and returns its output.
func runAsOutput(t *testing.T, u *TaskUser, script string) string {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = "/"
	if err := u.RunAs(cmd); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return string(out)
}

// osGroups: the task user's commands are in the group for the task, and
// the group no longer lists it afterwards; a group that does not exist
// is an error naming it.
func TestTaskUserGroups(t *testing.T) {
	needRoot(t)
	group := testName("lrgrp")
	if out, err := exec.Command("groupadd", group).CombinedOutput(); err != nil {
		t.Fatalf("groupadd: %v: %s", err, out)
	}
	defer exec.Command("groupdel", group).Run()
	u, err := NewTaskUser(t.Name(), TaskUserIDs{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_, _ = u.KillProcesses()
		_ = u.Remove()
	}()
	if got := strings.Fields(runAsOutput(t, u, "id -Gn")); slices.Contains(got, group) {
		t.Fatalf("the task user is in %s before AddToGroups: %v", group, got)
	}
	added, err := u.AddToGroups([]string{group})
	if err != nil || !slices.Equal(added, []string{group}) {
		t.Fatalf("AddToGroups = %v, %v", added, err)
	}
	if got := strings.Fields(runAsOutput(t, u, "id -Gn")); !slices.Contains(got, group) {
		t.Errorf("the task user's command is not in %s: id -Gn says %v", group, got)
	}
	if err := u.RemoveFromGroups(added); err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("getent", "group", g.Name).Output()
	if strings.Contains(string(out), u.Name) {
		t.Errorf("group %s still lists %s after RemoveFromGroups: %s", group, u.Name, out)
	}
	if _, err := u.AddToGroups([]string{"no_such_group_lr"}); err == nil || !strings.Contains(err.Error(), `"no_such_group_lr"`) {
		t.Errorf("AddToGroups(a missing group) = %v; want an error naming it", err)
	}
}

// At start a runner removes the task users a crash left behind: its own
// (by tasks directory), not another runner's.
func TestRemoveLeftTaskUsers(t *testing.T) {
	needRoot(t)
	mine, other := t.Name()+"/mine", t.Name()+"/other"
	var users []*TaskUser
	for _, owner := range []string{mine, mine, other} {
		u, err := NewTaskUser(owner, TaskUserIDs{})
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	defer func() {
		for _, u := range users {
			if _, err := user.Lookup(u.Name); err == nil {
				_, _ = u.KillProcesses()
				_ = u.Remove()
			}
		}
	}()
	sleeper := exec.Command("/bin/sleep", "1000.777")
	if err := users[0].RunAs(sleeper); err != nil {
		t.Fatal(err)
	}
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	go sleeper.Wait()
	removed, err := RemoveLeftTaskUsers(mine)
	slices.Sort(removed)
	want := []string{users[0].Name, users[1].Name}
	slices.Sort(want)
	if err != nil || !slices.Equal(removed, want) {
		t.Errorf("RemoveLeftTaskUsers = %v, %v; want %v", removed, err, want)
	}
	for i, u := range users {
		_, err := user.Lookup(u.Name)
		if gone := err != nil; gone != (i < 2) {
			t.Errorf("task user %d (%s): gone = %v", i, u.Name, gone)
		}
	}
	if pids, _ := processesOf(users[0].sys.uid); len(pids) != 0 {
		t.Errorf("processes %v of a removed task user survive", pids)
	}
}

// Console mode on Linux, with a real account standing for the one logged
// in: commands run as it with its groups, in its session's runtime
// directory, Wayland and X displays and session bus; its processes and
// the account itself are left alone afterwards.
func TestConsoleTaskUserLinux(t *testing.T) {
	needRoot(t)
	name := testName("lrcons")
	if out, err := exec.Command("useradd", "--create-home", "--user-group", "--groups", "audio", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v: %s", err, out)
	}
	defer exec.Command("userdel", "--remove", name).Run()
	acct, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	root := testTempDir(t)
	oldRT, oldX := runtimeDirRoot, x11SocketDir
	runtimeDirRoot, x11SocketDir = filepath.Join(root, "run-user"), filepath.Join(root, "x11")
	defer func() { runtimeDirRoot, x11SocketDir = oldRT, oldX }()
	rt := filepath.Join(runtimeDirRoot, acct.Uid)
	for _, d := range []string{rt, x11SocketDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{filepath.Join(rt, "wayland-1"), filepath.Join(rt, "bus"), filepath.Join(x11SocketDir, "X0")} {
		l, err := net.Listen("unix", s)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
	}
	u, err := ConsoleTaskUser(name)
	if err != nil {
		t.Fatal(err)
	}
	got := runAsOutput(t, u, `id -un; id -Gn; echo "$HOME|$XDG_RUNTIME_DIR|$WAYLAND_DISPLAY|$DISPLAY|$DBUS_SESSION_BUS_ADDRESS"`)
	lines := strings.Split(strings.TrimSpace(got), "\n")
	want := acct.HomeDir + "|" + rt + "|wayland-1|:0|unix:path=" + filepath.Join(rt, "bus")
	if len(lines) != 3 || lines[0] != name || !slices.Contains(strings.Fields(lines[1]), "audio") || lines[2] != want {
		t.Errorf("the console user's command printed\n%s\nwant %s, its groups with audio, and %s", got, name, want)
	}
	if n, err := u.KillProcesses(); n != 0 || err != nil {
		t.Errorf("KillProcesses on the console's user = %d, %v; want nothing killed", n, err)
	}
	if err := u.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := user.Lookup(name); err != nil {
		t.Errorf("the console's account was removed: %v", err)
	}
	if _, err := ConsoleTaskUser("no_such_user_lr"); err == nil || !strings.Contains(err.Error(), "no_such_user_lr") {
		t.Errorf("ConsoleTaskUser(an unknown account) = %v; want an error naming it", err)
	}
	// root at the console would give every task the machine.
	if u, err := ConsoleTaskUser("root"); err == nil || !strings.Contains(err.Error(), "is root") {
		t.Errorf("ConsoleTaskUser(root) = %+v, %v; want a refusal saying it is root", u, err)
	}
}

// macOS's console wrapper, applied by the shared Unix RunAs: the command
// becomes launchctl asuser … sudo -u, and is started as root.
func TestRunAsWrapsForTheConsoleSession(t *testing.T) {
	u := &TaskUser{Name: "ci", Home: "/Users/ci", Console: true, sys: taskUserSys{uid: 501, gid: 20, wrap: func(argv []string) []string {
		return append([]string{"/bin/echo", "asuser", "501"}, argv...)
	}}}
	cmd := exec.Command("/bin/sh", "-c", "true")
	if err := u.RunAs(cmd); err != nil {
		t.Fatal(err)
	}
	if cmd.Path != "/bin/echo" || !slices.Equal(cmd.Args, []string{"/bin/echo", "asuser", "501", "/bin/sh", "-c", "true"}) || cmd.SysProcAttr != nil {
		t.Errorf("wrapped command %s %q (%+v): want the wrapper's argv, started as the runner", cmd.Path, cmd.Args, cmd.SysProcAttr)
	}
	if !slices.Contains(cmd.Env, "HOME=/Users/ci") || !slices.Contains(cmd.Env, "USER=ci") {
		t.Errorf("env %q lacks the console user's HOME and USER", cmd.Env)
	}
}
