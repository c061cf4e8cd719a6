//go:build unix

package platform

import "testing"

func TestEnvKeyKeepsCaseOnUnix(t *testing.T) {
	if EnvKey("Path") == EnvKey("PATH") {
		t.Fatal("EnvKey folds case on Unix, where Path and PATH are different variables")
	}
	if TaskCommandStyle() != ArgvCommands {
		t.Fatalf("TaskCommandStyle = %v, want argv lists", TaskCommandStyle())
	}
}
