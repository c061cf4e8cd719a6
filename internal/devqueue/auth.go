package devqueue

import (
	"errors"
	"net/http"
	"time"

	"github.com/labrunner/labrunner/internal/hawkauth"
)

// identity is an authenticated caller.
type identity struct {
	ClientID string
	// hawk holds the caller's scopes, for the few endpoints whose scopes
	// devqueue checks (see doc.go).
	hawk *hawkauth.Identity
}

// hasScopes reports whether the caller holds every required scope, as
// hawkauth judges it (an anonymous caller holds only assume:anonymous).
func (id *identity) hasScopes(required ...string) bool {
	if id == nil {
		return (*hawkauth.Identity)(nil).HasScopes(required...)
	}
	return id.hawk.HasScopes(required...)
}

// authFunc authenticates a request: (nil, nil) is anonymous; an error is an
// AuthenticationFailed reply.
type authFunc func(r *http.Request) (*identity, *apiError)

// newAuth verifies Hawk signatures (header or bewit) made with the
// permanent credentials in clients or temporary credentials they issued.
func newAuth(clients map[string]string, now func() time.Time) authFunc {
	v := &hawkauth.Verifier{
		Clients: func(id string) (string, bool) {
			tok, ok := clients[id]
			return tok, ok
		},
		Now: now,
	}
	return func(r *http.Request) (*identity, *apiError) {
		id, err := v.Verify(r)
		if err != nil {
			var herr *hawkauth.Error
			if errors.As(err, &herr) {
				return nil, &apiError{Code: "AuthenticationFailed", Message: herr.Message}
			}
			return nil, &apiError{Code: "AuthenticationFailed", Message: err.Error()}
		}
		if id == nil {
			return nil, nil
		}
		return &identity{ClientID: id.ClientID, hawk: id}, nil
	}
}
