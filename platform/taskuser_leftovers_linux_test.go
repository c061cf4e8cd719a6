package platform

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// newTestTaskUser makes a task user removed at the test's end (if the
// test did not remove it).
func newTestTaskUser(t *testing.T) *TaskUser {
	t.Helper()
	u, err := NewTaskUser(t.Name(), TaskUserIDs{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := lookupTaskUser(u.Name); err == nil {
			_, _ = u.KillProcesses()
			_ = u.Remove()
		}
	})
	return u
}

// runAsTaskUser runs a shell script as u and returns its output.
func runAsTaskUser(t *testing.T, u *TaskUser, script string, env ...string) string {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
	if err := u.RunAs(cmd); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("as %s: %s: %v: %s", u.Name, script, err, out)
	}
	return string(out)
}

// randomMark names a test's files apart from other tests' and runs'.
func randomMark(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// Consecutive task users get ids that differ, from the configured range,
// each account's group having its uid as gid: the uid of a removed
// account is not the next one's.
func TestTaskUserIDsAreNotGivenAgain(t *testing.T) {
	needRoot(t)
	seen := map[uint32]string{}
	r := DefaultTaskUserIDs
	for i := range 3 {
		u := newTestTaskUser(t)
		if u.sys.uid < r.First || u.sys.uid > r.Last || u.sys.gid != u.sys.uid {
			t.Errorf("task user %d: uid %d gid %d; want a uid in %s and its group's gid equal to it", i, u.sys.uid, u.sys.gid, r)
		}
		if had, ok := seen[u.sys.uid]; ok {
			t.Errorf("task user %d (%s) got uid %d, which %s had before it", i, u.Name, u.sys.uid, had)
		}
		seen[u.sys.uid] = u.Name
		if _, err := u.KillProcesses(); err != nil {
			t.Fatal(err)
		}
		if err := u.Remove(); err != nil {
			t.Fatal(err)
		}
		if err := exec.Command("getent", "group", u.Name).Run(); err == nil {
			t.Errorf("the group of %s outlives the account", u.Name)
		}
	}
}

// What a task leaves where every account may write (/tmp, /var/tmp,
// /dev/shm: a private directory, a setuid copy of a program, a link to
// the runner's file, a file in another account's open directory) and its
// System V IPC objects go with its account; another task's files, the
// link's target and the task's own directory (the runner's) stay.
func TestTaskUserLeftoversGoWithIt(t *testing.T) {
	needRoot(t)
	u, other := newTestTaskUser(t), newTestTaskUser(t)
	m := randomMark(t)
	p := func(dir, name string) string { return filepath.Join(dir, "labrunner-test-"+m+"-"+name) }
	rootFile, open := p("/tmp", "root-file"), p("/tmp", "open")
	if err := os.WriteFile(rootFile, []byte("the runner's"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, os.ModeSticky|0o777); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(open); os.Remove(rootFile) })
	task := filepath.Join(testTempDir(t), "task")
	if err := os.Mkdir(task, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := u.Own(task); err != nil {
		t.Fatal(err)
	}
	leftovers := []string{p("/tmp", "dir"), p("/var/tmp", "file"), p("/dev/shm", "shm"), p("/tmp", "suid"), p("/tmp", "link"), filepath.Join(open, "mine")}
	script := `set -e
		mkdir -m 700 "$1" && echo x > "$1/note"
		echo x > "$2"; echo x > "$3"
		cp /bin/true "$4" && chmod 4755 "$4"
		ln -s "$7" "$5"
		echo x > "$6"
		echo x > "$8/artifact"`
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, "sh"}, append(leftovers, rootFile, task)...)...)
	if err := u.RunAs(cmd); err != nil {
		t.Fatal(err)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	theirs := filepath.Join(open, "theirs")
	cmd = exec.Command("/bin/sh", "-c", `echo y > "$0"`, theirs)
	if err := other.RunAs(cmd); err != nil {
		t.Fatal(err)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	ipc := false
	if path, err := exec.LookPath("ipcmk"); err == nil {
		runAsTaskUser(t, u, path+" -M 4096 && "+path+" -Q && "+path+" -S 1")
		objs, err := sysvIPCObjects()
		if err != nil {
			t.Fatal(err)
		}
		mine := 0
		for _, o := range objs {
			if o.uid == u.sys.uid {
				mine++
			}
		}
		if mine != 3 {
			t.Fatalf("the task user has %d System V IPC objects, want the 3 ipcmk made: %+v", mine, objs)
		}
		ipc = true
	}

	if _, err := u.KillProcesses(); err != nil {
		t.Fatal(err)
	}
	if err := u.Remove(); err != nil {
		t.Fatal(err)
	}
	for _, f := range leftovers {
		if _, err := os.Lstat(f); !os.IsNotExist(err) {
			t.Errorf("%s outlives the task user that made it: %v", f, err)
		}
	}
	for _, f := range []string{rootFile, open, theirs, filepath.Join(task, "artifact")} {
		if _, err := os.Lstat(f); err != nil {
			t.Errorf("%s (not the task user's, or the runner's) was removed: %v", f, err)
		}
	}
	if b, _ := os.ReadFile(rootFile); string(b) != "the runner's" {
		t.Errorf("the link's target was changed: %q", b)
	}
	if ipc {
		objs, err := sysvIPCObjects()
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if o.uid == u.sys.uid || o.cuid == u.sys.uid {
				t.Errorf("System V %s %d of the removed task user is left", o.kind, o.id)
			}
		}
	}
}

// /proc/sysvipc's tables are read by their headers' names.
func TestParseSysvIPC(t *testing.T) {
	table := "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n" +
		"  1426357541          3   644          1 70001 70001 70001 70001          0 1733556000\n" +
		"           0          4   600          1     0     0 70002 70002          0 1733556001\n"
	objs, err := parseSysvIPC(strings.NewReader(table), "sem", "semid")
	if err != nil {
		t.Fatal(err)
	}
	want := []ipcObject{{"sem", 3, 70001, 70001, 70001, 70001}, {"sem", 4, 0, 0, 70002, 70002}}
	if len(objs) != 2 || objs[0] != want[0] || objs[1] != want[1] {
		t.Errorf("parsed %+v, want %+v", objs, want)
	}
	if _, err := parseSysvIPC(strings.NewReader("key id\n1 2\n"), "sem", "semid"); err == nil {
		t.Errorf("a table without the columns was read")
	}
}
