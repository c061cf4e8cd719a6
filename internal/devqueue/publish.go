package devqueue

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labrunner/labrunner/internal/pulse"
)

const exchangePrefix = "exchange/taskcluster-queue/v1/"

// outboxLimit bounds queued messages; beyond it messages are dropped (and
// logged) rather than letting a dead broker grow memory without end.
const outboxLimit = 100000

// publishTimeout bounds one Publish call so a stuck broker cannot stall the
// outbox forever.
const publishTimeout = 30 * time.Second

// retryPause separates the outbox's tries of a message the broker did not
// take (the publisher has already retried with backoff within each try).
var retryPause = time.Second

// outbox publishes messages in the order they were queued, from one
// goroutine at a time, outside the state lock. Handlers queue messages while
// holding the state lock, so the order matches the order of state changes.
type outbox struct {
	pub pulse.Publisher
	log *slog.Logger

	mu       sync.Mutex
	queue    []pulse.Outgoing
	draining bool
	stopped  bool

	// handled counts messages handed to the publisher (delivered or not).
	handled atomic.Int64
}

func newOutbox(pub pulse.Publisher, log *slog.Logger) *outbox {
	return &outbox{pub: pub, log: log}
}

func (o *outbox) add(msg pulse.Outgoing) {
	if o.pub == nil {
		o.log.Debug("devqueue: no publisher; dropping message", "exchange", msg.Exchange, "routingKey", msg.RoutingKey)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.queue) >= outboxLimit {
		o.log.Error("devqueue: outbox full; dropping message", "exchange", msg.Exchange, "routingKey", msg.RoutingKey)
		return
	}
	o.queue = append(o.queue, msg)
	if !o.draining {
		o.draining = true
		go o.drain()
	}
}

func (o *outbox) drain() {
	for {
		o.mu.Lock()
		if len(o.queue) == 0 {
			o.draining = false
			o.mu.Unlock()
			return
		}
		msg := o.queue[0]
		o.queue[0] = pulse.Outgoing{}
		o.queue = o.queue[1:]
		o.mu.Unlock()
		for !o.publish(msg) {
			time.Sleep(retryPause)
		}
		o.handled.Add(1)
	}
}

// publish hands msg to the publisher and says whether the outbox is done
// with it. A broker that stays away for publishTimeout keeps the message
// (and those behind it, in order) for another try: a lost task-pending
// would leave its task pending with no worker ever told. Messages the
// broker refuses outright, and all of them once the outbox is stopped, are
// dropped and logged.
func (o *outbox) publish(msg pulse.Outgoing) bool {
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	err := o.pub.Publish(ctx, msg)
	if err == nil {
		return true
	}
	o.mu.Lock()
	stopped := o.stopped
	o.mu.Unlock()
	if errors.Is(err, context.DeadlineExceeded) && !stopped {
		o.log.Warn("devqueue: broker unavailable; the message waits for it", "exchange", msg.Exchange, "routingKey", msg.RoutingKey, "error", err)
		return false
	}
	o.log.Error("devqueue: publish failed; message dropped", "exchange", msg.Exchange, "routingKey", msg.RoutingKey, "error", err)
	return true
}

// stop makes the outbox drop, rather than keep, what the broker does not take.
func (o *outbox) stop() {
	o.mu.Lock()
	o.stopped = true
	o.mu.Unlock()
}

// flush waits until every queued message has been handed to the publisher,
// or until timeout passes (a stuck broker must not stall shutdown).
func (o *outbox) flush(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		o.mu.Lock()
		draining := o.draining
		o.mu.Unlock()
		if !draining {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pulseTask is task-pulse-definition.json.
type pulseTask struct {
	Tags map[string]string `json:"tags"`
}

// message is the union of the queue's message bodies; omitempty fields are
// absent where the real queue leaves them out.
type message struct {
	Version     int         `json:"version"`
	Status      *taskStatus `json:"status,omitempty"`
	Task        *pulseTask  `json:"task,omitempty"`
	RunID       *int        `json:"runId,omitempty"`
	WorkerGroup string      `json:"workerGroup,omitempty"`
	WorkerID    string      `json:"workerId,omitempty"`
	TakenUntil  string      `json:"takenUntil,omitempty"`
	Artifact    *artifactJS `json:"artifact,omitempty"`
}

// publishOpts describes one event; runID < 0 means none.
type publishOpts struct {
	runID       int
	withTags    bool
	workerGroup string
	workerID    string
	takenUntil  time.Time
	artifact    *artifactJS
	// status replaces the task's current status (task-defined carries the
	// status from before scheduling).
	status *taskStatus
}

// publish queues a message about t on exchange; call it under s.mu.
func (s *Server) publish(exchange string, t *task, o publishOpts) {
	st := t.status()
	if o.status != nil {
		st = *o.status
	}
	m := message{Version: 1, Status: &st, WorkerGroup: o.workerGroup, WorkerID: o.workerID, Artifact: o.artifact}
	if o.withTags {
		tags := t.Def.Tags
		if tags == nil {
			tags = map[string]string{}
		}
		m.Task = &pulseTask{Tags: tags}
	}
	runWord := "_"
	if o.runID >= 0 {
		id := o.runID
		m.RunID = &id
		runWord = strconv.Itoa(id)
	}
	if !o.takenUntil.IsZero() {
		m.TakenUntil = formatTime(o.takenUntil)
	}
	body, err := json.Marshal(m)
	if err != nil {
		s.log.Error("devqueue: encode message", "exchange", exchange, "error", err)
		return
	}
	word := func(v string) string {
		if v == "" {
			return "_"
		}
		return v
	}
	key := "primary." + t.ID + "." + runWord + "." + word(o.workerGroup) + "." + word(o.workerID) + "." +
		t.Def.ProvisionerID + "." + t.Def.WorkerType + "." + t.Def.SchedulerID + "." + t.Def.TaskGroupID + "._"
	var cc []string
	for _, r := range t.Def.Routes {
		cc = append(cc, "route."+r)
	}
	s.out.add(pulse.Outgoing{Exchange: exchangePrefix + exchange, RoutingKey: key, CC: cc, Body: body})
}
