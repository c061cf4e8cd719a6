package platform

// Each per-task account's commands run in a cgroup v2 of their own, made
// in the runner's cgroup and entered at clone time (clone3's
// CLONE_INTO_CGROUP, Go's SysProcAttr.UseCgroupFD), so that no command
// runs a moment outside it. A process cannot leave it (moving needs write
// access to root's cgroup.procs files) and stays in it whatever uid it
// takes, a setuid program's included; at the end one write to cgroup.kill
// (Linux 5.14) kills everything in it, forks in flight included. This is
// what systemd does for a unit (KillMode=control-group); a runner started
// by systemd needs Delegate=yes on its unit to make cgroups below its own
// (docs/operations.md, "Task users"). Where that is not possible the
// processes are found by uid (taskuser_procs_linux.go), and the runner's
// status says which (TaskUserKill).

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupSupport says where task cgroups are made (parent, the runner's
// own cgroup directory), or why none are (why, parent empty).
type cgroupSupport struct {
	parent, why string
}

var (
	cgroupOnce sync.Once
	cgroupSup  cgroupSupport
)

// taskCgroupSupport is this machine's answer, found once per process.
func taskCgroupSupport() cgroupSupport {
	cgroupOnce.Do(func() { cgroupSup = detectTaskCgroups() })
	return cgroupSup
}

// taskCgroupPrefix starts the name of every task cgroup.
const taskCgroupPrefix = "labrunner-"

// detectTaskCgroups finds the cgroup v2 hierarchy and the runner's place
// in it, and tries what task cgroups need there: making one, its
// cgroup.kill, starting a process into it.
func detectTaskCgroups() cgroupSupport {
	mnt, root, err := cgroup2Mount()
	if err != nil {
		return cgroupSupport{why: err.Error()}
	}
	own, err := ownCgroup()
	if err != nil {
		return cgroupSupport{why: err.Error()}
	}
	rel, ok := strings.CutPrefix(own, root)
	if !ok {
		return cgroupSupport{why: fmt.Sprintf("the runner's cgroup %s lies outside the cgroup v2 mount at %s", own, mnt)}
	}
	dir := filepath.Join(mnt, rel)
	if why := notDelegated(dir, own); why != "" {
		return cgroupSupport{why: why}
	}
	probe := filepath.Join(dir, fmt.Sprintf("%sprobe-%d", taskCgroupPrefix, os.Getpid()))
	if err := os.Mkdir(probe, 0o755); err != nil {
		return cgroupSupport{why: fmt.Sprintf("cannot make a cgroup in the runner's (%v)", err)}
	}
	defer os.Remove(probe)
	if _, err := os.Stat(filepath.Join(probe, "cgroup.kill")); err != nil {
		return cgroupSupport{why: "the kernel has no cgroup.kill (Linux 5.14 and later have)"}
	}
	fd, err := unix.Open(probe, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return cgroupSupport{why: fmt.Sprintf("open %s: %v", probe, err)}
	}
	defer unix.Close(fd)
	// A program that does not exist: clone3 puts the child in the cgroup,
	// its exec fails with ENOENT. Any other error is clone3's (a kernel
	// before 5.7, a seccomp filter).
	_, err = syscall.ForkExec(filepath.Join(probe, "no-such-program"), nil, &syscall.ProcAttr{Sys: &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}})
	if !errors.Is(err, syscall.ENOENT) {
		return cgroupSupport{why: fmt.Sprintf("cannot start a process into a cgroup (clone3 CLONE_INTO_CGROUP: %v)", err)}
	}
	return cgroupSupport{parent: dir}
}

// cgroup2Mount is the mount point of the cgroup v2 hierarchy (the
// unified one on a hybrid system) and the cgroup it shows as its root.
func cgroup2Mount() (mnt, root string, err error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [TAGS...] - FSTYPE SOURCE SUPER
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, fs := strings.Fields(pre), strings.Fields(post)
		if ok && len(fields) >= 5 && len(fs) >= 1 && fs[0] == "cgroup2" {
			return unescapeMountinfo(fields[4]), unescapeMountinfo(fields[3]), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", err
	}
	return "", "", errors.New("no cgroup v2 hierarchy is mounted")
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ownCgroup is the runner's cgroup v2 path ("0::PATH" in /proc/self/cgroup).
func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(b)) {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "0::"); ok {
			return p, nil
		}
	}
	return "", errors.New("the runner is in no cgroup v2 (/proc/self/cgroup)")
}

