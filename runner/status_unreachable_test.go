//go:build linux

package runner

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// statusText is FormatStatus's output for s.
func statusText(t *testing.T, s *Status) string {
	t.Helper()
	var b strings.Builder
	if err := FormatStatus(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestStatusWhileTheProvisionerIsUnreachable: before the provisioner has
// ever answered, status says the runner is starting and waiting for its
// assignment, that no worker is assigned yet, and why the provisioner
// cannot be reached, instead of blank fields.
func TestStatusWhileTheProvisionerIsUnreachable(t *testing.T) {
	e := newEnv(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nowhere := "http://" + ln.Addr().String()
	ln.Close()
	e.rc.Provisioner.URL, e.rc.Provisioner.EnrollmentToken, e.rc.Provisioner.IMDSEndpoint = nowhere, "lr-enroll-x", nowhere
	e.rc.Provisioner.StateFile = filepath.Join(e.dir, "state", "provisioner-link.json")
	// The worker names and the pool are the provisioner's to assign.
	e.ac.TaskQueueID, e.ac.WorkerGroup, e.ac.WorkerID = "", "", ""
	rn := e.start(Options{})
	s := e.waitStatus(rn, "a failed registration", func(s *Status) bool {
		return s.Provisioner != nil && s.Provisioner.LastError != ""
	})
	text := statusText(t, s)
	for _, want := range []string{
		"worker         none yet (the provisioner assigns it)",
		"state          starting: waiting for the provisioner's assignment",
		"provisioner    not registered with " + nowhere,
		"connection refused",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("status lacks %q:\n%s", want, text)
		}
	}
	if s.State != PhaseStarting || strings.Contains(text, "worker         / in") || strings.Contains(text, "started -") {
		t.Errorf("state %q; text:\n%s", s.State, text)
	}
}

// TestStatusWhileClaimsFail: when the queue starts refusing claimWork
// after the runner booted, status shows that claims are failing, since
// when, how many, and the queue's answer; it clears on the next claim.
func TestStatusWhileClaimsFail(t *testing.T) {
	e := newEnv(t, nil)
	target, err := url.Parse(e.stack.RootURL)
	if err != nil {
		t.Fatal(err)
	}
	var refuse atomic.Bool
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse.Load() && strings.Contains(r.URL.Path, "/claim-work/") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"code":"AuthenticationFailed","message":"the worker's accessToken is not valid"}`))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	e.ac.RootURL = proxy.URL
	rn := e.start(Options{})
	e.waitStatus(rn, "a first claim", func(s *Status) bool { return s.LastClaimAt != nil })

	refuse.Store(true)
	s := e.waitStatus(rn, "claims failing", func(s *Status) bool { return s.ClaimFailure != nil && s.ClaimFailure.InARow >= 2 })
	text := statusText(t, s)
	for _, want := range []string{"; FAILING for ", "claims in a row)", "  error", "401", "accessToken is not valid", "claimWork on " + e.taskQueue} {
		if !strings.Contains(text, want) {
			t.Errorf("status lacks %q:\n%s", want, text)
		}
	}
	refuse.Store(false)
	e.waitStatus(rn, "claims succeed again", func(s *Status) bool { return s.ClaimFailure == nil })
}
