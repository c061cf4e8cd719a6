//go:build unix

package agent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/labrunner/labrunner/agent/cot"
)

// File modes are Unix's; on Windows platform.RestrictToServiceAccount sets
// a DACL, tested in platform.
func TestSigningKeyFileMadePrivateAtStart(t *testing.T) {
	path := filepath.Join(testTempDir(t), "ed25519.key")
	if _, err := cot.NewKeyPair(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	key, err := loadSigningKey(path, quietLogger())
	if err != nil || key == nil {
		t.Fatalf("loadSigningKey: %v", err)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v (%v) after start, want 0600", info.Mode().Perm(), err)
	}
}
