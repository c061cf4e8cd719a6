//go:build windows

package platform

import "testing"

func TestEnvKeyIgnoresCaseOnWindows(t *testing.T) {
	if EnvKey("Path") != EnvKey("PATH") || EnvKey("path") != EnvKey("PATH") {
		t.Fatalf("EnvKey distinguishes Path/PATH/path: %q %q %q", EnvKey("Path"), EnvKey("PATH"), EnvKey("path"))
	}
	if TaskCommandStyle() != CmdLineCommands {
		t.Fatalf("TaskCommandStyle = %v, want cmd.exe lines", TaskCommandStyle())
	}
}
