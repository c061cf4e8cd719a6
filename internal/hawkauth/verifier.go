// Package hawkauth authenticates Hawk-signed requests exactly as Taskcluster's
// auth service does (services/auth/src/signaturevalidator.js together with
// libraries/api's remoteAuthentication middleware), so that requests signed by
// client-go are accepted or refused for the same reasons, with the same
// messages.
//
// Flow of Verify, in Taskcluster's order (the order decides which message a
// request with several faults gets):
//
//	no Authorization, no bewit ─▶ anonymous (nil, nil)
//	both                        ─▶ "Cannot use two authentication schemes..."
//	header ─▶ parse ─▶ load credentials (ext, certificate, issuer) ─▶ MAC ─▶ timestamp skew ─▶ payload hash
//	bewit  ─▶ method ─▶ parse ─▶ expiry ─▶ load credentials ─▶ MAC
//
// The host the client signed is taken from r.Host, and the port from r.Host,
// overridden by X-Forwarded-Port or, failing that, X-Forwarded-Proto, as
// Taskcluster does behind its ingress. A reverse proxy in front of the server
// must therefore pass the original Host header through (and set
// X-Forwarded-Proto/X-Forwarded-Port when it terminates TLS), and must not
// rewrite the path: the signed resource is the raw request-target.
package hawkauth

import (
	"net/http"
	"time"
)

// Verifier checks Hawk-signed requests the way Taskcluster's auth service does.
type Verifier struct {
	// Clients returns a permanent client's accessToken.
	Clients func(clientID string) (accessToken string, ok bool)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Identity is who signed a request.
type Identity struct {
	ClientID         string    // the client id the request was signed as (named temporary credentials: the name)
	Issuer           string    // the permanent client that issued the certificate; "" for permanent credentials
	Scopes           []string  // the certificate's scopes; nil for a permanent client (unrestricted)
	AuthorizedScopes []string  // from ext.authorizedScopes; nil when not given
	Expires          time.Time // certificate expiry; zero for permanent credentials
}

// Error is an authentication failure; Message says what is wrong (never includes a secret).
type Error struct{ Message string }

// Error returns the message, as Taskcluster would put it in its 401 reply.
func (e *Error) Error() string { return e.Message }

func failf(msg string) *Error { return &Error{Message: msg} }

// Verify authenticates r. It returns (nil, nil) when r carries no Authorization header and no bewit (anonymous),
// and *Error when a signature is present but wrong, expired, or from an unknown client.
func (v *Verifier) Verify(r *http.Request) (*Identity, error) {
	header := r.Header.Get("Authorization")
	resource := requestResource(r)
	bewit := hasBewit(resource)
	switch {
	case header != "" && bewit:
		return nil, failf("Cannot use two authentication schemes at once this request has both bewit in querystring and 'authorization' header")
	case header != "":
		id, err := v.verifyHeader(r, header, resource)
		if err != nil {
			return nil, err
		}
		return id, nil
	case bewit:
		id, err := v.verifyBewit(r, resource)
		if err != nil {
			return nil, err
		}
		return id, nil
	default:
		return nil, nil
	}
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}
