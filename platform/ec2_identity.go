package platform

// EC2 detection is one IMDSv2 token request with a short connect timeout:
// a lab machine has nothing at 169.254.169.254, so the connection fails (or
// times out) fast and the runner carries on with its enrollment token. Once a
// token is granted the machine is on EC2, and the identity document, its
// signature and the instance tags are read with that token, retrying
// transient failures (IMDS throttles with 429 and can answer 5xx).
//
//	PUT /latest/api/token ──fail──▶ ErrNotEC2
//	        │ token
//	        ▼
//	GET document, signature, tags (retried) ──fail──▶ error (on EC2, but broken)

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultIMDSEndpoint is the instance metadata service's address on EC2.
const DefaultIMDSEndpoint = "http://169.254.169.254"

// ErrNotEC2 means no instance metadata service answered: the machine is not
// an EC2 instance (or IMDSv2 is disabled on it).
var ErrNotEC2 = errors.New("not an EC2 instance: no IMDSv2 metadata service answered")

// EC2Instance is an instance's signed identity and the facts read with it.
type EC2Instance struct {
	// Document is the identity document exactly as served: its signature
	// covers these bytes, so it must be sent on unchanged.
	Document string
	// Signature is the base64 RSA signature (SHA-256) of Document.
	Signature        string
	AccountID        string
	InstanceID       string
	InstanceType     string
	Region           string
	AvailabilityZone string
	ImageID          string
	Architecture     string
	// Tags are the instance's tags; empty when tags are not exposed in
	// instance metadata (an instance option, off by default).
	Tags map[string]string
}

const (
	imdsConnectTimeout = 300 * time.Millisecond
	imdsTokenTimeout   = time.Second
	imdsReadTimeout    = 5 * time.Second
	imdsTokenTTL       = "300"
	imdsTries          = 4
)

// EC2Identity reads the instance identity document, its signature and the
// instance tags through IMDSv2 at endpoint (DefaultIMDSEndpoint when
// empty). It returns ErrNotEC2 quickly when nothing answers.
func EC2Identity(ctx context.Context, endpoint string) (*EC2Instance, error) {
	if endpoint == "" {
		endpoint = DefaultIMDSEndpoint
	}
	endpoint = strings.TrimRight(endpoint, "/")
	hc := &http.Client{Transport: &http.Transport{
		// IMDS is link-local: a configured HTTP proxy must not see it.
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: imdsConnectTimeout}).DialContext,
		MaxIdleConnsPerHost: 2,
	}}
	defer hc.CloseIdleConnections()

	token, err := imdsToken(ctx, hc, endpoint)
	if err != nil {
		return nil, err
	}
	doc, err := imdsGet(ctx, hc, endpoint, token, "/latest/dynamic/instance-identity/document")
	if err != nil {
		return nil, err
	}
	sig, err := imdsGet(ctx, hc, endpoint, token, "/latest/dynamic/instance-identity/signature")
	if err != nil {
		return nil, err
	}
	inst := &EC2Instance{Document: string(doc), Signature: strings.TrimSpace(string(sig))}
	var fields struct {
		AccountID        string `json:"accountId"`
		InstanceID       string `json:"instanceId"`
		InstanceType     string `json:"instanceType"`
		Region           string `json:"region"`
		AvailabilityZone string `json:"availabilityZone"`
		ImageID          string `json:"imageId"`
		Architecture     string `json:"architecture"`
	}
	if err := json.Unmarshal(doc, &fields); err != nil {
		return nil, fmt.Errorf("EC2 instance identity document is not JSON: %w", err)
	}
	if fields.InstanceID == "" || fields.Region == "" {
		return nil, fmt.Errorf("EC2 instance identity document lacks instanceId or region")
	}
	inst.AccountID, inst.InstanceID, inst.InstanceType = fields.AccountID, fields.InstanceID, fields.InstanceType
	inst.Region, inst.AvailabilityZone, inst.ImageID, inst.Architecture = fields.Region, fields.AvailabilityZone, fields.ImageID, fields.Architecture
	if inst.Tags, err = imdsTags(ctx, hc, endpoint, token); err != nil {
		return nil, err
	}
	return inst, nil
}

