package cot

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/internal/testsvc"
)

func sampleDocument() *Document {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	return &Document{
		Version:   Version,
		Artifacts: map[string]ArtifactHash{"public/build/app.zip": {SHA256: "ab"}, CertifiedLogName: {SHA256: "cd"}},
		Task: tcqueue.TaskDefinitionResponse{
			TaskQueueID: "proj/win11", Created: tcclient.Time(now), Deadline: tcclient.Time(now.Add(time.Hour)),
			Payload: json.RawMessage(`{"command":["build"],"maxRunTime":600}`), Scopes: []string{"queue:get-artifact:private/*"},
		},
		TaskID: "fN1SbArXTPSVFNUvaOlinQ", RunID: 2, WorkerGroup: "mtv", WorkerID: "mtv-win11-01",
		Environment: Environment{PrivateIPAddress: "10.0.0.7"},
	}
}

func TestDocumentJSONFields(t *testing.T) {
	b, err := sampleDocument().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("{\n  \"chainOfTrustVersion\": 1,\n  \"artifacts\": {")) {
		t.Errorf("document is not generic-worker's indented JSON:\n%s", b)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"artifacts", "chainOfTrustVersion", "environment", "runId", "task", "taskId", "workerGroup", "workerId"}
	if !slices.Equal(keys, want) {
		t.Errorf("top-level fields %q, want %q", keys, want)
	}
	var env map[string]any
	if err := json.Unmarshal(m["environment"], &env); err != nil {
		t.Fatal(err)
	}
	// publicIpAddress is omitted when empty; the rest are always there.
	if _, ok := env["publicIpAddress"]; ok || len(env) != 4 || env["privateIpAddress"] != "10.0.0.7" || env["instanceId"] != "" {
		t.Errorf("environment = %v", env)
	}
	if string(m["runId"]) != "2" || string(m["artifacts"]) == "" {
		t.Errorf("runId %s artifacts %s", m["runId"], m["artifacts"])
	}
	var task map[string]any
	if err := json.Unmarshal(m["task"], &task); err != nil || task["taskQueueId"] != "proj/win11" {
		t.Errorf("task = %v (%v)", task, err)
	}
}

func TestSignAndVerify(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := sampleDocument().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sig := Sign(priv, doc)
	if len(sig) != ed25519.SignatureSize {
		t.Fatalf("signature has %d bytes, want a raw %d-byte ed25519 signature", len(sig), ed25519.SignatureSize)
	}
	got, err := Verify(pub, doc, sig)
	if err != nil || got.TaskID != "fN1SbArXTPSVFNUvaOlinQ" || got.Artifacts["public/build/app.zip"].SHA256 != "ab" {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
	for i := range []int{0, len(doc) / 2, len(doc) - 1} {
		changed := bytes.Clone(doc)
		changed[i] ^= 1
		if _, err := Verify(pub, changed, sig); !errors.Is(err, ErrBadSignature) {
			t.Errorf("byte %d changed: Verify error %v, want ErrBadSignature", i, err)
		}
	}
	other, _, _ := ed25519.GenerateKey(nil)
	if _, err := Verify(other, doc, sig); !errors.Is(err, ErrBadSignature) {
		t.Errorf("another key: Verify error %v, want ErrBadSignature", err)
	}
}

func TestKeyPairFiles(t *testing.T) {
	path := filepath.Join(testsvc.TempDir(t, "labrunner-cot-"), "keys", "cot.key")
	pub, err := NewKeyPair(path)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ReadPrivateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(priv.Public().(ed25519.PublicKey), pub) {
		t.Fatal("the private key read back does not match the public key printed")
	}
	if back, err := ParsePublicKey(PublicKeyString(pub) + "\n"); err != nil || !bytes.Equal(back, pub) {
		t.Errorf("ParsePublicKey(PublicKeyString) = %v, %v", back, err)
	}
	before, _ := os.ReadFile(path)
	if _, err := NewKeyPair(path); err == nil {
		t.Error("NewKeyPair replaced an existing key file")
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("existing key file changed")
	}
}

func TestReadGenericWorkerKeyFile(t *testing.T) {
	// generic-worker new-ed25519-keypair writes the base64 seed, no newline.
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	path := filepath.Join(testsvc.TempDir(t, "labrunner-cot-"), "gw.key")
	if err := os.WriteFile(path, []byte("BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="), 0o600); err != nil {
		t.Fatal(err)
	}
	priv, err := ReadPrivateKey(path)
	if err != nil || !bytes.Equal(priv, ed25519.NewKeyFromSeed(seed)) {
		t.Fatalf("ReadPrivateKey = %v, %v", priv, err)
	}
	for _, bad := range []string{"", "not base64!", "BwcHBw=="} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadPrivateKey(path); err == nil {
			t.Errorf("ReadPrivateKey accepted %q", bad)
		}
	}
}
