package hawkauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"time"

	hawk "github.com/tent/hawk-go"
)

// timestampSkew is the Hawk timestamp tolerance Taskcluster hard-codes
// (libraries/api: "similar to AWS"), far above hawk-go's one-minute default.
const timestampSkew = 15 * time.Minute

// verifyHeader checks an Authorization: Hawk header. hawk-go parses the
// header and builds the normalized string; its NewAuthFromRequest and Valid
// are not used because they take the path unescaped, default the port of
// every server-side request to 443, and read the clock and skew from package
// globals.
func (v *Verifier) verifyHeader(r *http.Request, header, resource string) (*Identity, *Error) {
	auth, err := hawk.ParseRequestHeader(header)
	if err != nil {
		return nil, failf("Unauthorized: Invalid Authorization header: " + hawkMessage(err))
	}
	now := v.now()
	key, id, ferr := v.loadCredentials(auth.Credentials.ID, auth.Ext, now)
	if ferr != nil {
		return nil, ferr
	}
	auth.Credentials.Key = key
	auth.Credentials.Hash = sha256.New
	auth.Method = strings.ToUpper(r.Method)
	auth.RequestURI = resource
	auth.Host, auth.Port = signedHostPort(r)
	if !validMAC(auth, hawk.AuthHeader) {
		return nil, failf("Unauthorized: Bad mac")
	}
	// Whole milliseconds, as Node's Date.now() compares them.
	if skew := now.UnixMilli() - auth.Timestamp.Unix()*1000; skew > timestampSkew.Milliseconds() || -skew > timestampSkew.Milliseconds() {
		return nil, failf("Unauthorized: Stale timestamp")
	}
	if len(auth.Hash) > 0 {
		if err := checkPayloadHash(r, auth); err != nil {
			return nil, err
		}
	}
	return id, nil
}

func validMAC(auth *hawk.Auth, t hawk.AuthType) bool {
	mac := auth.Credentials.MAC()
	mac.Write([]byte(auth.NormalizedString(t)))
	return hmac.Equal(mac.Sum(nil), auth.MAC)
}

// hawkMessage drops hawk-go's "hawk: " prefix.
func hawkMessage(err error) string {
	var fe hawk.AuthFormatError
	if errors.As(err, &fe) {
		return fe.Field + ": " + fe.Err
	}
	return strings.TrimPrefix(err.Error(), "hawk: ")
}
