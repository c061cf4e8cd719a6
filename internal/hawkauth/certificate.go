package hawkauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Taskcluster's limits for temporary-credential certificates.
const (
	// certificateSkew is how far start may lie in the future and expiry in
	// the past: the auth service forgives this much clock difference between
	// the issuer and itself.
	certificateSkew = 5 * time.Minute
	// maxCertificateLifetime is the longest expiry-start allowed.
	maxCertificateLifetime = 31 * 24 * time.Hour
)

// certificate holds the fields of a validated ext.certificate.
type certificate struct {
	seed   string
	start  int64 // ms since the epoch
	expiry int64 // ms since the epoch
	scopes []string
}

// checkCertificate validates ext.certificate in the order, and with the
// messages, of signaturevalidator.js limitClientWithExt.
func checkCertificate(raw any, credentialName, issuingClientID, accessToken string, now time.Time) (*certificate, *Error) {
	fields, ok := raw.(map[string]any)
	if !ok {
		return nil, failf("ext.certificate must be a JSON object")
	}
	if n, ok := fields["version"].(json.Number); !ok || !numberIs(n, 1) {
		return nil, failf("ext.certificate.version must be 1")
	}
	var cert certificate
	seed, ok := fields["seed"].(string)
	if !ok {
		return nil, failf("ext.certificate.seed must be a string")
	}
	if len(seed) != 44 {
		return nil, failf("ext.certificate.seed must be 44 characters")
	}
	cert.seed = seed
	var err *Error
	if cert.start, err = millis(fields["start"], "ext.certificate.start"); err != nil {
		return nil, err
	}
	if cert.expiry, err = millis(fields["expiry"], "ext.certificate.expiry"); err != nil {
		return nil, err
	}
	list, ok := fields["scopes"].([]any)
	if !ok {
		return nil, failf("ext.certificate.scopes must be an array")
	}
	if cert.scopes, ok = scopeList(list); !ok {
		return nil, failf("ext.certificate.scopes must be an array of valid scopes")
	}

	nowMs := now.UnixMilli()
	if cert.start > nowMs+certificateSkew.Milliseconds() {
		return nil, failf("ext.certificate.start > now")
	}
	if cert.expiry < nowMs-certificateSkew.Milliseconds() {
		return nil, failf("ext.certificate.expiry < now")
	}
	if cert.expiry-cert.start > maxCertificateLifetime.Milliseconds() {
		return nil, failf("ext.certificate cannot last longer than 31 days!")
	}

	// Permanent clients are unrestricted here, so the issuer always holds
	// auth:create-client:<name> and every certificate scope; only the
	// structural rule remains.
	if issuingClientID == credentialName {
		if _, ok := fields["clientId"]; ok {
			return nil, failf("ext.certificate.clientId must only be used with ext.certificate.issuer")
		}
	}

	issuer, _ := fields["issuer"].(string)
	lines := []string{"version:1"}
	if truthy(fields["issuer"]) {
		lines = append(lines, "clientId:"+credentialName, "issuer:"+issuer)
	}
	lines = append(lines,
		"seed:"+cert.seed,
		"start:"+strconv.FormatInt(cert.start, 10),
		"expiry:"+strconv.FormatInt(cert.expiry, 10),
		"scopes:",
	)
	lines = append(lines, cert.scopes...)
	mac := hmac.New(sha256.New, []byte(accessToken))
	mac.Write([]byte(strings.Join(lines, "\n")))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	got, ok := fields["signature"].(string)
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		if truthy(fields["issuer"]) {
			return nil, failf("ext.certificate.signature is not valid, or wrong clientId provided")
		}
		return nil, failf("ext.certificate.signature is not valid")
	}
	return &cert, nil
}

// temporaryAccessToken derives the key temporary credentials sign with:
// unpadded base64url HMAC-SHA256(issuer's accessToken, seed).
func temporaryAccessToken(accessToken, seed string) string {
	mac := hmac.New(sha256.New, []byte(accessToken))
	mac.Write([]byte(seed))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// millis reads a certificate time. Taskcluster signs the number as
// JavaScript prints it; for integers that is the decimal form, and client-go
// only ever writes integers, so fractional times are refused rather than
// risk printing them differently.
func millis(v any, field string) (int64, *Error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, failf(field + " must be a number")
	}
	i, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil {
		f, ferr := n.Float64()
		if ferr != nil || f != float64(int64(f)) {
			return 0, failf(field + " must be a whole number of milliseconds since the epoch")
		}
		i = int64(f)
	}
	return i, nil
}

func numberIs(n json.Number, want float64) bool {
	f, err := n.Float64()
	return err == nil && f == want
}
