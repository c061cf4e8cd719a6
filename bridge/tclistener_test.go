package bridge

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/internal/pulse"
)

// Restricted builders: a task may only target one its scopes allow, through
// buildbot-bridge:builder-name:<builder> or its project:releng: form, a
// trailing * matching as a prefix; unrestricted builders need no scope.
func TestAuthorization(t *testing.T) {
	restricted := []*regexp.Regexp{regexp.MustCompile(".*restricted.*")}
	for _, c := range []struct {
		name       string
		restricted []*regexp.Regexp
		builder    string
		scopes     []string
		want       bool
	}{
		{"no restricted patterns", nil, "good restricted", nil, true},
		{"unrestricted without scopes", restricted, "goody", nil, true},
		{"wildcard scope", restricted, "good restricted", []string{"buildbot-bridge:builder-name:*"}, true},
		{"prefix scope", restricted, "good restricted", []string{"buildbot-bridge:builder-name:good*"}, true},
		{"exact scope", restricted, "good restricted", []string{"buildbot-bridge:builder-name:good restricted"}, true},
		{"releng wildcard", restricted, "good restricted", []string{"project:releng:buildbot-bridge:builder-name:*"}, true},
		{"releng prefix", restricted, "good restricted", []string{"project:releng:buildbot-bridge:builder-name:good*"}, true},
		{"releng exact", restricted, "good restricted", []string{"project:releng:buildbot-bridge:builder-name:good restricted"}, true},
		{"restricted without scopes", restricted, "good restricted", nil, false},
		{"other builder's scope", restricted, "good restricted", []string{"buildbot-bridge:builder-name:other"}, false},
		{"scope prefix without star", restricted, "good restricted", []string{"buildbot-bridge:builder-name:good"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := authorized(c.restricted, c.builder, c.scopes); got != c.want {
				t.Errorf("authorized(%q, %v) = %v, want %v", c.builder, c.scopes, got, c.want)
			}
		})
	}
}

// Known builders: allthethings.json is fetched once, kept for 300 s,
// refetched after (the last list kept when that fails), and decides which
// names are valid.
func TestKnownBuildersRefresh(t *testing.T) {
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		_, _ = w.Write([]byte(`{"builders": {"builder good name": {}, "another good name": {}}}`))
	}))
	defer srv.Close()
	start := time.Unix(1, 0)
	now := start
	k := &knownBuilders{url: srv.URL, client: srv.Client(), now: func() time.Time { return now }}
	ctx := context.Background()
	check := func(name string, want bool) {
		t.Helper()
		got, err := k.known(ctx, name)
		if err != nil || got != want {
			t.Fatalf("known(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	check("builder good name", true)
	now = start.Add(time.Second)
	check("another good name", true)
	check("builder bad name", false)
	if n := gets.Load(); n != 1 {
		t.Fatalf("%d fetches within 300 s, want 1", n)
	}
	now = start.Add(301 * time.Second)
	check("builder good name", true)
	if n := gets.Load(); n != 2 {
		t.Fatalf("%d fetches after 300 s, want 2", n)
	}
	// A failed fetch keeps the list it had.
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	now = start.Add(700 * time.Second)
	check("builder good name", true)
}

// A new task becomes a build request with BBB's exact rows (docs/bridge.md,
// "SchedulerDB", Injection): priority 1 only for "high", submitted_at the
// run's scheduled time, the fixed reason, [value, "bbb"] properties.
func TestPendingNewTask(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{})
		e.start()
		ctx := context.Background()
		for _, c := range []struct {
			priority     string
			wantPriority int
		}{{"", 0}, {"high", 1}, {"very-high", 0}} {
			created := time.Now().Add(-10 * time.Second).Truncate(time.Second)
			taskID := e.createTask(payload(goodBuilder), func(d *tcqueue.TaskDefinitionRequest) {
				d.Created = tcclient.Time(created)
				d.Priority = c.priority
			})
			row := e.waitRow(taskID)
			run := e.status(taskID).Runs[0]
			if row.RunID != 0 || row.CreatedDate != created.Unix() || row.TakenUntil != nil {
				t.Errorf("row = %+v, want run 0, createdDate %d, takenUntil NULL", row, created.Unix())
			}
			br, err := e.sdb.BuildRequest(ctx, *row.BuildRequestID)
			if err != nil {
				t.Fatal(err)
			}
			scheduled := time.Time(run.Scheduled).Unix()
			if br.BuilderName != goodBuilder || br.Priority != c.wantPriority || br.SubmittedAt != scheduled || br.ClaimedAt != 0 || br.Complete {
				t.Errorf("priority %q: build request = %+v, want builder %q priority %d submitted_at %d", c.priority, br, goodBuilder, c.wantPriority, scheduled)
			}
			bs, err := e.sdb.Buildset(ctx, br.BuildsetID)
			if err != nil {
				t.Fatal(err)
			}
			if bs.Reason != "Created by BBB for task "+taskID || bs.ExternalIDString != "taskId:"+taskID || bs.SubmittedAt != scheduled {
				t.Errorf("buildset = %+v", bs)
			}
			raw, err := e.sdb.RawBuildsetProperties(ctx, br.BuildsetID)
			if err != nil {
				t.Fatal(err)
			}
			if len(raw) != 2 || raw["product"] != `["foo", "bbb"]` || raw["taskId"] != `["`+taskID+`", "bbb"]` {
				t.Errorf("properties = %v, want product and taskId as [value, \"bbb\"]", raw)
			}
			ss, err := e.sdb.SourcestampForRequest(ctx, br.ID)
			if err != nil || ss.Branch != "blah" {
				t.Errorf("sourcestamp = %+v, %v; want branch blah", ss, err)
			}
		}
	})
}

