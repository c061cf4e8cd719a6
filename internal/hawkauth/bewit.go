package hawkauth

import (
	"crypto/sha256"
	"net/http"
	"regexp"
	"strings"
	"time"

	hawk "github.com/tent/hawk-go"
)

var bewitChars = regexp.MustCompile(`^[\w-]*$`)

// verifyBewit checks a bewit query parameter (client-go's *_SignedURL), with
// hawk's uri.authenticate rules: GET or HEAD only, no nonce, the timestamp is
// the expiry, and the MAC covers the resource without the bewit.
func (v *Verifier) verifyBewit(r *http.Request, resource string) (*Identity, *Error) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return nil, failf("Unauthorized: Invalid method (a bewit only authenticates GET and HEAD)")
	}
	raw, signed := splitBewit(resource)
	if raw == "" {
		return nil, failf("Unauthorized: Empty bewit")
	}
	if !bewitChars.MatchString(raw) {
		return nil, failf("Unauthorized: Invalid bewit encoding")
	}
	auth, err := hawk.ParseBewit(raw)
	if err != nil {
		return nil, failf("Unauthorized: Invalid bewit: " + hawkMessage(err))
	}
	// hawk splits on every backslash and wants exactly four parts.
	if strings.Contains(auth.Ext, `\`) {
		return nil, failf("Unauthorized: Invalid bewit structure")
	}
	if auth.Credentials.ID == "" || auth.Timestamp.Unix() == 0 || len(auth.MAC) == 0 {
		return nil, failf("Unauthorized: Missing bewit attributes")
	}
	now := v.now()
	if auth.Timestamp.Unix()*1000 <= now.UnixMilli() {
		return nil, failf("Unauthorized: Access expired (bewit expired at " + auth.Timestamp.UTC().Format(time.RFC3339) + ")")
	}
	key, id, ferr := v.loadCredentials(auth.Credentials.ID, auth.Ext, now)
	if ferr != nil {
		return nil, ferr
	}
	auth.Credentials.Key = key
	auth.Credentials.Hash = sha256.New
	auth.Method = http.MethodGet
	auth.Nonce = ""
	auth.RequestURI = signed
	auth.Host, auth.Port = signedHostPort(r)
	if !validMAC(auth, hawk.AuthBewit) {
		return nil, failf("Unauthorized: Bad mac")
	}
	return id, nil
}
