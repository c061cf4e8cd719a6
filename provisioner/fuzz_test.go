package provisioner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// FuzzDecoders feeds arbitrary bodies to every request decoder. A decoder
// must never panic, must name a field and say what is wrong when it
// rejects, and what it accepts must survive a JSON round trip through the
// same decoder.
func FuzzDecoders(f *testing.F) {
	seeds := []string{
		`{"facts":{"hostname":"h","os":"darwin"},"enrollmentToken":"t"}`,
		`{"facts":{"hostname":"h","os":"windows","tags":{"gpu":"1"}},"ec2":{"document":"{}","signature":"c2ln"}}`,
		`{"state":"busy","currentTask":{"taskId":"T","runId":2},"health":[{"name":"disk","ok":true}],"counters":{"n":1}}`,
		`{"source":"taskcluster","taskQueueId":"p/w","maxCapacity":3,"constraints":{"osVersion":"14\\..*"}}`,
		`{"source":"buildbot","builders":["b"],"maxCapacity":1,"workerConfig":{"a":1}}`,
		`{"reason":"r","until":"2099-01-01T00:00:00Z"}`,
		`{"poolId":"p","reason":"r"}`,
		`{"kind":"enroll","uses":2,"expiresIn":"1h"}`,
		`{"runs":[{"taskId":"T","runId":1,"result":"completed","exitCode":0,"started":"2026-11-26T11:00:00Z","finished":"2026-11-26T11:05:00Z"}]}`,
		`{"state":`, `[]`, `null`, `{"a":1} x`, "\x00", `{"facts":{"cpus":1e400}}`,
		`{"reason":"r","Reason":"v"}`, `{"reason":"\ud800"}`, "{\"reason\":\"\xff\"}", `{"reason":"a","reason":"b"}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(name string, v any, aerr *apiError, again func([]byte) *apiError) {
			if aerr != nil {
				if aerr.status != 400 || aerr.msg == "" || aerr.field == "" {
					t.Fatalf("%s: rejection %+v is not a 400 naming a field with a message", name, aerr)
				}
				return
			}
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%s: accepted value does not encode: %v", name, err)
			}
			if aerr := again(b); aerr != nil {
				t.Fatalf("%s: accepted %q but rejects its own encoding %s: %v", name, data, b, aerr)
			}
		}
		// The strict scanner agrees with encoding/json on what is JSON.
		_, aerr := strictCheck(data, rawMessageType)
		syntax := aerr != nil && (strings.Contains(aerr.msg, "malformed JSON") || strings.Contains(aerr.msg, "truncated JSON") ||
			strings.Contains(aerr.msg, "unexpected data after") || strings.Contains(aerr.msg, "body is empty"))
		if aerr == nil && !json.Valid(data) {
			t.Fatalf("strictCheck accepts %q, which is not JSON", data)
		}
		if syntax && json.Valid(data) {
			t.Fatalf("strictCheck calls %q malformed (%v), which is JSON", data, aerr)
		}
		r, aerr := decodeRegister(data)
		check("register", r, aerr, func(b []byte) *apiError { _, e := decodeRegister(b); return e })
		h, aerr := decodeHeartbeat(data)
		check("heartbeat", h, aerr, func(b []byte) *apiError { _, e := decodeHeartbeat(b); return e })
		p, aerr := decodePoolSpec(data)
		check("pool", p, aerr, func(b []byte) *apiError { _, e := decodePoolSpec(b); return e })
		a, aerr := decodeAssign(data)
		check("assign", a, aerr, func(b []byte) *apiError { _, e := decodeAssign(b); return e })
		tr, _, aerr := decodeTokenRequest(data)
		check("token", tr, aerr, func(b []byte) *apiError { _, _, e := decodeTokenRequest(b); return e })
		ar, aerr := decodeAction(data)
		check("action", ar, aerr, func(b []byte) *apiError { _, e := decodeAction(b); return e })
		rr, aerr := decodeRunReports(data)
		check("runs", rr, aerr, func(b []byte) *apiError { _, e := decodeRunReports(b); return e })
		q, aerr := decodeQuarantine(data, now)
		qb := quarantineBody{Reason: q.Reason, Until: q.Until.Format(time.RFC3339Nano)}
		check("quarantine", qb, aerr, func(b []byte) *apiError { _, e := decodeQuarantine(b, now); return e })
	})
}

// writeRoute is one write endpoint as FuzzWriteRoutes drives it.
type writeRoute struct {
	method, path string
	// machineToken sends the fixture machine's token; else admin's, or
	// none for registration.
	machineToken bool
	seeds        []string
}

// fuzzEnrollToken is the fixture's enrollment token, so that seeds can
// register.
const fuzzEnrollToken = "lre_fuzz-enrollment-token-0123456789"

var writeRoutes = []writeRoute{
	{"POST", "/api/v1/machines/register", false, []string{
		`{"facts":{"hostname":"h2","os":"windows","tags":{"gpu":"1"}},"enrollmentToken":"` + fuzzEnrollToken + `"}`,
		`{"facts":{"hostname":"h2","os":"windows","cpus":4,"memoryMB":100,"diskGB":1},"ec2":{"document":"{}","signature":"c2ln"}}`,
		`{"facts":{"hostname":"h2","os":"windows","Hostname":"x"},"enrollmentToken":"` + fuzzEnrollToken + `"}`,
	}},
	{"POST", "/api/v1/machines/w1/heartbeat", true, []string{
		`{"state":"busy","currentTask":{"taskId":"T","runId":2},"health":[{"name":"disk","ok":true}],"counters":{"n":1}}`,
		`{"state":"busy","currentTask":{"taskId":"T","runId":0,"kind":"buildbot","builder":"b","buildNumber":4}}`,
		`{"state":"drained"}`,
		`{"state":"idle","currentTask":null}`,
	}},
	{"POST", "/api/v1/machines/w1/runs", true, []string{
		`{"runs":[{"taskId":"T","runId":0,"result":"failed","exitCode":1,"started":"2026-11-26T11:00:00Z","finished":"2026-11-26T11:05:00Z"}]}`,
		`{"runs":[{"taskId":"B","runId":1,"kind":"buildbot","builder":"b","buildNumber":3,"result":"exception","reason":"internal-error","started":"2026-11-26T11:00:00Z","finished":"2026-11-26T11:00:00Z"}]}`,
		`{"runs":[]}`,
		`{"runs":[{"taskId":"T","runId":0,"result":"failed","started":"2026-11-26T11:05:00Z","finished":"2026-11-26T11:00:00Z"}]}`,
	}},
	{"POST", "/api/v1/machines/w1/quarantine", false, []string{
		`{"reason":"disk","until":"2099-01-01T00:00:00Z"}`,
		`{"reason":"disk","until":"2099-01-01T00:00:00Z","Until":"x"}`,
	}},
	{"DELETE", "/api/v1/machines/w1/quarantine", false, []string{`{"reason":"fixed"}`, `{}`}},
	{"POST", "/api/v1/machines/w1/reboot", false, []string{`{"reason":"update"}`, ``}},
	{"POST", "/api/v1/machines/w1/drain", false, []string{`{"reason":"r","Reason":"v"}`, `null`, `{"reason":null}`, "{\"reason\":\"\xff\xfe\"}"}},
	{"POST", "/api/v1/machines/w1/assign", false, []string{`{"poolId":"mac","reason":"r"}`, `{"poolId":"win2"}`, `{"poolId":"nowhere"}`}},
	{"PUT", "/api/v1/pools/new", false, []string{
		`{"source":"taskcluster","taskQueueId":"p/new","maxCapacity":3,"constraints":{"os":["windows"],"osVersion":"10\\..*","tags":{"gpu":"1"}},"health":{"quarantineFor":"1h","minFreeDiskGB":5},"reboot":{"afterTasks":3}}`,
		`{"source":"both","taskQueueId":"p/new","builders":["b"],"maxCapacity":1,"scalingRatio":0.5,"targetWaitSeconds":60,"workerConfig":{"a":[1,{"b":null}]}}`,
		`{"source":"buildbot","builders":["b"],"maxCapacity":1,"workerGroup":"g","priority":-3}`,
		`{"source":"taskcluster","taskQueueId":"p/new","maxCapacity":3,"blackHole":{"window":"12h","minRuns":4,"significance":1e-7,"maxQuarantinedShare":0.2}}`,
	}},
	{"DELETE", "/api/v1/pools/mac", false, []string{``, `{}`}},
	{"POST", "/api/v1/tokens", false, []string{
		`{"kind":"enroll","uses":2,"expiresIn":"1h","description":"rack 4"}`,
		`{"kind":"admin","uses":0}`,
		`{"kind":"readonly","expiresIn":"10m"}`,
	}},
}

// fuzzFixture is a provisioner on a fresh SQLite registry holding pools
// win, win2 and mac, machine w1 in win, and an enrollment token.
type fuzzFixture struct {
	srv          *Server
	machineToken string
}

func newFuzzFixture(tb testing.TB, dbURL string) *fuzzFixture {
	tb.Helper()
	clock := newFakeClock()
	srv, err := New(Config{
		DB:                 dbURL,
		AdminTokens:        []string{testAdminToken},
		Demand:             &fixedDemand{},
		Now:                clock.Now,
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
		CancelPollInterval: -1,
	})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	ctx := context.Background()
	for id, spec := range map[string]client.PoolSpec{
		"win":  tcPool("p/win", 0, 5, 0, "windows"),
		"win2": tcPool("p/win2", 0, 5, 0, "windows"),
		"mac":  tcPool("p/mac", 0, 5, 0, "darwin"),
	} {
		if aerr := validatePoolSpec(&spec, present{}); aerr != nil {
			tb.Fatalf("fixture pool %s: %v", id, aerr)
		}
		now := clock.Now()
		if err := srv.store.PutPool(ctx, client.Pool{PoolID: id, Spec: spec, Created: now, Updated: now}); err != nil {
			tb.Fatalf("fixture pool %s: %v", id, err)
		}
	}
	if err := srv.store.InsertToken(ctx, TokenRecord{ID: "fuzz", Kind: client.TokenEnroll, Hash: hashToken(fuzzEnrollToken), UsesLeft: 1000, Created: clock.Now()}); err != nil {
		tb.Fatalf("fixture token: %v", err)
	}
	body, _ := json.Marshal(client.RegisterRequest{Facts: winFacts("w1"), EnrollmentToken: fuzzEnrollToken})
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/machines/register", bytes.NewReader(body)))
	var reg client.RegisterResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &reg); err != nil || reg.MachineID != "w1" {
		tb.Fatalf("fixture registration: %d %s", rec.Code, rec.Body)
	}
	return &fuzzFixture{srv: srv, machineToken: reg.MachineToken}
}

// send serves body to route r with the token the route takes.
func (fx *fuzzFixture) send(r writeRoute, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(r.method, r.path, bytes.NewReader(body))
	switch {
	case r.machineToken:
		req.Header.Set("Authorization", "Bearer "+fx.machineToken)
	case r.path != "/api/v1/machines/register":
		req.Header.Set("Authorization", "Bearer "+testAdminToken)
	}
	rec := httptest.NewRecorder()
	fx.srv.Handler().ServeHTTP(rec, req)
	return rec
}

// FuzzWriteRoutes sends arbitrary bodies to every write route, through
// the HTTP handler against a SQLite registry. No body may cause a 5xx or
// a panic; a refused body must get an error naming a field and leave
// every stored row as it was. After an accepted body the fixture is built
// afresh, so that every input meets the same state.
func FuzzWriteRoutes(f *testing.F) {
	for i, r := range writeRoutes {
		for _, s := range r.seeds {
			f.Add(uint8(i), []byte(s))
		}
	}
	dir, err := os.MkdirTemp("", "provisioner-fuzz-")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = os.RemoveAll(dir) })
	n := 0
	dbFile := func(n int) string { return filepath.Join(dir, fmt.Sprintf("fuzz-%d.db", n)) }
	fx := newFuzzFixture(f, dbFile(n))
	f.Cleanup(func() { _ = fx.srv.Close() })
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		r := writeRoutes[int(which)%len(writeRoutes)]
		before := storeSnapshot(t, fx.srv.store)
		rec := fx.send(r, body)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", r.method, r.path, body, rec.Code, rec.Body)
		}
		if rec.Code < 300 {
			_ = fx.srv.Close()
			old, _ := filepath.Glob(dbFile(n) + "*")
			for _, o := range old {
				_ = os.Remove(o)
			}
			n++
			fx = newFuzzFixture(t, dbFile(n))
			return
		}
		var ce client.Error
		if err := json.Unmarshal(rec.Body.Bytes(), &ce); err != nil || ce.Message == "" || ce.Code == "" {
			t.Fatalf("%s %s %q: %d answer %q is not an error body", r.method, r.path, body, rec.Code, rec.Body)
		}
		if rec.Code == http.StatusBadRequest && ce.Field == "" {
			t.Fatalf("%s %s %q: 400 %+v names no field", r.method, r.path, body, ce)
		}
		if after := storeSnapshot(t, fx.srv.store); after != before {
			t.Fatalf("%s %s %q refused (%d %+v) but changed the store:\nbefore:\n%s\nafter:\n%s", r.method, r.path, body, rec.Code, ce, before, after)
		}
	})
}