// Invalid tasks (restricted builder without scope, no product, unknown
// builder, buildername not a string, extra key) are claimed and resolved
// malformed-payload, leaving no row and no build request.
func TestPendingInvalidTasks(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{})
		e.start()
		noProduct := payload(goodBuilder)
		noProduct["properties"] = map[string]any{}
		for name, p := range map[string]map[string]any{
			"restricted without scope": payload(restrictedBuilder),
			"without product":          noProduct,
			"unknown builder":          payload("builder bad name"),
			"buildername not a string": {"buildername": 7, "properties": map[string]any{"product": "foo"}},
			"extra payload key":        {"buildername": goodBuilder, "properties": map[string]any{"product": "foo"}, "bogus": 1},
		} {
			taskID := e.createTask(p, nil)
			e.waitRun(taskID, 0, "exception", "malformed-payload")
			if !e.noRow(taskID) || e.requestsForTask(taskID) != 0 {
				t.Errorf("%s: row or build request left behind", name)
			}
		}
		// With the scope, the restricted builder is accepted.
		taskID := e.createTask(payload(restrictedBuilder), func(d *tcqueue.TaskDefinitionRequest) {
			d.Scopes = []string{"project:releng:buildbot-bridge:builder-name:restricted*"}
		})
		e.waitRow(taskID)
	})
}

// Ignored builders are left alone (no claim, no row), even restricted ones:
// the ignore check comes before validation.
func TestPendingIgnoredBuilders(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{})
		e.start()
		a := e.createTask(payload(ignoredBuilder), nil)
		b := e.createTask(payload("restricted builder ignored name"), nil)
		e.waitHandled("task-pending", 2)
		for _, id := range []string{a, b} {
			st := e.status(id)
			if st.Runs[0].State != "pending" || !e.noRow(id) || e.requestsForTask(id) != 0 {
				t.Errorf("ignored task %s: run %s, row or request created", id, st.Runs[0].State)
			}
		}
	})
}

// A new run of a known task only moves the row: same build request, no
// second one.
func TestPendingUpdateRunID(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{})
		rb := e.start()
		taskID := e.createTask(payload(goodBuilder), nil)
		row := e.waitRow(taskID)
		e.agent(rb, "w").claim()
		e.waitRun(taskID, 0, "running", "")
		// The worker disappears: the queue retries the task as run 1.
		if err := e.reportAsRoot(taskID, 0, "worker-shutdown"); err != nil {
			t.Fatal(err)
		}
		e.waitRun(taskID, 1, "pending", "")
		waitFor(t, "row at run 1", func() bool {
			r, err := e.st.GetTask(context.Background(), taskID)
			return err == nil && r.RunID == 1
		})
		got, _ := e.st.GetTask(context.Background(), taskID)
		if *got.BuildRequestID != *row.BuildRequestID || got.CreatedDate != row.CreatedDate || got.ProcessedDate != row.ProcessedDate {
			t.Errorf("row after retry = %+v, want only runId changed from %+v", got, row)
		}
		if n := e.requestsForTask(taskID); n != 1 {
			t.Errorf("%d build requests, want 1", n)
		}
	})
}

