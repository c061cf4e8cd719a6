package platform

// The runner reads some of a task's files after the task ran (artifacts,
// a Buildbot build's properties), with its own account's rights, which are
// more than the task's. These helpers keep such a read to what the task
// itself could have read; the path checks are os.Root's (agent/artifactopen.go).

import "io/fs"

// TaskFileOpenFlag is added to the flags a task's file is opened with so
// that opening a named pipe cannot block (O_NONBLOCK on Unix; nothing on
// Windows, where a task cannot make a pipe in its directory).
const TaskFileOpenFlag = taskFileOpenFlag

// ForeignToTask reports whether file, a regular file in a task directory
// whose own information is dir, belongs to another account than the task's
// and is not readable by everyone: a file the task could not have read,
// such as a hard link it made to a root-only file (macOS lets any account
// link any file it can reach; Linux does not when fs.protected_hardlinks
// is 1, its usual setting). The task directory's owner is the task's
// account (TaskUser.Own); when it is the runner's own account, the task
// ran as that account and nothing is foreign to it.
// Always false on Windows, where TaskUser.Own grants the account access
// through the directory's DACL and leaves the runner's account its owner.
func ForeignToTask(file, dir fs.FileInfo) bool { return foreignToTask(file, dir) }
