package platform

// Windows task commands, run the way generic-worker v44 runs them
// (multiuser_windows.go prepareCommand): command i is the payload line in
// command_<i>.bat ("@echo on" first), called from command_<i>_wrapper.bat,
// which
//
//	i == 0: cd into the task directory (the payload env and TASK_ID etc.
//	        come in through the process environment)
//	i > 0:  re-creates the environment and current directory that command
//	        i-1 left behind in env.txt and dir.txt
//	always: runs the line with stderr joined to stdout, keeps its errorlevel,
//	        saves env.txt and dir.txt unless it is the last command, and
//	        exits with that errorlevel.
//
// So `set`, `cd` and `exit /b N` in one command affect the next one and the
// task result exactly as on generic-worker. The files are plain text, so
// they are written and tested on any OS; only running them needs Windows.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Names of the files that carry state from one command to the next.
const (
	batchEnvFile = "env.txt"
	batchDirFile = "dir.txt"
)

// BatchCommand writes the batch files for command index (of a task whose
// commands are cmd.exe lines) into taskDir and returns the command that runs
// them. Call it just before running that command: for index > 0 it reads
// the state the previous command saved. last is true for the final command.
// The caller sets Env (the task environment), Stdout and Stderr.
//
// The runner (LocalSystem) does this in a directory the previous commands
// wrote, so the files are read and written through an os.Root of it
// (readTaskFile, writeTaskFile): a link or a hard link the task left under
// one of these names cannot make the runner read or overwrite another file.
func BatchCommand(taskDir string, index int, last bool, taskID, line string) (*exec.Cmd, error) {
	name := fmt.Sprintf("command_%06d", index)
	script := filepath.Join(taskDir, name+".bat")
	wrapper := filepath.Join(taskDir, name+"_wrapper.bat")
	root, err := os.OpenRoot(taskDir)
	if err != nil {
		return nil, fmt.Errorf("open the task directory: %w", err)
	}
	defer root.Close()
	wrapperText, err := batchWrapper(root, taskDir, index, last, taskID, script)
	if err != nil {
		return nil, err
	}
	if err := writeTaskFile(root, name+".bat", []byte(batchScript(line)), 0o755); err != nil {
		return nil, fmt.Errorf("write %s: %w", script, err)
	}
	if err := writeTaskFile(root, name+"_wrapper.bat", []byte(wrapperText), 0o755); err != nil {
		return nil, fmt.Errorf("write %s: %w", wrapper, err)
	}
	// Run like generic-worker: the wrapper itself is the program, which
	// Windows starts through cmd.exe /c.
	cmd := exec.Command(wrapper)
	cmd.Dir = taskDir
	return cmd, nil
}

// batchScript is the file holding the payload line itself.
func batchScript(line string) string {
	return "@echo on\r\n" + line
}

func batchWrapper(root *os.Root, taskDir string, index int, last bool, taskID, script string) (string, error) {
	var b strings.Builder
	crlf := func(s string) { b.WriteString(s + "\r\n") }
	crlf(":: This script runs command " + strconv.Itoa(index) + " defined in TaskId " + taskID + "...")
	crlf("@echo off")
	envFile := filepath.Join(taskDir, batchEnvFile)
	dirFile := filepath.Join(taskDir, batchDirFile)
	if index == 0 {
		crlf(`cd "` + taskDir + `"`)
	} else {
		vars, err := readSavedEnv(root)
		if err != nil {
			return "", err
		}
		for _, kv := range vars {
			crlf("set " + kv[0] + "=" + batchEscape(kv[1]))
		}
		dir, err := readSavedDir(root)
		if err != nil {
			return "", err
		}
		// /d also changes drive; generic-worker's plain cd would stay on
		// the old drive if a command moved to another one.
		crlf(`cd /d "` + strings.ReplaceAll(dir, "%", "%%") + `"`)
	}
	// ERRORLEVEL must be the dynamic value, not a variable a task set.
	crlf("set errorlevel=")
	crlf(`call "` + script + `" 2>&1`)
	crlf("@echo off")
	crlf("set tcexitcode=%errorlevel%")
	if !last {
		crlf(`set > "` + envFile + `"`)
		crlf(`cd > "` + dirFile + `"`)
	}
	crlf("exit /b %tcexitcode%")
	return b.String(), nil
}

// maxSavedState bounds env.txt and dir.txt (an environment block is at
// most 32 767 characters).
const maxSavedState = 1 << 20

// readSavedEnv parses the `set` output the previous command saved.
func readSavedEnv(root *os.Root) ([][2]string, error) {
	b, err := readTaskFile(root, batchEnvFile, maxSavedState)
	if err != nil {
		return nil, fmt.Errorf("read environment saved by the previous command: %w", err)
	}
	var vars [][2]string
	for _, l := range strings.Split(string(b), "\n") {
		name, value, ok := strings.Cut(strings.TrimSuffix(l, "\r"), "=")
		if !ok || name == "" {
			continue
		}
		vars = append(vars, [2]string{name, value})
	}
	return vars, nil
}

func readSavedDir(root *os.Root) (string, error) {
	b, err := readTaskFile(root, batchDirFile, maxSavedState)
	if err != nil {
		return "", fmt.Errorf("read directory saved by the previous command: %w", err)
	}
	dir, _, _ := strings.Cut(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
	if dir == "" {
		return "", errors.New("previous command saved an empty current directory in " + batchDirFile)
	}
	return dir, nil
}

// batchEscape makes value literal on the right of `set NAME=` in a batch
// file. generic-worker puts ^ before ()%!^"<>&|; a batch file expands %
// before it honours ^, so % is doubled here instead, which keeps values such
// as "100%" intact where generic-worker would mangle them.
func batchEscape(value string) string {
	var b strings.Builder
	for _, c := range value {
		switch {
		case c == '%':
			b.WriteString("%%")
		case strings.ContainsRune(`()!^"<>&|`, c):
			b.WriteRune('^')
			b.WriteRune(c)
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}
