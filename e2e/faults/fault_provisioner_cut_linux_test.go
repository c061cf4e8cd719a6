package faults

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/devqueue"
)

// The provisioner is unreachable (every connection reset) for two minutes:
// the runner goes on with the credentials it has, so the task running at
// the cut and the tasks created during it complete; after the cut its
// heartbeats resume on their own, as the same machine in the same pool.
func TestFaultProvisionerUnreachable(t *testing.T) {
	t.Parallel()
	const cut, every = 2 * time.Minute, 25 * time.Second
	q := startQueue(t, devqueue.Config{PollWait: 2 * time.Second}, 4)
	queueID := "faults/prov-cut"
	p := startProvisioner(t, q, queueID, 4)
	r := newRunner(t, provisionedRunner(p.proxy.URL(), p.enrollToken(t)))
	machineID := waitRegistered(t, r)

	started := filepath.Join(r.dir, "started")
	running := q.create(taskSpec{queueID: queueID, script: fmt.Sprintf(`touch %q; sleep 15; echo "outlived the cut's start"`, started)})
	waitFile(t, 60*time.Second, started)

	p.proxy.Cut()
	cutAt := time.Now()
	if st := q.waitResolved(running, 90*time.Second); st.State != "completed" {
		t.Errorf("task running at the cut: %s, want completed", st.State)
	}
	during := 0
	for time.Since(cutAt)+every < cut {
		id := q.create(taskSpec{queueID: queueID, script: `echo "ran while the provisioner was unreachable"`})
		st := q.waitResolved(id, every)
		if st.State != "completed" || st.Runs[0].WorkerID != machineID {
			t.Errorf("task created %s into the cut: %s on %q, want completed on %s", time.Since(cutAt).Round(time.Second), st.State, st.Runs[0].WorkerID, machineID)
		}
		during++
		time.Sleep(time.Until(cutAt.Add(time.Duration(during) * every)))
	}
	if s := r.status(); s == nil || s.Provisioner == nil || s.Provisioner.Connected {
		t.Errorf("runner status during the cut: %+v, want the provisioner shown disconnected", s)
	}
	time.Sleep(time.Until(cutAt.Add(cut)))
	p.proxy.Restore()
	restored := time.Now()

	waitFor(t, 3*time.Minute, "a heartbeat after the cut", func() bool {
		m := p.machine(t, machineID)
		return m.LastHeartbeat != nil && m.LastHeartbeat.After(restored)
	})
	resumed := time.Since(restored)
	waitFor(t, time.Minute, "runner status to show the provisioner connected", func() bool {
		s := r.status()
		return s != nil && s.Provisioner != nil && s.Provisioner.Connected
	})
	ms := p.machines(t)
	if len(ms) != 1 || ms[0].MachineID != machineID || ms[0].PoolID != "lab" || !ms[0].Online {
		t.Errorf("machines after the cut: %+v, want %s alone, online, in pool lab", ms, machineID)
	}
	after := q.create(taskSpec{queueID: queueID, script: `echo after`})
	if st := q.waitResolved(after, 60*time.Second); st.State != "completed" {
		t.Errorf("task after the cut: %s, want completed", st.State)
	}
	figure(t, "provisioner cut (connections reset) for %s: the running task and %d tasks created during the cut completed; heartbeats resumed %s after it, same machine %s, pool lab; provisioner proxy: %s",
		cut, during, resumed.Round(time.Millisecond), machineID, p.proxy.Counts())
}
