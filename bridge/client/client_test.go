package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestClientRetriesTransientErrors(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var req ClaimRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.WorkerID != "w" || r.URL.Path != "/api/v1/master/claim" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(ClaimResponse{Build: &Build{BuildID: 7, BuilderName: "b"}})
	}))
	defer srv.Close()
	c, err := New(srv.URL, Options{RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Claim(context.Background(), ClaimRequest{WorkerID: "w", Builders: []string{"b"}})
	if err != nil || b == nil || b.BuildID != 7 {
		t.Fatalf("claim = %+v, %v", b, err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d calls, want 3 (two 503s retried)", n)
	}
}

func TestClientDoesNotRetryRefusals(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(ErrorResponse{Code: "RequestConflict", Message: "not held"})
	}))
	defer srv.Close()
	c, _ := New(srv.URL, Options{})
	_, err := c.Finish(context.Background(), FinishRequest{WorkerID: "w", Incarnation: "i", BuildID: 1})
	e, ok := err.(*Error)
	if !ok || e.Status != http.StatusConflict || e.Code != "RequestConflict" || calls.Load() != 1 {
		t.Fatalf("finish = %v after %d calls, want one 409 RequestConflict", err, calls.Load())
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	if _, err := New("bridge:8090", Options{}); err == nil {
		t.Fatal("New accepted a URL without a scheme")
	}
}
