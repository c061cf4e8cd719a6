package provisioner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

const dashReadOnly = "readonly-token-for-dashboard-0000"

// dashEnv is a provisioner with pools of each source and machines doing
// Taskcluster and Buildbot work, for the dashboard's tests.
type dashEnv struct {
	*env
	hostileID string
}

const (
	hostilePool = `<script>alert("pool")</script>`
	hostileHost = `<img src=x onerror=alert(1)>`
	hostileWhy  = `</td><script>alert('why')</script>`
)

// newDashEnv starts the dashboard's test system; mods adjust the config.
func newDashEnv(t *testing.T, mods ...func(*Config)) *dashEnv {
	t.Helper()
	e := newEnv(t, sqliteURL(t), func(c *Config) {
		c.ReadOnlyTokens = []string{dashReadOnly}
		inner := c.Demand
		c.Demand = DemandFunc(func(ctx context.Context, p client.Pool) (int64, error) {
			if p.PoolID == "broken" {
				return 0, errors.New("queue unreachable")
			}
			return inner.Pending(ctx, p)
		})
		for _, m := range mods {
			m(c)
		}
	})
	spec := tcPool("proj/win11", 1, 10, 0, "windows")
	spec.Description = hostilePool
	e.pool("tc-win", spec)
	e.pool("bb-linux", client.PoolSpec{Source: client.SourceBuildbot, Builders: []string{"linux-sleep", "linux-build"}, MaxCapacity: 8,
		Constraints: client.Constraints{OS: []string{"linux"}}})
	e.pool("mixed", client.PoolSpec{Source: client.SourceBoth, TaskQueueID: "proj/mixed", Builders: []string{"mac-build"}, MinCapacity: 2, MaxCapacity: 3,
		Constraints: client.Constraints{OS: []string{"darwin"}}})
	e.pool("broken", tcPool("proj/broken", 0, 2, 0, "plan9"))
	e.demand.set("tc-win", 4)
	e.demand.set("bb-linux", 20)
	e.demand.set("mixed", 9)

	ctx := e.ctx()
	st := e.srv.store
	now := e.clock.Now()
	add := func(id, pool string, f client.Facts) {
		t.Helper()
		m := &MachineRecord{Machine: client.Machine{MachineID: id, PoolID: pool, Facts: f, Registered: now.Add(-time.Hour)}, TokenHash: hashToken("lrm_" + id)}
		if err := st.InsertMachine(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	beat := func(id string, at time.Duration, hb client.HeartbeatRequest) {
		t.Helper()
		if err := st.Heartbeat(ctx, id, hb, now.Add(at)); err != nil {
			t.Fatal(err)
		}
	}
	add("lx-bb", "bb-linux", linuxFacts("lx-bb"))
	beat("lx-bb", -20*time.Minute, client.HeartbeatRequest{State: client.StateBusy, CurrentTask: bbRef("TbbFirst", "linux-sleep", 41)})
	beat("lx-bb", -5*time.Minute, client.HeartbeatRequest{State: client.StateBusy, CurrentTask: bbRef("TbbTask", "linux-sleep", 42)})
	beat("lx-bb", -10*time.Second, client.HeartbeatRequest{State: client.StateBusy, CurrentTask: bbRef("TbbTask", "linux-sleep", 42)})
	add("win-tc", "tc-win", winFacts("win-tc"))
	beat("win-tc", -30*time.Second, client.HeartbeatRequest{State: client.StateBusy, CurrentTask: &client.TaskRef{TaskID: "TtcTask", RunID: 2}})
	add("mac-both", "mixed", macFacts("mac-both"))
	beat("mac-both", -time.Minute, client.HeartbeatRequest{State: client.StateIdle, Health: []client.HealthResult{{Name: "disk", OK: false, Message: hostileWhy}}})
	mac, err := st.GetMachine(ctx, "mac-both")
	if err != nil {
		t.Fatal(err)
	}
	until := now.Add(2 * time.Hour)
	mac.QuarantinedUntil, mac.QuarantineReason = &until, hostileWhy
	if err := st.SaveMachine(ctx, mac); err != nil {
		t.Fatal(err)
	}
	hostile := `x"><script>alert(1)</script>`
	add(hostile, "", linuxFacts(hostileHost))
	if err := st.AddAction(ctx, "lx-bb", client.Action{Action: "quarantine", Who: "token abc (" + hostilePool + ")", Why: hostileWhy, At: now.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	return &dashEnv{env: e, hostileID: hostile}
}

// get fetches path with the given Authorization header value (none when
// empty) and returns the answer and its body.
func (e *dashEnv) get(path, auth string) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequest("GET", e.url+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, string(body)
}

func basic(user, pass string) string {
	req, _ := http.NewRequest("GET", "http://x/", nil)
	req.SetBasicAuth(user, pass)
	return req.Header.Get("Authorization")
}

// TestDashboardAuth: the dashboard takes read-only and admin tokens as
// HTTP Basic passwords or bearer tokens, and challenges everyone else.
func TestDashboardAuth(t *testing.T) {
	e := newDashEnv(t)
	enroll, err := e.admin.CreateToken(e.ctx(), client.TokenRequest{Kind: client.TokenEnroll, Uses: 1})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, auth string
		want       int
	}{
		{"wrong token as password", basic("ops", "nope-nope-nope-nope"), 401},
		{"empty password", basic("ops", ""), 401},
		{"wrong bearer token", "Bearer nope-nope-nope-nope", 401},
		{"machine token", basic("lx-bb", "lrm_lx-bb"), 401},
		{"enrollment token", basic("ops", enroll.Token), 401},
		{"read-only token as password", basic("anyone", dashReadOnly), 200},
		{"read-only token, no user name", basic("", dashReadOnly), 200},
		{"read-only bearer token", "Bearer " + dashReadOnly, 200},
		{"admin token as password", basic("ops", testAdminToken), 200},
	}
	for _, path := range []string{"/dashboard", "/dashboard/machines/lx-bb"} {
		// A browser without credentials is sent to the sign-in form.
		resp, _ := e.get(path, "")
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard/login?next="+url.QueryEscape(path) {
			t.Errorf("GET %s without credentials: %d to %q, want 303 to the sign-in form", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, path := range []string{"/dashboard", "/dashboard/machines/lx-bb"} {
				resp, body := e.get(path, c.auth)
				if resp.StatusCode != c.want {
					t.Fatalf("GET %s: %d, want %d\n%s", path, resp.StatusCode, c.want, body)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
					t.Errorf("GET %s: Content-Type %q", path, ct)
				}
				challenge := resp.Header.Get("WWW-Authenticate")
				if c.want == 401 && challenge != `Basic realm="labrunner provisioner"` {
					t.Errorf("GET %s: 401 with WWW-Authenticate %q, want the Basic challenge", path, challenge)
				}
				if c.want == 200 && challenge != "" {
					t.Errorf("GET %s: 200 with a challenge %q", path, challenge)
				}
				if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
					t.Errorf("GET %s: Cache-Control %q, want no-store", path, cc)
				}
				for _, secret := range []string{dashReadOnly, testAdminToken, enroll.Token, "nope-nope"} {
					if strings.Contains(body, secret) {
						t.Errorf("GET %s: the page shows a token", path)
					}
				}
			}
		})
	}
}

// TestDashboardShowsPoolsAndMachines: every pool's source, queue,
// builders and sizing, and every machine's work, as the API reports them.
func TestDashboardShowsPoolsAndMachines(t *testing.T) {
	e := newDashEnv(t)
	resp, body := e.get("/dashboard", basic("ops", dashReadOnly))
	if resp.StatusCode != 200 {
		t.Fatalf("GET /dashboard: %d\n%s", resp.StatusCode, body)
	}
	if !strings.Contains(body, `<meta http-equiv="refresh" content="30">`) {
		t.Error("the page does not refresh itself")
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	for _, pool := range []string{"tc-win", "bb-linux", "mixed"} {
		row := poolRow(t, body, pool)
		sz, err := e.admin.Sizing(e.ctx(), pool)
		if err != nil {
			t.Fatal(err)
		}
		if got := recommendedIn(row); got != fmt.Sprint(sz.RecommendedCapacity) {
			t.Errorf("pool %s: recommended %d (as GET …/sizing says) not shown:\n%s", pool, sz.RecommendedCapacity, row)
		}
		for _, cell := range []string{
			fmt.Sprintf(`<td class="n">%d</td>`, sz.Pending),
			fmt.Sprintf(`<td class="n">%d</td>`, sz.Assigned),
			fmt.Sprintf(`<td class="n">%d</td>`, sz.Target),
		} {
			if !strings.Contains(row, cell) {
				t.Errorf("pool %s: %s missing from\n%s", pool, cell, row)
			}
		}
	}
	for pool, want := range map[string][]string{
		// No run finished: the recommendation is the target.
		"tc-win": {"<td>taskcluster</td>", "<code>proj/win11</code>", `recommended"><span>5</span>`},
		// Build #41 took 15 min; clearing 20 pending builds within
		// 10 min needs 30 machines, above maxCapacity 8.
		"bb-linux": {"<td>buildbot</td>", "<li>linux-sleep</li>", "<li>linux-build</li>", `recommended"><span class="bad">31</span>`},
		"mixed":    {"<td>both</td>", "<code>proj/mixed</code>", "<li>mac-build</li>", `recommended"><span>3</span>`},
		"broken":   {`<span class="bad">unknown</span>`, "queue unreachable"},
	} {
		row := poolRow(t, body, pool)
		for _, w := range want {
			if !strings.Contains(row, w) {
				t.Errorf("pool %s: %q missing from\n%s", pool, w, row)
			}
		}
	}
	if row := poolRow(t, body, "tc-win"); strings.Contains(row, "<li>") && strings.Contains(row, "builders") {
		t.Errorf("a taskcluster pool shows builders:\n%s", row)
	}

	for id, want := range map[string][]string{
		"lx-bb":    {"buildbot linux-sleep #42", "(task TbbTask)", "for 5m0s", "bb-linux", "busy", `<span class="ok">yes</span>`, "10s ago"},
		"win-tc":   {"task TtcTask/2", "for 30s", "tc-win", "30s ago"},
		"mac-both": {"until 2026-11-26 14:00:00Z", "disk: ", "idle", "1m0s ago"},
	} {
		row := machineRow(t, body, id)
		for _, w := range want {
			if !strings.Contains(row, w) {
				t.Errorf("machine %s: %q missing from\n%s", id, w, row)
			}
		}
	}
	if row := machineRow(t, body, "mac-both"); !strings.Contains(row, `class="machine quarantined"`) {
		t.Errorf("the quarantined machine is not marked:\n%s", row)
	}
	if !strings.Contains(body, "4 pools · 4 machines: 3 online, 2 working, 1 quarantined, 1 unassigned") {
		t.Errorf("totals missing:\n%s", body)
	}

	resp, body = e.get("/dashboard?pool=bb-linux", "Bearer "+dashReadOnly)
	if resp.StatusCode != 200 || !strings.Contains(body, "linux-sleep #42") || strings.Contains(body, "TtcTask") || !strings.Contains(body, "Machines of pool bb-linux") {
		t.Errorf("?pool=bb-linux: %d, want only bb-linux's machines\n%s", resp.StatusCode, body)
	}
	resp, _ = e.get("/dashboard/", "")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/dashboard" {
		t.Errorf("GET /dashboard/: %d to %q, want a redirect to /dashboard", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestDashboardMachinePage: one machine's facts, work and recorded
// actions; an unknown machine is a 404 page.
func TestDashboardMachinePage(t *testing.T) {
	e := newDashEnv(t)
	resp, body := e.get("/dashboard/machines/lx-bb", basic("ops", dashReadOnly))
	if resp.StatusCode != 200 {
		t.Fatalf("%d\n%s", resp.StatusCode, body)
	}
	for _, w := range []string{"machine lx-bb", "buildbot linux-sleep #42", "(task TbbTask)", "NUC12", "16384 MB",
		"<td>quarantine</td>", "token abc (&lt;script&gt;", "2026-11-26 11:59:00Z", `href="/dashboard?pool=bb-linux#machines"`} {
		if !strings.Contains(body, w) {
			t.Errorf("%q missing from\n%s", w, body)
		}
	}
	resp, body = e.get("/dashboard/machines/nowhere", basic("ops", dashReadOnly))
	if resp.StatusCode != 404 || !strings.Contains(body, "nowhere") {
		t.Errorf("unknown machine: %d\n%s", resp.StatusCode, body)
	}
}

// TestDashboardEscapes: hostile names, descriptions, reasons and health
// messages are shown as text, never as markup.
func TestDashboardEscapes(t *testing.T) {
	e := newDashEnv(t)
	for _, path := range []string{"/dashboard", "/dashboard/machines/" + url.PathEscape(e.hostileID), "/dashboard/machines/lx-bb", "/dashboard/machines/mac-both"} {
		resp, body := e.get(path, "Bearer "+dashReadOnly)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d\n%s", path, resp.StatusCode, body)
		}
		for _, tag := range []string{"<script", "<img", "</td><script"} {
			if strings.Contains(body, tag) {
				t.Errorf("GET %s: unescaped %q in\n%s", path, tag, body)
			}
		}
	}
	_, body := e.get("/dashboard", "Bearer "+dashReadOnly)
	for _, w := range []string{
		"&lt;script&gt;alert(&#34;pool&#34;)&lt;/script&gt;",                        // pool description
		"&lt;img src=x onerror=alert(1)&gt;",                                        // host name
		"x&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;",                           // machine id as text
		`href="/dashboard/machines/x%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E"`, // … and in a link
		"&lt;/td&gt;&lt;script&gt;alert(&#39;why&#39;)&lt;/script&gt;",              // quarantine reason, health message
	} {
		if !strings.Contains(body, w) {
			t.Errorf("%q missing from\n%s", w, body)
		}
	}
}

// recommendedIn is the number in a pool row's recommended cell.
func recommendedIn(row string) string {
	_, cell, _ := strings.Cut(row, `recommended"><span`)
	_, cell, _ = strings.Cut(cell, ">")
	n, _, _ := strings.Cut(cell, "</span>")
	return n
}

// poolRow is the table row of pool in body.
func poolRow(t *testing.T, body, pool string) string {
	t.Helper()
	return tableRow(t, body, `<tr class="pool`, `#machines">`+pool+`</a>`)
}

// machineRow is the table row of machine id in body.
func machineRow(t *testing.T, body, id string) string {
	t.Helper()
	return tableRow(t, body, `<tr class="machine`, `">`+id+`</a>`)
}

func tableRow(t *testing.T, body, start, marker string) string {
	t.Helper()
	for _, part := range strings.Split(body, start)[1:] {
		row, _, _ := strings.Cut(part, "</tr>")
		if strings.Contains(row, marker) {
			return start + row
		}
	}
	t.Fatalf("no row with %s in\n%s", marker, body)
	return ""
}
