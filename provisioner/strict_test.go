package provisioner

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/labrunner/labrunner/provisioner/client"
)

// storeSnapshot is every row of every registry table, for checking that a
// refused request changed nothing.
func storeSnapshot(t testing.TB, s Store) string {
	t.Helper()
	ss, ok := s.(*sqlStore)
	if !ok {
		t.Fatalf("store %T is not a sqlStore", s)
	}
	var b strings.Builder
	for _, table := range []string{"pools", "machines", "tokens", "directives", "actions", "task_runs", "run_reports", "blackhole_watch"} {
		rows, err := ss.db.QueryContext(context.Background(), "SELECT * FROM "+table+" ORDER BY 1")
		if err != nil {
			t.Fatalf("snapshot %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("snapshot %s: %v", table, err)
			}
			fmt.Fprintf(&b, "%s:", table)
			for _, v := range vals {
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				fmt.Fprintf(&b, " %v", v)
			}
			b.WriteByte('\n')
		}
		if err := rows.Close(); err != nil {
			t.Fatalf("snapshot %s: %v", table, err)
		}
	}
	return b.String()
}

// TestWriteRoutesRefuseInvalidBodies sends every write route bodies that
// encoding/json alone lets through: each must be a 400 naming the field,
// on both stores, and change nothing stored.
func TestWriteRoutesRefuseInvalidBodies(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, k.url(t), nil)
			e.pool("win", tcPool("p/win", 0, 5, 0, "windows"))
			reg, _ := e.enroll(winFacts("w1"))
			id := reg.MachineID
			enroll, err := e.admin.CreateToken(e.ctx(), client.TokenRequest{Kind: client.TokenEnroll, Uses: 5})
			if err != nil {
				t.Fatal(err)
			}
			type tc struct{ method, path, token, body, field string }
			var cases []tc
			// reboot, drain and quarantine removal take the same body.
			for _, a := range []struct{ method, path string }{
				{"POST", "/api/v1/machines/" + id + "/drain"},
				{"POST", "/api/v1/machines/" + id + "/reboot"},
				{"DELETE", "/api/v1/machines/" + id + "/quarantine"},
			} {
				for body, field := range map[string]string{
					`{"reason":"r","Reason":"v"}`: "Reason",
					``:                            "(body)",
					`  `:                          "(body)",
					`null`:                        "(body)",
					`[]`:                          "(body)",
					`{"reason":"a","reason":"b"}`: "reason",
					"{\"reason\":\"\xff\xfe\"}":   "reason",
					`{"reason":null}`:             "reason",
					`{"reason":"\ud800"}`:         "reason",
					`{"reason":"a\u0000b"}`:       "reason",
					`{"reason":"r"} {}`:           "(body)",
				} {
					cases = append(cases, tc{a.method, a.path, testAdminToken, body, field})
				}
			}
			admin := func(method, path, body, field string) {
				cases = append(cases, tc{method, path, testAdminToken, body, field})
			}
			assign := "/api/v1/machines/" + id + "/assign"
			admin("POST", assign, `{"poolId":"win","PoolId":"win"}`, "PoolId")
			admin("POST", assign, `{"poolId":"win","poolId":"win"}`, "poolId")
			admin("POST", assign, `{"poolId":null}`, "poolId")
			admin("POST", assign, `{"poolId":"win","reason":null}`, "reason")
			admin("POST", assign, "{\"poolId\":\"win\",\"reason\":\"\xc3\"}", "reason")
			admin("POST", assign, ``, "(body)")
			admin("POST", assign, `null`, "(body)")
			quarantine := "/api/v1/machines/" + id + "/quarantine"
			until := `"until":"2099-01-01T00:00:00Z"`
			admin("POST", quarantine, `{"reason":"r",`+until+`,"Until":"2098-01-01T00:00:00Z"}`, "Until")
			admin("POST", quarantine, `{"reason":"r","reason":"s",`+until+`}`, "reason")
			admin("POST", quarantine, `{"reason":null,`+until+`}`, "reason")
			admin("POST", quarantine, `{"reason":"r","until":null}`, "until")
			tokens := "/api/v1/tokens"
			admin("POST", tokens, `{"kind":"admin","uses":0}`, "uses")
			admin("POST", tokens, `{"kind":"admin","uses":null}`, "uses")
			admin("POST", tokens, `{"kind":"enroll","uses":null}`, "uses")
			admin("POST", tokens, `{"kind":"enroll","uses":2,"Uses":3}`, "Uses")
			admin("POST", tokens, `{"kind":"readonly","kind":"admin"}`, "kind")
			admin("POST", tokens, `{"kind":"readonly","expiresIn":""}`, "expiresIn")
			admin("POST", tokens, `{"kind":"readonly","expiresIn":"1000000h"}`, "expiresIn")
			admin("POST", tokens, `{"kind":"enroll","uses":3000000000}`, "uses")
			admin("POST", tokens, `{"kind":"readonly","description":null}`, "description")
			admin("POST", tokens, `{"kind":"readonly","description":"\ud83d"}`, "description")
			admin("POST", tokens, ``, "(body)")
			pool := "/api/v1/pools/new"
			ok := `"source":"taskcluster","taskQueueId":"p/new","maxCapacity":2`
			admin("PUT", pool, `{`+ok+`,"MaxCapacity":3}`, "MaxCapacity")
			admin("PUT", pool, `{`+ok+`,"maxCapacity":3}`, "maxCapacity")
			admin("PUT", pool, `{`+ok+`,"description":null}`, "description")
			admin("PUT", pool, `{`+ok+`,"scalingRatio":0}`, "scalingRatio")
			admin("PUT", pool, `{`+ok+`,"targetWaitSeconds":0}`, "targetWaitSeconds")
			admin("PUT", pool, `{`+ok+`,"workerGroup":""}`, "workerGroup")
			admin("PUT", pool, `{`+ok+`,"workerConfig":null}`, "workerConfig")
			admin("PUT", pool, `{`+ok+`,"workerConfig":{"a":1,"a":2}}`, "workerConfig.a")
			admin("PUT", pool, `{`+ok+`,"workerConfig":{"deep":[{"x":"\udc00"}]}}`, "workerConfig.deep[0].x")
			admin("PUT", pool, `{`+ok+`,"constraints":{"os":["windows",null]}}`, "constraints.os[1]")
			admin("PUT", pool, `{`+ok+`,"constraints":{"tags":{"gpu":"1","gpu":"2"}}}`, "constraints.tags.gpu")
			admin("PUT", pool, `{`+ok+`,"constraints":{"OS":["windows"]}}`, "constraints.OS")
			admin("PUT", pool, `{`+ok+`,"health":{"quarantineFor":""}}`, "health.quarantineFor")
			admin("PUT", pool, `{`+ok+`,"reboot":null}`, "reboot")
			admin("PUT", pool, `{"source":"taskcluster","taskQueueId":"p/new","maxCapacity":1000000}`, "maxCapacity")
			admin("PUT", pool, `{"source":"taskcluster","taskQueueId":"p/new","minCapacity":0}`, "maxCapacity")
			admin("DELETE", "/api/v1/pools/win", `{}`, "(body)")
			register := "/api/v1/machines/register"
			tok := `"enrollmentToken":"` + enroll.Token + `"`
			public := func(body, field string) { cases = append(cases, tc{"POST", register, "", body, field}) }
			public(`{"facts":{"hostname":"h2","os":"windows","Hostname":"x"},`+tok+`}`, "facts.Hostname")
			public(`{"facts":{"hostname":"h2","hostname":"h3","os":"windows"},`+tok+`}`, "facts.hostname")
			public(`{"facts":{"hostname":"h2","os":"windows","tags":{"a":"1","a":"2"}},`+tok+`}`, "facts.tags.a")
			public(`{"facts":{"hostname":"h2","os":"windows","tags":{"a":null}},`+tok+`}`, "facts.tags.a")
			public(`{"facts":{"hostname":"h2","os":"windows","model":null},`+tok+`}`, "facts.model")
			public(`{"facts":{"hostname":"h2","os":"windows"},`+tok+`,"ec2":null}`, "ec2")
			public("{\"facts\":{\"hostname\":\"h\xe9\",\"os\":\"windows\"},"+tok+"}", "facts.hostname")
			public(`{"facts":null,`+tok+`}`, "facts")
			public(`{`+tok+`}`, "facts")
			public(`{"Facts":{"hostname":"h2","os":"windows"},`+tok+`}`, "Facts")
			hbPath := "/api/v1/machines/" + id + "/heartbeat"
			hb := func(body, field string) { cases = append(cases, tc{"POST", hbPath, reg.MachineToken, body, field}) }
			hb(`{"state":"idle","State":"busy"}`, "State")
			hb(`{"state":"idle","state":"busy"}`, "state")
			hb(`{"state":"idle","currentTask":null}`, "currentTask")
			hb(`{"state":"busy","currentTask":{"taskId":"T"}}`, "currentTask.runId")
			hb(`{"state":"busy","currentTask":{"taskId":"T","runId":3000000000}}`, "currentTask.runId")
			hb(`{"state":"idle","health":[{"name":"disk"}]}`, "health[0].ok")
			hb(`{"state":"idle","health":[{"name":"disk","ok":true,"ok":false}]}`, "health[0].ok")
			hb(`{"state":"idle","health":null}`, "health")
			hb(`{"state":"idle","counters":{"n":null}}`, "counters.n")
			hb(`{}`, "state")
			hb(``, "(body)")

			before := storeSnapshot(t, e.srv.store)
			for _, c := range cases {
				status, ce := e.raw(c.method, c.path, c.token, c.body)
				if status != http.StatusBadRequest || ce.Field != c.field || ce.Message == "" || ce.Code != "InvalidRequest" {
					t.Errorf("%s %s %q: %d %+v; want 400 naming %q", c.method, c.path, c.body, status, ce, c.field)
				}
			}
			if after := storeSnapshot(t, e.srv.store); after != before {
				t.Fatalf("refused requests changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// TestClientBodiesAreAccepted checks that what the Go client sends (the CLI
// and the runner use it) passes the strict checks, including actions with
// no reason, whose body is {}.
func TestClientBodiesAreAccepted(t *testing.T) {
	e := newEnv(t, sqliteURL(t), nil)
	ctx := e.ctx()
	e.pool("win", tcPool("p/win", 0, 5, 0, "windows"))
	reg, mc := e.enroll(winFacts("w1"))
	id := reg.MachineID
	if _, err := e.admin.Drain(ctx, id, ""); err != nil {
		t.Fatalf("drain without a reason: %v", err)
	}
	if _, err := e.admin.Reboot(ctx, id, ""); err != nil {
		t.Fatalf("reboot without a reason: %v", err)
	}
	if _, err := e.admin.Unquarantine(ctx, id, ""); err != nil {
		t.Fatalf("unquarantine without a reason: %v", err)
	}
	if _, err := e.admin.Assign(ctx, id, "win", ""); err != nil {
		t.Fatalf("assign without a reason: %v", err)
	}
	if _, err := e.admin.CreateToken(ctx, client.TokenRequest{Kind: client.TokenReadOnly}); err != nil {
		t.Fatalf("read-only token: %v", err)
	}
	hb := client.HeartbeatRequest{State: client.StateBusy, CurrentTask: &client.TaskRef{TaskID: "T", RunID: 0},
		Health: []client.HealthResult{{Name: "disk", OK: false, Message: "full"}}, Counters: map[string]int64{"tasksRun": 0}}
	if _, err := mc.Heartbeat(ctx, id, 0, hb); err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
	full := tcPool("p/full", 0, 3, -5, "windows")
	full.Reboot = &client.RebootPolicy{}
	full.Health = &client.HealthPolicy{}
	if _, err := e.admin.PutPool(ctx, "full", full); err != nil {
		t.Fatalf("pool with empty policies: %v", err)
	}
	for _, body := range []string{
		// Escaped but valid text, and free-form workerConfig with nulls.
		`{"reason":"caf\u00e9 \ud83d\ude00 \\ud800 \"q\""}`,
		`{}`,
	} {
		if status, ce := e.raw("POST", "/api/v1/machines/"+id+"/drain", testAdminToken, body); status != 200 {
			t.Errorf("drain %s: %d %+v, want 200", body, status, ce)
		}
	}
	if status, ce := e.raw("PUT", "/api/v1/pools/wc", testAdminToken, `{"source":"taskcluster","taskQueueId":"p/wc","maxCapacity":1,"workerConfig":{"a":null,"b":[null,{"c":1}]}}`); status != 201 {
		t.Errorf("pool with nulls inside workerConfig: %d %+v, want 201", status, ce)
	}
}

// TestRequiredFieldsMatchOpenAPI keeps requiredFields and openapi.json's
// "required" lists in step, both ways.
func TestRequiredFieldsMatchOpenAPI(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Required []string `json:"required"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	schemaName := func(rt reflect.Type) string {
		if rt == reflect.TypeFor[quarantineBody]() {
			return "QuarantineRequest"
		}
		return rt.Name()
	}
	covered := map[string]bool{}
	for rt, fields := range requiredFields {
		name := schemaName(rt)
		covered[name] = true
		var names []string
		for _, f := range fields {
			names = append(names, f.name)
		}
		got := strings.Join(names, ",")
		want := strings.Join(doc.Components.Schemas[name].Required, ",")
		if got != want {
			t.Errorf("%s: the decoder requires [%s], openapi.json [%s]", name, got, want)
		}
	}
	for name, s := range doc.Components.Schemas {
		if len(s.Required) > 0 && !covered[name] {
			t.Errorf("openapi.json requires %v of %s, which requiredFields does not list", s.Required, name)
		}
	}
}

// TestQuarantineUntilBeyondYear9999 refuses a date that is in range as
// written but past year 9999 in UTC, which no JSON answer could carry.
func TestQuarantineUntilBeyondYear9999(t *testing.T) {
	e := newEnv(t, sqliteURL(t), nil)
	reg, _ := e.enroll(winFacts("w1"))
	before := storeSnapshot(t, e.srv.store)
	status, ce := e.raw("POST", "/api/v1/machines/"+reg.MachineID+"/quarantine", testAdminToken, `{"reason":"r","until":"9999-12-31T23:00:00-02:00"}`)
	if status != http.StatusBadRequest || ce.Field != "until" {
		t.Fatalf("%d %+v, want 400 naming until", status, ce)
	}
	if after := storeSnapshot(t, e.srv.store); after != before {
		t.Fatalf("refused quarantine changed the store:\n%s\n%s", before, after)
	}
}

// BenchmarkDecodeHeartbeat is the strict decoding of a typical heartbeat,
// the most frequent body; BenchmarkDecodeHeartbeatPlain is encoding/json
// alone on the same body, for the cost of the strict pre-pass.
func BenchmarkDecodeHeartbeat(b *testing.B) {
	body := []byte(`{"state":"busy","currentTask":{"taskId":"fQ8m1xVwTtOzS3n2aV6d2w","runId":0,"kind":"taskcluster"},"health":[{"name":"disk","ok":true},{"name":"temperature","ok":true,"message":"52 C"}],"counters":{"tasksRun":1200,"tasksFailed":3}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, aerr := decodeHeartbeat(body); aerr != nil {
			b.Fatal(aerr)
		}
	}
}

func BenchmarkDecodeHeartbeatPlain(b *testing.B) {
	body := []byte(`{"state":"busy","currentTask":{"taskId":"fQ8m1xVwTtOzS3n2aV6d2w","runId":0,"kind":"taskcluster"},"health":[{"name":"disk","ok":true},{"name":"temperature","ok":true,"message":"52 C"}],"counters":{"tasksRun":1200,"tasksFailed":3}}`)
	b.ReportAllocs()
	for b.Loop() {
		var hb client.HeartbeatRequest
		if err := json.Unmarshal(body, &hb); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStrictCheckEdges covers the scanner's corners: escapes, surrogate
// pairs, number grammar, separators, nesting and many keys.
func TestStrictCheckEdges(t *testing.T) {
	action := reflect.TypeFor[client.ActionRequest]()
	pool := reflect.TypeFor[client.PoolSpec]()
	deep := strings.Repeat("[", 70) + strings.Repeat("]", 70)
	var many strings.Builder
	many.WriteString(`{"source":"taskcluster","maxCapacity":1,"workerConfig":{`)
	for i := range 40 {
		fmt.Fprintf(&many, `"k%d":%d,`, i, i)
	}
	many.WriteString(`"k7":0}}`)
	for _, c := range []struct {
		t     reflect.Type
		body  string
		field string // "" when accepted
	}{
		{action, `{"reason":"\ud83d\ude00 caf\u00e9 \\ud800 \" \/ \b\f\n\r\t"}`, ""},
		{action, " \t\r\n{ \"reason\" : \"a\" } \n", ""},
		{action, `{"reason":"\ud83d\u0041"}`, "reason"},
		{action, `{"reason":"\ud83d"}`, "reason"},
		{action, `{"reason":"\udc00\ud800"}`, "reason"},
		{action, `{"reason":"\u0000"}`, "reason"},
		{action, "{\"reason\":\"a\tb\"}", "reason"},
		{action, `{"reason":"\x41"}`, "reason"},
		{action, `{"reason":"\u00G0"}`, "reason"},
		{action, `{"re\u0061son":"a","reason":"b"}`, "reason"},
		{action, `{"reason":"a",}`, "(body)"},
		{action, `{"reason" "a"}`, "reason"},
		{action, `{"reason":"a"`, "(body)"},
		{action, `{"reason":"a`, "reason"},
		{action, `{reason:"a"}`, "(body)"},
		{action, `{"":"a"}`, `""`},
		{action, "{\"reason\":\"a\"}\x00", "(body)"},
		{action, `{"reason":tru}`, "reason"},
		{pool, `{"source":"taskcluster","maxCapacity":-0}`, ""},
		{pool, `{"source":"taskcluster","maxCapacity":01}`, "(body)"},
		{pool, `{"source":"taskcluster","maxCapacity":1.}`, "maxCapacity"},
		{pool, `{"source":"taskcluster","maxCapacity":1,"scalingRatio":1.5e-1}`, ""},
		{pool, `{"source":"taskcluster","maxCapacity":1,"scalingRatio":1e}`, "scalingRatio"},
		{pool, `{"source":"taskcluster","maxCapacity":1,"scalingRatio":-}`, "scalingRatio"},
		{pool, `{"source":"taskcluster","maxCapacity":1,"workerConfig":{"a":` + deep + `}}`, "workerConfig.a" + strings.Repeat("[0]", 62)},
		{pool, many.String(), "workerConfig.k7"},
		{pool, `{"source":"taskcluster","maxCapacity":1,"workerConfig":[1,2,}`, "workerConfig[2]"},
		{pool, `{"source":"taskcluster","maxCapacity":1,"workerConfig":{"a":nul}}`, "workerConfig.a"},
	} {
		_, aerr := strictCheck([]byte(c.body), c.t)
		switch {
		case c.field == "" && aerr != nil:
			t.Errorf("%s: refused (%v), want accepted", c.body, aerr)
		case c.field != "" && (aerr == nil || aerr.field != c.field):
			t.Errorf("%s: %v, want refused naming %s", c.body, aerr, c.field)
		}
	}
}

// TestWriteRouteLimitsOnBothStores sends the largest values the
// documented ranges allow to both stores, one after the other on one
// registry: each must be accepted, none a 5xx (PostgreSQL's integer
// columns hold 32 bits, its text no U+0000).
func TestWriteRouteLimitsOnBothStores(t *testing.T) {
	route := func(method, suffix string) writeRoute {
		for _, r := range writeRoutes {
			if r.method == method && strings.HasSuffix(r.path, suffix) {
				return r
			}
		}
		t.Fatalf("no route %s …%s", method, suffix)
		return writeRoute{}
	}
	long := strings.Repeat("é🙂", 2000)
	edges := []struct {
		r    writeRoute
		body string
	}{
		{route("POST", "/heartbeat"), `{"state":"busy","currentTask":{"taskId":"T","runId":2147483647},"counters":{"n":9223372036854775807,"m":-9223372036854775808}}`},
		{route("POST", "/heartbeat"), `{"state":"busy","currentTask":{"taskId":"B","runId":0,"kind":"buildbot","builder":"` + long + `","buildNumber":2147483647}}`},
		{route("POST", "/tokens"), `{"kind":"enroll","uses":1000000,"expiresIn":"87600h","description":"` + long + `"}`},
		{route("PUT", "/pools/new"), `{"source":"taskcluster","taskQueueId":"p/new","minCapacity":100000,"maxCapacity":100000,"priority":-1000000,"targetWaitSeconds":604800,"scalingRatio":100,"health":{"quarantineFor":"8760h","minFreeDiskGB":9223372036854775807},"reboot":{"afterTasks":9223372036854775807}}`},
		{route("POST", "/register"), `{"facts":{"hostname":"` + long + `","os":"` + long + `","cpus":9223372036854775807,"memoryMB":9223372036854775807,"diskGB":0,"tags":{"` + long + `":"` + long + `"}},"enrollmentToken":"` + fuzzEnrollToken + `"}`},
		{route("POST", "/quarantine"), `{"reason":"` + long + `","until":"9999-12-31T23:59:59.999999999Z"}`},
		{route("POST", "/drain"), `{"reason":"` + long + `"}`},
		{route("POST", "/runs"), `{"runs":[{"taskId":"` + long + `","runId":2147483647,"kind":"buildbot","builder":"` + long + `","buildNumber":2147483647,"result":"exception","reason":"` + long + `","exitCode":4294967295,"started":"2000-01-01T00:00:00Z","finished":"9999-12-31T23:59:59.999Z"}]}`},
		{route("POST", "/runs"), `{"runs":[{"taskId":"T","runId":0,"result":"failed","exitCode":-2147483648,"started":"2026-11-26T11:00:00Z","finished":"2026-11-26T11:00:00Z"}]}`},
	}
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			fx := newFuzzFixture(t, k.url(t))
			defer fx.srv.Close()
			for _, e := range edges {
				if rec := fx.send(e.r, []byte(e.body)); rec.Code >= 300 {
					t.Errorf("%s %s %.120s: %d %.300s, want it accepted", e.r.method, e.r.path, e.body, rec.Code, rec.Body)
				}
			}
		})
	}
}
