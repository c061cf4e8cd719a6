package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labrunner/labrunner/agent/cot"
)

func TestChainOfTrustKeyConfig(t *testing.T) {
	dir := testTempDir(t)
	good := filepath.Join(dir, "ed25519.key")
	if _, err := cot.NewKeyPair(good); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "rootURL: https://tc.example.com\ncredentials: {clientId: w, accessToken: s}\ntaskQueueId: lab/win\nworkerGroup: g\nworkerId: w\nstateDir: /s\ntasksDir: /t\ntaskUser: service\n"
	c, err := ParseConfig([]byte(base + "chainOfTrust: {ed25519SigningKey: " + good + "}\n"))
	if err != nil || c.ChainOfTrust.Ed25519SigningKey != good {
		t.Fatalf("a good key: %+v, %v", c, err)
	}
	for _, path := range []string{bad, filepath.Join(dir, "missing.key")} {
		_, err := ParseConfig([]byte(base + "chainOfTrust: {ed25519SigningKey: " + path + "}\n"))
		var ce *ConfigError
		if !errors.As(err, &ce) || len(ce.Problems) != 1 || !strings.HasPrefix(ce.Problems[0], "chainOfTrust.ed25519SigningKey: ") || !strings.Contains(ce.Problems[0], "runner new-ed25519-keypair --file "+path) {
			t.Errorf("key %s: %v; want one problem naming the key and the command that makes one", path, err)
		}
	}
}
