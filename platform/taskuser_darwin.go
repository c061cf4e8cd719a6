package platform

// macOS task users: Directory Services records made with dscl (the
// commands are built in taskuser_dscl.go), processes found through the
// kern.proc sysctl, the console's user being the owner of /dev/console.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// darwinUserMu serialises account creation: the uid is picked from the
// accounts that exist, so two at once could pick the same.
var darwinUserMu sync.Mutex

func (u *TaskUser) create(comment string) error {
	darwinUserMu.Lock()
	defer darwinUserMu.Unlock()
	list, err := runDarwinTool(dsclListUIDs)
	if err != nil {
		return err
	}
	uid := nextDarwinTaskUID(list)
	u.Home = "/Users/" + u.Name
	ok := false
	defer func() {
		if !ok {
			_, _ = runDarwinTool(dsclDeleteUser(u.Name))
			_ = os.RemoveAll(u.Home)
		}
	}()
	for _, argv := range dsclCreateUser(u.Name, uid, comment, u.Home) {
		if _, err := runDarwinTool(argv); err != nil {
			return err
		}
	}
	u.sys = taskUserSys{uid: uint32(uid), gid: darwinStaffGID}
	if err := os.Mkdir(u.Home, 0o700); err != nil {
		return fmt.Errorf("create home: %w", err)
	}
	if err := os.Chown(u.Home, uid, darwinStaffGID); err != nil {
		return fmt.Errorf("give home to the account: %w", err)
	}
	ok = true
	return nil
}

// runDarwinTool runs argv; its output is in the error.
func runDarwinTool(argv []string) (string, error) {
	var out, errOut bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

func listTaskUsers(comment string) ([]string, error) {
	out, err := runDarwinTool(dsclListRealNames)
	if err != nil {
		return nil, err
	}
	return darwinTaskUsersIn(out, comment), nil
}

func (u *TaskUser) addToGroup(g string) error {
	if _, err := runDarwinTool(dseditGroup(u.Name, g, true)); err != nil {
		return err
	}
	return u.joinedGroup(g)
}

func (u *TaskUser) removeFromGroup(g string) error {
	_, err := runDarwinTool(dseditGroup(u.Name, g, false))
	return err
}

func (u *TaskUser) remove() error {
	// Files in the per-user temporary folders go first: find matches
	// them by uid, which stays valid after the record is gone, but a
	// later account could get the same uid.
	if _, err := runDarwinTool(darwinUserTempCleanup(u.sys.uid)); err != nil {
		return err
	}
	if _, err := runDarwinTool(dsclDeleteUser(u.Name)); err != nil {
		return err
	}
	if err := os.RemoveAll(u.Home); err != nil {
		return fmt.Errorf("remove home %s: %w", u.Home, err)
	}
	return nil
}

// consoleUser is the named account, or the owner of /dev/console (root
// while the login window shows: nobody is logged in).
func consoleUser(name string) (*TaskUser, error) {
	if name == "" {
		fi, err := os.Stat("/dev/console")
		if err != nil {
			return nil, err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || st.Uid == 0 {
			return nil, fmt.Errorf("nobody is logged in at the console (/dev/console belongs to root); set up autologin (docs/operations.md) or name the account with consoleUser")
		}
		u, err := lookupUID(st.Uid)
		if err != nil {
			return nil, err
		}
		name = u
	}
	u, err := lookupTaskUser(name)
	if err != nil {
		return nil, err
	}
	uid := u.sys.uid
	u.sys.wrap = func(argv []string) []string { return launchctlAsUser(uid, name, argv) }
	return u, nil
}

func lookupUID(uid uint32) (string, error) {
	out, err := runDarwinTool([]string{"/usr/bin/id", "-un", fmt.Sprint(uid)})
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(out), nil
}

// processesOf lists the processes with uid as real, effective or saved
// uid; zombies are left out.
func processesOf(uid uint32) ([]int, error) {
	procs, err := unix.SysctlKinfoProcSlice("kern.proc.all")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	const zombie = 5 // SZOMB in <sys/proc.h>
	var pids []int
	for _, p := range procs {
		if p.Proc.P_stat == zombie {
			continue
		}
		c := p.Eproc
		if c.Ucred.Uid == uid || c.Pcred.P_ruid == uid || c.Pcred.P_svuid == uid {
			pids = append(pids, int(p.Proc.P_pid))
		}
	}
	return pids, nil
}
