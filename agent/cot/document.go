package cot

// The document, field for field as generic-worker v44's ChainOfTrustData
// (chain_of_trust.go at v44.23.4), and its signing:
//
//	artifacts (name → file) ──SHA-256──▶ Document ──json.MarshalIndent(doc, "", "  ")──▶ chain-of-trust.json
//	                                                      └──ed25519.Sign(key, bytes)──▶ chain-of-trust.json.sig (64 raw bytes)

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
)

// Artifact names the chain-of-trust feature publishes, as generic-worker.
const (
	CertifiedLogName = "public/logs/certified.log"
	DocumentName     = "public/chain-of-trust.json"
	SignatureName    = "public/chain-of-trust.json.sig"
)

// ReservedNames are the artifact names the feature publishes itself; a
// payload artifact with one of these names is not uploaded.
var ReservedNames = []string{DocumentName, SignatureName, CertifiedLogName}

// Version is chainOfTrustVersion.
const Version = 1

// ArtifactHash is one artifact's digest.
type ArtifactHash struct {
	// SHA256 is the lower-case hex SHA-256 of the artifact's content as
	// stored before any content encoding.
	SHA256 string `json:"sha256"`
}

// Environment describes the machine, as generic-worker's CoTEnvironment.
type Environment struct {
	// PublicIPAddress is left out of the JSON when empty.
	PublicIPAddress  string `json:"publicIpAddress,omitempty"`
	PrivateIPAddress string `json:"privateIpAddress"`
	InstanceID       string `json:"instanceId"`
	InstanceType     string `json:"instanceType"`
	Region           string `json:"region"`
}

// Document is the chain-of-trust document of one run.
type Document struct {
	Version     int                            `json:"chainOfTrustVersion"`
	Artifacts   map[string]ArtifactHash        `json:"artifacts"`
	Task        tcqueue.TaskDefinitionResponse `json:"task"`
	TaskID      string                         `json:"taskId"`
	RunID       uint                           `json:"runId"`
	WorkerGroup string                         `json:"workerGroup"`
	WorkerID    string                         `json:"workerId"`
	Environment Environment                    `json:"environment"`
}

// Marshal encodes the document as generic-worker does: indented JSON.
func (d *Document) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode chain-of-trust document: %w", err)
	}
	return b, nil
}

// Sign returns the detached ed25519 signature of the encoded document.
func Sign(key ed25519.PrivateKey, doc []byte) []byte { return ed25519.Sign(key, doc) }

// ErrBadSignature means a document does not match its signature.
var ErrBadSignature = errors.New("chain-of-trust signature does not match the document")

// Verify checks the signature of an encoded document and decodes it.
func Verify(pub ed25519.PublicKey, doc, sig []byte) (*Document, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("verify chain of trust: public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	if !ed25519.Verify(pub, doc, sig) {
		return nil, ErrBadSignature
	}
	var d Document
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("decode chain-of-trust document: %w", err)
	}
	return &d, nil
}

// ReaderSHA256 is the lower-case hex SHA-256 of everything r holds.
func ReaderSHA256(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", fmt.Errorf("digest: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