// imdsToken asks for a session token; any failure to get an answer at all
// means the machine is not on EC2.
func imdsToken(ctx context.Context, hc *http.Client, endpoint string) (string, error) {
	for try := 1; ; try++ {
		tctx, cancel := context.WithTimeout(ctx, imdsTokenTimeout)
		req, err := http.NewRequestWithContext(tctx, http.MethodPut, endpoint+"/latest/api/token", nil)
		if err != nil {
			cancel()
			return "", fmt.Errorf("IMDS endpoint %q: %w", endpoint, err)
		}
		req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", imdsTokenTTL)
		resp, err := hc.Do(req)
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			return "", fmt.Errorf("%w (%v)", ErrNotEC2, err)
		}
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		cancel()
		switch {
		case resp.StatusCode == http.StatusOK && rerr == nil && len(strings.TrimSpace(string(body))) > 0:
			return strings.TrimSpace(string(body)), nil
		case transientStatus(resp.StatusCode) && try < imdsTries:
			if err := imdsBackoff(ctx, try); err != nil {
				return "", err
			}
		default:
			// Something answers but grants no IMDSv2 token: not an
			// instance we can prove (IMDSv1 only, or another service).
			return "", fmt.Errorf("%w (token request answered %s)", ErrNotEC2, resp.Status)
		}
	}
}

// errIMDSNotFound is a 404 from IMDS: the item is not exposed.
var errIMDSNotFound = errors.New("not found in instance metadata")

// imdsGet reads one metadata item with the session token.
func imdsGet(ctx context.Context, hc *http.Client, endpoint, token, path string) ([]byte, error) {
	var last error
	for try := 1; try <= imdsTries; try++ {
		if try > 1 {
			if err := imdsBackoff(ctx, try-1); err != nil {
				return nil, err
			}
		}
		body, status, err := imdsOnce(ctx, hc, endpoint+path, token)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			last = err
		case status == http.StatusOK:
			return body, nil
		case status == http.StatusNotFound:
			return nil, fmt.Errorf("IMDS %s: %w", path, errIMDSNotFound)
		case transientStatus(status):
			last = fmt.Errorf("answered %d", status)
		default:
			return nil, fmt.Errorf("IMDS %s answered %d", path, status)
		}
	}
	return nil, fmt.Errorf("IMDS %s: %w", path, last)
}

func imdsOnce(ctx context.Context, hc *http.Client, u, token string) ([]byte, int, error) {
	rctx, cancel := context.WithTimeout(ctx, imdsReadTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("X-aws-ec2-metadata-token", token)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, 0, err
	}
	return body, resp.StatusCode, nil
}

// imdsTags reads the instance tags: a newline-separated list of keys, then
// one request per value.
func imdsTags(ctx context.Context, hc *http.Client, endpoint, token string) (map[string]string, error) {
	list, err := imdsGet(ctx, hc, endpoint, token, "/latest/meta-data/tags/instance")
	if errors.Is(err, errIMDSNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	tags := map[string]string{}
	for _, key := range strings.Split(string(list), "\n") {
		key = strings.TrimSpace(key)
		if key == "" {
			continue
		}
		v, err := imdsGet(ctx, hc, endpoint, token, "/latest/meta-data/tags/instance/"+url.PathEscape(key))
		if err != nil {
			return nil, fmt.Errorf("instance tag %q: %w", key, err)
		}
		tags[key] = string(v)
	}
	return tags, nil
}

func transientStatus(code int) bool {
	return code == http.StatusTooManyRequests || code >= 500
}

// imdsBackoff waits 100 ms, 200 ms, 400 ms… before retry n+1.
func imdsBackoff(ctx context.Context, n int) error {
	t := time.NewTimer(time.Duration(100<<(n-1)) * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
