//go:build unix

// Through the dev queue with the agent's unix test helpers (helpers_test.go);
// agent/cot's own tests cover the document and keys on every OS.

package agent

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/labrunner/labrunner/agent/cot"
	"github.com/labrunner/labrunner/internal/devqueue"
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestChainOfTrustSignedAndVerifiable(t *testing.T) {
	e := newEnv(t, devqueue.Config{})
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	cfg.ChainOfTrustKey = priv
	cfg.ChainOfTrustEnvironment = cot.Environment{PrivateIPAddress: "10.1.2.3"}
	e.startAgent(cfg)
	// The task also tries to publish a chain-of-trust document of its own.
	payload := shPayload(`mkdir -p dist && printf 'binary\000content' > dist/app.bin && echo notes > dist/notes.txt && echo '{"forged": true}' > forged.json`, 60)
	payload["artifacts"] = []map[string]any{
		{"type": "directory", "path": "dist", "name": "public/build"},
		{"type": "file", "path": "forged.json", "name": cot.DocumentName},
	}
	payload["features"] = map[string]any{"chainOfTrust": true}
	id := e.createTask(payload)
	run := e.waitRun(id, 0)
	log := e.artifactContent(id, 0, BackingLogName)
	if run.State != "completed" {
		t.Fatalf("run %s/%s; log:\n%s", run.State, run.ReasonResolved, log)
	}
	if !strings.Contains(log, "Not uploading artifact public/chain-of-trust.json found in task.payload.artifacts section, since this will be uploaded later by Chain of Trust") {
		t.Errorf("the task's own public/chain-of-trust.json was not set aside; log:\n%s", log)
	}

	body := e.artifactContent(id, 0, cot.DocumentName)
	sig := e.artifactContent(id, 0, cot.SignatureName)
	doc, err := cot.Verify(pub, []byte(body), []byte(sig))
	if err != nil {
		t.Fatalf("verify with the worker's public key: %v\n%s", err, body)
	}
	if doc.Version != 1 || doc.TaskID != id || doc.RunID != 0 || doc.WorkerGroup != e.workerGroup || doc.WorkerID != e.workerID ||
		doc.Environment.PrivateIPAddress != "10.1.2.3" || doc.Task.TaskQueueID != e.taskQueueID || !strings.Contains(string(doc.Task.Payload), "chainOfTrust") {
		t.Errorf("document = %+v", doc)
	}
	var names []string
	for name := range doc.Artifacts {
		names = append(names, name)
	}
	slices.Sort(names)
	if want := []string{"public/build/app.bin", "public/build/notes.txt", cot.CertifiedLogName}; !slices.Equal(names, want) {
		t.Errorf("document lists %q, want %q", names, want)
	}
	// Every digest is that of the artifact as the queue serves it.
	for name, h := range doc.Artifacts {
		if got := sha256Hex(e.artifactContent(id, 0, name)); got != h.SHA256 {
			t.Errorf("%s: document says sha256 %s, the artifact has %s", name, h.SHA256, got)
		}
	}
	// certified.log is the task log as it was when the document was made.
	certified := e.artifactContent(id, 0, cot.CertifiedLogName)
	if !strings.HasPrefix(log, certified) || !strings.Contains(certified, "Uploading artifact public/build/app.bin") {
		t.Errorf("certified.log is not the start of the task log:\n%s", certified)
	}

	// One changed byte anywhere breaks it.
	changed := []byte(body)
	changed[len(changed)/2] ^= 1
	if _, err := cot.Verify(pub, changed, []byte(sig)); !errors.Is(err, cot.ErrBadSignature) {
		t.Errorf("a changed document byte still verifies: %v", err)
	}
	app := []byte(e.artifactContent(id, 0, "public/build/app.bin"))
	app[0] ^= 1
	if sha256Hex(string(app)) == doc.Artifacts["public/build/app.bin"].SHA256 {
		t.Error("a changed artifact byte still matches its digest")
	}
}

func TestChainOfTrustWithoutKeyIsMalformed(t *testing.T) {
	e := newEnv(t, devqueue.Config{})
	e.startAgent(e.config())
	payload := shPayload("echo should not run", 60)
	payload["features"] = map[string]any{"chainOfTrust": true}
	id := e.createTask(payload)
	run := e.waitRun(id, 0)
	log := e.artifactContent(id, 0, BackingLogName)
	expectRun(t, run, "exception", "malformed-payload")
	if !strings.Contains(log, "chainOfTrust.ed25519SigningKey") || strings.Contains(log, "Executing command") {
		t.Errorf("log does not name the missing key setting, or the commands ran:\n%s", log)
	}
	if _, ok := e.artifacts(id, 0)[cot.DocumentName]; ok {
		t.Error("a chain-of-trust document was published without a key")
	}
}

func TestSigningKeyFileMadePrivateAtStart(t *testing.T) {
	path := testTempDir(t) + "/ed25519.key"
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
