//go:build unix

package platform

import (
	"io/fs"
	"os"
	"syscall"
)

const taskFileOpenFlag = syscall.O_NONBLOCK

func foreignToTask(file, dir fs.FileInfo) bool {
	fst, ok1 := file.Sys().(*syscall.Stat_t)
	dst, ok2 := dir.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 {
		// Not from a stat of this OS: refuse rather than guess.
		return true
	}
	if int64(dst.Uid) == int64(os.Geteuid()) {
		// The task ran as the runner's account and could read it all.
		return false
	}
	return fst.Uid != dst.Uid && file.Mode().Perm()&0o004 == 0
}
