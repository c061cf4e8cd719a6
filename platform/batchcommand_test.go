package platform

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBatchEscape(t *testing.T) {
	cases := map[string]string{
		"plain value":      "plain value",
		"100%":             "100%%",
		"%PATH%":           "%%PATH%%",
		"a&b|c<d>e":        "a^&b^|c^<d^>e",
		`say "hi" (now)!`:  `say ^"hi^" ^(now^)^!`,
		"x^y":              "x^^y",
		`C:\Program Files`: `C:\Program Files`,
	}
	for in, want := range cases {
		if got := batchEscape(in); got != want {
			t.Errorf("batchEscape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBatchCommandFirstCommandFiles(t *testing.T) {
	dir := testTempDir(t)
	cmd, err := BatchCommand(dir, 0, false, "TASKID", "echo hello > out.txt")
	if err != nil {
		t.Fatalf("BatchCommand: %v", err)
	}
	wrapper := filepath.Join(dir, "command_000000_wrapper.bat")
	if cmd.Path != wrapper || cmd.Dir != dir {
		t.Fatalf("cmd.Path %q Dir %q, want the wrapper run in the task dir", cmd.Path, cmd.Dir)
	}
	script, err := os.ReadFile(filepath.Join(dir, "command_000000.bat"))
	if err != nil || string(script) != "@echo on\r\necho hello > out.txt" {
		t.Fatalf("script = %q, %v", script, err)
	}
	w, err := os.ReadFile(wrapper)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		":: This script runs command 0 defined in TaskId TASKID...",
		"@echo off",
		`cd "` + dir + `"`,
		"set errorlevel=",
		`call "` + filepath.Join(dir, "command_000000.bat") + `" 2>&1`,
		"@echo off",
		"set tcexitcode=%errorlevel%",
		`set > "` + filepath.Join(dir, "env.txt") + `"`,
		`cd > "` + filepath.Join(dir, "dir.txt") + `"`,
		"exit /b %tcexitcode%",
		"",
	}, "\r\n")
	if string(w) != want {
		t.Fatalf("wrapper =\n%s\nwant\n%s", w, want)
	}
}

func TestBatchCommandCarriesStateForward(t *testing.T) {
	dir := testTempDir(t)
	// What `set > env.txt` and `cd > dir.txt` leave behind on Windows.
	env := "FOO=bar & baz\r\nPCT=100%\r\n=C:=C:\\odd\r\nEMPTY=\r\nnot a variable\r\n"
	if err := os.WriteFile(filepath.Join(dir, "env.txt"), []byte(env), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dir.txt"), []byte("D:\\work\\sub\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := BatchCommand(dir, 3, true, "T", "exit /b 4"); err != nil {
		t.Fatalf("BatchCommand: %v", err)
	}
	w, err := os.ReadFile(filepath.Join(dir, "command_000003_wrapper.bat"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(w)
	for _, line := range []string{
		"set FOO=bar ^& baz\r\n",
		"set PCT=100%%\r\n",
		"set EMPTY=\r\n",
		"cd /d \"D:\\work\\sub\"\r\n",
		"exit /b %tcexitcode%\r\n",
	} {
		if !strings.Contains(text, line) {
			t.Errorf("wrapper lacks %q:\n%s", line, text)
		}
	}
	if strings.Contains(text, "set > ") || strings.Contains(text, "not a variable") || strings.Contains(text, "set =C:") {
		t.Errorf("last command's wrapper saves state or copies junk:\n%s", text)
	}
}

func TestBatchCommandMissingSavedState(t *testing.T) {
	_, err := BatchCommand(testTempDir(t), 1, true, "T", "echo")
	if err == nil || !strings.Contains(err.Error(), "previous command") {
		t.Fatalf("err = %v, want one about the previous command's saved state", err)
	}
}
