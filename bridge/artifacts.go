package bridge

// Artifacts attached to a finished build's run (docs/bridge.md, "BB listener
// and the result mapping"):
//
//	public/properties.json          s3, application/json: name -> [value, source]
//	public/buildbot-result.json     s3, application/json: result name, code, colour
//	public/logs/live_backing.log.gz reference to log_url, application/gzip
//
// They expire with the task. The queue refusing one (it takes no artifacts
// on a run that is already resolved, for example cancelled in Taskcluster)
// is logged and the resolution goes on.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/bridge/schedulerdb"
)

func (b *Bridge) uploadArtifacts(ctx context.Context, taskID string, runID int, expires time.Time, result schedulerdb.Result, props map[string]BuildProperty, logURL string) error {
	pj := make(map[string][2]any, len(props))
	for name, p := range props {
		pj[name] = [2]any{p.Value, p.Source}
	}
	body, err := json.Marshal(pj)
	if err != nil {
		return fmt.Errorf("encode properties.json: %w", err)
	}
	if err := b.putJSONArtifact(ctx, taskID, runID, "public/properties.json", expires, body); err != nil {
		return err
	}
	body, _ = json.Marshal(newResultInfo(result))
	if err := b.putJSONArtifact(ctx, taskID, runID, "public/buildbot-result.json", expires, body); err != nil {
		return err
	}
	if logURL != "" {
		req, _ := json.Marshal(tcqueue.RedirectArtifactRequest{StorageType: "reference", URL: logURL, ContentType: "application/gzip", Expires: tcclient.Time(expires)})
		raw := tcqueue.PostArtifactRequest(req)
		if _, err := b.tc(ctx).CreateArtifact(taskID, strconv.Itoa(runID), "public/logs/live_backing.log.gz", &raw); err != nil {
			if !tcRefused(err) {
				return fmt.Errorf("create log artifact: %w", err)
			}
			b.log.Warn("log artifact refused", "taskId", taskID, "runId", runID, "err", err)
		}
	}
	return nil
}

func (b *Bridge) putJSONArtifact(ctx context.Context, taskID string, runID int, name string, expires time.Time, body []byte) error {
	req, _ := json.Marshal(tcqueue.S3ArtifactRequest{StorageType: "s3", ContentType: "application/json", Expires: tcclient.Time(expires)})
	raw := tcqueue.PostArtifactRequest(req)
	res, err := b.tc(ctx).CreateArtifact(taskID, strconv.Itoa(runID), name, &raw)
	if err != nil {
		if tcRefused(err) {
			b.log.Warn("artifact refused", "taskId", taskID, "runId", runID, "name", name, "err", err)
			return nil
		}
		return fmt.Errorf("create artifact %s: %w", name, err)
	}
	var s3 tcqueue.S3ArtifactResponse
	if err := json.Unmarshal(*res, &s3); err != nil || s3.PutURL == "" {
		return fmt.Errorf("create artifact %s: no putUrl in the answer", name)
	}
	// Content-Length is set explicitly: S3 refuses a PUT without it.
	put, err := http.NewRequestWithContext(ctx, http.MethodPut, s3.PutURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	put.Header.Set("Content-Type", "application/json")
	put.ContentLength = int64(len(body))
	rreq, err := retryablehttp.FromRequest(put)
	if err != nil {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	resp, err := b.rhttp.Do(rreq)
	if err != nil {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("upload %s: HTTP %d", name, resp.StatusCode)
	}
	return nil
}
