package mounts

import (
	"testing"

	"github.com/labrunner/labrunner/internal/testsvc"
)

// tempDir is a temporary directory that Wine can clean up too.
func tempDir(t testing.TB) string { return testsvc.TempDir(t, "labrunner-mounts-") }
