package provisioner

// "Why is this task not running?": which pools serve a task and what each
// of their machines is doing instead.

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// maxElsewhere caps the machines listed as fitting but serving elsewhere.
const maxElsewhere = 50

// whyMachine says what keeps m from taking a task now.
func whyMachine(m *MachineRecord, now time.Time, offlineAfter time.Duration) client.WhyMachine {
	w := client.WhyMachine{MachineID: m.MachineID, PoolID: m.PoolID}
	switch {
	case quarantined(m, now):
		w.Status = "quarantined"
		w.Reason = "quarantined until " + stamp(*m.QuarantinedUntil)
		if m.QuarantineReason != "" {
			w.Reason += ": " + m.QuarantineReason
		}
	case m.LastHeartbeat == nil:
		w.Status, w.Reason = "offline", "offline: has never sent a heartbeat"
	case !online(m, now, offlineAfter):
		w.Status, w.Reason = "offline", "offline: last heartbeat "+ago(now, *m.LastHeartbeat)
	case m.MovingTo != "":
		w.Status, w.Reason = "draining", "draining to move to pool "+m.MovingTo
	case m.Draining || m.State == client.StateDraining || m.State == client.StateDrained:
		w.Status, w.Reason = "draining", "drained by an operator: claims nothing until assigned"
	case isBusy(m):
		w.Status, w.Reason = "busy", "busy"
		if t := m.CurrentTask; t != nil {
			if t.Kind == client.KindBuildbot {
				w.Reason = fmt.Sprintf("busy with buildbot %s #%d (task %s)", t.Builder, t.BuildNumber, t.TaskID)
			} else {
				w.Reason = fmt.Sprintf("busy with task %s/%d", t.TaskID, t.RunID)
			}
			if m.TaskStarted != nil {
				w.Reason += " for " + now.Sub(*m.TaskStarted).Round(time.Second).String()
			}
		}
	case m.State == client.StateStarting || m.State == client.StateRebooting || m.State == "":
		w.Status, w.Reason = "starting", "starting: "+orDefault(m.State, client.StateStarting)+", not claiming yet"
	default:
		w.Status, w.Reason = "idle", "idle: should claim it at its next poll"
	}
	return w
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// countMachine adds w to c.
func countMachine(c *client.WhyCounts, status string) {
	c.Assigned++
	switch status {
	case "idle":
		c.Idle++
	case "busy":
		c.Busy++
	case "quarantined":
		c.Quarantined++
	case "offline":
		c.Offline++
	case "draining":
		c.Draining++
	case "starting":
		c.Starting++
	}
}

// servingPools finds the pools that would run the task: those of its task
// queue and, for a bridged task, those of its build request's builder.
func servingPools(pools []client.Pool, taskQueueID string, builders []string) []client.WhyPool {
	var out []client.WhyPool
	for _, p := range pools {
		via := ""
		if taskQueueID != "" && client.HasTaskcluster(p.Spec.Source) && p.Spec.TaskQueueID == taskQueueID {
			via = "task queue " + taskQueueID
		}
		if via == "" && client.HasBuildbot(p.Spec.Source) {
			for _, b := range builders {
				if slices.Contains(p.Spec.Builders, b) {
					via = "builder " + b
					break
				}
			}
		}
		if via != "" {
			out = append(out, client.WhyPool{PoolID: p.PoolID, Via: via, MaxCapacity: p.Spec.MaxCapacity, Machines: []client.WhyMachine{}})
		}
	}
	return out
}

// explainPools fills each serving pool's machines and lists the machines
// that fit a serving pool but serve another; it returns the sentences
// that explain the wait.
func (s *Server) explainPools(a *client.WhyAnswer, pools []client.Pool, machines []*MachineRecord, now time.Time) []string {
	byID := map[string]client.Pool{}
	for _, p := range pools {
		byID[p.PoolID] = p
	}
	serving := map[string]int{}
	for i, wp := range a.Pools {
		serving[wp.PoolID] = i
	}
	matchers := map[string]matcher{}
	for id := range serving {
		matchers[id] = compileConstraints(byID[id].Spec.Constraints)
	}
	for _, m := range machines {
		w := whyMachine(m, now, s.cfg.OfflineAfter)
		if i, ok := serving[m.PoolID]; ok {
			a.Pools[i].Machines = append(a.Pools[i].Machines, w)
			countMachine(&a.Pools[i].Counts, w.Status)
			continue
		}
		var fits []string
		for id, mt := range matchers {
			if mt.matches(&m.Facts) {
				fits = append(fits, id)
			}
		}
		if len(fits) == 0 || len(a.Elsewhere) >= maxElsewhere {
			continue
		}
		sort.Strings(fits)
		where := "unassigned"
		if m.PoolID != "" {
			where = "in pool " + m.PoolID
		}
		w.Reason = fmt.Sprintf("fits pool %s but is %s (%s)", strings.Join(fits, ", "), where, w.Reason)
		a.Elsewhere = append(a.Elsewhere, w)
	}
	var out []string
	for _, wp := range a.Pools {
		c := wp.Counts
		line := fmt.Sprintf("Pool %s serves it (%s): %d of at most %d machines assigned", wp.PoolID, wp.Via, c.Assigned, wp.MaxCapacity)
		var parts []string
		for _, p := range []struct {
			n    int
			what string
		}{{c.Idle, "idle"}, {c.Busy, "busy"}, {c.Quarantined, "quarantined"}, {c.Offline, "offline"}, {c.Draining, "draining"}, {c.Starting, "starting"}} {
			if p.n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
			}
		}
		if len(parts) > 0 {
			line += ": " + strings.Join(parts, ", ")
		}
		out = append(out, line+".")
		switch {
		case c.Assigned == 0:
			out = append(out, fmt.Sprintf("Pool %s has no machine: the assigner gives it machines that fit its constraints when others can spare them (see the elsewhere list).", wp.PoolID))
		case c.Idle > 0:
			out = append(out, fmt.Sprintf("%s of pool %s should claim it at the next poll; if it stays pending, check what they claim from (runner status on the machine).", count(c.Idle, "idle machine", "idle machines"), wp.PoolID))
		case c.Busy > 0 && c.Busy+c.Draining+c.Starting == c.Assigned-c.Quarantined-c.Offline:
			out = append(out, fmt.Sprintf("Every working machine of pool %s is busy: the task waits for one to finish, or for more machines (raise maxCapacity %d if the pool is at it).", wp.PoolID, wp.MaxCapacity))
		}
		for _, m := range wp.Machines {
			if m.Status == "quarantined" || m.Status == "offline" {
				out = append(out, fmt.Sprintf("%s is %s.", m.MachineID, m.Reason))
			}
		}
	}
	if len(a.Elsewhere) > 0 {
		out = append(out, fmt.Sprintf("Machines that fit a serving pool but serve elsewhere: %d; the assigner moves idle ones there while the pool is below its target.", len(a.Elsewhere)))
	}
	return out
}
