package provisioner

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// defaultEnrollLifetime is how long an enrollment token lasts unless told.
const defaultEnrollLifetime = 24 * time.Hour

var tokenPrefix = map[string]string{client.TokenAdmin: "lra_", client.TokenReadOnly: "lrr_", client.TokenEnroll: "lre_"}

// maxTokenLifetime bounds expiresIn; a token that should never expire
// leaves it out (admin and read-only) instead.
const maxTokenLifetime = 10 * 365 * 24 * time.Hour

// maxTokenUses bounds an enrollment token's uses (the store keeps a
// 32-bit count).
const maxTokenUses = 1_000_000

// decodeTokenRequest reads and checks a token request.
func decodeTokenRequest(data []byte) (client.TokenRequest, time.Duration, *apiError) {
	var req client.TokenRequest
	sent, aerr := decodeFields(data, &req)
	if aerr != nil {
		return req, 0, aerr
	}
	if _, ok := tokenPrefix[req.Kind]; !ok {
		return req, 0, badField("kind", "%q is not a token kind: use admin, readonly or enroll", req.Kind)
	}
	switch {
	case req.Kind != client.TokenEnroll && sent["uses"]:
		return req, 0, badField("uses", "only enrollment tokens have uses: remove it for a %s token", req.Kind)
	case req.Kind == client.TokenEnroll && (req.Uses < 1 || req.Uses > maxTokenUses):
		return req, 0, badField("uses", "an enrollment token needs uses from 1 to %d (how many machines may register with it), not %d", maxTokenUses, req.Uses)
	}
	var life time.Duration
	if sent["expiresIn"] {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 || d > maxTokenLifetime {
			return req, 0, badField("expiresIn", "%q is not a positive duration up to %s such as 24h: leave it out for the default", req.ExpiresIn, maxTokenLifetime)
		}
		life = d
	} else if req.Kind == client.TokenEnroll {
		life = defaultEnrollLifetime
	}
	return req, life, nil
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p *principal) *apiError {
	raw, aerr := readBody(r.Body)
	if aerr != nil {
		return aerr
	}
	req, life, aerr := decodeTokenRequest(raw)
	if aerr != nil {
		return aerr
	}
	secret, err := newSecret(tokenPrefix[req.Kind])
	if err != nil {
		return errStatus(http.StatusInternalServerError, "InternalError", "%v", err)
	}
	idb := make([]byte, 6)
	_, _ = rand.Read(idb)
	now := s.now()
	rec := TokenRecord{ID: hex.EncodeToString(idb), Kind: req.Kind, Hash: hashToken(secret), UsesLeft: req.Uses, Description: req.Description, Created: now}
	if life > 0 {
		exp := now.Add(life)
		rec.Expires = &exp
	}
	if err := s.store.InsertToken(r.Context(), rec); err != nil {
		return storeError("store token", err)
	}
	s.log.Info("token created", "id", rec.ID, "kind", rec.Kind, "uses", rec.UsesLeft, "by", p.name)
	writeJSON(w, http.StatusCreated, client.TokenResponse{ID: rec.ID, Kind: rec.Kind, Token: secret, Uses: rec.UsesLeft, Expires: rec.Expires})
	return nil
}
