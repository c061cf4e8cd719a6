package platform

import (
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
)

// checkCommand picks the interpreter from the extension, as Windows has no
// execute bit.
func checkCommand(path string, info fs.FileInfo) (*exec.Cmd, bool) {
	if !info.Mode().IsRegular() {
		return nil, false
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".exe", ".com":
		return exec.Command(path), true
	case ".bat", ".cmd":
		return exec.Command(`C:\Windows\System32\cmd.exe`, "/d", "/c", path), true
	case ".ps1":
		return exec.Command("powershell.exe", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-File", path), true
	}
	return nil, false
}
