package provisioner

import (
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// TestDashboardDrainAndTaskLinks: a drain shows as a tag only until the
// machine reports it (no "draining [draining]"), and a machine's current
// task links to its page in Taskcluster's UI.
func TestDashboardDrainAndTaskLinks(t *testing.T) {
	base := newEnv(t, sqliteURL(t), func(c *Config) {
		c.ReadOnlyTokens = []string{dashReadOnly}
		c.RootURL = "https://tc.example.com"
	})
	e := &dashEnv{env: base}
	e.pool("tc-win", tcPool("proj/win11", 0, 10, 0, "windows"))
	ctx, st, now := e.ctx(), e.srv.store, e.clock.Now()
	for id, hb := range map[string]client.HeartbeatRequest{
		"asked":   {State: client.StateBusy, CurrentTask: &client.TaskRef{TaskID: "TaskAsked", RunID: 0}},
		"drained": {State: client.StateDrained},
	} {
		m := &MachineRecord{Machine: client.Machine{MachineID: id, PoolID: "tc-win", Facts: winFacts(id), Registered: now.Add(-time.Hour)}, TokenHash: hashToken("lrm_" + id)}
		if err := st.InsertMachine(ctx, m); err != nil {
			t.Fatal(err)
		}
		if err := st.Heartbeat(ctx, id, hb, now); err != nil {
			t.Fatal(err)
		}
		if _, err := e.admin.Drain(ctx, id, "maintenance"); err != nil {
			t.Fatal(err)
		}
	}
	resp, body := e.get("/dashboard", "Bearer "+dashReadOnly)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /dashboard: %d", resp.StatusCode)
	}
	asked, drained := machineRow(t, body, "asked"), machineRow(t, body, "drained")
	if !strings.Contains(asked, `busy <span class="tag">drain requested</span>`) ||
		!strings.Contains(asked, `<a href="https://tc.example.com/tasks/TaskAsked">task TaskAsked/0</a>`) {
		t.Errorf("machine still busy after a drain request:\n%s", asked)
	}
	if !strings.Contains(drained, "<td>drained</td>") || strings.Contains(drained, "tag") {
		t.Errorf("drained machine shows a second drain tag:\n%s", drained)
	}
}
