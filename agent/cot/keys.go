package cot

// Key files in generic-worker's format (ed25519.go at v44.23.4): the private
// key file holds the base64 (standard alphabet) 32-byte seed; the public key
// is printed as base64 too, which is what chain-of-trust verifiers (e.g.
// scriptworker) are configured with.

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// NewKeyPair makes a key pair, writes the private key to path (mode 0600,
// never over an existing file) and returns the public key.
func NewKeyPair(path string) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create the directory of %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%s already exists; a key in use is not replaced: remove it first if a new key is what you want", path)
	}
	if err != nil {
		return nil, fmt.Errorf("create private key file: %w", err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(priv.Seed())); err != nil {
		f.Close()
		return nil, fmt.Errorf("write private key file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("write private key file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write private key file %s: %w", path, err)
	}
	return pub, nil
}

// ReadPrivateKey reads a private key file written by NewKeyPair or by
// generic-worker new-ed25519-keypair.
func ReadPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read ed25519 signing key: %w", err)
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("ed25519 signing key %s is not the base64 of a %d-byte seed; make one with `runner new-ed25519-keypair --file %s`", path, ed25519.SeedSize, path)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// PublicKeyString is the base64 form of a public key, as printed by
// new-ed25519-keypair.
func PublicKeyString(pub ed25519.PublicKey) string {
	return base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey reads the base64 form of a public key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("ed25519 public key %q is not the base64 of %d bytes", s, ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}
