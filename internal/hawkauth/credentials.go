package hawkauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// loadCredentials mirrors signaturevalidator.js loadCredentials: it decodes
// the Hawk ext, finds the permanent client that holds the secret (the issuer
// of named temporary credentials, else the signing client itself), and applies
// the certificate and authorizedScopes. It returns the key the request's MAC
// must have been made with.
func (v *Verifier) loadCredentials(credentialName, rawExt string, now time.Time) (string, *Identity, *Error) {
	issuingClientID := credentialName
	var ext map[string]any
	if rawExt != "" {
		var err *Error
		if ext, err = parseExt(rawExt); err != nil {
			return "", nil, err
		}
		if cert, ok := ext["certificate"].(map[string]any); ok && truthy(cert["issuer"]) {
			issuer, ok := cert["issuer"].(string)
			if !ok {
				return "", nil, failf("ext.certificate.issuer must be a string")
			}
			if issuer == credentialName {
				return "", nil, failf("ext.certificate.issuer must differ from the supplied clientId")
			}
			issuingClientID = issuer
		}
	}

	if v.Clients == nil {
		return "", nil, failf("Client with clientId '" + issuingClientID + "' not found")
	}
	accessToken, ok := v.Clients(issuingClientID)
	if !ok {
		return "", nil, failf("Client with clientId '" + issuingClientID + "' not found")
	}

	id := &Identity{ClientID: credentialName}
	key := accessToken
	if ext == nil {
		return key, id, nil
	}
	if truthy(ext["certificate"]) {
		cert, err := checkCertificate(ext["certificate"], credentialName, issuingClientID, accessToken, now)
		if err != nil {
			return "", nil, err
		}
		key = temporaryAccessToken(accessToken, cert.seed)
		id.Issuer = issuingClientID
		id.Scopes = cert.scopes
		id.Expires = time.UnixMilli(cert.expiry)
	}
	// JavaScript truthiness: an empty array still restricts (to nothing).
	if truthy(ext["authorizedScopes"]) {
		authorized, err := authorizedScopes(ext["authorizedScopes"], id.Scopes)
		if err != nil {
			return "", nil, err
		}
		id.AuthorizedScopes = authorized
	}
	return key, id, nil
}

// parseExt decodes the base64 JSON object client-go puts in the Hawk ext.
// Node's Buffer.from(ext, 'base64') also accepts the URL alphabet and missing
// padding, so we do too.
func parseExt(raw string) (map[string]any, *Error) {
	decoded, err := decodeLenientBase64(raw)
	if err != nil {
		return nil, failf("Failed to parse ext")
	}
	dec := json.NewDecoder(bytes.NewReader(decoded))
	// Numbers stay exact so that start/expiry sign as the client wrote them.
	dec.UseNumber()
	var ext map[string]any
	if err := dec.Decode(&ext); err != nil || ext == nil {
		return nil, failf("Failed to parse ext")
	}
	return ext, nil
}

func decodeLenientBase64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	s = strings.NewReplacer("-", "+", "_", "/").Replace(s)
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("decode base64: %w", err)
	}
	return b, nil
}

// truthy is JavaScript's truthiness for a decoded JSON value.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case json.Number:
		f, err := x.Float64()
		return err != nil || f != 0
	default:
		return true
	}
}

// authorizedScopes validates ext.authorizedScopes against the credentials'
// scopes. certScopes is nil for permanent credentials, which this package
// treats as unrestricted (Taskcluster would check them against the client's
// scopes, which labrunner does not model).
func authorizedScopes(raw any, certScopes []string) ([]string, *Error) {
	list, ok := raw.([]any)
	if !ok {
		return nil, failf("ext.authorizedScopes must be an array")
	}
	scopes, ok := scopeList(list)
	if !ok {
		return nil, failf("ext.authorizedScopes must be an array of valid scopes")
	}
	if certScopes == nil {
		return scopes, nil
	}
	// Everyone implicitly holds assume:anonymous before the check.
	have := mergeScopes(certScopes, []string{"assume:anonymous"})
	if !satisfiesAll(have, scopes) {
		return nil, failf(strings.Join([]string{
			"Supplied credentials do not satisfy authorizedScopes; credentials have scopes:",
			"",
			"```",
			strings.Join(have, "\n"),
			"```",
			"",
			"authorizedScopes are:",
			"",
			"```",
			strings.Join(scopes, "\n"),
			"```",
		}, "\n"))
	}
	return scopes, nil
}
