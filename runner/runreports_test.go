package runner

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
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
