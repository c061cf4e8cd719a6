package provisioner

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// hashToken is how every secret is kept: tokens are random and long, so a
// plain SHA-256 suffices (no need for a slow password hash).
func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// newSecret returns a random token with a prefix naming its kind, so that a
// token pasted in the wrong place is recognisable.
func newSecret(prefix string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b), nil
}
