package provisioner

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labrunner/labrunner/provisioner/client"
)

// access is what a route requires of its caller.
type access int

const (
	// accessPublic needs no token (registration proves identity in its body).
	accessPublic access = iota
	// accessRead admits admin and read-only tokens, and a machine's token
	// for its own machine.
	accessRead
	// accessAdmin admits admin tokens only.
	accessAdmin
	// accessMachine admits only the token of the machine in the path.
	accessMachine
)

// principal is an authenticated caller.
type principal struct {
	kind      string // admin, readonly, machine
	name      string // for audit records: token id or machine id
	machineID string
}

// staticToken is a token from the config, kept only as its hash.
type staticToken struct {
	hash []byte
	kind string
	name string
}

// bearer extracts the token from `Authorization: Bearer <token>`.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(tok)
	}
	return ""
}

// authenticate finds who holds the request's token. Every comparison of a
// secret is by hash in constant time; lookups by hash reveal nothing useful
// through timing because the hash of a guess is unpredictable.
func (s *Server) authenticate(ctx context.Context, r *http.Request) (*principal, *apiError) {
	tok := bearer(r)
	if tok == "" {
		return nil, errStatus(http.StatusUnauthorized, "AuthenticationRequired", "send `Authorization: Bearer <token>` with an admin, read-only or machine token")
	}
	h := hashToken(tok)
	var match *staticToken
	for i := range s.static {
		// No early exit, so the loop's duration does not depend on which
		// token matched.
		if subtle.ConstantTimeCompare(s.static[i].hash, h) == 1 {
			match = &s.static[i]
		}
	}
	if match != nil {
		return &principal{kind: match.kind, name: match.name}, nil
	}
	if t, err := s.store.TokenByHash(ctx, h); err == nil {
		if subtle.ConstantTimeCompare(t.Hash, h) != 1 {
			return nil, errStatus(http.StatusUnauthorized, "AuthenticationFailed", "unknown token")
		}
		if t.Expires != nil && !s.now().Before(*t.Expires) {
			return nil, errStatus(http.StatusUnauthorized, "AuthenticationFailed", "token %s expired at %s: create a new one", t.ID, t.Expires.Format("2006-01-02T15:04:05Z"))
		}
		if t.Kind == client.TokenEnroll {
			return nil, errStatus(http.StatusForbidden, "Forbidden", "enrollment tokens only register machines")
		}
		name := "token " + t.ID
		if t.Description != "" {
			name += " (" + t.Description + ")"
		}
		return &principal{kind: t.Kind, name: name}, nil
	} else if !errors.Is(err, ErrNotFound) {
		return nil, errStatus(http.StatusServiceUnavailable, "StoreUnavailable", "check token: %v", err)
	}
	id, err := s.store.MachineIDByTokenHash(ctx, h)
	if errors.Is(err, ErrNotFound) {
		return nil, errStatus(http.StatusUnauthorized, "AuthenticationFailed", "unknown token")
	}
	if err != nil {
		return nil, errStatus(http.StatusServiceUnavailable, "StoreUnavailable", "check token: %v", err)
	}
	return &principal{kind: "machine", name: "machine " + id, machineID: id}, nil
}

// authorize checks p against the route's access for the machine in the
// path (empty when none).
func authorize(p *principal, need access, pathMachine string) *apiError {
	switch need {
	case accessPublic:
		return nil
	case accessAdmin:
		if p.kind == client.TokenAdmin {
			return nil
		}
		return errStatus(http.StatusForbidden, "Forbidden", "this endpoint needs an admin token; %s is %s", p.name, p.kind)
	case accessRead:
		if p.kind == client.TokenAdmin || p.kind == client.TokenReadOnly {
			return nil
		}
		if p.kind == "machine" && pathMachine != "" && p.machineID == pathMachine {
			return nil
		}
	case accessMachine:
		if p.kind == "machine" && p.machineID == pathMachine {
			return nil
		}
		if p.kind == "machine" {
			return errStatus(http.StatusForbidden, "Forbidden", "this token belongs to machine %s, not %s", p.machineID, pathMachine)
		}
		return errStatus(http.StatusForbidden, "Forbidden", "only machine %s's own token may call this endpoint", pathMachine)
	}
	return errStatus(http.StatusForbidden, "Forbidden", "%s may not call this endpoint", p.name)
}

func staticTokens(admin, readonly []string) ([]staticToken, error) {
	var out []staticToken
	for i, t := range admin {
		if len(t) < 16 {
			return nil, fmt.Errorf("adminTokens[%d] is shorter than 16 characters: use `provisioner token create --admin` or a long random string", i)
		}
		out = append(out, staticToken{hash: hashToken(t), kind: client.TokenAdmin, name: fmt.Sprintf("config adminTokens[%d]", i)})
	}
	for i, t := range readonly {
		if len(t) < 16 {
			return nil, fmt.Errorf("readOnlyTokens[%d] is shorter than 16 characters: use a long random string", i)
		}
		out = append(out, staticToken{hash: hashToken(t), kind: client.TokenReadOnly, name: fmt.Sprintf("config readOnlyTokens[%d]", i)})
	}
	return out, nil
}
