package platform

import (
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// A task user exists with its own home, runs commands as itself in the
// directory given to it, loses every process (even one in a session of
// its own) and is gone with its home afterwards.
func TestTaskUserLife(t *testing.T) {
	needRoot(t)
	u, err := NewTaskUser(t.Name(), TaskUserIDs{})
	if err != nil {
		t.Fatal(err)
	}
	removed := false
	defer func() {
		if !removed {
			_, _ = u.KillProcesses()
			_ = u.Remove()
		}
	}()
	if _, err := user.Lookup(u.Name); err != nil {
		t.Fatalf("the account %s does not exist: %v", u.Name, err)
	}
	if fi, err := os.Stat(u.Home); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("home %s: %v, %v; want a directory of mode 0700", u.Home, fi, err)
	}
	parent := filepath.Join(testTempDir(t), "private")
	if _, err := MakePrivateDir(parent); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "task")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := u.Own(dir); err != nil {
		t.Fatal(err)
	}
	if repaired, err := RestrictToServiceAccount(parent); err != nil || repaired != "" {
		t.Errorf("the parent opened for task users is not private any more: %q, %v", repaired, err)
	}
	secret := filepath.Join(parent, "secret")
	if err := os.WriteFile(secret, []byte("token"), PrivateFileMode); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command("/bin/sh", "-c", `id -un; echo $HOME; touch sub/made; cat "$1" || echo cannot-read; (setsid sleep 1000.4242 >/dev/null 2>&1 &)`, "sh", secret)
	cmd.Dir = dir
	if err := u.RunAs(cmd); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	got := string(out)
	if !strings.HasPrefix(got, u.Name+"\n"+u.Home+"\n") || !strings.Contains(got, "Permission denied") || strings.Contains(got, "token") {
		t.Errorf("output %q: want the task user's name and home, and no access to the runner's file", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "sub", "made")); err != nil {
		t.Errorf("the task user could not write in its directory: %v", err)
	}
	pids, err := processesOf(u.sys.uid)
	if err != nil || len(pids) == 0 {
		t.Fatalf("the background sleep is not running as the task user: %v, %v", pids, err)
	}
	n, err := u.KillProcesses()
	if err != nil || n == 0 {
		t.Errorf("KillProcesses = %d, %v; want the sleep killed", n, err)
	}
	if pids, _ := processesOf(u.sys.uid); len(pids) != 0 {
		t.Errorf("processes %v of the task user survive", pids)
	}
	if err := u.Remove(); err != nil {
		t.Fatal(err)
	}
	removed = true
	var unknown user.UnknownUserError
	if _, err := user.Lookup(u.Name); !errors.As(err, &unknown) {
		t.Errorf("the account %s still exists after Remove: %v", u.Name, err)
	}
	if _, err := os.Stat(u.Home); !os.IsNotExist(err) {
		t.Errorf("home %s still exists after Remove: %v", u.Home, err)
	}
}

// A directory of another account that task users could not pass is not
// opened behind its owner's back: Own says which and how to fix it.
func TestTaskUserOwnRefusesAnotherAccountsDirectory(t *testing.T) {
	needRoot(t)
	u, err := NewTaskUser(t.Name(), TaskUserIDs{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_, _ = u.KillProcesses()
		_ = u.Remove()
	}()
	closed := filepath.Join(testTempDir(t), "closed")
	dir := filepath.Join(closed, "task")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(closed, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	err = u.Own(dir)
	if err == nil || !strings.Contains(err.Error(), closed+" (mode 0700) belongs to another account") || !strings.Contains(err.Error(), "chmod o+x") {
		t.Errorf("Own below another account's 0700 directory: %v; want that directory named with the fix", err)
	}
	if m := mode(t, closed); m != 0o700 {
		t.Errorf("the other account's directory was changed to %04o", m)
	}
}
