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
// generic-worker notes. The artifact is opened once (RunArtifact.open, so
// a task's file is checked as it is opened) and every attempt reads that
// descriptor, or the gzipped copy made from it, up to the size it had.
func putFile(ctx context.Context, hc *http.Client, putURL string, a RunArtifact) error {
	src, size, err := a.open()
	if err != nil {
		return err
	}
	defer src.Close()
	body := src
	if a.ContentEncoding == "gzip" {
		tmp, err := gzipToTemp(io.NewSectionReader(src, 0, size), filepath.Base(a.Path))
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		info, err := tmp.Stat()
		if err != nil {
			return fmt.Errorf("stat upload body: %w", err)
		}
		body, size = tmp, info.Size()
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPut, putURL, retryablehttp.ReaderFunc(func() (io.Reader, error) {
		return io.NewSectionReader(body, 0, size), nil
	}))
	if err != nil {
		return fmt.Errorf("build upload request: %w", err)
	}
	req.ContentLength = size
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

// gzipToTemp writes a gzipped copy of src to a new temporary file, named
// after name, and returns it open; the caller closes and removes it.
func gzipToTemp(src io.Reader, name string) (*os.File, error) {
	tmp, err := os.CreateTemp("", name+".*.gz")
	if err != nil {
		return nil, fmt.Errorf("create gzip temp file: %w", err)
	}
	zw := gzip.NewWriter(tmp)
	zw.Name = name
	_, copyErr := io.Copy(zw, src)
	if err := firstErr(copyErr, zw.Close()); err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return nil, fmt.Errorf("gzip artifact %s: %w", name, err)
	}
	return tmp, nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
