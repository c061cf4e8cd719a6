package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestRetriesTransientErrorsOnly(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("X-Labrunner-Operator") != "alice" {
			t.Errorf("headers %v", r.Header)
		}
		switch r.URL.Path {
		case "/api/v1/pools":
			if n <= 2 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte(`{"pools":[{"poolId":"p","spec":{"source":"taskcluster","maxCapacity":1}}]}`))
		case "/api/v1/pools/bad":
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"code":"InvalidRequest","message":"unknown field \"x\"","field":"x"}`))
		}
	}))
	defer srv.Close()
	c := New(srv.URL, "tok", WithRetries(3, time.Millisecond, 5*time.Millisecond), WithOperator("alice"))
	pools, err := c.ListPools(context.Background())
	if err != nil || len(pools) != 1 || pools[0].PoolID != "p" || calls.Load() != 3 {
		t.Fatalf("ListPools = %+v, %v after %d calls; want success on the third", pools, err, calls.Load())
	}
	calls.Store(0)
	_, err = c.PutPool(context.Background(), "bad", PoolSpec{})
	if StatusOf(err) != 400 || calls.Load() != 1 {
		t.Fatalf("PutPool = %v after %d calls; want one 400", err, calls.Load())
	}
	if ae := err.(*APIError); ae.Body.Field != "x" {
		t.Fatalf("error body %+v lacks the field", ae.Body)
	}
}

func TestGivesUpWithTheLastAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"code":"InternalError","message":"database down"}`))
	}))
	defer srv.Close()
	c := New(srv.URL, "tok", WithRetries(1, time.Millisecond, time.Millisecond))
	_, err := c.GetMachine(context.Background(), "m")
	if StatusOf(err) != 500 || err.(*APIError).Body.Message != "database down" {
		t.Fatalf("err = %v; want the 500 with its message", err)
	}
}
