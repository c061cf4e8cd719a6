package platform

import (
	"io/fs"
	"os/exec"
)

// CheckCommand returns the command that runs a file of a checks directory,
// and false when the file is not something this OS runs (a README, a
// non-executable file on Unix).
func CheckCommand(path string, info fs.FileInfo) (*exec.Cmd, bool) { return checkCommand(path, info) }
