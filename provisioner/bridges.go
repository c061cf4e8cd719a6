package provisioner

// The provisioner's view of the Buildbot Bridge instances: where their
// HTTP listeners are (Config.Bridges) and a client for the read-only
// endpoints the system map and "why is this task not running?" ask
// (docs/bridge.md: GET /api/v1/status, /api/v1/tasks/{taskId},
// /api/v1/builds/{builder}/{number}).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// bridgeCallTimeout bounds one call to a bridge, retries included, so
// that a dead bridge slows a page by at most this much.
const bridgeCallTimeout = 5 * time.Second

// BridgeEndpoint is one bridge instance's HTTP listener (its `listen`
// address, or wherever it is mounted).
type BridgeEndpoint struct {
	// Name labels the instance on the pages (its instance_id, say).
	Name string `yaml:"name" json:"name"`
	// URL is the base URL; /api/v1/status is asked under it.
	URL string `yaml:"url" json:"url"`
}

func checkBridges(bs []BridgeEndpoint) error {
	seen := map[string]bool{}
	for i, b := range bs {
		if b.Name == "" {
			return fmt.Errorf("bridges[%d].name: empty: name each bridge instance (its instance_id)", i)
		}
		if seen[b.Name] {
			return fmt.Errorf("bridges[%d].name: %q appears twice: names must differ", i, b.Name)
		}
		seen[b.Name] = true
		u, err := url.Parse(b.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("bridges[%d].url: %q is not an http(s) URL such as http://bridge-1:8090", i, b.URL)
		}
	}
	return nil
}

// bridgeClient calls bridges with a few quick retries of transient errors.
func newBridgeHTTP() *retryablehttp.Client {
	c := retryablehttp.NewClient()
	c.RetryMax = 2
	c.RetryWaitMin = 100 * time.Millisecond
	c.RetryWaitMax = 500 * time.Millisecond
	c.Logger = nil
	c.HTTPClient.Timeout = bridgeCallTimeout
	return c
}

// errBridgeNotFound is a bridge's 404: it does not know the thing asked.
var errBridgeNotFound = errors.New("not known to the bridge")

// bridgeGet asks one bridge for path and decodes the JSON answer into
// out; it returns how long the call took.
func (s *Server) bridgeGet(ctx context.Context, b BridgeEndpoint, path string, out any) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, bridgeCallTimeout)
	defer cancel()
	u := strings.TrimSuffix(b.URL, "/") + path
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, fmt.Errorf("bridge %s: GET %s: %w", b.Name, u, err)
	}
	start := time.Now()
	resp, err := s.bridgeHTTP.Do(req)
	took := time.Since(start)
	if err != nil {
		return took, fmt.Errorf("bridge %s: GET %s: %w", b.Name, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return took, fmt.Errorf("bridge %s: GET %s: read answer: %w", b.Name, u, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return took, fmt.Errorf("bridge %s: GET %s: %w", b.Name, u, errBridgeNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Message string }
		_ = json.Unmarshal(body, &e)
		if e.Message == "" {
			e.Message = strings.TrimSpace(string(body))
		}
		return took, fmt.Errorf("bridge %s: GET %s: %s: %.300s", b.Name, u, resp.Status, e.Message)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return took, fmt.Errorf("bridge %s: GET %s: decode answer: %w", b.Name, u, err)
	}
	return took, nil
}
