package hawkauth

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"

	hawk "github.com/tent/hawk-go"
)

// maxHashedBody is Taskcluster's request body limit (libraries/api
// inputLimit '10mb'); a larger body could never reach its hash check.
const maxHashedBody = 10 << 20

// checkPayloadHash verifies the hash a client chose to sign, as libraries/api
// does after authentication. client-go never sends one. The body is read and
// put back so the handler can still decode it.
func checkPayloadHash(r *http.Request, auth *hawk.Auth) *Error {
	var body []byte
	if r.Body != nil {
		var err error
		body, err = io.ReadAll(io.LimitReader(r.Body, maxHashedBody+1))
		_ = r.Body.Close()
		if err != nil {
			return failf(fmt.Sprintf("Cannot check payload hash: reading request body: %v", err))
		}
		if len(body) > maxHashedBody {
			return failf("Cannot check payload hash: request body exceeds the 10 MiB limit")
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	// hawk hashes only the media type, lower-cased, without parameters.
	contentType, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	h := auth.PayloadHash(strings.ToLower(strings.TrimSpace(contentType)))
	h.Write(body)
	if !auth.ValidHash(h) {
		sent := base64.StdEncoding.EncodeToString(auth.Hash)
		h = auth.PayloadHash(strings.ToLower(strings.TrimSpace(contentType)))
		h.Write(body)
		h.Write([]byte("\n"))
		computed := base64.StdEncoding.EncodeToString(h.Sum(nil))
		return failf("Invalid payload hash: " + sent + "\nComputed payload hash: " + computed +
			"\nThis happens when your request carries a signed hash of the payload and the hash doesn't match the hash we've computed on the server-side.")
	}
	return nil
}
