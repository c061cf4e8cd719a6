package provisioner

import (
	"context"
	"errors"
	"fmt"

	"github.com/labrunner/labrunner/provisioner/client"
)

// Demand tells the assigner how many tasks wait for a pool.
type Demand interface {
	Pending(ctx context.Context, pool client.Pool) (int64, error)
}

// BuildbotDemand counts pending Buildbot build requests for builders; the
// bridge implements it.
type BuildbotDemand interface {
	PendingRequests(ctx context.Context, builders []string) (int64, error)
}

// DemandFunc adapts a function to Demand.
type DemandFunc func(ctx context.Context, pool client.Pool) (int64, error)

// Pending calls f.
func (f DemandFunc) Pending(ctx context.Context, pool client.Pool) (int64, error) {
	return f(ctx, pool)
}

// sourceDemand asks each pool's source: the queue's pendingTasks for
// Taskcluster pools, BuildbotDemand for Buildbot pools, the sum of both
// for pools of source both.
type sourceDemand struct {
	tc       *taskcluster
	buildbot BuildbotDemand
}

func (d *sourceDemand) Pending(ctx context.Context, pool client.Pool) (int64, error) {
	src := pool.Spec.Source
	if !client.HasTaskcluster(src) && !client.HasBuildbot(src) {
		return 0, fmt.Errorf("pool %s: unknown source %q", pool.PoolID, src)
	}
	var total int64
	if client.HasTaskcluster(src) {
		n, err := d.tc.pending(ctx, pool.PoolID, pool.Spec.TaskQueueID)
		if err != nil {
			return 0, err
		}
		total += n
	}
	if client.HasBuildbot(src) {
		if d.buildbot == nil {
			return 0, errors.New("no Buildbot demand source configured (the bridge provides it)")
		}
		n, err := d.buildbot.PendingRequests(ctx, pool.Spec.Builders)
		if err != nil {
			return 0, fmt.Errorf("buildbot pending requests: %w", err)
		}
		total += n
	}
	return total, nil
}
