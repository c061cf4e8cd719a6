//go:build linux || darwin

package platform

// What Linux and macOS task users share: commands start as the account
// through syscall.Credential (setuid and setgid by the runner, which runs
// as root: no password is ever used), the task directory is chowned to
// it, its processes are killed (its cgroup, then by uid in rounds until
// none is left), and what it left where every account may write goes
// with it.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// taskUserSys is the account's ids, the supplementary groups its
// commands get (osGroups; the console user's own) and, for the console's
// user, the variables of its graphical session.
type taskUserSys struct {
	uid, gid uint32
	groups   []uint32
	env      []string
	// wrap, when set, turns a command's argv into the one to start (macOS
	// console: launchctl asuser); the command then starts as root.
	wrap func(argv []string) []string
	// cgroup holds a per-task account's processes (Linux, where the
	// machine allows: TaskUserKill); nil elsewhere.
	cgroup *taskCgroup
}

func canManageTaskUsers() error {
	if uid := os.Geteuid(); uid != 0 {
		return fmt.Errorf("the runner runs as uid %d, not root, and cannot create task accounts nor start commands as them; run the runner as root (its service does)", uid)
	}
	return nil
}

// lookupTaskUser fills u's ids and home from the account database.
func lookupTaskUser(name string) (*TaskUser, error) {
	acct, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("look up account %s: %w", name, err)
	}
	uid, err1 := strconv.ParseUint(acct.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(acct.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("ids of account %s: %w", name, err)
	}
	return &TaskUser{Name: name, Home: acct.HomeDir, sys: taskUserSys{uid: uint32(uid), gid: uint32(gid)}}, nil
}

func existingTaskUser(name string) (*TaskUser, error) {
	u, err := lookupTaskUser(name)
	if err != nil {
		return nil, err
	}
	u.sys.cgroup = existingTaskCgroup(name)
	return u, nil
}

// own chowns dir and everything in it through a handle on dir (os.Root),
// each entry itself (Lchown): the task directory holds caches a task
// wrote, and no link in them, left there or swapped in meanwhile, takes a
// chown outside dir. A regular file with hard links outside dir keeps its
// owner: a task can hard-link another account's file into a cache (macOS;
// Linux without fs.protected_hardlinks), and chowning it would hand that
// file to the next task.
func (u *TaskUser) own(dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	uid, gid := int(u.sys.uid), int(u.sys.gid)
	type inode struct{ dev, ino uint64 }
	type hardLinked struct {
		path  string
		nlink uint64
		found uint64
	}
	linked := map[inode]*hardLinked{}
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
				k := inode{uint64(st.Dev), uint64(st.Ino)}
				if linked[k] == nil {
					linked[k] = &hardLinked{path: p, nlink: uint64(st.Nlink)}
				}
				linked[k].found++
				return nil
			}
		}
		return root.Lchown(p, uid, gid)
	})
	if err != nil {
		return err
	}
	for _, h := range linked {
		if h.found == h.nlink {
			if err := root.Lchown(h.path, uid, gid); err != nil {
				return err
			}
		}
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

func (u *TaskUser) runAs(cmd *exec.Cmd) error {
	cmd.Env = append(cmd.Env, "HOME="+u.Home, "USER="+u.Name, "LOGNAME="+u.Name)
	cmd.Env = append(cmd.Env, u.sys.env...)
	if u.sys.wrap != nil {
		argv := u.sys.wrap(cmd.Args)
		path, err := exec.LookPath(argv[0])
		if err != nil {
			return err
		}
		cmd.Path, cmd.Args = path, argv
		return nil
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Only the account's groups: the runner's (root's) are dropped.
	groups := append([]uint32{}, u.sys.groups...)
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: u.sys.uid, Gid: u.sys.gid, Groups: groups}
	intoCgroup(cmd.SysProcAttr, u.sys.cgroup)
	return nil
}

// joinedGroup records that the account's commands get group g's id.
func (u *TaskUser) joinedGroup(g string) error {
	grp, err := user.LookupGroup(g)
	if err != nil {
		return err
	}
	gid, err := strconv.ParseUint(grp.Gid, 10, 32)
	if err != nil {
		return fmt.Errorf("id of group %s: %w", g, err)
	}
	u.sys.groups = append(u.sys.groups, uint32(gid))
	return nil
}

// The commands' groups are set at each start (runAs): nothing to refresh.
func (u *TaskUser) groupsChanged() error { return nil }

func (u *TaskUser) elevate() error {
	return fmt.Errorf("%w: features.runAsAdministrator is for Windows only", ErrNoElevation)
}

func (u *TaskUser) release() {}

// processes are the account's: those with its uid, and those in its
// cgroup whatever their uid.
func (u *TaskUser) processes() ([]int, error) {
	pids, err := processesOf(u.sys.uid)
	if err != nil || u.sys.cgroup == nil {
		return pids, err
	}
	in, err := u.sys.cgroup.procs()
	for _, pid := range in {
		if !slices.Contains(pids, pid) {
			pids = append(pids, pid)
		}
	}
	return pids, err
}

// killProcesses kills the account's cgroup, if it has one (every process
// in it, whatever uid it took), then in rounds every process whose uid is
// the account's (one started outside the cgroup: by cron, at or another
// task's setuid program), until a round finds none: a process forking
// during one round is found in the next. It returns how many it killed.
func (u *TaskUser) killProcesses() (int, error) {
	killed := 0
	if c := u.sys.cgroup; c != nil {
		n, err := c.kill()
		killed += n
		if err != nil {
			return killed, err
		}
	}
	n, err := killAccountProcesses(u.sys.uid)
	return killed + n, err
}

// killAccountProcesses kills, in rounds, the processes with uid.
func killAccountProcesses(uid uint32) (int, error) {
	killed := 0
	for round := 0; round < 50; round++ {
		pids, err := processesOf(uid)
		if err != nil {
			return killed, err
		}
		if len(pids) == 0 {
			return killed, nil
		}
		for _, pid := range pids {
			ok, err := killProcessOf(pid, uid)
			if err != nil {
				return killed, err
			}
			if ok {
				killed++
			}
		}
		time.Sleep(time.Duration(round+1) * 10 * time.Millisecond)
	}
	pids, _ := processesOf(uid)
	if len(pids) == 0 {
		return killed, nil
	}
	return killed, fmt.Errorf("processes %v still run after 50 rounds of kills", pids)
}

// removeTraces removes what the account left where every account may
// write (sharedTaskDirs) and its System V IPC objects. A process of the
// account that appears meanwhile (another task ran a setuid program it
// left, before the program was removed) is killed and the pass made
// again. Errors removing files are returned, for the log: the account
// may still go, as its id is not given again while they remain.
func (u *TaskUser) removeTraces() error {
	for range 3 {
		_, files := removeFilesOf(sharedTaskDirs, u.sys.uid, u.keep)
		ipc := removeIPCTraces(u.sys.uid)
		pids, err := processesOf(u.sys.uid)
		if err != nil {
			return errors.Join(files, ipc, err)
		}
		if len(pids) == 0 {
			return errors.Join(files, ipc)
		}
		if _, err := killAccountProcesses(u.sys.uid); err != nil {
			return fmt.Errorf("%w: %w", ErrTaskProcessesLeft, err)
		}
	}
	return fmt.Errorf("%w after its files were removed three times", ErrTaskProcessesLeft)
}
