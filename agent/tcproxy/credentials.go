package tcproxy

// The two endpoints that are not forwarded: /credentials (new credentials,
// as generic-worker sends after a reclaim) and /bewit (a signed URL).

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
)

// credentialsUpdate is the body of PUT /credentials.
type credentialsUpdate struct {
	ClientID    string `json:"clientId"`
	AccessToken string `json:"accessToken"`
	Certificate string `json:"certificate"`
}

func (p *Proxy) serveCredentials(w http.ResponseWriter, r *http.Request) {
	if !p.setHeaders(w) {
		return
	}
	if r.Method != http.MethodPut {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	var u credentialsUpdate
	if err := json.NewDecoder(r.Body).Decode(&u); err != nil {
		p.log.Warn("taskcluster-proxy: bad PUT /credentials body", "error", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	p.SetCredentials(tcclient.Credentials{ClientID: u.ClientID, AccessToken: u.AccessToken, Certificate: u.Certificate})
	p.log.Info("taskcluster-proxy credentials replaced through PUT /credentials", "clientId", u.ClientID)
	w.WriteHeader(http.StatusOK)
}

// serveBewit answers 303 to the URL in the body with a bewit valid for an
// hour, upstream's BewitHandler.
func (p *Proxy) serveBewit(w http.ResponseWriter, r *http.Request) {
	if !p.setHeaders(w) {
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, fmt.Sprintf("Error reading body: %v", err), http.StatusInternalServerError)
		return
	}
	raw := strings.TrimSpace(string(body))
	u, err := url.Parse(raw)
	if err != nil {
		http.Error(w, fmt.Sprintf("Error creating bewit url: %v", err), http.StatusInternalServerError)
		return
	}
	creds := p.credentials()
	client := tcclient.Client{RootURL: p.rootURL, Authenticate: true, Credentials: &creds}
	signed, err := client.SignedURL(raw, u.Query(), time.Hour)
	if err != nil {
		http.Error(w, fmt.Sprintf("Error creating bewit url: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Location", signed.String())
	w.WriteHeader(http.StatusSeeOther)
	fmt.Fprint(w, signed)
}
