package devpurgecache_test

// The service through client-go's tcpurgecache, as workers and users call
// it, against a devstack.

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcpurgecache"

	"github.com/labrunner/labrunner/internal/devstack"
)

func start(t *testing.T) *devstack.Stack {
	s, err := devstack.Start(context.Background(), devstack.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func status(err error) int {
	var apiErr *tcclient.APICallException
	if errors.As(err, &apiErr) && apiErr.CallSummary != nil && apiErr.CallSummary.HTTPResponse != nil {
		return apiErr.CallSummary.HTTPResponse.StatusCode
	}
	return 0
}

func TestPurgeCacheAndPurgeRequests(t *testing.T) {
	s := start(t)
	root := s.Credentials
	pc := tcpurgecache.New(&root, s.RootURL)
	t0 := time.Now()
	if err := pc.PurgeCache("lab/win11", &tcpurgecache.PurgeCacheRequest{CacheName: "checkout"}); err != nil {
		t.Fatalf("purgeCache: %v", err)
	}
	if err := pc.PurgeCache("lab/mac14", &tcpurgecache.PurgeCacheRequest{CacheName: "other"}); err != nil {
		t.Fatalf("purgeCache: %v", err)
	}
	got, err := pc.PurgeRequests("lab/win11", "")
	if err != nil {
		t.Fatalf("purgeRequests: %v", err)
	}
	if len(got.Requests) != 1 || got.Requests[0].CacheName != "checkout" || got.Requests[0].ProvisionerID != "lab" || got.Requests[0].WorkerType != "win11" {
		t.Fatalf("purgeRequests = %+v, want the one for lab/win11", got.Requests)
	}
	if b := time.Time(got.Requests[0].Before); b.Before(t0.Add(-time.Second)) || b.After(time.Now().Add(time.Second)) {
		t.Errorf("before = %v, want about now", b)
	}
	// since after the request: nothing; since before: the request.
	later, err := pc.PurgeRequests("lab/win11", tcclient.Time(time.Now().Add(time.Minute)).String())
	if err != nil || len(later.Requests) != 0 {
		t.Errorf("purgeRequests since later = %+v, %v; want none", later, err)
	}
	earlier, err := pc.PurgeRequests("lab/win11", tcclient.Time(t0.Add(-time.Minute)).String())
	if err != nil || len(earlier.Requests) != 1 {
		t.Errorf("purgeRequests since earlier = %+v, %v; want one", earlier, err)
	}
	all, err := pc.AllPurgeRequests("", "")
	if err != nil || len(all.Requests) != 2 {
		t.Errorf("allPurgeRequests = %+v, %v; want two", all, err)
	}
}

func TestPurgeCacheNeedsItsScope(t *testing.T) {
	s := start(t)
	root := s.Credentials
	narrow, err := root.CreateTemporaryCredentials(time.Hour, "purge-cache:lab/win11:checkout")
	if err != nil {
		t.Fatal(err)
	}
	pc := tcpurgecache.New(narrow, s.RootURL)
	if err := pc.PurgeCache("lab/win11", &tcpurgecache.PurgeCacheRequest{CacheName: "checkout"}); err != nil {
		t.Fatalf("purgeCache with its scope: %v", err)
	}
	err = pc.PurgeCache("lab/win11", &tcpurgecache.PurgeCacheRequest{CacheName: "other"})
	if status(err) != http.StatusForbidden {
		t.Errorf("purgeCache without its scope = %v, want 403", err)
	}
	anon := tcpurgecache.New(nil, s.RootURL)
	if _, err := anon.PurgeRequests("lab/win11", ""); status(err) != http.StatusUnauthorized {
		t.Errorf("anonymous purgeRequests = %v, want 401", err)
	}
	if _, err := pc.PurgeRequests("not-a-pool", ""); status(err) != http.StatusBadRequest {
		t.Errorf("purgeRequests of a bad pool id = %v, want 400", err)
	}
}
