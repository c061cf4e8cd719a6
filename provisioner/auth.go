package provisioner

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

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
	if strings.HasPrefix(tok, machineTokenPrefix) && !s.isStatic(h) {
		return s.authenticateMachine(ctx, h)
	}
	return s.tokenPrincipal(ctx, h)
}

// isStatic reports whether h is the hash of a token from the config.
func (s *Server) isStatic(h []byte) bool {
	found := false
	for i := range s.static {
		if subtle.ConstantTimeCompare(s.static[i].hash, h) == 1 {
			found = true
		}
	}
	return found
}

// tokenPrincipal finds the admin, read-only or enrollment token whose
// hash is h: one from the config or one created through the API. A
// dashboard session re-checks its token through it on every request, so
// that an expired token ends its sessions.
func (s *Server) tokenPrincipal(ctx context.Context, h []byte) (*principal, *apiError) {
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
	t, err := s.store.TokenByHash(ctx, h)
	if err == nil {
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
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, errStatus(http.StatusServiceUnavailable, "StoreUnavailable", "check token: %v", err)
	}
	return nil, errStatus(http.StatusUnauthorized, "AuthenticationFailed", "unknown token")
}

// machineTokenPrefix starts every machine token, so a machine's request
// is checked against machines only.
const machineTokenPrefix = "lrm_"

// machineAuthTTL is how long a verified machine token is remembered. A
// re-registration clears this replica's cache at once; other replicas may
// accept the replaced token for up to this long.
const machineAuthTTL = 10 * time.Second

// authCache remembers verified machine tokens by hash, so that the hot
// heartbeat path costs no token lookup.
type authCache struct {
	mu sync.Mutex
	m  map[[32]byte]authEntry
}

type authEntry struct {
	machineID string
	until     time.Time
}

func (c *authCache) get(h []byte) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[[32]byte(h)]
	if !ok || time.Now().After(e.until) {
		return "", false
	}
	return e.machineID, true
}

func (c *authCache) put(h []byte, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) > 100_000 {
		c.m = map[[32]byte]authEntry{}
	}
	c.m[[32]byte(h)] = authEntry{machineID: id, until: time.Now().Add(machineAuthTTL)}
}

func (c *authCache) clear() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

func (s *Server) authenticateMachine(ctx context.Context, h []byte) (*principal, *apiError) {
	if id, ok := s.authCache.get(h); ok {
		return &principal{kind: "machine", name: "machine " + id, machineID: id}, nil
	}
	id, err := s.store.MachineIDByTokenHash(ctx, h)
	if errors.Is(err, ErrNotFound) {
		return nil, errStatus(http.StatusUnauthorized, "AuthenticationFailed", "unknown token")
	}
	if err != nil {
		return nil, errStatus(http.StatusServiceUnavailable, "StoreUnavailable", "check token: %v", err)
	}
	s.authCache.put(h, id)
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
