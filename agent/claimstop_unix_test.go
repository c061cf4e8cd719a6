//go:build unix

package agent

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/devqueue"
)

// An agent told to stop while its claim long-polls (the queue's, or
// either in a pool of source both) returns at once rather than after the
// poll (the bridge's alone: TestAgentStopAbandonsBridgeLongPoll).
func TestAgentStopAbandonsLongPoll(t *testing.T) {
	for _, kind := range []string{"taskcluster", "both"} {
		t.Run(kind, func(t *testing.T) {
			bridge := newLongPollBridge(t, false)
			var tcPolls atomic.Int32
			e := newEnv(t, devqueue.Config{PollWait: 20 * time.Second})
			e.proxy.setFaults(func(r *http.Request, _ int) fault {
				if strings.Contains(r.URL.Path, "/claim-work/") {
					tcPolls.Add(1)
				}
				return fault{}
			})
			cfg := e.config()
			cfg.Journal = nil
			if kind == "both" {
				// The bridge is asked first: the stop comes during its poll.
				m, err := NewMultiSource(quietLogger(), bridge.source(t), e.source())
				if err != nil {
					t.Fatal(err)
				}
				cfg.Source = m
			}
			a, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			stopDuringClaim(t, a, func() {
				if kind == "taskcluster" {
					waitFor(t, "a claimWork long poll in flight", func() bool { return tcPolls.Load() > 0 })
					time.Sleep(200 * time.Millisecond) // the proxy has passed it on
				} else {
					bridge.waitClaimInFlight(t)
				}
			})
			bridge.mu.Lock()
			defer bridge.mu.Unlock()
			if len(bridge.finishes) != 0 {
				t.Errorf("finished %+v, but the bridge held no build", bridge.finishes)
			}
		})
	}
}

// stopOnAnswer stops the claim as the queue's answer is being read: the
// task was claimed for a poll whose caller no longer wants it.
type stopOnAnswer struct {
	base http.RoundTripper
	stop context.CancelFunc
}

func (s stopOnAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.base.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusOK && r.Method == http.MethodPost {
		resp.Body = &stopOnRead{ReadCloser: resp.Body, stop: s.stop}
	}
	return resp, err
}

type stopOnRead struct {
	io.ReadCloser
	stop context.CancelFunc
	once sync.Once
}

func (s *stopOnRead) Read(p []byte) (int, error) {
	s.once.Do(func() {
		s.stop()
		time.Sleep(50 * time.Millisecond) // Claim sees the stop
	})
	return s.ReadCloser.Read(p)
}

// A task whose claimWork answer arrives after the stop is given back at
// once, resolved exception/worker-shutdown, which the queue retries with
// a new run; it is not returned to the stopping agent.
func TestTCSourceGivesBackTaskAnsweredAfterStop(t *testing.T) {
	e := newEnv(t, devqueue.Config{})
	id := e.createTask(shPayload("true", 60))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := e.source()
	src.cfg.HTTPClient = &http.Client{Transport: stopOnAnswer{base: http.DefaultTransport, stop: cancel}}
	runs, err := src.Claim(ctx, 1)
	if err != nil || len(runs) != 0 {
		t.Fatalf("claim answered after the stop = %d runs, %v; want none and no error", len(runs), err)
	}
	expectRun(t, e.waitRun(id, 0), "exception", ReasonWorkerShutdown)
	if st := e.status(id); len(st.Runs) != 2 || st.Runs[1].State != "pending" {
		t.Errorf("runs after the give-back %+v, want a new pending run", st.Runs)
	}
}
