package platform

// Linux task users through the shadow tools (groupadd, useradd, chpasswd,
// gpasswd, userdel, groupdel, in the passwd package of Debian and its
// kin), with an id of their own (taskuser_idalloc_unix.go) and a cgroup
// of their own where the machine allows (taskuser_cgroup_linux.go).

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// sharedTaskDirs are where every account may leave files: a task
// account's are removed with it (with its mail, crontab and at jobs).
var sharedTaskDirs = []string{"/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue", "/run/lock", "/var/crash", "/var/mail", "/var/spool/mail", "/var/spool/cron", "/var/spool/at"}

func (u *TaskUser) create(comment string, ids TaskUserIDs) error {
	// The account's group has the account's id as gid: a gid given again
	// would hand over group-owned files as a uid would.
	id, err := allocateTaskID(ids.OrDefault(), func(id uint32) error {
		n := strconv.FormatUint(uint64(id), 10)
		if err := shadowTool(nil, "groupadd", "--gid", n, u.Name); err != nil {
			return err
		}
		if err := shadowTool(nil, "useradd", "--create-home", "--uid", n, "--gid", n, "--shell", "/bin/sh",
			"--comment", comment, u.Name); err != nil {
			_ = shadowTool(nil, "groupdel", u.Name)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			if u.sys.cgroup != nil {
				_ = u.sys.cgroup.remove()
			}
			_ = shadowTool(nil, "userdel", "--remove", u.Name)
			_ = shadowTool(nil, "groupdel", u.Name)
		}
	}()
	pw, err := randomPassword()
	if err != nil {
		return err
	}
	if err := shadowTool(strings.NewReader(u.Name+":"+pw+"\n"), "chpasswd"); err != nil {
		return err
	}
	acct, err := lookupTaskUser(u.Name)
	if err != nil {
		return err
	}
	if acct.sys.uid != id || acct.sys.gid != id {
		return fmt.Errorf("the account has uid %d and gid %d, not the %d it was made with", acct.sys.uid, acct.sys.gid, id)
	}
	u.Home, u.sys = acct.Home, acct.sys
	// The home is the account's alone, whatever HOME_MODE says.
	if err := os.Chmod(u.Home, 0o700); err != nil {
		return fmt.Errorf("restrict the new home: %w", err)
	}
	if u.sys.cgroup, err = newTaskCgroup(u.Name); err != nil {
		return err
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

// listTaskUsers reads the account database for task_ accounts with the
// comment.
func listTaskUsers(comment string) ([]string, error) {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 5 && strings.HasPrefix(fields[0], taskUserPrefix) && fields[4] == comment {
			names = append(names, fields[0])
		}
	}
	return names, sc.Err()
}

func (u *TaskUser) addToGroup(g string) error {
	if err := shadowTool(nil, "gpasswd", "--add", u.Name, g); err != nil {
		return err
	}
	return u.joinedGroup(g)
}

func (u *TaskUser) removeFromGroup(g string) error {
	return shadowTool(nil, "gpasswd", "--delete", u.Name, g)
}

func (u *TaskUser) remove() error {
	if c := u.sys.cgroup; c != nil {
		// Fails while a process is in it: the account is kept.
		if err := c.remove(); err != nil {
			return err
		}
		u.sys.cgroup = nil
	}
	traces := u.removeTraces()
	if errors.Is(traces, ErrTaskProcessesLeft) {
		return traces
	}
	// userdel exits 12 when it removed the account but not all of the
	// home (e.g. no mail spool): the home is then removed here. It
	// removes the account's group too where USERGROUPS_ENAB is set
	// (groupdel exits 6 for a group that is gone).
	err := shadowTool(nil, "userdel", "--remove", u.Name)
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 12) {
		return errors.Join(traces, err)
	}
	if err := shadowTool(nil, "groupdel", u.Name); err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 6) {
		traces = errors.Join(traces, err)
	}
	if err := os.RemoveAll(u.Home); err != nil {
		return errors.Join(traces, fmt.Errorf("remove home %s: %w", u.Home, err))
	}
	return traces
}

// removeIPCTraces removes the account's System V IPC objects.
func removeIPCTraces(uid uint32) error {
	_, err := removeIPCOf(uid)
	return err
}