// notDelegated says why the runner may not make cgroups below its own
// (empty when it may): the root of the hierarchy it sees is its own, and
// below that its service manager must have delegated the subtree, which
// systemd marks with the trusted.delegate attribute (systemd 251) and
// shows as the unit's Delegate property. The runner may sit in a subgroup
// of the delegated cgroup (systemd's DelegateSubgroup=): its ancestors
// count.
func notDelegated(dir, own string) string {
	if own == "/" {
		return ""
	}
	unit := ""
	for d, p := dir, own; p != "/" && p != "."; d, p = filepath.Dir(d), filepath.Dir(p) {
		buf := make([]byte, 8)
		if n, err := unix.Getxattr(d, "trusted.delegate", buf); err == nil && string(buf[:n]) == "1" {
			return ""
		}
		if b := filepath.Base(p); unit == "" && (strings.HasSuffix(b, ".service") || strings.HasSuffix(b, ".scope")) {
			unit = b
		}
	}
	if unit != "" {
		out, err := exec.Command("systemctl", "show", "--property=Delegate", "--value", unit).Output()
		if err == nil && strings.TrimSpace(string(out)) == "yes" {
			return ""
		}
	}
	return fmt.Sprintf("the runner's cgroup %s is not delegated to it; give its systemd unit Delegate=yes (`runner service install` and `runner service configure` do)", own)
}

// taskCgroup is the cgroup of one task account.
type taskCgroup struct {
	dir string
	// fd is the open directory commands are cloned into; -1 for the
	// cgroup of an account left by an earlier runner (only killed).
	fd int
}

// taskCgroupDir is where the cgroup of the account name is, or "".
func taskCgroupDir(name string) string {
	sup := taskCgroupSupport()
	if sup.parent == "" {
		return ""
	}
	return filepath.Join(sup.parent, taskCgroupPrefix+name)
}

// newTaskCgroup makes the cgroup of the account name; nil when this
// machine has no task cgroups.
func newTaskCgroup(name string) (*taskCgroup, error) {
	dir := taskCgroupDir(name)
	if dir == "" {
		return nil, nil
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("make its cgroup: %w", err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = os.Remove(dir)
		return nil, fmt.Errorf("open its cgroup: %w", err)
	}
	return &taskCgroup{dir: dir, fd: fd}, nil
}

// existingTaskCgroup is the cgroup an earlier runner made for the
// account name, or nil.
func existingTaskCgroup(name string) *taskCgroup {
	dir := taskCgroupDir(name)
	if dir == "" {
		return nil
	}
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	return &taskCgroup{dir: dir, fd: -1}
}

// procs lists the processes in the cgroup.
func (c *taskCgroup) procs() ([]int, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, "cgroup.procs"))
	if err != nil {
		return nil, fmt.Errorf("processes of cgroup %s: %w", c.dir, err)
	}
	var pids []int
	for f := range strings.FieldsSeq(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// populated says whether a process is still in the cgroup.
func (c *taskCgroup) populated() (bool, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, "cgroup.events"))
	if err != nil {
		return false, fmt.Errorf("cgroup %s: %w", c.dir, err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "populated "); ok {
			return v != "0", nil
		}
	}
	return false, fmt.Errorf("cgroup %s: no populated line in cgroup.events", c.dir)
}

// kill kills every process in the cgroup and waits until they are gone;
// it returns how many there were.
func (c *taskCgroup) kill() (int, error) {
	pids, err := c.procs()
	if err != nil {
		return 0, err
	}
	if on, err := c.populated(); err != nil || !on {
		return len(pids), err
	}
	if err := os.WriteFile(filepath.Join(c.dir, "cgroup.kill"), []byte("1"), 0); err != nil {
		return 0, fmt.Errorf("cgroup.kill %s: %w", c.dir, err)
	}
	// SIGKILL is delivered at once; a process in an uninterruptible
	// sleep (a hung NFS read) dies when the sleep ends.
	for round := range 50 {
		on, err := c.populated()
		if err != nil || !on {
			return len(pids), err
		}
		time.Sleep(time.Duration(round+1) * 10 * time.Millisecond)
	}
	left, _ := c.procs()
	return len(pids), fmt.Errorf("processes %v still run in cgroup %s after cgroup.kill", left, c.dir)
}

// remove closes and removes the (empty) cgroup.
func (c *taskCgroup) remove() error {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
	if err := unix.Rmdir(c.dir); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove cgroup %s: %w", c.dir, err)
	}
	return nil
}

// taskUserKill is TaskUserKill on Linux.
func taskUserKill() TaskKill {
	sup := taskCgroupSupport()
	if sup.parent != "" {
		return TaskKill{Method: TaskKillCgroup, Detail: fmt.Sprintf("each task in a cgroup of its own under %s, killed with cgroup.kill (whatever uid its processes took); then any process left with its uid", sup.parent)}
	}
	return TaskKill{Method: TaskKillUID, Detail: "processes found by uid in /proc and killed through pidfds; no task cgroups: " + sup.why}
}

// intoCgroup makes a command start inside the cgroup c (if any).
func intoCgroup(attr *syscall.SysProcAttr, c *taskCgroup) {
	if c != nil && c.fd >= 0 {
		attr.UseCgroupFD = true
		attr.CgroupFD = c.fd
	}
}
