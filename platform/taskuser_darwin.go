package platform

// macOS task users: Directory Services records made with dscl (the
// commands are built in taskuser_dscl.go) with a uid of their own
// (taskuser_idalloc_unix.go), processes found through the kern.proc
// sysctl, the console's user being the owner of /dev/console.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// sharedTaskDirs are where every account may leave files (the per-user
// folders under /private/var/folders are cleaned by find in remove).
var sharedTaskDirs = []string{"/private/tmp", "/private/var/tmp"}

func (u *TaskUser) create(comment string, ids TaskUserIDs) error {
	u.Home = "/Users/" + u.Name
	ok := false
	defer func() {
		if !ok {
			_, _ = runDarwinTool(dsclDeleteUser(u.Name))
			_ = os.RemoveAll(u.Home)
		}
	}()
	uid, err := allocateTaskID(ids.OrDefault(), func(uid uint32) error {
		for _, argv := range dsclCreateUser(u.Name, int(uid), comment, u.Home) {
			if _, err := runDarwinTool(argv); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	u.sys = taskUserSys{uid: uid, gid: darwinStaffGID}
	if err := os.Mkdir(u.Home, 0o700); err != nil {
		return fmt.Errorf("create home: %w", err)
	}
	if err := os.Chown(u.Home, int(uid), darwinStaffGID); err != nil {
		return fmt.Errorf("give home to the account: %w", err)
	}
	ok = true
	return nil
}

// osIDChecks: the local accounts (dscl), the processes and the files in
// the shared directories; the gid is staff's for every account.
var osIDChecks = idChecks{
	traces: func(r TaskUserIDs) (map[uint32]bool, error) {
		list, err := runDarwinTool(dsclListUIDs)
		if err != nil {
			return nil, err
		}
		ids := darwinUIDsIn(list, r)
		procs, err := unix.SysctlKinfoProcSlice("kern.proc.all")
		if err != nil {
			return nil, fmt.Errorf("list processes: %w", err)
		}
		for _, p := range procs {
			addIDsIn(ids, r, p.Eproc.Ucred.Uid, p.Eproc.Pcred.P_ruid, p.Eproc.Pcred.P_svuid)
		}
		// As on Linux, what the walk could not reach lies below what it saw.
		files, _ := idsInSharedDirs(sharedTaskDirs, r)
		mergeIDs(ids, files, nil, nil)
		return ids, nil
	},
	free: func(uint32) (bool, error) { return true, nil },
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
	// Files go first, while the uid still names the account: the
	// per-user temporary folders (find), then /tmp and /var/tmp.
	if _, err := runDarwinTool(darwinUserTempCleanup(u.sys.uid)); err != nil {
		return err
	}
	traces := u.removeTraces()
	if errors.Is(traces, ErrTaskProcessesLeft) {
		return traces
	}
	if _, err := runDarwinTool(dsclDeleteUser(u.Name)); err != nil {
		return errors.Join(traces, err)
	}
	if err := os.RemoveAll(u.Home); err != nil {
		return errors.Join(traces, fmt.Errorf("remove home %s: %w", u.Home, err))
	}
	return traces
}

// System V IPC objects are not removed on macOS: it has ipcs and ipcrm,
// but their use by tasks is rare and untested here (docs/operations.md).
func removeIPCTraces(uint32) error { return nil }

// taskCgroup: macOS has no cgroups; processes are found by uid.
type taskCgroup struct{}

func (*taskCgroup) procs() ([]int, error) { return nil, nil }

func (*taskCgroup) kill() (int, error) { return 0, nil }

func existingTaskCgroup(string) *taskCgroup { return nil }

func intoCgroup(*syscall.SysProcAttr, *taskCgroup) {}

func taskUserKill() TaskKill {
	return TaskKill{Method: TaskKillUID, Detail: "processes found by uid (kern.proc) and killed by pid, their uid read again just before (macOS has no pidfd)"}
}

// killProcessOf sends SIGKILL to pid if it is still a process of uid.
func killProcessOf(pid int, uid uint32) (bool, error) {
	p, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil || p.Proc.P_pid != int32(pid) {
		return false, nil // gone
	}
	c := p.Eproc
	if c.Ucred.Uid != uid && c.Pcred.P_ruid != uid && c.Pcred.P_svuid != uid {
		return false, nil
	}
	err = syscall.Kill(pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("kill %d: %w", pid, err)
	}
	return true, nil
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
