package provisioner

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

func sqliteURL(t *testing.T) string { return filepath.Join(t.TempDir(), "prov.db") }

func TestPoolsAPI(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, k.url(t), nil)
			ctx := e.ctx()
			spec := tcPool("proj/win11", 1, 5, 2, "windows")
			spec.WorkerConfig = json.RawMessage(`{"cachesDir":"C:\\caches"}`)
			p, err := e.admin.PutPool(ctx, "win11", spec)
			if err != nil {
				t.Fatal(err)
			}
			if p.Spec.WorkerGroup != defaultWorkerGroup || p.Spec.ScalingRatio != 1 || p.Spec.TargetWaitSeconds != 600 {
				t.Fatalf("defaults not filled: %+v", p.Spec)
			}
			spec.MaxCapacity = 7
			if _, err := e.admin.PutPool(ctx, "win11", spec); err != nil {
				t.Fatal(err)
			}
			got, err := e.admin.GetPool(ctx, "win11")
			if err != nil || got.Spec.MaxCapacity != 7 || string(got.Spec.WorkerConfig) != `{"cachesDir":"C:\\caches"}` {
				t.Fatalf("GetPool = %+v, %v", got, err)
			}
			e.pool("mac", tcPool("proj/mac", 0, 3, 1, "darwin"))
			ps, err := e.admin.ListPools(ctx)
			if err != nil || len(ps) != 2 {
				t.Fatalf("ListPools = %v, %v", ps, err)
			}
			if err := e.admin.DeletePool(ctx, "mac"); err != nil {
				t.Fatal(err)
			}
			if _, err := e.admin.GetPool(ctx, "mac"); client.StatusOf(err) != http.StatusNotFound {
				t.Fatalf("get deleted pool: %v, want 404", err)
			}
			if err := e.admin.DeletePool(ctx, "mac"); client.StatusOf(err) != http.StatusNotFound {
				t.Fatalf("delete deleted pool: %v, want 404", err)
			}
		})
	}
}

