package bridge

import (
	"context"
	"time"

	"github.com/labrunner/labrunner/internal/pulse"
)

// Status is what `bridge status` shows: the tasks tracked, how far behind
// the bridge is, and the dead letters.
type Status struct {
	Instance string `json:"instance"`
	// Tasks is the number of rows in the tasks table; Queued have a build
	// request not yet started, Running a claim, Unbound no build request.
	Tasks   int `json:"tasks"`
	Queued  int `json:"queued"`
	Running int `json:"running"`
	Unbound int `json:"unbound"`
	// OldestQueuedSeconds is the age of the oldest request still waiting
	// for Buildbot; LastMessageSecondsAgo is how long this instance has been
	// without a Pulse message (-1 before the first).
	OldestQueuedSeconds   int64 `json:"oldestQueuedSeconds"`
	LastMessageSecondsAgo int64 `json:"lastMessageSecondsAgo"`
	// ReclaimOverdue counts running rows whose takenUntil is already past.
	ReclaimOverdue int          `json:"reclaimOverdue"`
	DeadLetters    int64        `json:"deadLetters"`
	LatestDead     []DeadLetter `json:"latestDeadLetters"`
	// PendingByBuilder is the SchedulerDB's pending requests per builder.
	PendingByBuilder map[string]int `json:"pendingByBuilder"`
	// TaskQueueID is the queue whose tasks this instance bridges.
	TaskQueueID string `json:"taskQueueId"`
	// Databases is each database's answer to a trivial query.
	Databases []DBHealth `json:"databases"`
	// PulseQueues are this bridge's queues as the broker reports them
	// (consumers attached, messages waiting), when the bus can say.
	PulseQueues []pulse.QueueInfo `json:"pulseQueues,omitempty"`
	// PulseError is why the queues could not be read.
	PulseError string `json:"pulseError,omitempty"`
}

func (b *Bridge) status(ctx context.Context) (Status, error) {
	tc := b.cfg.TCListener
	st := Status{Instance: b.cfg.InstanceID, LastMessageSecondsAgo: -1, TaskQueueID: tc.ProvisionerID + "/" + tc.WorkerType}
	// The databases and Pulse first: they say why the rest may fail.
	st.Databases = b.databaseHealth(ctx)
	st.PulseQueues, st.PulseError = b.pulseQueues(ctx)
	rows, err := b.store.List(ctx)
	if err != nil {
		return st, err
	}
	now := b.now()
	st.Tasks = len(rows)
	for _, r := range rows {
		switch {
		case r.BuildRequestID == nil:
			st.Unbound++
		case r.TakenUntil == nil:
			st.Queued++
			st.OldestQueuedSeconds = max(st.OldestQueuedSeconds, now.Unix()-r.ProcessedDate)
		default:
			st.Running++
			if *r.TakenUntil < now.Unix() {
				st.ReclaimOverdue++
			}
		}
	}
	if t := b.lastMessage.get(); !t.IsZero() {
		st.LastMessageSecondsAgo = int64(now.Sub(t) / time.Second)
	}
	if st.DeadLetters, st.LatestDead, err = b.tables.deadLetters(ctx, 20); err != nil {
		return st, err
	}
	if st.PendingByBuilder, err = b.sdb.PendingByBuilder(ctx); err != nil {
		return st, err
	}
	return st, nil
}
