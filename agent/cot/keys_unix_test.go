//go:build unix

package cot

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/labrunner/labrunner/internal/testsvc"
)

func TestPrivateKeyFileMode(t *testing.T) {
	path := filepath.Join(testsvc.TempDir(t, "labrunner-cot-"), "cot.key")
	if _, err := NewKeyPair(path); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("private key file mode %v, want 0600", info.Mode().Perm())
	}
}
