package provisioner

// Cancellation push: a task canceled (or past its deadline) while a machine
// runs it must stop within seconds, not at the next reclaim. With Pulse the
// provisioner consumes the queue's task-exception messages; every replica
// consumes the same durable queue, so each message is handled once. Without
// Pulse the assigner replica polls queue.status for running tasks.

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueueevents"

	"github.com/labrunner/labrunner/internal/pulse"
	"github.com/labrunner/labrunner/provisioner/client"
)

const taskExceptionExchange = "exchange/taskcluster-queue/v1/task-exception"

// cancelReasons are the resolutions that mean "stop running this task".
var cancelReasons = map[string]bool{"canceled": true, "deadline-exceeded": true}

func (s *Server) runCancellations(ctx context.Context) error {
	if s.cfg.Pulse != nil {
		var once sync.Once
		ready := func() { once.Do(func() { close(s.cancelReady) }) }
		return s.cfg.Pulse.Consume(ctx, pulse.ConsumeOptions{Queue: s.cfg.PulseQueue, Prefetch: 50, Ready: ready},
			[]pulse.Binding{{Exchange: taskExceptionExchange, RoutingKeyPattern: "#"}}, s.handleTaskException)
	}
	if s.cfg.CancelPollInterval < 0 || s.cfg.RootURL == "" {
		<-ctx.Done()
		return ctx.Err()
	}
	return s.pollCancellations(ctx)
}

// handleTaskException queues a cancel-task directive for the machine that
// ran the canceled run. Duplicates only repeat a directive the runner
// ignores for a task it no longer runs.
func (s *Server) handleTaskException(ctx context.Context, d pulse.Delivery) {
	var msg tcqueueevents.TaskExceptionMessage
	if err := json.Unmarshal(d.Body, &msg); err != nil {
		s.log.Warn("undecodable task-exception message dropped", "error", err)
		_ = d.Ack()
		return
	}
	if err := s.cancelFromMessage(ctx, msg); err != nil {
		s.log.Warn("task-exception handling failed; will be redelivered", "task", msg.Status.TaskID, "error", err)
		_ = d.Nack(true)
		return
	}
	_ = d.Ack()
}

func (s *Server) cancelFromMessage(ctx context.Context, msg tcqueueevents.TaskExceptionMessage) error {
	if msg.WorkerID == "" {
		return nil // deadline passed before any run started
	}
	reason := ""
	for _, r := range msg.Status.Runs {
		if r.RunID == msg.RunID {
			reason = r.ReasonResolved
		}
	}
	if !cancelReasons[reason] {
		return nil
	}
	m, err := s.store.GetMachine(ctx, msg.WorkerID)
	if errors.Is(err, ErrNotFound) {
		return nil // not one of ours
	}
	if err != nil {
		return err
	}
	if m.PoolID != "" {
		if p, err := s.store.GetPool(ctx, m.PoolID); err == nil && p.Spec.WorkerGroup != msg.WorkerGroup {
			return nil // same worker id in another worker group
		}
	}
	task := &client.TaskRef{TaskID: msg.Status.TaskID, RunID: int(msg.RunID)}
	s.log.Info("task canceled; telling its machine", "machine", m.MachineID, "task", task.TaskID, "run", task.RunID, "reason", reason)
	return s.queueDirective(ctx, m.MachineID, client.Directive{Kind: client.DirectiveCancelTask, Task: task, Reason: reason})
}

// pollCancellations is the fallback without Pulse.
func (s *Server) pollCancellations(ctx context.Context) error {
	t := time.NewTicker(s.cfg.CancelPollInterval)
	defer t.Stop()
	sent := map[client.TaskRef]bool{}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if !s.Leading() {
			continue
		}
		s.cancelPolls.Add(1)
		machines, err := s.store.ListMachines(ctx)
		if err != nil {
			s.log.Warn("cancellation poll: list machines", "error", err)
			continue
		}
		running := map[client.TaskRef]bool{}
		for _, m := range machines {
			// Buildbot builds learn of cancellation from the bridge.
			if m.CurrentTask == nil || m.PoolID == "" || m.CurrentTask.Kind == client.KindBuildbot {
				continue
			}
			ref := *m.CurrentTask
			running[ref] = true
			if sent[ref] {
				continue
			}
			state, reason, err := s.tc.taskStatus(ctx, m.PoolID, ref.TaskID, ref.RunID)
			if err != nil {
				s.log.Warn("cancellation poll: task status", "task", ref.TaskID, "error", err)
				continue
			}
			if state == "exception" && cancelReasons[reason] {
				if err := s.queueDirective(ctx, m.MachineID, client.Directive{Kind: client.DirectiveCancelTask, Task: &ref, Reason: reason}); err != nil {
					s.log.Warn("cancellation poll: queue directive", "error", err)
					continue
				}
				sent[ref] = true
			}
		}
		for ref := range sent {
			if !running[ref] {
				delete(sent, ref)
			}
		}
	}
}
