package agent

// One Pulse subscription serves every run of the agent: the queue publishes
// task-exception with the worker's group and id in the routing key when it
// cancels a claimed run, so the binding selects exactly this worker's
// cancellations and the agent's cost does not grow with the fleet.

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/labrunner/labrunner/internal/pulse"
)

// taskExceptionExchange is the queue's task-exception exchange.
const taskExceptionExchange = "exchange/taskcluster-queue/v1/task-exception"

// PulseCancelWatcher learns of cancellations from the queue's
// task-exception messages for one worker.
type PulseCancelWatcher struct {
	consumer pulse.Consumer
	opts     pulse.ConsumeOptions
	binding  pulse.Binding
	log      *slog.Logger
	ready    chan struct{}

	mu      sync.Mutex
	watches map[runKey]chan struct{}
	seen    map[runKey]bool // cancellations that arrived before Watch
}

// maxUnwatchedCancels bounds remembered cancellations of unwatched runs.
const maxUnwatchedCancels = 256

type runKey struct {
	taskID string
	runID  int
}

// NewPulseCancelWatcher prepares a watcher for the worker's
// task-exception messages; call Run to start consuming. queueName must be
// in Pulse's `queue/<user>/<name>` form.
func NewPulseCancelWatcher(consumer pulse.Consumer, queueName, provisionerID, workerType, workerGroup, workerID string, log *slog.Logger) *PulseCancelWatcher {
	if log == nil {
		log = slog.Default()
	}
	w := &PulseCancelWatcher{
		consumer: consumer,
		binding: pulse.Binding{
			Exchange:          taskExceptionExchange,
			RoutingKeyPattern: fmt.Sprintf("primary.*.*.%s.%s.%s.%s.*.*.#", workerGroup, workerID, provisionerID, workerType),
		},
		log:     log,
		ready:   make(chan struct{}),
		watches: map[runKey]chan struct{}{},
		seen:    map[runKey]bool{},
	}
	var once sync.Once
	w.opts = pulse.ConsumeOptions{
		Queue:     queueName,
		Exclusive: true,
		Ready:     func() { once.Do(func() { close(w.ready) }) },
	}
	return w
}

// Ready is closed once the subscription is in place.
func (w *PulseCancelWatcher) Ready() <-chan struct{} { return w.ready }

// Run consumes until ctx is done.
func (w *PulseCancelWatcher) Run(ctx context.Context) error {
	err := w.consumer.Consume(ctx, w.opts, []pulse.Binding{w.binding}, w.handle)
	if err != nil {
		return fmt.Errorf("subscribe to task-exception messages: %w", err)
	}
	return nil
}

func (w *PulseCancelWatcher) handle(_ context.Context, d pulse.Delivery) {
	defer func() { _ = d.Ack() }()
	// primary.<taskId>.<runId>.<workerGroup>.<workerId>.…
	words := strings.Split(d.RoutingKey, ".")
	if len(words) < 3 {
		return
	}
	runID, err := strconv.Atoi(words[2])
	if err != nil {
		return
	}
	k := runKey{taskID: words[1], runID: runID}
	w.mu.Lock()
	defer w.mu.Unlock()
	if ch, ok := w.watches[k]; ok {
		close(ch)
		delete(w.watches, k)
		return
	}
	// Our own exception reports come back here too; bound what is kept
	// for runs nobody watches.
	if len(w.seen) >= maxUnwatchedCancels {
		clear(w.seen)
	}
	w.seen[k] = true
}

// Watch returns a channel closed when a task-exception for run arrives.
func (w *PulseCancelWatcher) Watch(ctx context.Context, run Run) <-chan struct{} {
	k := runKey{taskID: run.TaskID(), runID: run.RunID()}
	ch := make(chan struct{})
	w.mu.Lock()
	if w.seen[k] {
		delete(w.seen, k)
		close(ch)
		w.mu.Unlock()
		return ch
	}
	w.watches[k] = ch
	w.mu.Unlock()
	go func() {
		<-ctx.Done()
		w.mu.Lock()
		if w.watches[k] == ch {
			delete(w.watches, k)
		}
		delete(w.seen, k)
		w.mu.Unlock()
	}()
	return ch
}
