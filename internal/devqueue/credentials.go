package devqueue

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
)

// taskCredentials is task-credentials.json.
type taskCredentials struct {
	ClientID    string `json:"clientId"`
	AccessToken string `json:"accessToken"`
	Certificate string `json:"certificate"`
}

// runCredentials issues the per-run temporary credentials of
// services/queue/src/task-creds.js: named credentials issued by the root
// client, valid from now until takenUntil. The certificate is built and
// signed with client-go's Certificate type rather than
// CreateNamedTemporaryCredentials so that the injected clock, not the wall
// clock, sets start and expiry.
func (s *Server) runCredentials(taskID string, runID int, workerGroup, workerID string, takenUntil time.Time, scopes []string) (taskCredentials, error) {
	// JavaScript prints takenUntil.getTime()/1000, e.g. "1700000000.123".
	until := strconv.FormatFloat(float64(takenUntil.UnixMilli())/1000, 'f', -1, 64)
	clientID := fmt.Sprintf("task-client/%s/%d/on/%s/%s/until/%s", taskID, runID, workerGroup, workerID, until)
	all := []string{
		fmt.Sprintf("queue:reclaim-task:%s/%d", taskID, runID),
		fmt.Sprintf("queue:resolve-task:%s/%d", taskID, runID),
		fmt.Sprintf("queue:create-artifact:%s/%d", taskID, runID),
	}
	all = append(all, scopes...)
	cert := &tcclient.Certificate{
		Version: 1,
		Scopes:  all,
		Start:   s.now().UnixMilli(),
		Expiry:  takenUntil.UnixMilli(),
		Seed:    slugid.V4() + slugid.V4(),
		Issuer:  s.cfg.RootClientID,
	}
	if err := cert.Sign(s.rootToken, clientID); err != nil {
		return taskCredentials{}, fmt.Errorf("sign per-run certificate: %w", err)
	}
	certJSON, err := json.Marshal(cert)
	if err != nil {
		return taskCredentials{}, fmt.Errorf("encode per-run certificate: %w", err)
	}
	return taskCredentials{ClientID: clientID, AccessToken: tempToken(s.rootToken, cert.Seed), Certificate: string(certJSON)}, nil
}

// tempToken derives a temporary accessToken from the issuer's token and the
// certificate seed, as Taskcluster does.
func tempToken(permanent, seed string) string {
	h := hmac.New(sha256.New, []byte(permanent))
	h.Write([]byte(seed))
	return strings.TrimRight(base64.URLEncoding.EncodeToString(h.Sum(nil)), "=")
}
