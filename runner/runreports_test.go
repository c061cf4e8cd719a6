package runner

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// TestRunReportsAreRetriedAndCountedOnce: finished runs wait in the state
// file while the provisioner fails, are sent once it answers, and a
// report whose answer was lost (so sent again) is stored once.
func TestRunReportsAreRetriedAndCountedOnce(t *testing.T) {
	e := newLinkEnv(t, nil)
	e.pool("hello", linkTaskQueue)
	var failing, loseNext atomic.Bool
	var refused, lost atomic.Int64
	prov := e.srv.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/runs") {
			switch {
			case failing.Load():
				refused.Add(1)
				http.Error(w, `{"code":"Unavailable","message":"down for maintenance"}`, http.StatusServiceUnavailable)
				return
			case loseNext.CompareAndSwap(true, false):
				// The provisioner stores the runs; the answer is lost.
				prov.ServeHTTP(httptest.NewRecorder(), r)
				lost.Add(1)
				http.Error(w, `{"code":"BadGateway","message":"connection reset"}`, http.StatusBadGateway)
				return
			}
		}
		prov.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	statePath := filepath.Join(testTempDir(t), "link.json")
	l, _ := e.newLink(statePath, func(c *LinkConfig) {
		c.URL, c.EnrollmentToken = hs.URL, e.enrollToken(1)
		c.ClientOptions = []client.Option{client.WithRetries(0, 0, 0)}
	})
	e.start(l)
	stored := func() int {
		runs, err := e.srv.Store().RunReports(e.ctx(), "hello", time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return len(runs)
	}
	at := time.Now().UTC().Truncate(time.Millisecond)
	exit := 1
	report := func(task string) {
		l.ReportRun(client.RunReport{TaskID: task, RunID: 0, Kind: client.KindTaskcluster, Result: client.ResultFailed, ExitCode: &exit, Started: at, Finished: at.Add(time.Second)})
	}

	failing.Store(true)
	report("task-a")
	report("task-b")
	linkEventually(t, "reports refused twice", func() bool { return refused.Load() >= 2 })
	if n := l.PendingRuns(); n != 2 {
		t.Fatalf("%d runs waiting while the provisioner fails, want 2", n)
	}
	if data, _ := os.ReadFile(statePath); !strings.Contains(string(data), "task-b") {
		t.Errorf("the state file does not hold the waiting runs:\n%s", data)
	}
	failing.Store(false)
	linkEventually(t, "the waiting runs sent", func() bool { return l.PendingRuns() == 0 })
	if n := stored(); n != 2 {
		t.Fatalf("%d runs stored, want 2", n)
	}

	loseNext.Store(true)
	report("task-c")
	linkEventually(t, "an answer lost and the run sent again", func() bool { return lost.Load() == 1 && l.PendingRuns() == 0 })
	if n := stored(); n != 3 {
		t.Errorf("%d runs stored after a report sent twice, want 3 (each run once)", n)
	}
}

// TestRunReportLogs: queued canaries' logs go one per request (each may be
// client.MaxRunLog bytes, several times that as JSON, and the provisioner
// bounds a body to 1 MiB), and are stored with their runs; a provisioner
// that refuses the log field (one that predates it) still gets the runs,
// sent again without their logs.
func TestRunReportLogs(t *testing.T) {
	e := newLinkEnv(t, nil)
	e.pool("hello", linkTaskQueue)
	var failing, oldProvisioner atomic.Bool
	var mu sync.Mutex
	var logsPerRequest []int
	prov := e.srv.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/runs") {
			if failing.Load() {
				http.Error(w, `{"code":"Unavailable","message":"down for maintenance"}`, http.StatusServiceUnavailable)
				return
			}
			body, _ := io.ReadAll(r.Body)
			var req client.RunReportsRequest
			_ = json.Unmarshal(body, &req)
			logs := 0
			for _, run := range req.Runs {
				if run.Log != "" {
					logs++
				}
			}
			mu.Lock()
			logsPerRequest = append(logsPerRequest, logs)
			mu.Unlock()
			if oldProvisioner.Load() && logs > 0 {
				// As a provisioner whose RunReport has no log field answers.
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"code":"InvalidRequest","message":"runs[0].log: unknown field \"log\": remove it or check its spelling","field":"runs[0].log"}`))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		prov.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	l, _ := e.newLink(filepath.Join(testTempDir(t), "link.json"), func(c *LinkConfig) {
		c.URL, c.EnrollmentToken = hs.URL, e.enrollToken(1)
		c.ClientOptions = []client.Option{client.WithRetries(0, 0, 0)}
	})
	e.start(l)
	at := time.Now().UTC().Truncate(time.Millisecond)
	exit := 1
	// Logs as large as they may be, of characters JSON escapes six times over.
	big := func(c string) string { return strings.Repeat("<", client.MaxRunLog-len(c)-1) + c + "\n" }
	canary := func(task, log string) client.RunReport {
		return client.RunReport{TaskID: task, Kind: client.KindCanary, Result: client.ResultFailed, ExitCode: &exit, Started: at, Finished: at.Add(time.Second), Log: log}
	}

	failing.Store(true)
	for _, task := range []string{"canary-a", "canary-b", "canary-c"} {
		l.ReportRun(canary(task, big(task)))
	}
	l.ReportRun(client.RunReport{TaskID: "task-a", Kind: client.KindTaskcluster, Result: client.ResultCompleted, Started: at, Finished: at})
	failing.Store(false)
	linkEventually(t, "the queued runs sent", func() bool { return l.PendingRuns() == 0 })
	mu.Lock()
	if slices.Max(logsPerRequest) > 1 {
		t.Errorf("logs per request %v, want at most one", logsPerRequest)
	}
	mu.Unlock()
	for _, task := range []string{"canary-a", "canary-b", "canary-c"} {
		if r, err := e.srv.Store().LatestCanary(e.ctx(), "", task); err != nil || r.Log != big(task) {
			t.Errorf("%s stored with a log of %d bytes (%v), want the %d sent", task, len(r.Log), err, len(big(task)))
		}
	}

	oldProvisioner.Store(true)
	l.ReportRun(canary("canary-d", "GPU missing\n"))
	linkEventually(t, "the run refused for its log sent", func() bool { return l.PendingRuns() == 0 })
	if r, err := e.srv.Store().LatestCanary(e.ctx(), "", "canary-d"); err != nil || r.Log != "" || r.Result != client.ResultFailed {
		t.Errorf("canary-d stored as %+v (%v), want its run without the log", r, err)
	}
}
