//go:build windows

package agent

import (
	"os"
	"testing"
)

// TestMain lets the test binary act as a task command (taskhelper_test.go).
func TestMain(m *testing.M) {
	if mode := os.Getenv(taskHelperEnv); mode != "" {
		os.Exit(runTaskHelper(mode))
	}
	os.Exit(m.Run())
}
