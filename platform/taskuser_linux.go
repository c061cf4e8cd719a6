package platform

// Linux task users through the shadow tools (useradd, chpasswd, userdel,
// in the passwd package of Debian and its kin), started with
// syscall.Credential; their processes are found in /proc.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const perTaskUsersSupported = true

// taskUserSys is the account's ids.
type taskUserSys struct {
	uid, gid uint32
}

func (u *TaskUser) create() error {
	if err := shadowTool(nil, "useradd", "--create-home", "--user-group", "--shell", "/bin/sh",
		"--comment", "labrunner task user", u.Name); err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			_ = shadowTool(nil, "userdel", "--remove", u.Name)
		}
	}()
	pw, err := randomPassword()
	if err != nil {
		return err
	}
	if err := shadowTool(strings.NewReader(u.Name+":"+pw+"\n"), "chpasswd"); err != nil {
		return err
	}
	acct, err := user.Lookup(u.Name)
	if err != nil {
		return fmt.Errorf("look up the new account: %w", err)
	}
	uid, err1 := strconv.ParseUint(acct.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(acct.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("ids of the new account: %w", err)
	}
	u.Home, u.sys = acct.HomeDir, taskUserSys{uid: uint32(uid), gid: uint32(gid)}
	// The home is the account's alone, whatever HOME_MODE says.
	if err := os.Chmod(u.Home, 0o700); err != nil {
		return fmt.Errorf("restrict the new home: %w", err)
	}
	ok = true
	return nil
}

// randomPassword is a password nobody needs to know: the runner starts
// the account's processes itself.
func randomPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random password: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// shadowTool runs one of the shadow tools; its output is in the error.
// Nothing secret is on its command line (chpasswd reads stdin).
func shadowTool(stdin *strings.Reader, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

func (u *TaskUser) own(dir string) error {
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(u.sys.uid), int(u.sys.gid))
	})
	if err != nil {
		return err
	}
	return letThrough(filepath.Dir(dir))
}

// letThrough adds search permission for others to dir and its parents
// that lack it, so that a task user can reach its task directory; a
// directory of another account that would stop it is an error.
func letThrough(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for {
		fi, err := os.Stat(abs)
		if err != nil {
			return err
		}
		if perm := fi.Mode().Perm(); perm&0o001 == 0 {
			st, ok := fi.Sys().(*syscall.Stat_t)
			if !ok || int(st.Uid) != os.Geteuid() {
				return fmt.Errorf("%s (mode %04o) belongs to another account and task users cannot pass it; give others search permission (chmod o+x) or move tasksDir", abs, perm)
			}
			// Search only: 0700 becomes 0711, which RestrictToServiceAccount
			// still counts as private.
			if err := os.Chmod(abs, fi.Mode()|0o011); err != nil {
				return err
			}
		}
		parent := filepath.Dir(abs)
		if parent == abs {
			return nil
		}
		abs = parent
	}
}

func (u *TaskUser) runAs(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// No supplementary groups: the runner's (root's) are dropped.
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: u.sys.uid, Gid: u.sys.gid, Groups: []uint32{}}
}

// killProcesses kills, in rounds, every process whose real, effective or
// saved uid is the account's, until a round finds none: a process forking
// during one round is found in the next.
func (u *TaskUser) killProcesses() (int, error) {
	killed := 0
	for round := 0; round < 50; round++ {
		pids, err := processesOf(u.sys.uid)
		if err != nil {
			return killed, err
		}
		if len(pids) == 0 {
			return killed, nil
		}
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
				killed++
			} else if !errors.Is(err, syscall.ESRCH) {
				return killed, fmt.Errorf("kill %d: %w", pid, err)
			}
		}
		time.Sleep(time.Duration(round+1) * 10 * time.Millisecond)
	}
	pids, _ := processesOf(u.sys.uid)
	if len(pids) == 0 {
		return killed, nil
	}
	return killed, fmt.Errorf("processes %v still run after 50 rounds of kills", pids)
}

// processesOf lists the processes with uid as real, effective or saved
// uid; zombies (already dead, waiting for their parent) are left out.
func processesOf(uid uint32) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	want := strconv.FormatUint(uint64(uid), 10)
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue // gone meanwhile
		}
		var uids []string
		zombie := false
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "Uid:"); ok {
				uids = strings.Fields(v)
			}
			if v, ok := strings.CutPrefix(line, "State:"); ok && strings.HasPrefix(strings.TrimSpace(v), "Z") {
				zombie = true
			}
		}
		if zombie || len(uids) < 3 {
			continue
		}
		if uids[0] == want || uids[1] == want || uids[2] == want {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

func (u *TaskUser) remove() error {
	// userdel exits 12 when it removed the account but not all of the
	// home (e.g. no mail spool): the home is then removed here.
	err := shadowTool(nil, "userdel", "--remove", u.Name)
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 12) {
		return err
	}
	if err := os.RemoveAll(u.Home); err != nil {
		return fmt.Errorf("remove home %s: %w", u.Home, err)
	}
	return nil
}
