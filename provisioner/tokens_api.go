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

// decodeTokenRequest reads and checks a token request.
func decodeTokenRequest(data []byte) (client.TokenRequest, time.Duration, *apiError) {
	var req client.TokenRequest
	if aerr := decodeBytes(data, &req); aerr != nil {
		return req, 0, aerr
	}
	if _, ok := tokenPrefix[req.Kind]; !ok {
		return req, 0, badField("kind", "%q is not a token kind: use admin, readonly or enroll", req.Kind)
	}
	if req.Kind == client.TokenEnroll && req.Uses < 1 {
		return req, 0, badField("uses", "an enrollment token needs uses >= 1 (how many machines may register with it)")
	}
	if req.Kind != client.TokenEnroll && req.Uses != 0 {
		return req, 0, badField("uses", "only enrollment tokens have uses")
	}
	var life time.Duration
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			return req, 0, badField("expiresIn", "%q is not a positive duration such as 24h", req.ExpiresIn)
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
