//go:build unix

package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labrunner/labrunner/agent/cot"
)

func TestNewEd25519Keypair(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ed25519.key")
	code, out, errOut := execute(context.Background(), "new-ed25519-keypair", "--file", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	pub, err := cot.ParsePublicKey(out)
	if err != nil {
		t.Fatalf("printed %q: %v", out, err)
	}
	priv, err := cot.ReadPrivateKey(path)
	if err != nil || !bytes.Equal(priv.Public().(ed25519.PublicKey), pub) {
		t.Fatalf("the key file does not hold the private half of the printed key: %v", err)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v (%v), want 0600", info.Mode().Perm(), err)
	}
	// A second run must not replace the key in use.
	code, _, errOut = execute(context.Background(), "new-ed25519-keypair", "--file", path)
	if code == 0 || !strings.Contains(errOut, "already exists") {
		t.Errorf("second run: exit %d, stderr %q; want a refusal", code, errOut)
	}
	if again, _ := cot.ReadPrivateKey(path); !bytes.Equal(again, priv) {
		t.Error("the existing key was replaced")
	}
	if code, _, errOut := execute(context.Background(), "new-ed25519-keypair"); code != 2 || !strings.Contains(errOut, "--file") {
		t.Errorf("without --file: exit %d, stderr %q", code, errOut)
	}
}
