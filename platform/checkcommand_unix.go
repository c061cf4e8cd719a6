//go:build unix

package platform

import (
	"io/fs"
	"os/exec"
)

// checkCommand runs any regular file with an execute bit; its #! line
// picks the interpreter.
func checkCommand(path string, info fs.FileInfo) (*exec.Cmd, bool) {
	if !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
		return nil, false
	}
	return exec.Command(path), true
}
