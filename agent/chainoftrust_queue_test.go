package agent

// Through the dev queue on every OS (the mounts tests' env, which runs
// under Wine too): commands are per-OS steps (mounts_*_test.go).

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/labrunner/labrunner/agent/cot"
)

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// artifact downloads one artifact of run 0 (content encoding undone).
func (e *mountEnv) artifact(taskID, name string) []byte {
	e.t.Helper()
	buf, _, _, err := e.root.DownloadArtifactToBuf(taskID, 0, name)
	if err != nil {
		e.t.Fatalf("download %s: %v", name, err)
	}
	return buf
}

func TestChainOfTrustSignedAndVerifiable(t *testing.T) {
	e := newMountEnv(t)
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	e.startAgent(func(c *Config) {
		c.ChainOfTrustKey = priv
		c.ChainOfTrustEnvironment = cot.Environment{PrivateIPAddress: "10.1.2.3"}
	})
	// The task also tries to publish a chain-of-trust document of its own.
	payload := mountPayload([]map[string]any{}, writeFile("app.txt", "built"), writeFile("notes.txt", "notes"), writeFile("forged.json", "forged"))
	payload["artifacts"] = []map[string]any{
		{"type": "file", "path": "app.txt", "name": "public/build/app.txt"},
		{"type": "file", "path": "notes.txt", "name": "public/build/notes.txt"},
		{"type": "file", "path": "forged.json", "name": cot.DocumentName},
	}
	payload["features"] = map[string]any{"chainOfTrust": true}
	run, log := e.run(payload, nil, nil)
	if run.State != "completed" {
		t.Fatalf("run %s/%s; log:\n%s", run.State, run.ReasonResolved, log)
	}
	id := e.lastTaskID
	if !strings.Contains(log, "Not uploading artifact public/chain-of-trust.json found in task.payload.artifacts section, since this will be uploaded later by Chain of Trust") {
		t.Errorf("the task's own public/chain-of-trust.json was not set aside; log:\n%s", log)
	}

	body := e.artifact(id, cot.DocumentName)
	sig := e.artifact(id, cot.SignatureName)
	doc, err := cot.Verify(pub, body, sig)
	if err != nil {
		t.Fatalf("verify with the worker's public key: %v\n%s", err, body)
	}
	if doc.Version != 1 || doc.TaskID != id || doc.RunID != 0 || doc.WorkerGroup != "lab" || doc.WorkerID != "mounts-test" ||
		doc.Environment.PrivateIPAddress != "10.1.2.3" || doc.Task.TaskQueueID != e.taskQueueID || !strings.Contains(string(doc.Task.Payload), "chainOfTrust") {
		t.Errorf("document = %+v", doc)
	}
	var names []string
	for name := range doc.Artifacts {
		names = append(names, name)
	}
	slices.Sort(names)
	if want := []string{"public/build/app.txt", "public/build/notes.txt", cot.CertifiedLogName}; !slices.Equal(names, want) {
		t.Errorf("document lists %q, want %q", names, want)
	}
	// Every digest is that of the artifact as the queue serves it.
	for name, h := range doc.Artifacts {
		if got := sha256Hex(e.artifact(id, name)); got != h.SHA256 {
			t.Errorf("%s: document says sha256 %s, the artifact has %s", name, h.SHA256, got)
		}
	}
	// certified.log is the task log as it was when the document was made.
	certified := string(e.artifact(id, cot.CertifiedLogName))
	if !strings.HasPrefix(log, certified) || !strings.Contains(certified, "Uploading artifact public/build/app.txt") {
		t.Errorf("certified.log is not the start of the task log:\n%s", certified)
	}

	// One changed byte anywhere breaks it.
	changed := slices.Clone(body)
	changed[len(changed)/2] ^= 1
	if _, err := cot.Verify(pub, changed, sig); !errors.Is(err, cot.ErrBadSignature) {
		t.Errorf("a changed document byte still verifies: %v", err)
	}
	app := e.artifact(id, "public/build/app.txt")
	app[0] ^= 1
	if sha256Hex(app) == doc.Artifacts["public/build/app.txt"].SHA256 {
		t.Error("a changed artifact byte still matches its digest")
	}
}

func TestChainOfTrustWithoutKeyIsMalformed(t *testing.T) {
	e := newMountEnv(t)
	e.startAgent()
	payload := mountPayload([]map[string]any{}, writeFile("ran.txt", "ran"))
	payload["features"] = map[string]any{"chainOfTrust": true}
	run, log := e.run(payload, nil, nil)
	if run.State != "exception" || run.ReasonResolved != "malformed-payload" {
		t.Fatalf("run %s/%s, want exception/malformed-payload; log:\n%s", run.State, run.ReasonResolved, log)
	}
	if !strings.Contains(log, "chainOfTrust.ed25519SigningKey") || strings.Contains(log, "Executing command") {
		t.Errorf("log does not name the missing key setting, or the commands ran:\n%s", log)
	}
	if _, _, _, err := e.root.DownloadArtifactToBuf(e.lastTaskID, 0, cot.DocumentName); err == nil {
		t.Error("a chain-of-trust document was published without a key")
	}
}
