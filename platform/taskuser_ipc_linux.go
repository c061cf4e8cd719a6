package platform

// System V IPC objects (shared memory, message queues, semaphore sets)
// outlive the processes that made them: a task account's are removed with
// it, as an id that came back would otherwise own them (what `ipcs` and
// `ipcrm` do, through /proc/sysvipc and the syscalls). POSIX shared memory,
// semaphores and message queues are files in /dev/shm and /dev/mqueue,
// removed with the account's other files.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ipcObject is one System V IPC object: its kind (shm, msg, sem), id,
// owner and creator.
type ipcObject struct {
	kind                 string
	id                   int
	uid, gid, cuid, cgid uint32
}

// sysvIPCDir is where the kernel lists the objects.
const sysvIPCDir = "/proc/sysvipc"

// sysvIPCObjects lists the objects of every kind.
func sysvIPCObjects() ([]ipcObject, error) {
	var objs []ipcObject
	for kind, idCol := range map[string]string{"shm": "shmid", "msg": "msqid", "sem": "semid"} {
		f, err := os.Open(sysvIPCDir + "/" + kind)
		if errors.Is(err, os.ErrNotExist) {
			continue // a kernel without System V IPC
		}
		if err != nil {
			return nil, err
		}
		got, err := parseSysvIPC(f, kind, idCol)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", sysvIPCDir, kind, err)
		}
		objs = append(objs, got...)
	}
	return objs, nil
}

// parseSysvIPC reads one /proc/sysvipc table by its header's names.
func parseSysvIPC(r io.Reader, kind, idCol string) ([]ipcObject, error) {
	sc := bufio.NewScanner(r)
	if !sc.Scan() {
		return nil, sc.Err()
	}
	col := map[string]int{}
	for i, name := range strings.Fields(sc.Text()) {
		col[name] = i
	}
	for _, name := range []string{idCol, "uid", "gid", "cuid", "cgid"} {
		if _, ok := col[name]; !ok {
			return nil, fmt.Errorf("no %s column", name)
		}
	}
	var objs []ipcObject
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		num := func(name string) (uint64, error) {
			i := col[name]
			if i >= len(f) {
				return 0, fmt.Errorf("short line %q", sc.Text())
			}
			return strconv.ParseUint(f[i], 10, 32)
		}
		id, err1 := num(idCol)
		uid, err2 := num("uid")
		gid, err3 := num("gid")
		cuid, err4 := num("cuid")
		cgid, err5 := num("cgid")
		if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
			return nil, err
		}
		objs = append(objs, ipcObject{kind: kind, id: int(id), uid: uint32(uid), gid: uint32(gid), cuid: uint32(cuid), cgid: uint32(cgid)})
	}
	return objs, sc.Err()
}

// removeIPCOf removes the objects uid owns or made; it returns how many.
func removeIPCOf(uid uint32) (int, error) {
	objs, err := sysvIPCObjects()
	if err != nil {
		return 0, fmt.Errorf("list System V IPC objects: %w", err)
	}
	n := 0
	var errs []error
	for _, o := range objs {
		if o.uid != uid && o.cuid != uid {
			continue
		}
		if err := removeIPC(o); err != nil {
			errs = append(errs, fmt.Errorf("remove System V %s %d: %w", o.kind, o.id, err))
		} else {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// removeIPC is IPC_RMID on one object; one already gone is no error.
func removeIPC(o ipcObject) error {
	var err error
	switch o.kind {
	case "shm":
		_, err = unix.SysvShmCtl(o.id, unix.IPC_RMID, nil)
	case "msg":
		if _, _, e := unix.Syscall(unix.SYS_MSGCTL, uintptr(o.id), unix.IPC_RMID, 0); e != 0 {
			err = e
		}
	case "sem":
		if _, _, e := unix.Syscall6(unix.SYS_SEMCTL, uintptr(o.id), 0, unix.IPC_RMID, 0, 0, 0); e != 0 {
			err = e
		}
	}
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EIDRM) {
		return nil
	}
	return err
}

// ipcIDTraces are the owners' and creators' ids within r.
func ipcIDTraces(r TaskUserIDs) (map[uint32]bool, error) {
	objs, err := sysvIPCObjects()
	if err != nil {
		return nil, fmt.Errorf("list System V IPC objects: %w", err)
	}
	ids := map[uint32]bool{}
	for _, o := range objs {
		addIDsIn(ids, r, o.uid, o.gid, o.cuid, o.cgid)
	}
	return ids, nil
}
