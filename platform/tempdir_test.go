package platform

import (
	"testing"

	"github.com/labrunner/labrunner/internal/testsvc"
)

// testTempDir is a temporary directory that Wine can clean up too.
func testTempDir(t testing.TB) string { return testsvc.TempDir(t, "labrunner-platform-") }
