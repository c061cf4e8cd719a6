package provisioner

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// deadURL is an address nothing listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "http://" + addr
}

func TestSystemMapFailuresAndReplicas(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			dead := deadURL(t)
			e := newEnv(t, k.url(t), func(c *Config) {
				c.Bridges = []BridgeEndpoint{{Name: "gone", URL: dead}}
				c.ReplicaID = "replica-a"
			})
			ctx := e.ctx()
			hs := e.srv.historyStore()
			// Another replica, silent for an hour, that used to assign.
			old := e.clock.Now().Add(-time.Hour)
			if err := hs.SaveReplica(ctx, ReplicaRecord{ReplicaID: "replica-b", Hostname: "prov-b", Started: old, Seen: old, Leading: true}); err != nil {
				t.Fatal(err)
			}
			// An hour is beyond the map's window of 10 history intervals.
			m, err := e.admin.System(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]client.Component{}
			for _, c := range m.Components {
				got[c.Name] = c
			}
			if c := got["bridge gone"]; c.Health != client.HealthDown || !strings.Contains(c.LastError, "connection refused") || c.LastErrorAt == nil {
				t.Fatalf("dead bridge: %+v", c)
			}
			if c := got["Taskcluster queue"]; c.Health != client.HealthUnknown {
				t.Fatalf("queue without rootUrl: %+v", c)
			}
			if c := got["Pulse (provisioner)"]; c.Health != client.HealthUnknown || !strings.Contains(c.Summary, "polling") {
				t.Fatalf("no Pulse: %+v", c)
			}
			if c := got["provisioner database"]; c.Health != client.HealthOK {
				t.Fatalf("database: %+v", c)
			}
			if c := got["provisioner replica-a"]; c.Health != client.HealthOK || !strings.Contains(c.Summary, "this replica") {
				t.Fatalf("this replica: %+v", c)
			}
			if _, listed := got["provisioner replica-b"]; listed {
				t.Fatal("a replica silent for an hour is still listed")
			}
			if c := got["assigner"]; c.Health != client.HealthDown {
				t.Fatalf("no replica assigns, yet the map says %+v", c)
			}

			// replica-b comes back, assigning, but it stops a few
			// intervals later; replica-a takes over.
			if err := hs.SaveReplica(ctx, ReplicaRecord{ReplicaID: "replica-b", Hostname: "prov-b", Started: old, Seen: e.clock.Now().Add(-3 * time.Minute), Leading: true}); err != nil {
				t.Fatal(err)
			}
			e.srv.setLeading(true)
			defer e.srv.setLeading(false)
			e.srv.noteError(errString("assigner pass: queue.pendingTasks: 502"))
			m, err = e.admin.System(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got = map[string]client.Component{}
			for _, c := range m.Components {
				got[c.Name] = c
			}
			if c := got["provisioner replica-b"]; c.Health != client.HealthDown || !strings.Contains(c.Summary, "silent for 3m0s") {
				t.Fatalf("silent replica: %+v", c)
			}
			a := got["provisioner replica-a"]
			if a.Health != client.HealthDegraded || !strings.Contains(a.Summary, "runs the assigner") || !strings.Contains(a.LastError, "502") {
				t.Fatalf("leading replica with a recent error: %+v", a)
			}
			if _, ok := got["assigner"]; ok {
				t.Fatal("the map says nobody assigns while replica-a does")
			}

			body := (&historyEnv{env: e}).page("/dashboard/map")
			for _, want := range []string{`id="system-map"`, `data-kind="bridge" data-health="down"`, "connection refused", "provisioner replica-a", "silent for 3m0s"} {
				if !strings.Contains(body, want) {
					t.Fatalf("map page lacks %q", want)
				}
			}
		})
	}
}

type errString string

func (e errString) Error() string { return string(e) }