// reportAsRoot resolves a run exception with the root credentials (a
// claimed run accepts the root client, which holds every scope).
func (e *env) reportAsRoot(taskID string, runID int, reason string) error {
	_, err := e.q.ReportException(taskID, strconv.Itoa(runID), &tcqueue.TaskExceptionRequest{Reason: reason})
	return err
}

// Duplicate and concurrent task-pending handling, in one instance or
// several, creates one build request.
func TestPendingDuplicatesCreateOneRequest(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{})
		rb1, rb2 := e.start(), e.start()
		taskID := e.createTask(payload(goodBuilder), nil)
		e.waitRow(taskID)
		// Replay the message many times at once on both instances, as
		// duplicated deliveries would.
		st := e.status(taskID)
		body, _ := json.Marshal(map[string]any{"version": 1, "status": st, "runId": 0})
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b := []*Bridge{rb1.b, rb2.b}[i%2]
				d := pulse.NewDelivery("x", "y", body, true, nil, func() error { return nil }, func(bool) error { return nil })
				if err := b.handlePending(context.Background(), d); err != nil {
					t.Errorf("handlePending: %v", err)
				}
			}()
		}
		wg.Wait()
		// Also through Pulse.
		ctx := context.Background()
		for range 3 {
			if err := e.publisher.Publish(ctx, pulse.Outgoing{Exchange: "exchange/taskcluster-queue/v1/task-pending",
				RoutingKey: "primary." + taskID + ".0._._." + e.prov + "." + e.wt + ".-.-._", Body: body}); err != nil {
				t.Fatal(err)
			}
		}
		e.waitHandled("task-pending", 4)
		if n := e.requestsForTask(taskID); n != 1 {
			t.Fatalf("%d build requests for one task run, want 1", n)
		}
		rows, err := e.st.List(ctx)
		if err != nil || len(rows) != 1 {
			t.Fatalf("rows = %v, %v; want one", rows, err)
		}
	})
}

// task-exception canceled cancels in Buildbot through self-serve with
// X-Remote-User: the request when no build started (row deleted), the build
// when one runs (row kept until its CANCELLED log_uploaded). Other reasons
// do nothing.
func TestExceptionCancelsThroughSelfServe(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{selfServe: true})
		rb := e.start()
		// Cancelled before the build started -> request cancelled, row deleted.
		queued := e.createTask(payload(goodBuilder), nil)
		qrow := e.waitRow(queued)
		if _, err := e.q.CancelTask(queued); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "row of the queued task deleted", func() bool { return e.noRow(queued) })
		calls, users := e.selfServe.get()
		if want := "DELETE /blah/request/" + strconv.FormatInt(*qrow.BuildRequestID, 10); !slices.Equal(calls, []string{want}) || users[0] != "buildbot-bridge" {
			t.Fatalf("self-serve calls %v (users %v), want [%s] as buildbot-bridge", calls, users, want)
		}
		// What self-serve's agent then does.
		if _, err := e.sdb.CancelRequest(context.Background(), *qrow.BuildRequestID); err != nil {
			t.Fatal(err)
		}

		// Cancelled while the build runs -> build cancelled, row kept.
		running := e.createTask(payload(goodBuilder), nil)
		e.waitRow(running)
		a := e.agent(rb, "w")
		b := a.claim()
		e.waitRun(running, 0, "running", "")
		if _, err := e.q.CancelTask(running); err != nil {
			t.Fatal(err)
		}
		want := "DELETE /blah/build/" + strconv.FormatInt(b.BuildID, 10)
		waitFor(t, "build cancel", func() bool { c, _ := e.selfServe.get(); return slices.Contains(c, want) })
		if e.noRow(running) {
			t.Error("row of a running build deleted on cancel; it must wait for log_uploaded")
		}
		// The agent hears of it and ends the build CANCELLED; the run is
		// already resolved, so no cancelTask, and the row goes.
		if hb := a.heartbeat(); !hb.Cancelled {
			t.Errorf("heartbeat after cancel = %+v, want cancelled", hb)
		}
		a.finish(6, nil, "")
		waitFor(t, "row deleted after CANCELLED", func() bool { return e.noRow(running) })

		// Other reasons are ignored.
		other := e.createTask(payload(goodBuilder), nil)
		e.waitRow(other)
		a2 := e.agent(rb, "w2")
		a2.claim()
		e.waitRun(other, 0, "running", "")
		before := e.handled("task-exception")
		if err := e.reportAsRoot(other, 0, "malformed-payload"); err != nil {
			t.Fatal(err)
		}
		e.waitHandled("task-exception", before+1)
		if e.noRow(other) {
			t.Error("row deleted for a malformed-payload exception")
		}
		if c, _ := e.selfServe.get(); len(c) != 2 {
			t.Errorf("self-serve calls %v, want only the two cancels", c)
		}
	})
}