func TestPoolValidationNamesTheField(t *testing.T) {
	e := newEnv(t, sqliteURL(t), nil)
	ok := `"source":"taskcluster","taskQueueId":"p/w","maxCapacity":2`
	cases := []struct {
		name, path, body, field string
	}{
		{"bad JSON", "/api/v1/pools/p", `{"source":`, "source"},
		{"not an object", "/api/v1/pools/p", `[1]`, "(body)"},
		{"unknown field", "/api/v1/pools/p", `{` + ok + `,"colour":"red"}`, "colour"},
		{"unknown nested field", "/api/v1/pools/p", `{` + ok + `,"constraints":{"ram":4}}`, "constraints.ram"},
		{"unknown field in a list", "/api/v1/pools/p", `{` + ok + `,"reboot":{"afterTasks":1},"health":{"quarantineFor":"1h","every":2}}`, "health.every"},
		{"wrong type", "/api/v1/pools/p", `{` + ok + `,"minCapacity":"one"}`, "minCapacity"},
		{"missing source", "/api/v1/pools/p", `{"taskQueueId":"p/w","maxCapacity":2}`, "source"},
		{"unknown source", "/api/v1/pools/p", `{"source":"jenkins","maxCapacity":2}`, "source"},
		{"bad task queue", "/api/v1/pools/p", `{"source":"taskcluster","taskQueueId":"nowt","maxCapacity":2}`, "taskQueueId"},
		{"buildbot without builders", "/api/v1/pools/p", `{"source":"buildbot","maxCapacity":2}`, "builders"},
		{"buildbot with a task queue", "/api/v1/pools/p", `{"source":"buildbot","builders":["b"],"taskQueueId":"p/w","maxCapacity":2}`, "taskQueueId"},
		{"taskcluster with builders", "/api/v1/pools/p", `{` + ok + `,"builders":["b"]}`, "builders"},
		{"both without a task queue", "/api/v1/pools/p", `{"source":"both","builders":["b"],"maxCapacity":2}`, "taskQueueId"},
		{"both without builders", "/api/v1/pools/p", `{"source":"both","taskQueueId":"p/w","maxCapacity":2}`, "builders"},
		{"both with an empty builder", "/api/v1/pools/p", `{"source":"both","taskQueueId":"p/w","builders":["b",""],"maxCapacity":2}`, "builders"},
		{"max below min", "/api/v1/pools/p", `{` + ok + `,"minCapacity":3}`, "maxCapacity"},
		{"zero max", "/api/v1/pools/p", `{"source":"taskcluster","taskQueueId":"p/w"}`, "maxCapacity"},
		{"bad regexp", "/api/v1/pools/p", `{` + ok + `,"constraints":{"osVersion":"(14"}}`, "constraints.osVersion"},
		{"bad quarantineFor", "/api/v1/pools/p", `{` + ok + `,"health":{"quarantineFor":"soon"}}`, "health.quarantineFor"},
		{"workerConfig not object", "/api/v1/pools/p", `{` + ok + `,"workerConfig":[1]}`, "workerConfig"},
		{"bad pool id", "/api/v1/pools/-bad", `{` + ok + `}`, "poolId"},
		{"trailing data", "/api/v1/pools/p", `{` + ok + `} {}`, "(body)"},
		{"empty body", "/api/v1/pools/p", ``, "(body)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, ce := e.raw("PUT", c.path, testAdminToken, c.body)
			if status != http.StatusBadRequest || ce.Field != c.field || ce.Message == "" {
				t.Fatalf("status %d, error %+v; want 400 naming field %q", status, ce, c.field)
			}
		})
	}
	if ps, _ := e.admin.ListPools(e.ctx()); len(ps) != 0 {
		t.Fatalf("a rejected pool was stored: %+v", ps)
	}
}

func TestAuthorization(t *testing.T) {
	e := newEnv(t, sqliteURL(t), func(c *Config) { c.ReadOnlyTokens = []string{"readonly-token-for-tests-000000"} })
	ctx := e.ctx()
	e.pool("win", tcPool("p/win", 0, 5, 0, "windows"))
	regA, _ := e.enroll(winFacts("a"))
	regB, _ := e.enroll(winFacts("b"))
	enroll, err := e.admin.CreateToken(ctx, client.TokenRequest{Kind: client.TokenEnroll, Uses: 3})
	if err != nil {
		t.Fatal(err)
	}
	shortLived, err := e.admin.CreateToken(ctx, client.TokenRequest{Kind: client.TokenReadOnly, ExpiresIn: "1m"})
	if err != nil {
		t.Fatal(err)
	}
	hb := `{"state":"idle"}`
	ro := "readonly-token-for-tests-000000"
	cases := []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"no token", "GET", "/api/v1/pools", "", "", 401},
		{"wrong token", "GET", "/api/v1/pools", "nope-nope-nope-nope", "", 401},
		{"read-only reads", "GET", "/api/v1/pools", ro, "", 200},
		{"read-only reads machines", "GET", "/api/v1/machines", ro, "", 200},
		{"read-only may not write", "PUT", "/api/v1/pools/x", ro, `{}`, 403},
		{"read-only may not act", "POST", "/api/v1/machines/" + regA.MachineID + "/reboot", ro, "", 403},
		{"read-only may not heartbeat", "POST", "/api/v1/machines/" + regA.MachineID + "/heartbeat", ro, hb, 403},
		{"own heartbeat", "POST", "/api/v1/machines/" + regA.MachineID + "/heartbeat", regA.MachineToken, hb, 200},
		{"other machine's heartbeat", "POST", "/api/v1/machines/" + regB.MachineID + "/heartbeat", regA.MachineToken, hb, 403},
		{"other machine's directives", "GET", "/api/v1/machines/" + regB.MachineID + "/directives", regA.MachineToken, "", 403},
		{"other machine's record", "GET", "/api/v1/machines/" + regB.MachineID, regA.MachineToken, "", 403},
		{"own record", "GET", "/api/v1/machines/" + regA.MachineID, regA.MachineToken, "", 200},
		{"machine lists machines", "GET", "/api/v1/machines", regA.MachineToken, "", 403},
		{"machine acts", "POST", "/api/v1/machines/" + regA.MachineID + "/reboot", regA.MachineToken, "", 403},
		{"admin heartbeats", "POST", "/api/v1/machines/" + regA.MachineID + "/heartbeat", testAdminToken, hb, 403},
		{"enrollment token as bearer", "GET", "/api/v1/pools", enroll.Token, "", 403},
		{"read-only creates tokens", "POST", "/api/v1/tokens", ro, `{"kind":"admin"}`, 403},
		{"unknown endpoint", "GET", "/api/v1/nothing", testAdminToken, "", 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if status, ce := e.raw(c.method, c.path, c.token, c.body); status != c.want {
				t.Fatalf("status %d (%+v), want %d", status, ce, c.want)
			}
		})
	}
	if status, _ := e.raw("GET", "/api/v1/pools", shortLived.Token, ""); status != 200 {
		t.Fatalf("fresh read-only token: %d", status)
	}
	e.clock.Add(2 * time.Minute)
	if status, ce := e.raw("GET", "/api/v1/pools", shortLived.Token, ""); status != 401 || !strings.Contains(ce.Message, "expired") {
		t.Fatalf("expired token: %d %+v, want 401 saying expired", status, ce)
	}
}

