package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/devqueue"
)

// Power loss: the runner and its task die at once, and the temporary
// files go (the tasks directory, TMPDIR, the control socket, half-written
// state files) but the state directory stays. The runner comes back as the
// same machine with the same worker id, resolves the lost run from its
// journal and runs the task's retry.
func TestFaultPowerLoss(t *testing.T) {
	t.Parallel()
	q := startQueue(t, devqueue.Config{PollWait: 2 * time.Second}, 5)
	queueID := "faults/power"
	p := startProvisioner(t, q, queueID, 5)
	r := newRunner(t, provisionedRunner(p.proxy.URL(), p.enrollToken(t)))
	machineID := waitRegistered(t, r)
	started := filepath.Join(t.TempDir(), "started")
	task := q.create(taskSpec{queueID: queueID, script: fmt.Sprintf(`if [ "$RUN_ID" = 0 ]; then touch %q; sleep 600; fi; echo "run $RUN_ID done"`, started)})
	waitFile(t, 60*time.Second, started)

	r.kill()
	for _, pid := range taskProcesses(task) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	waitFor(t, 10*time.Second, "the task's processes to die", func() bool { return len(taskProcesses(task)) == 0 })
	lost := removeTemporaries(t, r)
	before := p.machine(t, machineID)

	back := time.Now()
	r.start()
	var s = r.status()
	waitFor(t, 60*time.Second, "the runner to answer again", func() bool {
		s = r.status()
		return s != nil && s.Provisioner != nil && s.Provisioner.Registered
	})
	if s.Provisioner.MachineID != machineID {
		t.Errorf("machine id after the power loss %q, want %q", s.Provisioner.MachineID, machineID)
	}
	waitFor(t, 60*time.Second, "a heartbeat after the restart", func() bool {
		m := p.machine(t, machineID)
		return m.LastHeartbeat != nil && m.LastHeartbeat.After(back)
	})
	heartbeat := time.Since(back)
	run0 := q.runResolved(task, 0, 60*time.Second)
	if run0.State != "exception" || run0.ReasonResolved != "worker-shutdown" {
		t.Errorf("run lost in the power loss: %s/%s, want exception/worker-shutdown", run0.State, run0.ReasonResolved)
	}
	resolved := time.Since(back)
	st := q.waitResolved(task, 60*time.Second)
	if st.State != "completed" || len(st.Runs) != 2 || st.Runs[1].WorkerID != machineID || st.Runs[0].WorkerID != machineID {
		t.Errorf("task after the power loss: %s, runs %+v; want completed on its second run, both on worker %s", st.State, st.Runs, machineID)
	}
	ms := p.machines(t)
	if len(ms) != 1 || ms[0].MachineID != machineID || ms[0].PoolID != "lab" || !ms[0].Registered.Equal(before.Registered) {
		t.Errorf("machines after the power loss: %+v, want %s alone in pool lab, registered once", ms, machineID)
	}
	figure(t, "power loss (%d temporary files removed, state kept): back as %s; first heartbeat %s and lost run resolved %s/%s %s after the restart; lost run's artifacts %v; retry completed on the same worker",
		lost, machineID, heartbeat.Round(time.Millisecond), run0.State, run0.ReasonResolved, resolved.Round(time.Millisecond), q.artifactNames(task, 0))
}

// removeTemporaries deletes what a power loss may take: the tasks
// directory, TMPDIR, the control socket and temporary files of atomic
// writes in the state directory. It returns how many entries went.
func removeTemporaries(t *testing.T, r *runnerProc) int {
	t.Helper()
	n := 0
	for _, dir := range []string{r.tasksDir, r.tmpDir} {
		entries, _ := os.ReadDir(dir)
		n += len(entries)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
	}
	_ = filepath.WalkDir(r.stateDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if p == r.socket || strings.Contains(filepath.Base(p), ".tmp") {
			if os.Remove(p) == nil {
				n++
			}
		}
		return nil
	})
	return n
}