// deadline-exceeded before the build started cancels the request through
// self-serve and deletes the row; self-serve's agent, not the bridge, then
// completes the request (without self-serve, see TestSeedDeadlineBeforeStart).
func TestExceptionDeadlineExceededNotStarted(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{selfServe: true})
		e.start()
		taskID := e.createTask(payload(goodBuilder), func(d *tcqueue.TaskDefinitionRequest) {
			d.Deadline = tcclient.Time(time.Now().Add(2 * time.Second))
		})
		brid := *e.waitRow(taskID).BuildRequestID
		e.waitRun(taskID, 0, "exception", "deadline-exceeded")
		waitFor(t, "row deleted", func() bool { return e.noRow(taskID) })
		if c, _ := e.selfServe.get(); !slices.Equal(c, []string{"DELETE /blah/request/" + strconv.FormatInt(brid, 10)}) {
			t.Errorf("self-serve calls %v", c)
		}
		// Self-serve's agent does the work asynchronously: the bridge left
		// the request alone.
		br, _ := e.sdb.BuildRequest(context.Background(), brid)
		if br.Complete {
			t.Error("bridge completed the request itself although self-serve is configured")
		}
	})
}

// A property too long for buildset_properties.property_value (1024
// characters as Python's JSON) is refused as an invalid payload instead of
// failing the insert.
func TestPayloadPropertyLength(t *testing.T) {
	mk := func(v string) json.RawMessage {
		raw, _ := json.Marshal(map[string]any{"buildername": "b", "properties": map[string]any{"product": "p", "long": v}})
		return raw
	}
	if _, err := validatePayload(mk(strings.Repeat("a", 1010))); err != nil {
		t.Errorf("1010 ASCII characters refused: %v", err)
	}
	if _, err := validatePayload(mk(strings.Repeat("a", 1020))); err == nil || !strings.Contains(err.Error(), "payload.properties.long") {
		t.Errorf("1020 characters (1032 stored) accepted or error not naming the field: %v", err)
	}
	// é is written \u00e9 by Python: 200 of them take 1200 characters.
	if _, err := validatePayload(mk(strings.Repeat("é", 200))); err == nil {
		t.Error("200 non-ASCII characters (1200 stored) accepted")
	}
}

// A payload without sourcestamp is injected (NULL branch), and its cancel,
// having no branch for self-serve, is applied directly.
func TestNoSourcestamp(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{selfServe: true})
		e.start()
		p := payload(goodBuilder)
		delete(p, "sourcestamp")
		taskID := e.createTask(p, nil)
		brid := *e.waitRow(taskID).BuildRequestID
		ss, err := e.sdb.SourcestampForRequest(context.Background(), brid)
		if err != nil || ss.Branch != "" {
			t.Fatalf("sourcestamp = %+v, %v; want one with no branch", ss, err)
		}
		if _, err := e.q.CancelTask(taskID); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "row deleted", func() bool { return e.noRow(taskID) })
		br, _ := e.sdb.BuildRequest(context.Background(), brid)
		if !br.Complete || br.ClaimedAt != 0 {
			t.Errorf("request = %+v, want cancelled directly", br)
		}
		if c, _ := e.selfServe.get(); len(c) != 0 {
			t.Errorf("self-serve called without a branch: %v", c)
		}
	})
}