func TestTokenRequestValidation(t *testing.T) {
	e := newEnv(t, sqliteURL(t), nil)
	for body, field := range map[string]string{
		`{"kind":"root"}`:                            "kind",
		`{"kind":"enroll"}`:                          "uses",
		`{"kind":"admin","uses":2}`:                  "uses",
		`{"kind":"enroll","uses":1,"expiresIn":"x"}`: "expiresIn",
		`{"kind":"admin","scopes":[]}`:               "scopes",
	} {
		if status, ce := e.raw("POST", "/api/v1/tokens", testAdminToken, body); status != 400 || ce.Field != field {
			t.Errorf("%s: %d %+v, want 400 naming %s", body, status, ce, field)
		}
	}
	tok, err := e.admin.CreateToken(e.ctx(), client.TokenRequest{Kind: client.TokenAdmin, Description: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.Token, "lra_") {
		t.Fatalf("admin token %q lacks its prefix", tok.Token)
	}
	second := client.New(e.url, tok.Token, client.WithRetries(0, 0, 0))
	if _, err := second.PutPool(e.ctx(), "p", tcPool("a/b", 0, 1, 0)); err != nil {
		t.Fatalf("created admin token cannot write: %v", err)
	}
}

func TestRegistrationWithEnrollmentToken(t *testing.T) {
	e := newEnv(t, sqliteURL(t), nil)
	ctx := e.ctx()
	e.pool("mac", tcPool("proj/mac", 1, 4, 0, "darwin"))
	tok, err := e.admin.CreateToken(ctx, client.TokenRequest{Kind: client.TokenEnroll, Uses: 2, ExpiresIn: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	anon := client.New(e.url, "", client.WithRetries(0, 0, 0))
	r1, err := anon.Register(ctx, client.RegisterRequest{Facts: macFacts("Mini-01.lab.example.com"), EnrollmentToken: tok.Token})
	if err != nil {
		t.Fatal(err)
	}
	if r1.MachineID != "mini-01" || r1.Assignment.PoolID != "mac" || r1.Assignment.WorkerID != "mini-01" || r1.Assignment.TaskQueueID != "proj/mac" || !strings.HasPrefix(r1.MachineToken, "lrm_") {
		t.Fatalf("registration = %+v", r1)
	}
	// Same serial again: same id, new token, old token dead.
	r2, err := anon.Register(ctx, client.RegisterRequest{Facts: macFacts("Mini-01.lab.example.com"), EnrollmentToken: tok.Token})
	if err != nil || r2.MachineID != r1.MachineID || r2.MachineToken == r1.MachineToken {
		t.Fatalf("re-registration = %+v, %v", r2, err)
	}
	if _, err := anon.WithToken(r1.MachineToken).Heartbeat(ctx, r1.MachineID, 0, client.HeartbeatRequest{State: "idle"}); client.StatusOf(err) != 401 {
		t.Fatalf("old token after re-registration: %v, want 401", err)
	}
	if _, err := anon.WithToken(r2.MachineToken).Heartbeat(ctx, r2.MachineID, 0, client.HeartbeatRequest{State: "idle"}); err != nil {
		t.Fatalf("new token: %v", err)
	}
	_, err = anon.Register(ctx, client.RegisterRequest{Facts: macFacts("mini-02"), EnrollmentToken: tok.Token})
	if client.StatusOf(err) != 401 {
		t.Fatalf("third use of a two-use token: %v, want 401", err)
	}
	for body, field := range map[string]string{
		`{"facts":{"os":"darwin"},"enrollmentToken":"x"}`:                                                        "facts.hostname",
		`{"facts":{"hostname":"h"},"enrollmentToken":"x"}`:                                                       "facts.os",
		`{"facts":{"hostname":"h","os":"darwin"}}`:                                                               "enrollmentToken",
		`{"facts":{"hostname":"h","os":"darwin","cpus":"eight"},"enrollmentToken":"x"}`:                          "facts.cpus",
		`{"facts":{"hostname":"h","os":"darwin"},"enrollmentToken":"x","ec2":{"document":"{}","signature":"x"}}`: "ec2",
		`{"facts":{"hostname":"h","os":"darwin","gpu":"yes"},"enrollmentToken":"x"}`:                             "facts.gpu",
	} {
		if status, ce := e.raw("POST", "/api/v1/machines/register", "", body); status != 400 || ce.Field != field {
			t.Errorf("%s: %d %+v, want 400 naming %s", body, status, ce, field)
		}
	}
}

func TestHeartbeatAndLongPoll(t *testing.T) {
	e := newEnv(t, sqliteURL(t), nil)
	ctx := e.ctx()
	e.pool("win", tcPool("p/win", 0, 5, 0, "windows"))
	reg, mc := e.enroll(winFacts("w1"))
	id := reg.MachineID
	if _, err := mc.Heartbeat(ctx, id, 0, client.HeartbeatRequest{State: client.StateBusy, CurrentTask: &client.TaskRef{TaskID: "T1"},
		Health: []client.HealthResult{{Name: "disk", OK: true}}, Counters: map[string]int64{"tasksRun": 3}}); err != nil {
		t.Fatal(err)
	}
	m, err := e.admin.GetMachine(ctx, id)
	if err != nil || m.State != client.StateBusy || m.CurrentTask == nil || m.CurrentTask.TaskID != "T1" || m.Counters["tasksRun"] != 3 || !m.Online {
		t.Fatalf("machine after heartbeat = %+v, %v", m, err)
	}
	// A long-poll waiting 30 s returns as soon as a directive is queued.
	got := make(chan []client.Directive, 1)
	errc := make(chan error, 1)
	go func() {
		ds, err := mc.Directives(context.Background(), id, 0, 30*time.Second)
		errc <- err
		got <- ds
	}()
	eventually(t, "the long-poll to be waiting", func() bool { return e.srv.notify.waiting(id) })
	if _, err := e.admin.Reboot(ctx, id, "kernel update"); err != nil {
		t.Fatal(err)
	}
	var ds []client.Directive
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
		ds = <-got
	case <-time.After(waitLimit):
		t.Fatal("long-poll did not return after a directive was queued")
	}
	if len(ds) != 1 || ds[0].Kind != client.DirectiveReboot || ds[0].Reason != "kernel update" {
		t.Fatalf("directives = %+v", ds)
	}
	// Acknowledged with after: the next poll returns nothing at once.
	if ds2, err := mc.Directives(ctx, id, ds[0].ID, 0); err != nil || len(ds2) != 0 {
		t.Fatalf("after ack: %+v, %v", ds2, err)
	}
	for _, c := range []struct{ path, body, field string }{
		{"/heartbeat", `{"state":"sleeping"}`, "state"},
		{"/heartbeat", `{"state":"busy","currentTask":{"runId":1}}`, "currentTask.taskId"},
		{"/heartbeat", `{"state":"idle","mood":"good"}`, "mood"},
		{"/heartbeat", `{"state":"idle","health":[{"name":"disk","ok":true,"sev":1}]}`, "health[0].sev"},
		{"/heartbeat", `{"state":"idle"`, "(body)"},
		{"/heartbeat?after=x", `{"state":"idle"}`, "after"},
		{"/directives?wait=soon", ``, "wait"},
	} {
		method := "POST"
		if strings.HasPrefix(c.path, "/directives") {
			method = "GET"
		}
		if status, ce := e.raw(method, "/api/v1/machines/"+id+c.path, reg.MachineToken, c.body); status != 400 || ce.Field != c.field {
			t.Errorf("%s %s: %d %+v, want 400 naming %q", c.path, c.body, status, ce, c.field)
		}
	}
}

func TestMachineActions(t *testing.T) {
	e := newEnv(t, sqliteURL(t), nil)
	ctx := e.ctx()
	e.pool("win", tcPool("p/win", 1, 5, 0, "windows"))
	e.pool("win-gpu", tcPool("p/wingpu", 0, 5, 0, "windows"))
	e.pool("mac", tcPool("p/mac", 0, 5, 0, "darwin"))
	reg, mc := e.enroll(winFacts("w1"))
	id := reg.MachineID
	if reg.Assignment.PoolID != "win" {
		t.Fatalf("registered into %q, want win (below its minimum)", reg.Assignment.PoolID)
	}
	until := e.clock.Now().Add(2 * time.Hour)
	d, err := e.admin.Quarantine(ctx, id, "disk errors", until)
	if err != nil {
		t.Fatal(err)
	}
	if d.QuarantinedUntil == nil || !d.QuarantinedUntil.Equal(until) || d.QuarantineReason != "disk errors" || d.Actions[0].Action != "quarantine" || !strings.Contains(d.Actions[0].Who, "tester") {
		t.Fatalf("after quarantine: %+v", d)
	}
	for body, field := range map[string]string{
		`{"until":"2099-01-01T00:00:00Z"}`:                           "reason",
		`{"reason":"x","until":"tomorrow"}`:                          "until",
		`{"reason":"x","until":"2000-01-01T00:00:00Z"}`:              "until",
		`{"reason":"x","until":"2099-01-01T00:00:00Z","force":true}`: "force",
	} {
		if status, ce := e.raw("POST", "/api/v1/machines/"+id+"/quarantine", testAdminToken, body); status != 400 || ce.Field != field {
			t.Errorf("quarantine %s: %d %+v, want 400 naming %s", body, status, ce, field)
		}
	}
	if d, err = e.admin.Unquarantine(ctx, id, "disk replaced"); err != nil || d.QuarantinedUntil != nil {
		t.Fatalf("unquarantine: %+v, %v", d, err)
	}
	if d, err = e.admin.Drain(ctx, id, "maintenance"); err != nil || !d.Draining {
		t.Fatalf("drain: %+v, %v", d, err)
	}
	if _, err := e.admin.Assign(ctx, id, "mac", "try"); client.StatusOf(err) != http.StatusConflict {
		t.Fatalf("assign a Windows machine to a macOS pool: %v, want 409", err)
	}
	if _, err := e.admin.Assign(ctx, id, "nowhere", ""); client.StatusOf(err) != http.StatusNotFound {
		t.Fatalf("assign to a missing pool: %v, want 404", err)
	}
	if _, err := e.admin.Reboot(ctx, "ghost", ""); client.StatusOf(err) != http.StatusNotFound {
		t.Fatalf("reboot a missing machine: %v, want 404", err)
	}
	// Assign drains first; the move completes when the machine reports drained.
	if _, err := mc.Heartbeat(ctx, id, 0, client.HeartbeatRequest{State: client.StateIdle}); err != nil {
		t.Fatal(err)
	}
	if d, err = e.admin.Assign(ctx, id, "win-gpu", "needs the GPU queue"); err != nil || d.PoolID != "win" || d.MovingTo != "win-gpu" {
		t.Fatalf("assign: %+v, %v", d, err)
	}
	hb, err := mc.Heartbeat(ctx, id, 0, client.HeartbeatRequest{State: client.StateDrained})
	if err != nil {
		t.Fatal(err)
	}
	kinds := []string{}
	var reassign *client.Directive
	for i, dr := range hb.Directives {
		kinds = append(kinds, dr.Kind)
		if dr.Kind == client.DirectiveReassign {
			reassign = &hb.Directives[i]
		}
	}
	want := "quarantine unquarantine drain drain reassign"
	if strings.Join(kinds, " ") != want || reassign.Assignment == nil || reassign.Assignment.PoolID != "win-gpu" || reassign.Assignment.TaskQueueID != "p/wingpu" {
		t.Fatalf("directives %v (reassign %+v), want %s to win-gpu", kinds, reassign, want)
	}
	if d, _ = e.admin.GetMachine(ctx, id); d.PoolID != "win-gpu" || d.MovingTo != "" || d.Draining {
		t.Fatalf("after the move: %+v", d)
	}
}

func TestOpenAPICoversEveryRoute(t *testing.T) {
	e := newEnv(t, sqliteURL(t), nil)
	resp, err := http.Get(e.url + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	seen := map[string]bool{}
	for _, rt := range e.srv.routes {
		key := strings.ToLower(rt.method) + " " + rt.pattern
		seen[key] = true
		if _, ok := doc.Paths[rt.pattern][strings.ToLower(rt.method)]; !ok {
			t.Errorf("route %s %s is missing from openapi.json", rt.method, rt.pattern)
		}
	}
	for path, ops := range doc.Paths {
		if !strings.HasPrefix(path, "/api/") {
			continue
		}
		for method := range ops {
			if method != "parameters" && !seen[method+" "+path] {
				t.Errorf("openapi.json documents %s %s, which no route serves", method, path)
			}
		}
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, sqliteURL(t), nil)
	e.pool("win", tcPool("p/win", 1, 5, 0, "windows"))
	reg, mc := e.enroll(winFacts("w1"))
	if _, err := mc.Heartbeat(e.ctx(), reg.MachineID, 0, client.HeartbeatRequest{State: client.StateBusy, CurrentTask: &client.TaskRef{TaskID: "T"}}); err != nil {
		t.Fatal(err)
	}
	e.demand.set("win", 4)
	if err := e.srv.AssignOnce(e.ctx()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 1<<16)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	body := sb.String()
	for _, want := range []string{
		`labrunner_provisioner_machines{pool="win",state="busy"} 1`,
		`labrunner_provisioner_pending_tasks{pool="win"} 4`,
		`labrunner_provisioner_heartbeats_total 1`,
		`labrunner_provisioner_registrations_total 1`,
		`labrunner_provisioner_api_request_seconds_count{code="200",route="POST /api/v1/machines/{id}/heartbeat"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
