package agent

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// putFile uploads a KindFile artifact to its putUrl, gzipping it first when
// its encoding says so, and retries transient failures. A 400 is retried
// too: S3 answers 400 to connection inactivity (bug 1394557), as
// generic-worker notes.
func putFile(ctx context.Context, hc *http.Client, putURL string, a RunArtifact) error {
	body := a.Path
	if a.ContentEncoding == "gzip" {
		tmp, err := gzipToTemp(a.Path)
		if err != nil {
			return err
		}
		defer os.Remove(tmp)
		body = tmp
	}
	info, err := os.Stat(body)
	if err != nil {
		return fmt.Errorf("stat upload body: %w", err)
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPut, putURL, retryablehttp.ReaderFunc(func() (io.Reader, error) {
		return os.Open(body)
	}))
	if err != nil {
		return fmt.Errorf("build upload request: %w", err)
	}
	req.ContentLength = info.Size()
	req.Header.Set("Content-Type", a.ContentType)
	if a.ContentEncoding != "" {
		req.Header.Set("Content-Encoding", a.ContentEncoding)
	}
	client := retryablehttp.NewClient()
	if hc != nil {
		client.HTTPClient = hc
	}
	client.RetryWaitMin = 100 * time.Millisecond
	client.RetryWaitMax = 5 * time.Second
	client.RetryMax = 10
	client.Logger = slog.Default()
	client.CheckRetry = func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		if resp != nil && resp.StatusCode == http.StatusBadRequest {
			return true, nil
		}
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("upload to putUrl: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("upload to putUrl: answered %s", resp.Status)
	}
	return nil
}

// gzipToTemp writes a gzipped copy of path to a temporary file and returns
// its name; the caller removes it.
func gzipToTemp(path string) (string, error) {
	src, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open artifact: %w", err)
	}
	defer src.Close()
	tmp, err := os.CreateTemp("", filepath.Base(path)+".*.gz")
	if err != nil {
		return "", fmt.Errorf("create gzip temp file: %w", err)
	}
	zw := gzip.NewWriter(tmp)
	zw.Name = filepath.Base(path)
	_, copyErr := io.Copy(zw, src)
	closeErr := zw.Close()
	fileErr := tmp.Close()
	if err := firstErr(copyErr, closeErr, fileErr); err != nil {
		_ = os.Remove(tmp.Name())
		return "", fmt.Errorf("gzip artifact %s: %w", path, err)
	}
	return tmp.Name(), nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
