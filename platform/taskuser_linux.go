package platform

// Linux task users through the shadow tools (useradd, chpasswd, gpasswd,
// userdel, in the passwd package of Debian and its kin); their processes
// are found in /proc.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

func (u *TaskUser) create(comment string) error {
	if err := shadowTool(nil, "useradd", "--create-home", "--user-group", "--shell", "/bin/sh",
		"--comment", comment, u.Name); err != nil {
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
	acct, err := lookupTaskUser(u.Name)
	if err != nil {
		return err
	}
	u.Home, u.sys = acct.Home, acct.sys
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
